"""The clustering baselines, computed on the very frame features streamdiar's run produced.

- offline: agglomerative clustering (average linkage, cosine) of every speech frame of the
  whole file: full context, no time modelling, one speaker per frame.
- online: diart's incremental clustering: each step's speech gets one embedding, joins the
  nearest running centroid if close enough, else opens a new speaker; centroids are sums.
"""
from __future__ import annotations

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage

from streamdiar.features import VAD_MEAN_COLUMN
from streamdiar.features.speaker_encoder import EMBED_DIM


def _segments(labels: np.ndarray, hop: float, min_gap_frames: int) -> list[tuple[float, float, str]]:
    """Frame labels (-1 = silence) -> (start, end, speaker) with short gaps bridged."""
    out = []
    for spk in sorted(set(labels.tolist()) - {-1}):
        idx = np.flatnonzero(labels == spk)
        start = prev = idx[0]
        for i in idx[1:]:
            if i - prev - 1 > min_gap_frames:
                out.append((start * hop, (prev + 1) * hop, f"B{spk}"))
                start = i
            prev = i
        out.append((start * hop, (prev + 1) * hop, f"B{spk}"))
    return out


def offline_clustering(features: np.ndarray, hop: float, threshold: float = 0.3, vad: float = 0.5,
                       min_gap_frames: int = 3) -> list[tuple[float, float, str]]:
    speech = np.flatnonzero(features[:, VAD_MEAN_COLUMN] >= vad)
    labels = np.full(features.shape[0], -1)
    if speech.size == 1:
        labels[speech] = 0
    elif speech.size > 1:
        tree = linkage(features[speech, :EMBED_DIM], method="average", metric="cosine")
        labels[speech] = fcluster(tree, t=threshold, criterion="distance") - 1
    return _segments(labels, hop, min_gap_frames)


def online_clustering(features: np.ndarray, hop: float, step_frames: int, delta_new: float = 0.3,
                      vad: float = 0.5, max_speakers: int = 20, min_gap_frames: int = 3) -> list[tuple[float, float, str]]:
    centroids: list[np.ndarray] = []
    labels = np.full(features.shape[0], -1)
    for start in range(0, features.shape[0], step_frames):
        block = features[start : start + step_frames]
        speech = np.flatnonzero(block[:, VAD_MEAN_COLUMN] >= vad)
        if speech.size == 0:
            continue
        emb = block[speech, :EMBED_DIM].mean(axis=0)
        emb /= np.linalg.norm(emb) + 1e-8
        if centroids:
            sims = np.array([c @ emb / (np.linalg.norm(c) + 1e-8) for c in centroids])
            best = int(sims.argmax())
        if not centroids or (1 - sims[best] > delta_new and len(centroids) < max_speakers):
            centroids.append(emb.copy())
            best = len(centroids) - 1
        else:
            centroids[best] += emb
        labels[start + speech] = best
    return _segments(labels, hop, min_gap_frames)
