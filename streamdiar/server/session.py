"""One client's session: the audio it sent that waits for the engine, the events that wait for
the client, and the rules of its life (stop, limits, errors).

The reader (`read_loop`) and the writer (`write_loop`) run as tasks on the event loop; the
scheduler takes audio from `inbox` and hands back updates through `emit_update`/`finished`.
Every way a session ends goes through `fail`, `finished` or `abandon`, and touches only it.
"""
from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import websockets

from streamdiar.engine.stream import Update
from streamdiar.server.options import Limits
from streamdiar.server.protocol import (CLOSE_CODES, CLOSE_GOING_AWAY, CLOSE_NORMAL, ProtocolError, StartMessage,
                                        StopMessage, decode_frame, done_event, error_event, parse_text,
                                        segment_event)

log = logging.getLogger("streamdiar.server")

# once a session has ended, the connection is dropped when no event got out for this long
CLOSE_GRACE_S = 5.0
WRITER_EXIT_S = 1.0  # a closed connection ends the writer at once; this only bounds the wait


class State(enum.Enum):
    OPEN = "open"  # streaming
    STOPPING = "stopping"  # no more audio accepted; the engine finishes what it has
    ENDED = "ended"  # final events queued (done or error); the writer closes the connection
    GONE = "gone"  # the client vanished


@dataclass(frozen=True)
class Close:
    code: int
    reason: str


class Outbox:
    """Events waiting to be written to the client. Segment events respect `limit`; the last
    events of a session (done, error, close) always fit."""

    def __init__(self, limit: int):
        self.limit = limit
        self._items: deque[str | Close] = deque()
        self._ready = asyncio.Event()

    def __len__(self) -> int:
        return len(self._items)

    def push(self, event: str) -> bool:
        if len(self._items) >= self.limit:
            return False
        self._items.append(event)
        self._ready.set()
        return True

    def push_last(self, *items: str | Close) -> None:
        self._items.extend(items)
        self._ready.set()

    def clear(self) -> None:
        self._items.clear()

    async def get(self) -> str | Close:
        while not self._items:
            self._ready.clear()
            await self._ready.wait()
        return self._items.popleft()


class Session:
    def __init__(self, session_id: str, ws, start: StartMessage, stream, resampler, limits: Limits, scheduler,
                 on_end: Callable[[str], None] = lambda outcome: None):
        self.id = session_id
        self.ws = ws
        self.audio = start.audio
        self.stream = stream
        self.resampler = resampler
        self.limits = limits
        self.scheduler = scheduler
        self.state = State.OPEN
        self.stop_reason = "stop"
        self.outcome = "open"  # how it ended: done, shutdown, an error code, or vanished
        self._ended_at = 0.0
        self._last_write = 0.0
        self._on_end = on_end
        self.started = time.monotonic()
        self.first_audio: float | None = None  # wall time of the first audio frame
        self.anchor = 0.0  # wall time at which audio time 0 "should" have been heard (see lag)
        self.inbox: deque[np.ndarray] = deque()
        self.inbox_samples = 0
        self.received = 0  # sample frames accepted (per channel, client rate)
        self.processed = 0  # sample frames handed to the engine
        self.revision = 0
        self.outbox = Outbox(limits.max_pending_events)
        self.room = asyncio.Event()  # set while the inbox has room for more audio
        self.room.set()
        self._step_in = max(1, round(scheduler.step_s * self.audio.sample_rate))
        self._round_in = max(self._step_in, round(scheduler.round_s * self.audio.sample_rate))
        self._backlog_in = round(limits.max_backlog_s * self.audio.sample_rate)
        self._expiry = asyncio.get_running_loop().call_later(limits.max_session_s, self._expire)

    # -- reading the client -----------------------------------------------------------------------
    async def read_loop(self) -> None:
        """Receive messages until the connection closes; protocol errors end only this session.
        Once the session has ended, late messages are read and dropped: unread ones would hold
        up the client's close frame behind them."""
        while self.state is not State.GONE:
            if self.state is State.OPEN and not self.room.is_set():
                await self.room.wait()  # backpressure: the client waits while the engine catches up
                continue
            try:
                async with asyncio.timeout(self._read_timeout()):
                    message = await self.ws.recv()
            except TimeoutError:
                if self.state is State.ENDED:
                    if time.monotonic() - self._last_progress() < CLOSE_GRACE_S:
                        continue  # the writer is still delivering the last events
                    return  # the client neither reads nor closes: run() drops the connection
                self.fail("timeout", f"no message for {self.limits.idle_timeout_s:g} s")
                continue
            except websockets.ConnectionClosed:
                if self.state is not State.ENDED:
                    self.abandon()
                return
            try:
                self._handle(message)
            except ProtocolError as exc:
                self.fail(exc.code, exc.message)

    def _read_timeout(self) -> float | None:
        if self.state is State.OPEN:
            return self.limits.idle_timeout_s
        if self.state is State.ENDED:
            return max(0.05, self._last_progress() + CLOSE_GRACE_S - time.monotonic())
        return None  # stopping: the server owes the client its last events

    def _last_progress(self) -> float:
        """When the session ended or the writer last got an event out, whichever is later."""
        return max(self._ended_at, self._last_write)

    def _handle(self, message: str | bytes) -> None:
        if self.state is State.STOPPING:
            if self.stop_reason != "stop":
                return  # the server is ending the session; late messages are moot
            what = "audio" if isinstance(message, bytes) else "message"
            raise ProtocolError("bad_request", f"{what} after stop")
        if self.state is not State.OPEN:
            return
        if isinstance(message, bytes):
            self._accept_audio(message)
            return
        parsed = parse_text(message)
        if isinstance(parsed, StopMessage):
            if self.received == 0:
                raise ProtocolError("bad_request", "stop before any audio: there is nothing to diarize")
            self._begin_stop("stop")
        else:
            raise ProtocolError("bad_request", "the session has already started")

    def _accept_audio(self, payload: bytes) -> None:
        if len(payload) > self.limits.max_frame_bytes:
            raise ProtocolError("too_large", f"binary frame of {len(payload)} bytes is over the limit of "
                                             f"{self.limits.max_frame_bytes} bytes")
        samples = decode_frame(payload, self.audio)
        if samples.size == 0:
            return
        now = time.monotonic()
        if self.first_audio is None:
            self.first_audio = self.anchor = now
        self.received += samples.size
        self.inbox.append(samples)
        self.inbox_samples += samples.size
        if self.inbox_samples >= self._backlog_in:
            self.room.clear()
        if self.inbox_samples >= self._step_in:
            self.scheduler.wake()

    def _begin_stop(self, reason: str) -> None:
        self.state = State.STOPPING
        self.stop_reason = reason
        self.room.set()
        self.scheduler.wake()

    def _expire(self) -> None:
        if self.state is State.OPEN:
            self._begin_stop("session_too_long")

    def shutdown(self) -> None:
        """The server is going away: finish like a stop, then close with 1001."""
        if self.state is State.OPEN:
            self._begin_stop("shutdown")

    # -- the scheduler's side ---------------------------------------------------------------------
    def due(self) -> bool:
        if self.state is State.STOPPING:
            return True
        return self.state is State.OPEN and self.inbox_samples >= self._step_in

    def take(self) -> tuple[np.ndarray, bool]:
        """Audio for one round (at most `round_s`), and whether this round ends the stream."""
        want = self._round_in
        parts, count = [], 0
        while self.inbox and count < want:
            block = self.inbox.popleft()
            if count + block.size > want:
                cut = want - count
                self.inbox.appendleft(block[cut:])
                block = block[:cut]
            parts.append(block)
            count += block.size
        self.inbox_samples -= count
        if self.inbox_samples < self._backlog_in:
            self.room.set()
        audio = np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
        return audio, self.state is State.STOPPING and self.inbox_samples == 0

    def lag_s(self, now: float) -> float:
        """How far this stream's processing is behind real time: wall time since its audio
        began minus audio processed. The clock is re-anchored whenever the session is caught up,
        so a client that sends slower than real time is not counted as lagging."""
        if self.first_audio is None:
            return 0.0
        processed_s = self.processed / self.audio.sample_rate
        if self.inbox_samples < self._step_in:
            self.anchor = max(self.anchor, now - processed_s)
        return now - self.anchor - processed_s

    def emit_update(self, update: Update) -> None:
        if self.state not in (State.OPEN, State.STOPPING):
            return
        self.revision += 1
        events = [segment_event(seg, self.revision, update.audio_s) for seg in update.final]
        events += [segment_event(seg, self.revision, update.audio_s) for seg in update.provisional]
        for event in events:
            if not self.outbox.push(event):
                self.fail("overloaded", f"the client is not reading its events ({self.outbox.limit} waiting)")
                return

    def finished(self, update: Update | None) -> None:
        """The engine has finished the stream: last finals, then done (or the limit's error)."""
        if update is not None:
            self.emit_update(update)
        if self.state is not State.STOPPING:
            return
        self.state = State.ENDED
        self._expiry.cancel()
        self.scheduler.remove(self)
        rate = self.audio.sample_rate
        self._ended("done" if self.stop_reason == "stop" else self.stop_reason)
        if self.stop_reason == "session_too_long":
            message = f"session reached its limit of {self.limits.max_session_s:g} s"
            last = error_event("session_too_long", message, samples=self.received,
                               seconds=round(self.received / rate, 6))
            close = Close(CLOSE_CODES["session_too_long"], "session too long")
        elif self.stop_reason == "stop":
            last, close = done_event(self.received, rate), Close(CLOSE_NORMAL, "done")
        else:
            last, close = done_event(self.received, rate, reason="shutdown"), Close(CLOSE_GOING_AWAY, "server shutdown")
        self.outbox.push_last(last, close)

    def fail(self, code: str, message: str) -> None:
        """End this session with an error event and the code's close; nothing else is touched."""
        if self.state in (State.ENDED, State.GONE):
            return
        log.info("session %s: %s: %s", self.id, code, message)
        self.state = State.ENDED
        self._ended(code)
        self._release()
        self.outbox.clear()
        self.outbox.push_last(error_event(code, message), Close(CLOSE_CODES[code], code))

    def abandon(self) -> None:
        """The client went away: drop everything; in-flight engine work is discarded."""
        if self.state is State.GONE:
            return
        if self.state is not State.ENDED:
            self._ended("vanished")
        self.state = State.GONE
        self._release()
        self.outbox.clear()
        self.outbox.push_last(Close(CLOSE_NORMAL, ""))

    def _ended(self, outcome: str) -> None:
        self.outcome = outcome
        self._ended_at = time.monotonic()
        self._on_end(outcome)

    def _release(self) -> None:
        self._expiry.cancel()
        self.scheduler.remove(self)
        self.inbox.clear()
        self.inbox_samples = 0
        self.room.set()

    # -- writing to the client --------------------------------------------------------------------
    async def write_loop(self) -> None:
        """Send queued events in order; the last item closes the connection."""
        try:
            while True:
                item = await self.outbox.get()
                if isinstance(item, Close):
                    await self.ws.close(item.code, item.reason)
                    return
                await self.ws.send(item)
                self._last_write = time.monotonic()
        except websockets.ConnectionClosed:
            self.abandon()

    async def run(self) -> None:
        writer = asyncio.create_task(self.write_loop())
        try:
            await self.read_loop()
            # the connection is closed, or the writer has been stuck for CLOSE_GRACE_S
            await asyncio.wait_for(asyncio.shield(writer), WRITER_EXIT_S)
        except TimeoutError:
            log.info("session %s: client did not take its last events; dropping the connection", self.id)
        finally:
            if self.state is not State.GONE and self.state is not State.ENDED:
                self.abandon()
            writer.cancel()
            if self.ws.transport is not None and not self.ws.transport.is_closing():
                self.ws.transport.abort()
