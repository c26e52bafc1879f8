"""Window slots that hold two voices, split by their frames' voices before linking.

The Weighter sometimes gives one slot to two people, most often where nothing but the voice tells
them apart: of its slots holding 2 s or more of solo speech, 15% hold a second or more of a
second person's on simulated dry conversations, 6% on the simulated validation set's rooms and
11% on real_dev. Linked whole, such a slot's pooled voice lies between
the two people's, it joins one of them to the other's speaker, and the mix stays in that speaker's
memory. Each frame's speaker vector (the GE2E vector of the 1-s sub-window around it) is a voice
of its own: where the speech frames a slot holds alone fall into two groups (`two_voices`), each
of at least `MIN_PART_S`, that fit clearly better than one, the slot becomes two. Every frame of
the slot goes to the group whose voice it is nearer, and each part is pooled and scored as the
Weighter pools and scores a slot. The evidence for two voices grows with how much of each there
is, so the gain in mean cosine is weighed by the square root of the smaller group's frame count
and must reach `slot_split_score`. One voice spreads too: two parts that both match the same
known speaker stay one slot, since two slots of one window cannot both link to that speaker and
the second would be pushed onto someone else. In a real far-field room two people's vectors lie
nearly as close as one person's (docs/accuracy.md): there the score stays low and slots stay whole.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from streamdiar.engine.voice_groups import two_voices
from streamdiar.model.weighter import pool_slots

MIN_PART_S = 1.0  # each of the two voices must hold the slot alone for this long


def split_mixed_slots(activity: np.ndarray, embeddings: np.ndarray, confidence: np.ndarray, voices: np.ndarray,
                      speech: np.ndarray, onset: float, min_part_frames: int, min_score: float,
                      nearest_speakers: Callable[[np.ndarray], np.ndarray] | None = None
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One window's slots (activity (N, T), embeddings (N, D), confidence (N,)) with each slot that
    holds two voices split in two: the part with more of the slot's solo speech keeps the slot's
    place, the other is appended, so unsplit slots keep their index. voices: (T, D) unit speaker
    vectors of the window's frames; speech: (T,) bool, the frames Silero hears speech on.
    nearest_speakers: (2, D) part embeddings -> (2,) index of the known speaker each one is, -1 for
    none; two parts that are one known speaker stay one slot (one voice's natural spread)."""
    active = activity >= onset
    alone = active & (active.sum(axis=0) == 1) & speech
    activity, embeddings, confidence = activity.copy(), embeddings.copy(), confidence.copy()
    extra: list[tuple[np.ndarray, np.ndarray, float]] = []
    for slot in range(activity.shape[0]):
        if alone[slot].sum() < 2 * min_part_frames:
            continue
        groups = two_voices(voices[alone[slot]])
        if groups is None or groups.sizes.min() < min_part_frames:
            continue
        if groups.gain * np.sqrt(groups.sizes.min()) < min_score:
            continue
        nearer = (voices @ groups.centres.T).argmax(axis=1)
        tracks = np.stack([np.where(nearer == k, activity[slot], 0.0) for k in np.argsort(-groups.sizes)])
        pooled, scored = pool_slots(torch.from_numpy(tracks[None]).float(), torch.from_numpy(voices[None]).float())
        pooled, scored = pooled[0].numpy(), scored[0].numpy()  # (kept part, other part): pooled as the Weighter pools
        if nearest_speakers is not None:
            known = nearest_speakers(pooled)
            if known[0] >= 0 and known[0] == known[1]:
                continue
        activity[slot], embeddings[slot], confidence[slot] = tracks[0], pooled[0], scored[0]
        extra.append((tracks[1], pooled[1], scored[1]))
    if not extra:
        return activity, embeddings, confidence
    return (np.concatenate([activity, np.stack([a for a, _, _ in extra]).astype(activity.dtype)]),
            np.concatenate([embeddings, np.stack([e for _, e, _ in extra]).astype(embeddings.dtype)]),
            np.concatenate([confidence, np.array([c for _, _, c in extra], dtype=confidence.dtype)]))
