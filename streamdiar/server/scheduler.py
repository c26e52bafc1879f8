"""Rounds: the audio every session has due goes to the engine in one batched call, run in the
one worker thread that owns the Diarizer (and torch), so the event loop stays free for I/O.

Each round takes at most `round_s` of audio per session, so a client that sends as fast as it
can shares the engine fairly with live ones. A failure in the engine is retried stream by
stream so that only the stream that causes it is ended.

Load shedding: every stream is owed real time. When a stream falls more than `max_lag_s`
behind, the engine is over capacity; the newest sessions are ended with `overloaded` until the
rest fit in the measured capacity (with headroom), and new sessions are refused while the
server recovers.
"""
from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from streamdiar.engine.stream import Update
from streamdiar.server.options import Limits
from streamdiar.server.session import Session, State

log = logging.getLogger("streamdiar.server")

ROUND_S = 2.0  # most audio one session contributes to a round
METER_WINDOW_S = 5.0  # engine throughput is measured over the rounds of this window
SHED_HEADROOM = 0.75  # after shedding, the rest use this much of the capacity: the remainder catches up
SLOW_ROUND_S = 5.0  # a round this long starves every session's reading: worth a warning


@dataclass
class Job:
    session: Session
    stream: object
    resampler: object
    audio: np.ndarray  # mono float32 at the client's rate; 16 kHz once resampled
    finish: bool
    updates: list[Update] = field(default_factory=list)
    error: BaseException | None = None
    audio_in: int = 0  # sample frames taken from the session

    def __post_init__(self) -> None:
        self.audio_in = self.audio.size


class Scheduler:
    def __init__(self, diarizer, limits: Limits):
        self.diarizer = diarizer
        self.limits = limits
        self.step_s = diarizer.config.stream.step_s
        self.round_s = max(ROUND_S, self.step_s)
        self.sessions: set[Session] = set()
        self.rounds = 0
        self.shed_total = 0
        self.longest_round_s = 0.0
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="streamdiar-engine")
        self._wake = asyncio.Event()
        self._closed = False
        self._meter: deque[tuple[float, float, float]] = deque()  # (round end, busy seconds, audio seconds)
        self._recover_until = 0.0

    # -- the engine thread ------------------------------------------------------------------------
    async def call(self, fn, *args):
        """Run `fn` in the engine thread (after the round in progress)."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def close(self) -> None:
        """No more rounds; returns once the engine thread has finished the one in progress, so
        the Diarizer is free for whoever uses it next."""
        self._closed = True
        self._wake.set()
        await asyncio.to_thread(self._executor.shutdown, wait=True, cancel_futures=True)

    # -- sessions ---------------------------------------------------------------------------------
    def add(self, session: Session) -> None:
        self.sessions.add(session)

    def remove(self, session: Session) -> None:
        self.sessions.discard(session)

    def wake(self) -> None:
        self._wake.set()

    def strained(self, now: float | None = None) -> bool:
        """True while the server recovers from shedding, or a stream is half way to shedding."""
        now = time.monotonic() if now is None else now
        return now < self._recover_until or any(s.lag_s(now) > self.limits.max_lag_s / 2 for s in self.sessions)

    def capacity(self, now: float | None = None) -> float | None:
        """Audio seconds the engine processes per second of its time, over the recent rounds."""
        now = time.monotonic() if now is None else now
        while self._meter and self._meter[0][0] < now - METER_WINDOW_S:
            self._meter.popleft()
        busy = sum(b for _, b, _ in self._meter)
        return sum(a for _, _, a in self._meter) / busy if busy > 0 else None

    # -- rounds -----------------------------------------------------------------------------------
    async def run(self) -> None:
        while not self._closed:
            due = [s for s in self.sessions if s.due()]
            if not due:
                self._wake.clear()
                await self._wake.wait()
                continue
            jobs = []
            for session in due:
                audio, finish = session.take()
                jobs.append(Job(session, session.stream, session.resampler, audio, finish))
            started = time.monotonic()
            try:
                await self.call(self._compute, jobs)
            except RuntimeError:  # the executor was shut down: the server is closing
                return
            now = time.monotonic()
            audio_s = sum(job.audio_in / job.session.audio.sample_rate for job in jobs)
            self._meter.append((now, now - started, audio_s))
            self.rounds += 1
            self.longest_round_s = max(self.longest_round_s, now - started)
            if now - started > SLOW_ROUND_S:
                log.warning("slow round: %.1f s for %d stream(s), %.1f s of audio", now - started, len(jobs), audio_s)
            try:
                self._dispatch(jobs)
                self._shed_if_over_capacity(now)
            except Exception:  # noqa: BLE001 - a bug here must not stop the rounds of every session
                log.exception("round bookkeeping failed")
                for job in jobs:
                    job.session.fail("internal", "the server failed on this stream")

    def _compute(self, jobs: list[Job]) -> None:
        """Engine thread: resample, push every job's audio in one batch, finish the ending ones."""
        live = []
        for job in jobs:
            try:
                job.audio = job.resampler(job.audio, final=job.finish)
                live.append(job)
            except Exception as exc:  # noqa: BLE001 - isolate whatever went wrong to this stream
                job.error = exc
        try:
            updates = self.diarizer.process([(job.stream, job.audio) for job in live])
            for job, update in zip(live, updates):
                job.updates.append(update)
        except Exception:  # noqa: BLE001
            # the batch holds every job's audio already; advance each stream on its own to find
            # the one that fails
            empty = np.zeros(0, dtype=np.float32)
            for job in live:
                try:
                    job.updates.append(self.diarizer.process([(job.stream, empty)])[0])
                except Exception as exc:  # noqa: BLE001
                    job.error = exc
        ending = [job for job in live if job.finish and job.error is None]
        try:
            for job, update in zip(ending, self.diarizer.finish([job.stream for job in ending])):
                job.updates.append(update)
        except Exception:  # noqa: BLE001
            for job in ending:
                try:
                    job.updates.append(self.diarizer.finish([job.stream])[0])
                except Exception as exc:  # noqa: BLE001
                    job.error = exc

    def _dispatch(self, jobs: list[Job]) -> None:
        for job in jobs:
            session = job.session
            if session.state not in (State.OPEN, State.STOPPING):
                continue  # ended or gone while the round ran: its results are moot
            session.processed += job.audio_in
            if job.error is not None:
                log.error("session %s: engine error: %s: %s", session.id, type(job.error).__name__, job.error)
                session.fail("internal", "the engine failed on this stream")
                continue
            for update in job.updates[:-1] if job.finish else job.updates:
                session.emit_update(update)
            if job.finish:
                session.finished(job.updates[-1] if job.updates else None)

    def _shed_if_over_capacity(self, now: float) -> None:
        if now < self._recover_until:
            return
        streaming = [s for s in self.sessions if s.state is State.OPEN and s.first_audio is not None]
        worst = max((s.lag_s(now) for s in streaming), default=0.0)
        if worst <= self.limits.max_lag_s:
            return
        capacity = self.capacity(now) or 1.0
        keep = max(1, math.floor(capacity * SHED_HEADROOM))
        victims = sorted(streaming, key=lambda s: s.started, reverse=True)[: max(0, len(streaming) - keep)]
        for session in victims:
            session.fail("overloaded", f"the server is over capacity (streams fell {worst:.1f} s behind "
                                       f"real time); try again later")
        self.shed_total += len(victims)
        if victims:
            log.warning("over capacity: %d streams, room for about %d; ended the %d newest",
                        len(streaming), keep, len(victims))
        self._recover_until = now + self.limits.max_lag_s
