"""Two voices in one set of speaker vectors: a spherical 2-means, seeded with the two least alike
vectors. The slot split (engine/slot_split.py) asks it of one window slot's frames, the speaker
split (engine/relink.py) of one speaker's final pieces."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from streamdiar.engine.tracker import normalise

ITERATIONS = 10


@dataclass(frozen=True)
class TwoVoices:
    group: np.ndarray  # (n,) 0 or 1: each vector's group
    centres: np.ndarray  # (2, D) the groups' unit mean directions
    gain: float  # mean cosine of the vectors to the nearer centre less to the one mean direction of all

    @property
    def sizes(self) -> np.ndarray:
        return np.bincount(self.group, minlength=2)


def two_voices(voices: np.ndarray) -> TwoVoices | None:
    """Unit vectors (n >= 2, D) -> their two groups, or None where they all fall in one."""
    similarity = voices @ voices.T
    centres = voices[list(np.unravel_index(np.argmin(similarity), similarity.shape))]
    for _ in range(ITERATIONS):
        group = (voices @ centres.T).argmax(axis=1)
        if group.min() == group.max():
            return None
        centres = normalise(np.stack([voices[group == k].sum(axis=0) for k in (0, 1)]))
    gain = (voices @ centres.T).max(axis=1).mean() - (voices @ normalise(voices.sum(axis=0))).mean()
    return TwoVoices(group, centres, float(gain))
