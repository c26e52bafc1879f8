"""Label sinks: RTTM (final segments only), JSON lines (every event), plain terminal lines."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import IO

from streamdiar.engine.labels import Segment


def rttm_line(uri: str, seg: Segment) -> str:
    return f"SPEAKER {uri} 1 {seg.start:.3f} {seg.end - seg.start:.3f} <NA> <NA> {seg.speaker} <NA> <NA>"


class RTTMSink:
    """Collects final segments of any number of files into one RTTM file, sorted per file."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.lines: list[str] = []

    def write(self, uri: str, segments: list[Segment]) -> None:
        self.lines.extend(rttm_line(uri, s) for s in sorted(segments, key=lambda s: (s.start, s.speaker)) if s.final)

    def close(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text("".join(line + "\n" for line in self.lines))


class JSONLSink:
    """One JSON object per event, final and provisional, in emission order."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] = self.path.open("w")

    def write(self, uri: str, segments: list[Segment], audio_s: float | None = None) -> None:
        for seg in segments:
            record = {"type": "segment", "uri": uri, **seg.to_dict()}
            if audio_s is not None:
                record["audio_s"] = round(audio_s, 3)
            self._file.write(json.dumps(record) + "\n")

    def close(self) -> None:
        self._file.close()


class ConsoleSink:
    """Human-readable live labels: final segments as lines, the provisional state as a status."""

    def __init__(self, stream: IO[str] = sys.stdout):
        self.stream = stream
        self._last_now = ""

    def write(self, uri: str, final: list[Segment], provisional: list[Segment], audio_s: float) -> None:
        for seg in final:
            print(f"[{audio_s:7.2f}s] {uri}: {seg.speaker:<12} {seg.start:7.2f} - {seg.end:7.2f}  "
                  f"(conf {seg.confidence:.2f}, final)", file=self.stream, flush=True)
        now = ", ".join(sorted({s.speaker for s in provisional if s.end >= audio_s - 1.5})) or "silence"
        if now != self._last_now:
            print(f"[{audio_s:7.2f}s] {uri}: speaking now: {now}", file=self.stream, flush=True)
            self._last_now = now
