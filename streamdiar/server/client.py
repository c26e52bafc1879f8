"""A small asyncio client for protocol v1.

    async with connect("ws://127.0.0.1:7007/v1/stream") as session:   # 16 kHz mono pcm_s16le
        await session.send(samples)            # float32 in [-1, 1], at the session's rate
        await session.stop()
        async for event in session.events():   # dicts: segment ..., then done
            ...

`stream_audio` / `stream_file` do both sides at once and return the final segments.
"""
from __future__ import annotations

import asyncio
import json
import ssl as ssl_module
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect

from streamdiar.audio import SAMPLE_RATE, load_audio
from streamdiar.engine.labels import Segment
from streamdiar.io.sources import paced
from streamdiar.server.protocol import ENCODING_WIDTHS, PROTOCOL_VERSION, AudioFormat

CLIENT_BLOCK_S = 0.1  # audio per binary frame
OPEN_TIMEOUT_S = 10.0
# a server pacing us by flow control answers pings only after the audio queued ahead of them
PING_TIMEOUT_S = 120.0
EventHandler = Callable[[dict], None]


class ServerError(RuntimeError):
    """The server ended the session with an error event, or the connection broke."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def encode(samples: np.ndarray, encoding: str) -> bytes:
    """float32 samples ((n,) or interleaved (n, channels)) -> little-endian PCM bytes."""
    samples = np.asarray(samples, dtype=np.float32)
    if encoding == "pcm_s16le":
        return (np.clip(samples, -1.0, 32767 / 32768) * 32768.0).round().astype("<i2").tobytes()
    if encoding == "pcm_f32le":
        return samples.astype("<f4").tobytes()
    raise ValueError(f"unknown encoding {encoding!r}")


def segment_from_event(event: dict) -> Segment:
    return Segment(event["speaker"], float(event["start"]), float(event["end"]),
                   float(event.get("confidence", 0.0)), bool(event["final"]))


class ClientSession:
    """An open session: send audio, then stop; read events until done."""

    def __init__(self, ws: ClientConnection, audio: AudioFormat, ready: dict):
        self.ws = ws
        self.audio = audio
        self.id: str = ready["session"]
        self.sent = 0  # sample frames sent

    async def send(self, samples: np.ndarray) -> None:
        samples = np.asarray(samples, dtype=np.float32)
        await self.ws.send(encode(samples, self.audio.encoding))
        self.sent += samples.shape[0]

    async def stop(self) -> None:
        await self.ws.send(json.dumps({"type": "stop"}))

    async def events(self) -> AsyncIterator[dict]:
        """Every event until `done` (included); ServerError on an error event or a broken link."""
        while True:
            try:
                text = await self.ws.recv()
            except websockets.ConnectionClosed as exc:
                raise ServerError("closed", f"connection closed without done ({exc})") from None
            event = json.loads(text)
            if event.get("type") == "error":
                raise ServerError(event.get("code", "?"), event.get("message", ""))
            yield event
            if event.get("type") == "done":
                return

    async def close(self) -> None:
        await self.ws.close()


class connect:
    """`async with connect(url, ...) as session`: open a session (start -> ready)."""

    def __init__(self, url: str, sample_rate: int = SAMPLE_RATE, encoding: str = "pcm_s16le", channels: int = 1,
                 token: str | None = None, config: dict | None = None, profiles: list[str] | None = None,
                 ssl: ssl_module.SSLContext | None = None, bearer: bool = False):
        if encoding not in ENCODING_WIDTHS:
            raise ValueError(f"encoding must be one of {', '.join(ENCODING_WIDTHS)}")
        self.url = url
        self.audio = AudioFormat(sample_rate, encoding, channels)
        self.start = {"type": "start", "sample_rate": sample_rate, "encoding": encoding, "channels": channels}
        headers = {}
        if token is not None and bearer:
            headers["Authorization"] = f"Bearer {token}"
        elif token is not None:
            self.start["token"] = token
        if config:
            self.start["config"] = config
        if profiles:
            self.start["profiles"] = list(profiles)
        self._headers = headers
        self._ssl = ssl
        self._session: ClientSession | None = None

    async def __aenter__(self) -> ClientSession:
        kwargs = {"ssl": self._ssl} if self._ssl is not None else {}
        ws = await ws_connect(self.url, additional_headers=self._headers, open_timeout=OPEN_TIMEOUT_S,
                              ping_timeout=PING_TIMEOUT_S, max_size=2**22, **kwargs)
        try:
            await ws.send(json.dumps(self.start))
            async with asyncio.timeout(OPEN_TIMEOUT_S):
                ready = json.loads(await ws.recv())
            if ready.get("type") == "error":
                raise ServerError(ready.get("code", "?"), ready.get("message", ""))
            if ready.get("type") != "ready" or ready.get("protocol") != PROTOCOL_VERSION:
                raise ServerError("protocol", f"expected ready for protocol {PROTOCOL_VERSION}, got {ready}")
        except BaseException:
            await ws.close()
            raise
        self._session = ClientSession(ws, self.audio, ready)
        return self._session

    async def __aexit__(self, *exc) -> None:
        if self._session is not None:
            await self._session.close()


@dataclass
class StreamResult:
    session: str
    segments: list[Segment]  # final segments, in arrival order
    done: dict
    sent: int  # sample frames sent
    first_segment_s: float | None  # wall seconds from the first audio sent to the first segment event
    events: list[dict] = field(default_factory=list)


async def stream_audio(url: str, blocks: AsyncIterable[np.ndarray], on_event: EventHandler | None = None,
                       keep_events: bool = False, **connect_kwargs) -> StreamResult:
    """Send every block (float32 at `sample_rate`), stop, and collect events until done."""
    async with connect(url, **connect_kwargs) as session:
        first_audio: list[float] = []

        async def send_all() -> None:
            async for block in blocks:
                if not first_audio:
                    first_audio.append(time.monotonic())
                await session.send(block)
            await session.stop()

        sender = asyncio.create_task(send_all())
        finals: list[Segment] = []
        events: list[dict] = []
        first_segment = None
        done: dict = {}
        try:
            async for event in session.events():
                if keep_events:
                    events.append(event)
                if on_event is not None:
                    on_event(event)
                if event["type"] == "segment":
                    if first_segment is None and first_audio:
                        first_segment = time.monotonic() - first_audio[0]
                    if event["final"]:
                        finals.append(segment_from_event(event))
                elif event["type"] == "done":
                    done = event
            await sender
        finally:
            sender.cancel()
        return StreamResult(session.id, finals, done, session.sent, first_segment, events)


async def stream_file(url: str, path: str | Path, pace: float = 1.0, block_s: float = CLIENT_BLOCK_S,
                      on_event: EventHandler | None = None, **connect_kwargs) -> StreamResult:
    """A file (any format load_audio reads) as 16 kHz mono, paced at `pace` x real time (0 = flat out)."""
    audio = load_audio(path)  # before connecting: a bad file fails with its own message
    size = max(1, round(block_s * SAMPLE_RATE))
    blocks = paced((audio[i : i + size] for i in range(0, audio.size, size)), pace)
    return await stream_audio(url, blocks, on_event=on_event, sample_rate=SAMPLE_RATE, **connect_kwargs)


# -- the `streamdiar client` command ----------------------------------------------------------------
class EventPrinter:
    """Shows events on a ConsoleSink: the events of one update (one revision) are shown together."""

    FLUSH_DELAY_S = 0.05

    def __init__(self, sink, uri: str):
        self.sink = sink
        self.uri = uri
        self.revision: int | None = None
        self.final: list[Segment] = []
        self.provisional: list[Segment] = []
        self.audio_s = 0.0
        self._timer: asyncio.TimerHandle | None = None

    def __call__(self, event: dict) -> None:
        if event.get("type") != "segment":
            if event.get("type") == "done":
                self.flush()
            return
        if event.get("revision") != self.revision:
            self.flush()
            self.revision = event.get("revision")
        self.audio_s = float(event.get("audio_s", self.audio_s))
        segment = segment_from_event(event)
        (self.final if segment.final else self.provisional).append(segment)
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.FLUSH_DELAY_S, self.flush)

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.final or self.provisional:
            self.sink.write(self.uri, self.final, self.provisional, self.audio_s)
        self.final, self.provisional = [], []


async def until(stop: asyncio.Event, blocks: AsyncIterable[np.ndarray]) -> AsyncIterator[np.ndarray]:
    async for block in blocks:
        if stop.is_set():
            return
        yield block


async def run_client(source: str, url: str, pace: float = 1.0, token: str | None = None, device: str | None = None,
                     sink=None, ssl: ssl_module.SSLContext | None = None) -> tuple[str, StreamResult]:
    """Stream a file or the microphone ("mic") until it ends or Ctrl-C; returns (uri, result)."""
    import signal

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGINT, stop.set)
    try:
        if source == "mic":
            from streamdiar.io.microphone import MicOptions, Microphone

            mic = Microphone(MicOptions(int(device) if device and device.isdigit() else device))
            mic.start()
            uri, blocks = "mic", mic.blocks(stop)
        else:
            audio = load_audio(source)
            size = round(CLIENT_BLOCK_S * SAMPLE_RATE)
            uri = Path(source).stem
            blocks = until(stop, paced((audio[i : i + size] for i in range(0, audio.size, size)), pace))
        printer = EventPrinter(sink, uri) if sink is not None else None
        result = await stream_audio(url, blocks, on_event=printer, sample_rate=SAMPLE_RATE, token=token, ssl=ssl)
        return uri, result
    finally:
        loop.remove_signal_handler(signal.SIGINT)
