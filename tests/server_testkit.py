"""Helpers for the server tests: a raw protocol-v1 client (only what the protocol text says),
audio as PCM bytes, and DER of a session's segments against the shared reference."""
from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
import websockets
from websockets.asyncio.client import connect

from streamdiar.audio import resample
from streamdiar.evaluate.der import DERScorer, read_rttm, read_uem, to_annotation
from streamdiar.server.client import encode

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
REAL_DEV = SHARED / "real_dev"
SAMPLE = REAL_DEV / "sample.wav"
READ_TIMEOUT_S = 30.0


def start_message(rate: int = 16000, encoding: str = "pcm_s16le", channels: int = 1, **extra) -> str:
    return json.dumps({"type": "start", "sample_rate": rate, "encoding": encoding, "channels": channels, **extra})


STOP = json.dumps({"type": "stop"})


def sample_audio() -> np.ndarray:
    audio, rate = sf.read(SAMPLE, dtype="float32")
    assert rate == 16000
    return audio


def as_format(audio16k: np.ndarray, rate: int, channels: int) -> np.ndarray:
    """16 kHz mono -> `rate` Hz with `channels` identical channels, shape (n, channels)."""
    audio = resample(audio16k, 16000, rate) if rate != 16000 else audio16k
    return np.repeat(audio[:, None], channels, axis=1)


@dataclass
class Outcome:
    events: list[dict] = field(default_factory=list)
    close_code: int | None = None
    sent: int = 0
    arrivals: list[float] = field(default_factory=list)  # wall time of each event
    start_wall: float = 0.0  # when the first audio was sent

    @property
    def last(self) -> dict:
        return self.events[-1] if self.events else {}

    def finals(self) -> list[dict]:
        return [e for e in self.events if e["type"] == "segment" and e["final"]]

    def error_code(self) -> str | None:
        return self.last.get("code") if self.last.get("type") == "error" else None


async def read_all(ws, outcome: Outcome, timeout: float = READ_TIMEOUT_S) -> Outcome:
    try:
        while True:
            async with asyncio.timeout(timeout):
                text = await ws.recv()
            outcome.events.append(json.loads(text))
            outcome.arrivals.append(time.monotonic())
    except websockets.ConnectionClosed:
        pass
    outcome.close_code = ws.close_code
    return outcome


async def exchange(url: str, *messages: str | bytes, headers: dict | None = None, timeout: float = READ_TIMEOUT_S,
                   **connect_kwargs) -> Outcome:
    """Send messages in order (stop sending once the server has closed), then read until close."""
    outcome = Outcome()
    async with connect(url, additional_headers=headers, open_timeout=10, **connect_kwargs) as ws:
        for message in messages:
            try:
                await ws.send(message)
            except websockets.ConnectionClosed:
                break
        return await read_all(ws, outcome, timeout)


async def stream(url: str, audio: np.ndarray, rate: int = 16000, encoding: str = "pcm_s16le", block_s: float = 0.1,
                 pace: float = 0.0, **start_extra) -> Outcome:
    """Stream (n,) or (n, channels) audio at `rate`, then stop; events until the server closes."""
    audio = audio if audio.ndim == 2 else audio[:, None]
    outcome = Outcome()
    async with connect(url, open_timeout=10, max_size=2**22) as ws:
        await ws.send(start_message(rate, encoding, audio.shape[1], **start_extra))
        reader = asyncio.create_task(read_all(ws, outcome))
        block = max(1, round(block_s * rate))
        started = outcome.start_wall = time.monotonic()
        try:
            for i in range(0, audio.shape[0], block):
                if pace > 0:
                    await asyncio.sleep(max(0.0, started + i / rate / pace - time.monotonic()))
                await ws.send(encode(audio[i : i + block], encoding))
                outcome.sent += audio[i : i + block].shape[0]
            await ws.send(STOP)
        except websockets.ConnectionClosed:
            pass
        return await reader


def der(events: list[dict], uri: str = "sample") -> float:
    """DER (collar 0, overlap scored) of the final segments of a session against real_dev's reference."""
    finals = [(e["start"], e["end"], e["speaker"]) for e in events if e.get("type") == "segment" and e["final"]]
    return der_of_segments(finals, uri)


def der_of_segments(segments, uri: str = "sample") -> float:
    reference = read_rttm(REAL_DEV / "reference.rttm")[uri]
    uem = read_uem(REAL_DEV / "reference.uem")[uri]
    scorer = DERScorer()
    scorer.add(uri, reference, to_annotation(uri, segments), uem)
    return scorer.total["der"]
