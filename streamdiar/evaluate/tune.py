"""Tuning the tracker and label settings on a labelled folder by replaying recorded model outputs.

The Weighter never sees the tracker's decisions, so one streaming run per file records every
step's slots and new frames; each candidate setting then replays only the linking, labelling and
relinking, exactly as the engine does them (same Tracker, Aggregator, Segmenter and PieceRelinker
code, reading the final frames' voices from the replayed frames), which takes seconds, not minutes.
Tune on simulated held-out speakers, never on the recordings you report.
"""
from __future__ import annotations

import asyncio
import dataclasses
import itertools
from pathlib import Path

from pyannote.core import Segment as Span
from pyannote.core import Timeline

from streamdiar.audio import SAMPLE_RATE
from streamdiar.config import Config, LabelConfig, TrackerConfig
from streamdiar.engine import Diarizer
from streamdiar.engine.diarizer import closing_segments
from streamdiar.engine.pipeline import diarize_file
from streamdiar.evaluate.der import DERScorer, read_rttm, to_annotation


def record(diarizer: Diarizer, folder: str | Path, reference: str | Path) -> list[tuple[str, float, list]]:
    refs = read_rttm(reference)
    out = []
    for wav in sorted(Path(folder).glob("*.wav")):
        if wav.stem in refs:
            stream, _ = asyncio.run(diarize_file(diarizer, wav, record_steps=True))
            out.append((wav.stem, stream.state.received / SAMPLE_RATE, stream.state.step_log))
    return out


def replay(diarizer: Diarizer, recordings, tracker: TrackerConfig, labels: LabelConfig, reference) -> dict:
    """DER totals of one tracker/label setting over the recorded files."""
    diarizer.config = dataclasses.replace(diarizer.config, tracker=tracker, labels=labels)
    refs = read_rttm(reference)
    scorer = DERScorer()
    for uri, duration, steps in recordings:
        stream = diarizer.open_stream(uri)
        state = stream.state
        finals = []
        for frames, final_upto, *outputs in steps:
            state.ring.push(frames)
            f, _ = diarizer._link_and_label(state, *outputs, final_upto)
            finals.extend(f)
        finals.extend(closing_segments(state, duration))
        scorer.add(uri, refs[uri], to_annotation(uri, finals), Timeline([Span(0, duration)]))
    return scorer.total


def grid_search(diarizer: Diarizer, recordings, reference, grid: dict[str, list], log=print) -> tuple[Config, dict]:
    """Exhaustive search over `grid` ({"tracker.x": [...], "labels.y": [...]}); returns the best config."""
    base = diarizer.config
    best = (float("inf"), None, None)
    keys = list(grid)
    for values in itertools.product(*(grid[k] for k in keys)):
        tracker, labels = base.tracker, base.labels
        for key, value in zip(keys, values):
            section, name = key.split(".")
            if section == "tracker":
                tracker = dataclasses.replace(tracker, **{name: value})
            else:
                labels = dataclasses.replace(labels, **{name: value})
        total = replay(diarizer, recordings, tracker, labels, reference)
        log(" ".join(f"{k}={v}" for k, v in zip(keys, values)) + f"  DER {100 * total['der']:.2f} "
            f"(miss {100 * total['miss']:.1f} fa {100 * total['false_alarm']:.1f} conf {100 * total['confusion']:.1f})")
        if total["der"] < best[0]:
            best = (total["der"], dataclasses.replace(base, tracker=tracker, labels=labels), total)
    diarizer.config = base
    return best[1], best[2]
