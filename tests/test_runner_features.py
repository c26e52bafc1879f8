"""The featurizer's batched per-step path (VAD rounds across streams, vectorised frame VAD) on real
speech: how the audio is cut into pushes, and which streams share a call, must not matter."""
import numpy as np
import pytest

from streamdiar.audio import load_audio
from streamdiar.features.speaker_encoder import EMBED_DIM
from tests.conftest import REAL_DEV

# GE2E runs its LSTM over however many windows are ready: a different batch composition changes
# float32 rounding in the embeddings, nothing more.
EMBED_TOLERANCE = 1e-6


def _features(featurizer, audio, blocks):
    state, out, start = featurizer.new_state(), [], 0
    for size in blocks:
        state.append(audio[start : start + size])
        start += size
        out.extend(featurizer([state]))
    state.append(np.zeros(featurizer.padding_to_flush(state), dtype=np.float32))
    out.extend(featurizer([state]))
    return np.concatenate(out)


@pytest.fixture(scope="module")
def speech():
    return load_audio(REAL_DEV / "trn03.wav")[: 12 * 16000]


def test_features_pushed_in_any_block_sizes_equal_one_pass(featurizer, speech):
    one_pass = _features(featurizer, speech, [speech.size])
    rng = np.random.default_rng(0)
    irregular = rng.integers(0, 9000, size=60)
    for blocks in ([511] * 400, [1234] * 160, [8000] * 25, list(irregular) + [speech.size]):
        cut = _features(featurizer, speech, blocks)
        assert cut.shape == one_pass.shape == (120, EMBED_DIM + 3)
        # VAD mean, VAD max and level: exactly the same numbers
        assert np.array_equal(cut[:, EMBED_DIM:], one_pass[:, EMBED_DIM:])
        np.testing.assert_allclose(cut[:, :EMBED_DIM], one_pass[:, :EMBED_DIM], atol=EMBED_TOLERANCE)


def test_streams_sharing_calls_keep_their_own_vad_state(featurizer, speech):
    """Streams with different amounts of new audio per call (some none) leave the batched VAD
    rounds at different times; each must carry its own recurrent state and context."""
    starts = (0, 3 * 16000, 5 * 16000)
    audios = [speech[start:] for start in starts]
    alone = [_features(featurizer, audio, [8000] * 30) for audio in audios]
    states = [featurizer.new_state() for _ in audios]
    outputs = [[] for _ in audios]
    taken = [0, 0, 0]
    sizes = ([3000, 0, 9000], [8000, 8000, 8000], [7000, 512, 0], [4096, 4096, 9000], [0, 20000, 2500])
    for call in range(200):
        for i, audio in enumerate(audios):
            size = sizes[call % len(sizes)][i]
            states[i].append(audio[taken[i] : taken[i] + size])
            taken[i] += size
        for i, frames in enumerate(featurizer(states)):
            outputs[i].append(frames)
    assert all(t >= audio.size for t, audio in zip(taken, audios))
    for i, state in enumerate(states):
        state.append(np.zeros(featurizer.padding_to_flush(state), dtype=np.float32))
        outputs[i].extend(featurizer([state]))
    for together, reference in zip(outputs, alone):
        together = np.concatenate(together)
        assert together.shape == reference.shape
        # batched Silero convolutions round differently than single ones; a mixed-up state
        # would move probabilities by whole tenths
        np.testing.assert_allclose(together[:, EMBED_DIM:], reference[:, EMBED_DIM:], atol=1e-4)
        np.testing.assert_allclose(together[:, :EMBED_DIM], reference[:, :EMBED_DIM], atol=EMBED_TOLERANCE)
