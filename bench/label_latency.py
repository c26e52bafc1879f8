"""End-to-end label latency: from the moment a sample arrives to the moment its label is emitted.

One stream is fed real speech in 20 ms blocks, as a microphone or a WebSocket client delivers it.
Arrival follows a real-time clock (block k arrives when its last sample has been captured), and
each push's compute time is measured for real; a push starts when its block has arrived and the
previous push is done, so any backlog is counted. Nothing sleeps: the clock is virtual, the
compute is not.

A frame's label is emitted with the first update after which the frame is final (the engine will
never revise it); its latency is that update's emission time minus the arrival time of the
frame's last sample. The provisional latency is the same for the first update that labels the
frame at all (provisional segments cover every frame with features).
"""
from __future__ import annotations

import math
import time

import numpy as np

from bench.audio import looped
from bench.steps import percentiles
from streamdiar import SAMPLE_RATE, Diarizer

BLOCK_S = 0.02


def label_latency(diarizer: Diarizer, audio: np.ndarray, seconds: float) -> dict:
    block = round(BLOCK_S * SAMPLE_RATE)
    hop = diarizer.featurizer.hop
    stream = diarizer.open_stream("latency")
    final_ms, provisional_ms = [], []
    final_seen = provisional_seen = 0  # frames already counted
    done = 0.0  # virtual time the previous push finished
    for k in range(math.ceil(seconds * SAMPLE_RATE / block)):
        samples = looped(audio, k * block, block)
        arrived = (k + 1) * block / SAMPLE_RATE
        started = time.perf_counter()
        stream.push(samples)
        done = max(arrived, done) + time.perf_counter() - started
        state = stream.state
        final_upto, provisional_upto = state.segmenter.next_frame, state.ring.count
        for frame in range(final_seen, final_upto):
            final_ms.append(1000 * (done - _arrival(frame, hop, block)))
        for frame in range(provisional_seen, provisional_upto):
            provisional_ms.append(1000 * (done - _arrival(frame, hop, block)))
        final_seen, provisional_seen = max(final_seen, final_upto), max(provisional_seen, provisional_upto)
    stream.finish()
    return {
        "step_s": diarizer.config.stream.step_s,
        "latency_s": diarizer.config.stream.latency_s,
        "effective_latency_s": round(diarizer.latency_s, 3),
        "final_ms": percentiles(np.asarray(final_ms)),
        "provisional_ms": percentiles(np.asarray(provisional_ms)),
        "audio_s": seconds,
        "block_s": BLOCK_S,
    }


def _arrival(frame: int, hop: int, block: int) -> float:
    """Real-time arrival of the block holding the frame's last sample."""
    last_sample = (frame + 1) * hop - 1
    return (last_sample // block + 1) * block / SAMPLE_RATE
