"""Protocol v1: the messages a client and the server exchange, and their validation.

Pure functions and frozen dataclasses, no I/O: the server, the client and the tests share them.
Every problem with a client's message becomes a `ProtocolError` whose `code` is one of
`ERROR_CODES`; the server sends it as an `error` event and closes with `CLOSE_CODES[code]`.
The full contract is written out in README.md ("Live server: WebSocket protocol v1").
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from streamdiar.engine.labels import Segment

PROTOCOL_VERSION = 1
STREAM_PATH = "/v1/stream"

ENCODING_WIDTHS = {"pcm_s16le": 2, "pcm_f32le": 4}
MIN_SAMPLE_RATE = 8000
MAX_SAMPLE_RATE = 48000
CHANNEL_COUNTS = (1, 2)
MAX_TEXT_BYTES = 65536  # a start message with config and profiles fits easily
MAX_TOKEN_CHARS = 4096
MAX_PROFILES = 32
MAX_PROFILE_NAME_CHARS = 200

# error code -> WebSocket close code (RFC 6455 section 7.4.1)
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_CODES = {
    "bad_request": 1008,  # policy violation: a message the protocol does not allow here
    "unsupported": 1003,  # unsupported data: an encoding, rate or feature the server does not offer
    "too_large": 1009,  # message too big
    "unauthorized": 1008,
    "overloaded": 1013,  # try again later
    "timeout": 1008,
    "session_too_long": 1008,
    "internal": 1011,
}
ERROR_CODES = tuple(CLOSE_CODES)

START_FIELDS = {"type", "sample_rate", "encoding", "channels", "token", "config", "profiles", "protocol"}


class ProtocolError(Exception):
    """A client message the server refuses; `code` is one of ERROR_CODES."""

    def __init__(self, code: str, message: str):
        assert code in CLOSE_CODES, code
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def close_code(self) -> int:
        return CLOSE_CODES[self.code]


@dataclass(frozen=True)
class AudioFormat:
    sample_rate: int
    encoding: str
    channels: int

    @property
    def frame_bytes(self) -> int:
        """Bytes of one sample frame (one sample of every channel)."""
        return ENCODING_WIDTHS[self.encoding] * self.channels


@dataclass(frozen=True)
class StartMessage:
    audio: AudioFormat
    token: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    profiles: tuple[str, ...] = ()


@dataclass(frozen=True)
class StopMessage:
    pass


# -- client -> server ---------------------------------------------------------------------------
def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_text(text: str) -> StartMessage | StopMessage:
    """A client's text message -> StartMessage or StopMessage; ProtocolError otherwise."""
    if len(text) > MAX_TEXT_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_TEXT_BYTES:
        raise ProtocolError("too_large", f"text message over {MAX_TEXT_BYTES} bytes")
    try:
        message = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise ProtocolError("bad_request", f"invalid JSON: {_first_line(exc)}") from None
    if not isinstance(message, dict):
        raise ProtocolError("bad_request", "a text message must be a JSON object")
    kind = message.get("type")
    if kind == "start":
        return _parse_start(message)
    if kind == "stop":
        extra = sorted(set(message) - {"type"})
        if extra:
            raise ProtocolError("bad_request", f"stop: unknown field {extra[0]!r}")
        return StopMessage()
    if not isinstance(kind, str):
        raise ProtocolError("bad_request", "message needs a string field 'type'")
    raise ProtocolError("bad_request", f"unknown message type {_short(kind)!r} (expected 'start' or 'stop')")


def _parse_start(message: dict) -> StartMessage:
    unknown = sorted(set(message) - START_FIELDS)
    if unknown:
        raise ProtocolError("bad_request", f"start: unknown field {_short(unknown[0])!r}")
    if "protocol" in message and not (_is_int(message["protocol"]) and message["protocol"] == PROTOCOL_VERSION):
        raise ProtocolError("unsupported", f"start: protocol {_short(message['protocol'])!r} is not supported "
                                           f"(this server speaks {PROTOCOL_VERSION})")
    for name in ("sample_rate", "encoding", "channels"):
        if name not in message:
            raise ProtocolError("bad_request", f"start: missing field {name!r}")
    rate, encoding, channels = message["sample_rate"], message["encoding"], message["channels"]
    if not _is_int(rate):
        raise ProtocolError("bad_request", f"start: sample_rate must be an integer, got {_short(rate)!r}")
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise ProtocolError("unsupported", f"start: sample_rate {_short(rate)} is outside "
                                           f"{MIN_SAMPLE_RATE}..{MAX_SAMPLE_RATE}")
    if not isinstance(encoding, str):
        raise ProtocolError("bad_request", f"start: encoding must be a string, got {_short(encoding)!r}")
    if encoding not in ENCODING_WIDTHS:
        raise ProtocolError("unsupported", f"start: encoding {_short(encoding)!r} is not one of "
                                           f"{', '.join(ENCODING_WIDTHS)}")
    if not _is_int(channels):
        raise ProtocolError("bad_request", f"start: channels must be an integer, got {_short(channels)!r}")
    if channels not in CHANNEL_COUNTS:
        raise ProtocolError("unsupported", f"start: channels must be 1 or 2, got {_short(channels)}")
    token = message.get("token")
    if token is not None and (not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS):
        raise ProtocolError("bad_request", "start: token must be a string")
    config = message.get("config", {})
    if not isinstance(config, dict):
        raise ProtocolError("bad_request", "start: config must be an object")
    profiles = message.get("profiles", [])
    if not isinstance(profiles, list) or not all(isinstance(p, str) and 0 < len(p) <= MAX_PROFILE_NAME_CHARS
                                                 for p in profiles):
        raise ProtocolError("bad_request", "start: profiles must be a list of speaker names")
    if len(profiles) > MAX_PROFILES:
        raise ProtocolError("bad_request", f"start: at most {MAX_PROFILES} profiles")
    return StartMessage(AudioFormat(rate, encoding, channels), token, config, tuple(profiles))


def decode_frame(payload: bytes, audio: AudioFormat) -> np.ndarray:
    """One binary frame -> mono float32 samples at the client's rate (channels averaged)."""
    if len(payload) % audio.frame_bytes:
        raise ProtocolError("bad_request", f"frame of {len(payload)} bytes is not a whole number of "
                                           f"{audio.channels}-channel {audio.encoding} samples")
    if audio.encoding == "pcm_s16le":
        samples = np.frombuffer(payload, dtype="<i2").astype(np.float32) * (1.0 / 32768.0)
    else:
        samples = np.frombuffer(payload, dtype="<f4").astype(np.float32)
        if not np.isfinite(samples).all():
            raise ProtocolError("bad_request", "frame contains NaN or infinite samples")
        np.clip(samples, -1.0, 1.0, out=samples)
    if audio.channels > 1:
        samples = samples.reshape(-1, audio.channels).mean(axis=1, dtype=np.float32)
    return samples


# -- server -> client ---------------------------------------------------------------------------
def _event(**fields: Any) -> str:
    return json.dumps(fields, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def ready_event(session: str) -> str:
    return _event(type="ready", session=session, protocol=PROTOCOL_VERSION)


def segment_event(segment: Segment, revision: int, audio_s: float) -> str:
    return _event(type="segment", speaker=segment.speaker, start=segment.start, end=segment.end,
                  final=segment.final, confidence=_unit(segment.confidence), revision=revision,
                  audio_s=round(audio_s, 3))


def done_event(samples: int, sample_rate: int, reason: str = "stop") -> str:
    return _event(type="done", samples=samples, seconds=round(samples / sample_rate, 6), reason=reason)


def error_event(code: str, message: str, **extra: Any) -> str:
    assert code in CLOSE_CODES, code
    return _event(type="error", code=code, message=message, **extra)


# -- helpers ------------------------------------------------------------------------------------
def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _unit(value: float) -> float:
    return round(min(1.0, max(0.0, value)), 3) if math.isfinite(value) else 0.0


def _short(value: Any, limit: int = 40) -> Any:
    """Echo client values in errors without letting them flood the message."""
    if isinstance(value, str) and len(value) > limit:
        return value[:limit] + "..."
    if isinstance(value, (int, float)) and len(repr(value)) > limit:
        return repr(value)[:limit] + "..."
    if isinstance(value, (list, dict)):
        return type(value).__name__
    return value


def _first_line(exc: Exception) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:120]
