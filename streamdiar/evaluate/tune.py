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

VARIANT_MARGIN = 5e-4  # a variant's DER counts as better or worse only beyond 0.05 points


def record(diarizer: Diarizer, folder: str | Path, reference: str | Path, gain_db: float = 0.0
           ) -> list[tuple[str, float, list]]:
    """Every step of every referenced WAV file in `folder`, each file played `gain_db` louder."""
    refs = read_rttm(reference)
    out = []
    for wav in sorted(Path(folder).glob("*.wav")):
        if wav.stem in refs:
            stream, _ = asyncio.run(diarize_file(diarizer, wav, gain_db=gain_db, record_steps=True))
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


def grid_search(diarizer: Diarizer, variants: list[list], reference, grid: dict[str, list], log=print
                ) -> tuple[Config, dict]:
    """Exhaustive search over `grid` ({"tracker.x": [...], "labels.y": [...]}), every setting replayed
    over each recorded variant of the folder (`record` at several gains). One recording's linking
    gains or loses a couple of points by chance when anything moves (docs/accuracy.md, "Recording
    level"), so a setting is judged by its mean DER over the variants, and each is counted better or
    worse than the configured setting. Returns the best config and its {"der" (the mean), "miss",
    "false_alarm", "confusion", "ders" (per variant), "better", "worse"}."""
    base = diarizer.config
    keys = list(grid)

    def judged(tracker: TrackerConfig, labels: LabelConfig) -> dict:
        totals = [replay(diarizer, recordings, tracker, labels, reference) for recordings in variants]
        mean = {k: sum(t[k] for t in totals) / len(totals) for k in ("der", "miss", "false_alarm", "confusion")}
        return {**mean, "ders": [t["der"] for t in totals]}

    def describe(result: dict) -> str:
        text = (f"DER {100 * result['der']:.2f} (miss {100 * result['miss']:.1f} fa {100 * result['false_alarm']:.1f}"
                f" conf {100 * result['confusion']:.1f})")
        if len(variants) > 1:
            text += " mean of " + " / ".join(f"{100 * d:.2f}" for d in result["ders"])
        return text

    configured = judged(base.tracker, base.labels)
    log(f"as configured  {describe(configured)}")
    best = (float("inf"), None, None)
    for values in itertools.product(*(grid[k] for k in keys)):
        tracker, labels = base.tracker, base.labels
        for key, value in zip(keys, values):
            section, name = key.split(".")
            if section == "tracker":
                tracker = dataclasses.replace(tracker, **{name: value})
            else:
                labels = dataclasses.replace(labels, **{name: value})
        result = judged(tracker, labels)
        result["better"] = sum(d < c - VARIANT_MARGIN for d, c in zip(result["ders"], configured["ders"]))
        result["worse"] = sum(d > c + VARIANT_MARGIN for d, c in zip(result["ders"], configured["ders"]))
        wins = f", better on {result['better']} and worse on {result['worse']} of {len(variants)}"
        log(" ".join(f"{k}={v}" for k, v in zip(keys, values)) + f"  {describe(result)}"
            + (wins if len(variants) > 1 else ""))
        if result["der"] < best[0]:
            best = (result["der"], dataclasses.replace(base, tracker=tracker, labels=labels), result)
    diarizer.config = base
    return best[1], best[2]
