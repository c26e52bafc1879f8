"""Per-frame speaker activity, averaged over every window that covered the frame."""
from __future__ import annotations

import numpy as np


class Aggregator:
    """Sums of mapped slot activity and window counts over a sliding range of frames.

    Only the frames that a future window can still touch, or that are not yet final, are kept:
    memory stays bounded however long the stream runs.
    """

    def __init__(self, window_frames: int):
        self.window_frames = window_frames
        self.base = 0  # absolute index of column 0
        self.sums = np.zeros((0, 0), dtype=np.float32)  # (speakers, frames)
        self.counts = np.zeros(0, dtype=np.float32)

    def _grow(self, speakers: int, end: int) -> None:
        rows = max(speakers, self.sums.shape[0])
        cols = max(end - self.base, self.sums.shape[1])
        if (rows, cols) != self.sums.shape:
            grown = np.zeros((rows, cols), dtype=np.float32)
            grown[: self.sums.shape[0], : self.sums.shape[1]] = self.sums
            self.sums = grown
            counts = np.zeros(cols, dtype=np.float32)
            counts[: self.counts.size] = self.counts
            self.counts = counts

    def add(self, start: int, tracks: dict[int, np.ndarray], speakers: int) -> None:
        """Add one window starting at absolute frame `start`: speaker index -> activity (T,)."""
        lo = max(start, self.base)
        end = start + self.window_frames
        self._grow(speakers, end)
        cut = lo - start
        self.counts[lo - self.base : end - self.base] += 1
        for spk, track in tracks.items():
            self.sums[spk, lo - self.base : end - self.base] += track[cut:]

    def mean(self, start: int, end: int, speakers: int) -> tuple[np.ndarray, np.ndarray]:
        """(speakers, end-start) averaged activity and (end-start,) window counts; 0 where unseen."""
        out = np.zeros((speakers, end - start), dtype=np.float32)
        counts = np.zeros(end - start, dtype=np.float32)
        lo, hi = max(start, self.base), min(end, self.base + self.counts.size)
        if hi > lo:
            c = self.counts[lo - self.base : hi - self.base]
            counts[lo - start : hi - start] = c
            rows = min(speakers, self.sums.shape[0])
            out[:rows, lo - start : hi - start] = self.sums[:rows, lo - self.base : hi - self.base] / np.maximum(c, 1)
        return out, counts

    def forget_before(self, frame: int) -> None:
        drop = frame - self.base
        if drop > 0:
            self.sums = self.sums[:, drop:]
            self.counts = self.counts[drop:]
            self.base = frame
