"""Per-session settings from a start message's "config": which keys the server allows, their
validation, and applying them to a freshly opened stream.

Only settings that live in one stream's state can differ between sessions (tracker, labels,
speaker-count hints); step and latency are shared by every stream of the batched engine.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from streamdiar.config import Config, ConfigError, LabelConfig, TrackerConfig, from_dict
from streamdiar.server.protocol import ProtocolError

# bounds that keep one session's state small whatever a client asks for
MAX_SPEAKERS_CAP = 32
MEMORY_SIZE_CAP = 256
TOP_K_CAP = 64
COUNT_KEYS = ("num_speakers", "min_speakers", "max_speakers")
SECTIONS = {"tracker": TrackerConfig, "labels": LabelConfig}


@dataclass(frozen=True)
class SessionSettings:
    tracker: TrackerConfig
    labels: LabelConfig
    num_speakers: int | None = None
    min_speakers: int | None = None
    max_speakers: int | None = None

    @property
    def has_counts(self) -> bool:
        return any(getattr(self, key) is not None for key in COUNT_KEYS)


def session_settings(base: Config, overrides: dict, allowed: frozenset[str]) -> SessionSettings | None:
    """Validate a start message's config against the server's policy; None when it is empty."""
    if not overrides:
        return None
    for key in overrides:
        if key not in SECTIONS and key not in COUNT_KEYS:
            raise ProtocolError("bad_request", f"config: unknown key {str(key)[:40]!r} "
                                               f"(known: {', '.join(sorted([*SECTIONS, *COUNT_KEYS]))})")
        if key not in allowed:
            raise ProtocolError("unsupported", f"config: this server does not allow clients to set {key!r}")
    sections = {}
    for name, cls in SECTIONS.items():
        current = getattr(base, name)
        change = overrides.get(name, {})
        if not isinstance(change, dict):
            raise ProtocolError("bad_request", f"config.{name}: must be an object")
        try:
            sections[name] = from_dict(cls, {**dataclasses.asdict(current), **change}, f"config.{name}")
        except (ConfigError, TypeError) as exc:
            raise ProtocolError("bad_request", str(exc)) from None
    tracker = sections["tracker"]
    for name, cap in (("max_speakers", MAX_SPEAKERS_CAP), ("memory_size", MEMORY_SIZE_CAP), ("top_k", TOP_K_CAP)):
        if getattr(tracker, name) > cap and getattr(tracker, name) != getattr(base.tracker, name):
            raise ProtocolError("bad_request", f"config.tracker.{name}: at most {cap}")
    counts = {}
    for key in COUNT_KEYS:
        value = overrides.get(key)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_SPEAKERS_CAP:
            raise ProtocolError("bad_request", f"config.{key}: must be an integer from 1 to {MAX_SPEAKERS_CAP}")
        counts[key] = value
    if "min_speakers" in counts and "max_speakers" in counts and counts["min_speakers"] > counts["max_speakers"]:
        raise ProtocolError("bad_request", "config: min_speakers is above max_speakers")
    return SessionSettings(tracker, sections["labels"], **counts)


def apply_settings(stream, settings: SessionSettings) -> None:
    """Give a stream that has not received audio yet its own tracker and segmenter."""
    state = stream.state
    state.tracker = stream.diarizer.new_tracker(settings.tracker)
    state.segmenter = stream.diarizer.new_segmenter(settings.labels, state.tracker)


def apply_counts(stream, settings: SessionSettings) -> None:
    """Speaker-count hints (everyone who speaks, enrolled speakers included), set after the profiles."""
    stream.state.tracker.set_speaker_count(settings.num_speakers, settings.min_speakers, settings.max_speakers)
