"""DER on the real_dev recordings as a function of step and latency.

Each setting runs every file through the live code path (`diarize_file`, step-sized blocks) with
step_s = latency_s = the setting and scores the final segments with the project's scorer
(collar 0, overlapped speech scored). A latency below the features' look-ahead is raised to it
by the engine; `effective_latency_s` says what was used.
"""
from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

from pyannote.core import Segment as Span
from pyannote.core import Timeline

from streamdiar import SAMPLE_RATE, Config, Diarizer
from streamdiar.config import replace
from streamdiar.engine.pipeline import diarize_file
from streamdiar.evaluate.der import DERScorer, read_rttm, read_uem, to_annotation

SETTINGS_S = (0.25, 0.5, 1.0, 2.0, 5.0)


def der_vs_latency(config: Config, folder: Path, settings=SETTINGS_S, max_files: int | None = None,
                   log=print) -> list[dict]:
    references = read_rttm(folder / "reference.rttm")
    uem_path = folder / "reference.uem"
    uems = read_uem(uem_path) if uem_path.is_file() else {}
    wavs = [w for w in sorted(folder.glob("*.wav")) if w.stem in references][:max_files]
    rows = []
    for seconds in settings:
        stream_config = replace(config.stream, step_s=seconds, latency_s=seconds)
        diarizer = Diarizer(dataclasses.replace(config, stream=stream_config))
        scorer = DERScorer()
        for wav in wavs:
            stream, finals = asyncio.run(diarize_file(diarizer, wav))
            extent = uems.get(wav.stem, Timeline([Span(0.0, stream.state.received / SAMPLE_RATE)]))
            scorer.add(wav.stem, references[wav.stem], to_annotation(wav.stem, finals), extent)
        total = scorer.total
        rows.append({
            "step_s": seconds, "latency_s": seconds, "effective_latency_s": round(diarizer.latency_s, 3),
            **{k: round(total[k], 4) for k in ("der", "miss", "false_alarm", "confusion")},
            "files": len(wavs),
        })
        log(f"  step/latency {seconds:4.2f} s: DER {100 * total['der']:5.1f}% "
            f"(miss {100 * total['miss']:.1f} / fa {100 * total['false_alarm']:.1f} / conf {100 * total['confusion']:.1f})")
    return rows
