"""From per-frame speaker activity to segments: final ones that never change, provisional ones
that show who is speaking in the newest audio and may still be revised."""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from streamdiar.config import LabelConfig


@dataclass(frozen=True)
class Segment:
    speaker: str
    start: float
    end: float
    confidence: float
    final: bool

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class _Open:
    start: int
    last_active: int
    activity_sum: float
    frames: int


class Segmenter:
    """Closes a speaker's segment once `min_gap_s` of final silence follows it (shorter gaps are
    bridged), and drops segments shorter than `min_segment_s`."""

    def __init__(self, config: LabelConfig, frame_hop_s: float):
        self.config = config
        self.hop = frame_hop_s
        self.gap_frames = int(round(config.min_gap_s / frame_hop_s))
        self.min_frames = int(round(config.min_segment_s / frame_hop_s))
        self.open: dict[int, _Open] = {}
        self.next_frame = 0  # first frame not yet final

    def finalize(self, start: int, activity: np.ndarray, labels: list[str]) -> list[Segment]:
        """Consume final frames [start, start + T) of activity (S, T); return closed segments."""
        assert start == self.next_frame, "final frames must arrive in order"
        out = []
        onset = self.config.onset
        for t in range(activity.shape[1]):
            frame = start + t
            for spk in range(activity.shape[0]):
                value = float(activity[spk, t])
                seg = self.open.get(spk)
                if value >= onset:
                    if seg is None:
                        self.open[spk] = _Open(frame, frame, value, 1)
                    else:
                        seg.last_active = frame
                        seg.activity_sum += value
                        seg.frames += 1
                elif seg is not None and frame - seg.last_active > self.gap_frames:
                    out.extend(self._close(spk, labels))
        self.next_frame = start + activity.shape[1]
        return out

    def close_all(self, labels: list[str]) -> list[Segment]:
        out = []
        for spk in sorted(self.open):
            out.extend(self._close(spk, labels))
        return out

    def provisional(self, start: int, activity: np.ndarray, labels: list[str]) -> list[Segment]:
        """Segments over the not-yet-final frames [start, start + T), joined to open segments."""
        out = []
        for spk in range(activity.shape[0]):
            active = np.flatnonzero(activity[spk] >= self.config.onset)
            seg = self.open.get(spk)
            if active.size == 0 and seg is None:
                continue
            first = seg.start if seg is not None else start + int(active[0])
            last = start + int(active[-1]) if active.size else seg.last_active
            values = activity[spk, active] if active.size else np.zeros(0)
            total = (seg.activity_sum if seg else 0.0) + float(values.sum())
            count = (seg.frames if seg else 0) + values.size
            out.append(Segment(labels[spk], round(first * self.hop, 3), round((last + 1) * self.hop, 3),
                               round(total / max(count, 1), 3), False))
        return out

    def _close(self, spk: int, labels: list[str]) -> list[Segment]:
        seg = self.open.pop(spk)
        if seg.last_active - seg.start + 1 < self.min_frames:
            return []
        return [Segment(labels[spk], round(seg.start * self.hop, 3), round((seg.last_active + 1) * self.hop, 3),
                        round(seg.activity_sum / seg.frames, 3), True)]
