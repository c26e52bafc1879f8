"""The window the Weighter sees: the newest `window_frames` feature frames of one stream."""
from __future__ import annotations

import numpy as np


class FrameRing:
    """Bounded history of frame features; windows before the stream has filled one are
    left-padded with zeros (what the model saw in training for a stream's first seconds)."""

    def __init__(self, window_frames: int, feature_dim: int):
        self.window_frames = window_frames
        self._frames = np.zeros((window_frames, feature_dim), dtype=np.float32)
        self.count = 0  # frames pushed so far (absolute index of the next frame)

    def push(self, frames: np.ndarray) -> None:
        self.count += frames.shape[0]
        self._frames = np.concatenate([self._frames, frames[-self.window_frames :]])[-self.window_frames :]

    def window(self) -> tuple[np.ndarray, int]:
        """(window_frames, F) copy and the absolute index of its first row (may be negative)."""
        return self._frames.copy(), self.count - self.window_frames

    def between(self, start: int, end: int) -> np.ndarray | None:
        """(end-start, F) read-only view of absolute frames [start, end), None if some have left
        the window (`push` builds a new array, so a view never changes under its holder)."""
        first = self.count - self.window_frames
        if start < first:
            return None
        view = self._frames[start - first : end - first]
        view.flags.writeable = False
        return view
