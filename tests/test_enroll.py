"""Enrollment embeddings: the engine's own frame features, pooled over speech only."""
from __future__ import annotations

import asyncio

import numpy as np
import pytest
import soundfile as sf

from streamdiar.audio import SAMPLE_RATE, AudioError, load_audio
from streamdiar.engine.pipeline import diarize_file
from streamdiar.speakers.enroll import MAX_EMBEDDINGS, enroll, pool, speech_embeddings
from tests.conftest import SPEAKERS

# long enough that each half holds a few seconds of speech
UTTERANCES = [p for p in sorted(SPEAKERS.glob("*.flac")) if sf.info(str(p)).duration >= 12.0][:6]


def test_frame_features_are_the_streams_features(diarizer, tmp_path):
    """Enrollment must see exactly what a live stream sees, or names would not match slots."""
    path = UTTERANCES[0]
    stream, _ = asyncio.run(diarize_file(diarizer, path, record_features=True))
    streamed = np.concatenate(stream.state.feature_log)
    whole = diarizer.featurizer.whole_signals([load_audio(path)])[0]
    assert whole.shape == streamed.shape
    np.testing.assert_allclose(whole, streamed, atol=1e-4)


def test_enrollment_pools_speech_into_normalised_embeddings(featurizer):
    audio = load_audio(UTTERANCES[1])
    e = enroll(featurizer, [audio])
    assert 0.5 * audio.size / SAMPLE_RATE < e.speech_s <= audio.size / SAMPLE_RATE  # read speech: mostly voiced
    assert 1 < len(e.embeddings) <= MAX_EMBEDDINGS
    np.testing.assert_allclose(np.linalg.norm(e.embeddings, axis=1), 1.0, atol=1e-5)
    # pieces of the same voice agree with each other
    sims = e.embeddings @ e.embeddings.T
    assert sims[np.triu_indices(len(sims), 1)].min() > 0.7


def test_same_voice_scores_above_other_voices(featurizer):
    """Halves of one utterance are closer to each other than to other speakers' voices."""
    signals = [load_audio(p) for p in UTTERANCES]
    halves = [(s[: s.size // 2], s[s.size // 2 :]) for s in signals]
    first = [enroll(featurizer, [a]).embeddings.mean(axis=0) for a, _ in halves]
    second = [enroll(featurizer, [b]).embeddings.mean(axis=0) for _, b in halves]
    first = np.stack([v / np.linalg.norm(v) for v in first])
    second = np.stack([v / np.linalg.norm(v) for v in second])
    sims = first @ second.T
    same = np.diag(sims)
    other = sims[~np.eye(len(sims), dtype=bool)]
    assert np.mean(same) > np.mean(other) + 0.1
    assert (np.argmax(sims, axis=1) == np.arange(len(sims))).mean() >= 5 / 6


def test_silence_is_refused_with_one_line(featurizer):
    rng = np.random.default_rng(0)
    with pytest.raises(AudioError, match="speech found"):
        enroll(featurizer, [np.zeros(5 * SAMPLE_RATE, dtype=np.float32), 1e-4 * rng.standard_normal(SAMPLE_RATE).astype(np.float32)])


def test_pool_caps_the_number_of_embeddings():
    rng = np.random.default_rng(1)
    vectors = rng.standard_normal((1000, 256)).astype(np.float32)
    assert pool(vectors, 40).shape == (min(25, MAX_EMBEDDINGS), 256)
    assert pool(vectors, 40, max_embeddings=4).shape == (4, 256)
    assert pool(vectors[:10], 40).shape == (1, 256)


def test_speech_embeddings_use_the_vad_column():
    frames = np.zeros((4, 259), dtype=np.float32)
    frames[:, :256] = np.arange(4)[:, None]
    frames[[1, 3], 256] = 0.9
    assert speech_embeddings(frames)[:, 0].tolist() == [1.0, 3.0]
