"""`streamdiar eval`: streamdiar and both baselines on every WAV of a folder, one run."""
from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
from pyannote.core import Segment as Span
from pyannote.core import Timeline

from streamdiar.audio import SAMPLE_RATE
from streamdiar.engine import Diarizer
from streamdiar.engine.pipeline import diarize_file
from streamdiar.evaluate.baselines import offline_clustering, online_clustering
from streamdiar.evaluate.der import DERScorer, read_rttm, read_uem, summary, to_annotation

SYSTEMS = ("streamdiar", "online", "offline")


def evaluate(diarizer: Diarizer, folder: str | Path, reference: str | Path, uem: str | Path | None = None,
             offline_threshold: float = 0.3, online_delta: float = 0.3, log=print) -> dict:
    folder = Path(folder)
    refs = read_rttm(reference)
    uems = read_uem(uem) if uem else {}
    wavs = sorted(folder.glob("*.wav")) + sorted(folder.glob("*.flac"))
    if not wavs:
        raise FileNotFoundError(f"{folder}: no .wav or .flac files")
    scorers = {name: DERScorer() for name in SYSTEMS}
    per_file = {}
    hop = diarizer.hop_s
    step_frames = max(1, round(diarizer.config.stream.step_s / hop))
    log(f"{'file':<12} " + " ".join(f"{name:>18}" for name in SYSTEMS) + "   (DER %: miss/fa/conf)")
    for wav in wavs:
        uri = wav.stem
        if uri not in refs:
            log(f"{uri:<12} skipped: not in {reference}")
            continue
        stream, finals = asyncio.run(diarize_file(diarizer, wav, record_features=True))
        feats = np.concatenate(stream.state.feature_log) if stream.state.feature_log else np.zeros((0, 259))
        duration = stream.state.received / SAMPLE_RATE
        extent = uems.get(uri, Timeline([Span(0.0, duration)]))
        hyps = {
            "streamdiar": to_annotation(uri, finals),
            "online": to_annotation(uri, online_clustering(feats, hop, step_frames, online_delta)),
            "offline": to_annotation(uri, offline_clustering(feats, hop, offline_threshold)),
        }
        per_file[uri] = {}
        cells = []
        for name in SYSTEMS:
            s = summary(scorers[name].add(uri, refs[uri], hyps[name], extent))
            per_file[uri][name] = s
            cells.append(f"{100 * s['der']:5.1f} ({100 * s['miss']:4.1f}/{100 * s['false_alarm']:4.1f}/{100 * s['confusion']:4.1f})")
        log(f"{uri:<12} " + " ".join(f"{c:>18}" for c in cells))
    totals = {name: scorers[name].total for name in SYSTEMS}
    log(f"{'TOTAL':<12} " + " ".join(
        f"{100 * t['der']:5.1f} ({100 * t['miss']:4.1f}/{100 * t['false_alarm']:4.1f}/{100 * t['confusion']:4.1f})".rjust(18)
        for t in totals.values()))
    ratio = totals["streamdiar"]["der"] / max(totals["online"]["der"], 1e-9)
    log(f"streamdiar / online DER ratio: {ratio:.2f}")
    return {"files": per_file, "total": totals, "ratio_vs_online": ratio,
            "step_s": diarizer.config.stream.step_s, "latency_s": diarizer.latency_s}


def write_json(result: dict, path: str | Path) -> None:
    Path(path).write_text(json.dumps(result, indent=1))
