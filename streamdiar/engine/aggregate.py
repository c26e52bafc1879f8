"""Per-frame speaker activity, averaged over the windows that covered the frame, each frame's
speech probability, and how many slots the windows found active on it."""
from __future__ import annotations

import numpy as np


class Aggregator:
    """Sums of linked slot activity over a sliding range of frames.

    A window in which a speaker was linked to a slot counts fully in that speaker's average; a
    window in which the speaker was not linked counts with `unlinked_weight`: such a window may
    mean "silent here", or only that the tracker could not link the slot (0 trusts links only,
    1 treats every window as evidence). Only frames a future window can still touch, or that are
    not yet final, are kept: memory stays bounded however long the stream runs.
    """

    def __init__(self, window_frames: int, unlinked_weight: float = 1.0):
        self.window_frames = window_frames
        self.unlinked_weight = unlinked_weight
        self.base = 0  # absolute index of column 0
        self.sums = np.zeros((0, 0), dtype=np.float32)  # (speakers, frames)
        self.linked = np.zeros((0, 0), dtype=np.float32)  # windows that linked each speaker
        self.counts = np.zeros(0, dtype=np.float32)  # windows that covered each frame
        self.speech = np.zeros(0, dtype=np.float32)  # VAD speech probability of each frame
        self.active = np.zeros(0, dtype=np.float32)  # sum over windows of the slots active on each frame

    def _grow(self, speakers: int, end: int) -> None:
        rows = max(speakers, self.sums.shape[0])
        cols = max(end - self.base, self.sums.shape[1])
        if (rows, cols) != self.sums.shape:
            self.sums = _padded(self.sums, rows, cols)
            self.linked = _padded(self.linked, rows, cols)
            self.counts = _padded(self.counts[None], 1, cols)[0]
            self.speech = _padded(self.speech[None], 1, cols)[0]
            self.active = _padded(self.active[None], 1, cols)[0]

    def add(self, start: int, tracks: dict[int, np.ndarray], speakers: int, speech: np.ndarray | None = None,
            active_slots: np.ndarray | None = None) -> None:
        """Add one window starting at absolute frame `start`: speaker index -> activity (T,), the
        speech probability of its frames (T,) (a frame's is the same in every window), and how many
        of its slots, linked or not, are active on each frame (T,)."""
        lo = max(start, self.base)
        end = start + self.window_frames
        self._grow(speakers, end)
        cut = lo - start
        self.counts[lo - self.base : end - self.base] += 1
        if speech is not None:
            self.speech[lo - self.base : end - self.base] = speech[cut:]
        if active_slots is not None:
            self.active[lo - self.base : end - self.base] += active_slots[cut:]
        for spk, track in tracks.items():
            self.sums[spk, lo - self.base : end - self.base] += track[cut:]
            self.linked[spk, lo - self.base : end - self.base] += 1

    def _overlap(self, start: int, end: int) -> tuple[slice, slice] | None:
        """Where frames [start, end) meet the kept columns: (slice of an output indexed from start,
        slice of the kept arrays), or None if they do not meet."""
        lo, hi = max(start, self.base), min(end, self.base + self.counts.size)
        if hi <= lo:
            return None
        return slice(lo - start, hi - start), slice(lo - self.base, hi - self.base)

    def mean(self, start: int, end: int, speakers: int) -> tuple[np.ndarray, np.ndarray]:
        """(speakers, end-start) averaged activity and (end-start,) window counts; 0 where unseen."""
        out = np.zeros((speakers, end - start), dtype=np.float32)
        counts = np.zeros(end - start, dtype=np.float32)
        if (span := self._overlap(start, end)) is not None:
            dst, src = span
            counts[dst] = self.counts[src]
            rows = min(speakers, self.sums.shape[0])
            linked = self.linked[:rows, src]
            weight = linked + self.unlinked_weight * (self.counts[src] - linked)
            out[:rows, dst] = self.sums[:rows, src] / np.maximum(weight, 1e-6)
        return out, counts

    def speech_between(self, start: int, end: int) -> np.ndarray:
        """(end-start,) speech probability; 0 on frames no window has covered."""
        out = np.zeros(end - start, dtype=np.float32)
        if (span := self._overlap(start, end)) is not None:
            out[span[0]] = self.speech[span[1]]
        return out

    def speaker_count(self, start: int, end: int) -> np.ndarray:
        """(end-start,) mean number of active slots over the windows that covered each frame; 0 on
        frames no window has covered. Unlike the per-speaker averages it does not depend on linking."""
        out = np.zeros(end - start, dtype=np.float32)
        if (span := self._overlap(start, end)) is not None:
            out[span[0]] = self.active[span[1]] / np.maximum(self.counts[span[1]], 1)
        return out

    def forget_before(self, frame: int) -> None:
        drop = frame - self.base
        if drop > 0:
            self.sums = self.sums[:, drop:]
            self.linked = self.linked[:, drop:]
            self.counts = self.counts[drop:]
            self.speech = self.speech[drop:]
            self.active = self.active[drop:]
            self.base = frame


def _padded(array: np.ndarray, rows: int, cols: int) -> np.ndarray:
    grown = np.zeros((rows, cols), dtype=np.float32)
    grown[: array.shape[0], : array.shape[1]] = array
    return grown
