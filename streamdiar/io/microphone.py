"""Microphone input: sounddevice (PortAudio) capture as an async iterator of 16 kHz mono blocks.

PortAudio calls back on its own thread with whatever block size and rate the device runs at;
the callback only hands a copy of each block to the event loop. The consumer drains everything
queued at once, resamples to 16 kHz and yields it, so a slow engine step never blocks capture.
If the engine falls more than `queue_s` behind, the oldest audio is dropped and counted.
"""
from __future__ import annotations

import asyncio
import collections
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from streamdiar.audio import SAMPLE_RATE, StreamResampler

QUEUE_S = 10.0


class MicrophoneError(RuntimeError):
    """No usable input device (PortAudio missing, no device, unsupported rate...): one line."""


@dataclass(frozen=True)
class MicOptions:
    device: int | str | None = None  # PortAudio device index or a part of its name; None = default input
    queue_s: float = QUEUE_S


def _sounddevice():
    try:
        import sounddevice
    except OSError as exc:  # the Python package is there, the PortAudio library is not
        raise MicrophoneError(f"microphone: {exc} (install PortAudio, e.g. `apt-get install libportaudio2`)") from None
    return sounddevice


def sounddevice_input(**kwargs: Any):
    """A sounddevice.InputStream (the default input factory)."""
    return _sounddevice().InputStream(**kwargs)


def list_devices() -> str:
    """PortAudio's device list, as `python -m sounddevice` prints it."""
    return str(_sounddevice().query_devices())


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    if "querying device -1" in text:
        return "no input device found (is a microphone connected, and may this user record?)"
    return text


class Microphone:
    """One capture session. `input_factory` builds a sounddevice.InputStream-like object
    (keyword arguments device, channels, dtype, samplerate, blocksize, callback; attributes
    samplerate; methods start, stop, close): tests pass a fake one, never a device."""

    def __init__(self, options: MicOptions = MicOptions(), input_factory: Callable[..., Any] | None = None):
        self.options = options
        self.input_factory = input_factory or sounddevice_input
        self.samplerate: float | None = None
        self.dropped_s = 0.0
        self.overflows = 0  # PortAudio reported lost input (the machine could not keep up)
        self._pending: collections.deque[np.ndarray] = collections.deque()
        self._pending_samples = 0
        self._lock = threading.Lock()
        self._arrived: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stream: Any = None
        self._resample: StreamResampler | None = None

    def start(self) -> None:
        """Open and start the device (from the event loop's thread); MicrophoneError if it cannot."""
        self._loop = asyncio.get_running_loop()
        self._arrived = asyncio.Event()
        stream = self._open()
        try:
            # known before the first callback: the queue limit is counted in device samples
            self.samplerate = float(stream.samplerate)
            self._resample = StreamResampler(int(round(self.samplerate)))
            stream.start()
        except Exception as exc:  # AudioError (unusable rate), PortAudioError on start
            stream.close()
            raise MicrophoneError(f"microphone: {_describe(exc)}") from None
        self._stream = stream

    async def blocks(self, stop: asyncio.Event) -> AsyncIterator[np.ndarray]:
        """16 kHz mono float32 audio until `stop` is set; then what was captured, and the end."""
        if self._stream is None:
            self.start()
        resample = self._resample
        try:
            while not stop.is_set():
                waiter = asyncio.ensure_future(self._arrived.wait())
                stopper = asyncio.ensure_future(stop.wait())
                await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                stopper.cancel()
                block = resample(self._take())
                if block.size:
                    yield block
        finally:
            self.close()
        tail = resample(self._take(), final=True)
        if tail.size:
            yield tail

    def close(self) -> None:
        """Stop capture (idempotent); audio already captured can still be taken."""
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.stop()
            stream.close()

    def _open(self):
        # the device's own rate (resampled here) and PortAudio's preferred block size: what
        # every device supports, with the lowest latency it offers
        try:
            return self.input_factory(device=self.options.device, channels=1, dtype="float32", samplerate=None,
                                      blocksize=0, callback=self._callback)
        except MicrophoneError:
            raise
        except Exception as exc:  # PortAudioError, ValueError (bad device/rate): all one line for the user
            raise MicrophoneError(f"microphone: {_describe(exc)}") from None

    def _callback(self, indata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        """PortAudio's thread: keep a copy and wake the event loop."""
        if status and getattr(status, "input_overflow", False):
            self.overflows += 1
        block = np.asarray(indata, dtype=np.float32).reshape(frames, -1).mean(axis=1)
        limit = self.options.queue_s * (self.samplerate or SAMPLE_RATE)
        with self._lock:
            self._pending.append(block)
            self._pending_samples += block.size
            while self._pending_samples > limit and len(self._pending) > 1:
                old = self._pending.popleft()
                self._pending_samples -= old.size
                self.dropped_s += old.size / (self.samplerate or SAMPLE_RATE)
        try:
            self._loop.call_soon_threadsafe(self._arrived.set)
        except RuntimeError:  # the loop has closed: capture is being torn down
            pass

    def _take(self) -> np.ndarray:
        with self._lock:
            blocks = list(self._pending)
            self._pending.clear()
            self._pending_samples = 0
            self._arrived.clear()
        return np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.float32)
