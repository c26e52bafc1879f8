"""DER with pyannote.metrics: collar 0, overlapped speech scored (the strict setting)."""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
from pyannote.core import Annotation, Segment, Timeline
from pyannote.metrics.diarization import DiarizationErrorRate


def read_rttm(path: str | Path) -> dict[str, Annotation]:
    out: dict[str, Annotation] = defaultdict(Annotation)
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines()):
        parts = line.split()
        if not parts or parts[0] != "SPEAKER":
            continue
        uri, start, dur, spk = parts[1], float(parts[3]), float(parts[4]), parts[7]
        out[uri][Segment(start, start + dur), f"{n}"] = spk
    for uri, ann in out.items():
        ann.uri = uri
    return dict(out)


def speaker_activity(annotation: Annotation, frames: int, resolution_s: float) -> tuple[list[str], np.ndarray]:
    """A reference's speakers (sorted) and their (speakers, frames) activity on a grid of
    `resolution_s`: a frame is active where a segment of that speaker covers its start."""
    speakers = sorted(annotation.labels())
    activity = np.zeros((len(speakers), frames), dtype=bool)
    for segment, _, speaker in annotation.itertracks(yield_label=True):
        start, end = max(0, round(segment.start / resolution_s)), min(frames, round(segment.end / resolution_s))
        activity[speakers.index(speaker), start:end] = True
    return speakers, activity


def read_uem(path: str | Path) -> dict[str, Timeline]:
    out: dict[str, Timeline] = {}
    for line in Path(path).read_text().splitlines():
        parts = line.split()
        if len(parts) >= 4:
            out.setdefault(parts[0], Timeline()).add(Segment(float(parts[2]), float(parts[3])))
    return out


def to_annotation(uri: str, segments) -> Annotation:
    """Segments (objects with speaker/start/end) or (start, end, speaker) tuples -> Annotation."""
    ann = Annotation(uri=uri)
    for i, seg in enumerate(segments):
        start, end, spk = (seg.start, seg.end, seg.speaker) if hasattr(seg, "speaker") else seg
        if end > start:
            ann[Segment(start, end), i] = spk
    return ann


class DERScorer:
    """Accumulates per-file components; `total` is the duration-weighted DER over all files."""

    def __init__(self):
        self.metric = DiarizationErrorRate(collar=0.0, skip_overlap=False)
        self.files: dict[str, dict] = {}

    def add(self, uri: str, reference: Annotation, hypothesis: Annotation, uem: Timeline) -> dict:
        detail = self.metric(reference, hypothesis, uem=uem, detailed=True)
        self.files[uri] = detail
        return detail

    @property
    def total(self) -> dict:
        keys = ("missed detection", "false alarm", "confusion", "total")
        sums = {k: sum(d[k] for d in self.files.values()) for k in keys}
        total = max(sums["total"], 1e-9)
        return {
            "der": (sums["missed detection"] + sums["false alarm"] + sums["confusion"]) / total,
            "miss": sums["missed detection"] / total,
            "false_alarm": sums["false alarm"] / total,
            "confusion": sums["confusion"] / total,
            "speech_s": sums["total"],
        }


def summary(detail: dict) -> dict:
    total = max(detail["total"], 1e-9)
    return {
        "der": detail["diarization error rate"] if detail["total"] > 0 else (detail["false alarm"] > 0) * 1.0,
        "miss": detail["missed detection"] / total,
        "false_alarm": detail["false alarm"] / total,
        "confusion": detail["confusion"] / total,
        "speech_s": detail["total"],
    }
