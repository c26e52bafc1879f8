"""One live stream's state: audio not yet processed, features, window, tracker, labels."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from streamdiar.engine.aggregate import Aggregator
from streamdiar.engine.labels import Segment, Segmenter
from streamdiar.engine.tracker import Tracker
from streamdiar.engine.windows import FrameRing
from streamdiar.features import FeatureState


@dataclass(frozen=True)
class Update:
    """What one push produced: segments that just became final, and the current provisional
    segments (they replace the previous update's provisional ones)."""

    final: list[Segment]
    provisional: list[Segment]
    audio_s: float


@dataclass
class StreamState:
    uri: str
    features: FeatureState
    ring: FrameRing
    tracker: Tracker
    aggregator: Aggregator
    segmenter: Segmenter
    pending: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    received: int = 0  # samples of real audio received
    steps_done: int = 0
    finished: bool = False
    feature_log: list[np.ndarray] | None = None  # every frame's features, when asked for (evaluation)
    step_log: list[tuple] | None = None  # every step's new frames and model output, when asked for (tuning by replay)
    provisional: list[Segment] = field(default_factory=list)  # as of the latest step

    @property
    def labels(self) -> list[str]:
        return [s.label for s in self.tracker.speakers]
