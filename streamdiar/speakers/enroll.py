"""Enrollment: a speaker's voice as a few embeddings in the same space as the engine's slots.

A Weighter slot embedding is the normalised, activity-weighted mean of the GE2E vectors of the
frames where its speaker talks in one window. Enrollment does the same with the frames of the
enrollment audio that the VAD calls speech: their GE2E vectors (computed by the engine's own
FrameFeaturizer) are pooled in consecutive pieces of about `chunk_s` seconds of speech, so the
tracker compares like with like, and several pieces keep some of the voice's variation.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from streamdiar.audio import AudioError
from streamdiar.features import SPEECH_PROBABILITY, VAD_MEAN_COLUMN, FrameFeaturizer
from streamdiar.features.speaker_encoder import EMBED_DIM

CHUNK_S = 4.0  # speech pooled per embedding: about what one 8-s window's slot pools
MIN_SPEECH_S = 2.0  # less than this gives an embedding too noisy to recognise anyone by
# bench/known_speakers.py: 5 s of a recording (about 4 s of speech) named 90% of the speaker's
# solo speech, 10 s (about 8 s of speech) 95%, with fewer false names
RECOMMENDED_SPEECH_S = 8.0
MAX_EMBEDDINGS = 24  # enrolled entries stay in the tracker's memory forever; leave room to adapt


@dataclass(frozen=True)
class Enrollment:
    embeddings: np.ndarray  # (n, EMBED_DIM) float32, L2-normalised
    speech_s: float


def speech_embeddings(features: np.ndarray) -> np.ndarray:
    """GE2E vectors of the frames the VAD calls speech, (n, EMBED_DIM)."""
    return features[features[:, VAD_MEAN_COLUMN] >= SPEECH_PROBABILITY, :EMBED_DIM]


def pool(vectors: np.ndarray, chunk_frames: int, max_embeddings: int = MAX_EMBEDDINGS) -> np.ndarray:
    """Consecutive groups of about `chunk_frames` vectors -> one normalised mean per group."""
    groups = int(np.clip(round(len(vectors) / chunk_frames), 1, max_embeddings))
    means = np.stack([part.mean(axis=0) for part in np.array_split(vectors, groups)])
    return (means / np.linalg.norm(means, axis=1, keepdims=True).clip(1e-8)).astype(np.float32)


def enroll(featurizer: FrameFeaturizer, signals: list[np.ndarray], chunk_s: float = CHUNK_S,
           min_speech_s: float = MIN_SPEECH_S) -> Enrollment:
    """Enrollment embeddings from one speaker's recordings (16 kHz mono float32 each)."""
    hop_s = featurizer.config.frame_hop_s
    vectors = np.concatenate([speech_embeddings(f) for f in featurizer.whole_signals(signals)]
                             or [np.zeros((0, EMBED_DIM), dtype=np.float32)])
    speech_s = len(vectors) * hop_s
    if speech_s < min_speech_s:
        raise AudioError(f"only {speech_s:.1f} s of speech found; enrollment needs at least {min_speech_s:.0f} s")
    return Enrollment(pool(vectors, max(1, round(chunk_s / hop_s))), round(speech_s, 2))
