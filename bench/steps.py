"""Per-step compute latency for N concurrent streams, real-time factor, most real-time streams.

One round = every stream receives `step_s` of new audio and the engine advances all of them in
one `Diarizer.process` call (their model calls batched). The round's wall time is the step
compute latency for N streams. N streams run in real time when a round's p99 fits within
`step_s`: each stream's next step's audio has not finished arriving before the round is done.
"""
from __future__ import annotations

import time

import numpy as np

from bench.audio import looped, stream_offsets
from streamdiar import Diarizer

WARMUP_ROUNDS = 2  # first rounds pay one-off allocations


def percentiles(ms: np.ndarray) -> dict:
    p50, p95, p99 = np.percentile(ms, [50, 95, 99])
    return {"p50": round(float(p50), 2), "p95": round(float(p95), 2), "p99": round(float(p99), 2),
            "mean": round(float(ms.mean()), 2), "n": int(ms.size)}


class Rounds:
    """`streams` concurrent streams of one Diarizer, fed different real speech a step at a time."""

    def __init__(self, diarizer: Diarizer, audio: np.ndarray, streams: int):
        self.diarizer, self.audio = diarizer, audio
        self.handles = [diarizer.open_stream(f"bench{i}") for i in range(streams)]
        self.offsets = stream_offsets(audio, streams)
        self.done = 0

    def run(self, rounds: int) -> np.ndarray:
        """Milliseconds per round."""
        step = self.diarizer.step_samples
        times = []
        for _ in range(rounds):
            at = self.done * step
            work = [(h, looped(self.audio, start + at, step)) for h, start in zip(self.handles, self.offsets)]
            started = time.perf_counter()
            self.diarizer.process(work)
            times.append(time.perf_counter() - started)
            self.done += 1
        return np.asarray(times) * 1000

    def close(self) -> None:
        self.diarizer.finish(self.handles)


def round_times(diarizer: Diarizer, audio: np.ndarray, streams: int, rounds: int) -> np.ndarray:
    """Milliseconds per round for `streams` concurrent streams, warm-up rounds excluded."""
    feed = Rounds(diarizer, audio, streams)
    feed.run(WARMUP_ROUNDS)
    times = feed.run(rounds)
    feed.close()
    return times


def scaling(diarizer: Diarizer, audio: np.ndarray, rounds: int, max_streams: int, refine: bool, log=print) -> dict:
    """Step latency at 1, 2, 4, ... streams until a round no longer fits in a step, then (with
    `refine`) bisection between the last count that fit and the first that did not."""
    budget_ms = diarizer.config.stream.step_s * 1000
    by_streams: dict[int, dict] = {}
    rtf = None

    def measure(n: int) -> bool:
        nonlocal rtf
        ms = round_times(diarizer, audio, n, rounds)
        by_streams[n] = percentiles(ms)
        if n == 1:
            rtf = float(ms.sum() / 1000 / (rounds * diarizer.config.stream.step_s))
        log(f"  {n:5d} streams: step p50 {by_streams[n]['p50']:8.1f} ms  p99 {by_streams[n]['p99']:8.1f} ms")
        return by_streams[n]["p99"] <= budget_ms

    fits, fails, n = 0, None, 1
    while n <= max_streams:
        if not measure(n):
            fails = n
            break
        fits, n = n, n * 2
    if refine and fails is not None:
        while fails - fits > max(1, fits // 8):
            mid = (fits + fails) // 2
            if measure(mid):
                fits = mid
            else:
                fails = mid
    return {
        "step_compute_ms": by_streams[1],
        "step_compute_ms_by_streams": {str(k): by_streams[k] for k in sorted(by_streams)},
        "rtf": round(rtf, 4),
        "max_realtime_streams": fits,
        "max_realtime_streams_capped": fails is None,  # true: every count up to max_streams fit
        "realtime_criterion": f"p99 round time <= step_s ({budget_ms:.0f} ms)",
    }
