"""Where a step's time goes: the per-step path split by component, and the top functions.

The featurizer's mel frontend, VAD and GE2E encoder and the Weighter runner are wrapped in
timers for the measured rounds; what remains of the round is host-side bookkeeping (feature
buffers, tracker, aggregation, labels). A second pass under cProfile lists the functions with
the most time of their own.
"""
from __future__ import annotations

import cProfile
import pstats
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from bench.steps import WARMUP_ROUNDS, Rounds
from streamdiar import Diarizer

COMPONENTS = ("mel", "vad", "encoder", "weighter")
TOP_FUNCTIONS = 10


class Timed:
    def __init__(self, fn):
        self.fn = fn
        self.seconds = 0.0
        self.calls = 0

    def __call__(self, *args, **kwargs):
        started = time.perf_counter()
        try:
            return self.fn(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - started
            self.calls += 1


@contextmanager
def timed_components(diarizer: Diarizer):
    featurizer = diarizer.featurizer
    originals = {"mel": featurizer.mel, "vad": featurizer.vad, "encoder": featurizer.encoder, "weighter": diarizer.runner}
    timers = {name: Timed(fn) for name, fn in originals.items()}
    featurizer.mel, featurizer.vad, featurizer.encoder = timers["mel"], timers["vad"], timers["encoder"]
    diarizer.runner = timers["weighter"]
    try:
        yield timers
    finally:
        featurizer.mel, featurizer.vad, featurizer.encoder = originals["mel"], originals["vad"], originals["encoder"]
        diarizer.runner = originals["weighter"]


def breakdown(diarizer: Diarizer, audio: np.ndarray, streams: int, rounds: int) -> dict:
    feed = Rounds(diarizer, audio, streams)
    feed.run(WARMUP_ROUNDS)
    with timed_components(diarizer) as timers:
        step_ms = float(feed.run(rounds).mean())
    feed.close()
    per_step = {name: 1000 * timers[name].seconds / rounds for name in COMPONENTS}
    per_step["host_bookkeeping"] = step_ms - sum(per_step.values())
    return {
        "streams": streams,
        "step_ms": round(step_ms, 2),
        "ms_per_step": {k: round(v, 2) for k, v in per_step.items()},
        "share": {k: round(v / step_ms, 3) for k, v in per_step.items()},
        "top_functions": top_functions(diarizer, audio, streams, rounds),
    }


def top_functions(diarizer: Diarizer, audio: np.ndarray, streams: int, rounds: int) -> list[dict]:
    feed = Rounds(diarizer, audio, streams)
    feed.run(WARMUP_ROUNDS)
    profile = cProfile.Profile()
    profile.enable()
    feed.run(rounds)
    profile.disable()
    feed.close()
    stats = pstats.Stats(profile).stats
    rows = sorted(stats.items(), key=lambda item: item[1][2], reverse=True)[:TOP_FUNCTIONS]
    return [{"function": f"{Path(path).name}:{line}({name})" if line else name,
             "own_ms_per_step": round(1000 * own / rounds, 2), "calls_per_step": round(calls / rounds, 1)}
            for (path, line, name), (_, calls, own, _, _) in rows]
