"""The frame features on real speech: the pretrained parts load correctly and run incrementally."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from streamdiar.audio import SAMPLE_RATE, load_audio
from streamdiar.features import FEATURE_DIM
from streamdiar.features.speaker_encoder import MelFrontend, SpeakerEncoder
from streamdiar.features.vad import CHUNK, CONTEXT, SileroVAD
from tests.conftest import REAL_DEV, SPEAKERS


def _features(featurizer, audio, block):
    state = featurizer.new_state()
    out = []
    for start in range(0, audio.size, block):
        state.append(audio[start : start + block])
        out.extend(featurizer([state]))
    state.append(np.zeros(featurizer.padding_to_flush(state), dtype=np.float32))
    out.extend(featurizer([state]))
    return np.concatenate(out), state


def test_mel_matches_librosa_which_ge2e_was_trained_on():
    librosa = pytest.importorskip("librosa")
    audio = load_audio(REAL_DEV / "sample.wav")[SAMPLE_RATE : 2 * SAMPLE_RATE]
    expected = librosa.feature.melspectrogram(y=audio, sr=SAMPLE_RATE, n_fft=400, hop_length=160, n_mels=40).T
    ours = MelFrontend()(torch.nn.functional.pad(torch.from_numpy(audio), (200, 200))).numpy()
    np.testing.assert_allclose(ours, expected, rtol=1e-3, atol=1e-6 * expected.max())


def test_vad_module_equals_the_packaged_torchscript_model():
    spec = importlib.util.find_spec("silero_vad")
    scripted = torch.jit.load(str(Path(next(iter(spec.submodule_search_locations)), "data", "silero_vad.jit")))
    ours = SileroVAD.pretrained()
    audio = torch.from_numpy(load_audio(REAL_DEV / "sample.wav")[: CHUNK * 120])
    state, context = ours.initial_state(1), torch.zeros(1, CONTEXT)
    with torch.no_grad():
        for start in range(0, audio.numel(), CHUNK):
            chunk = audio[start : start + CHUNK][None]
            prob, state = ours(torch.cat([context, chunk], dim=1), state)
            context = chunk[:, -CONTEXT:]
            assert abs(prob.item() - scripted(chunk, SAMPLE_RATE).item()) < 1e-5


def test_ge2e_tells_real_speakers_apart():
    encoder = SpeakerEncoder.pretrained()
    mel = MelFrontend()
    files = sorted(SPEAKERS.glob("*.flac"))[:6]

    def embed(audio):
        mels = mel(torch.from_numpy(audio)).unsqueeze(0) * 1e3
        with torch.no_grad():
            return encoder(mels)[0].numpy()

    halves = []
    for path in files:
        audio = load_audio(path)
        mid = audio.size // 2
        halves.append((embed(audio[:mid]), embed(audio[mid:])))
    same = [a @ b for a, b in halves]
    different = [halves[i][0] @ halves[j][1] for i in range(len(files)) for j in range(len(files)) if i != j]
    assert min(same) > np.mean(different)
    assert np.mean(same) - np.mean(different) > 0.1


def test_frames_are_identical_whatever_the_block_size(featurizer):
    audio = load_audio(REAL_DEV / "sample.wav")[: 8 * SAMPLE_RATE]
    one_pass, _ = _features(featurizer, audio, audio.size)
    small, _ = _features(featurizer, audio, 1234)
    steps, _ = _features(featurizer, audio, 8000)
    assert one_pass.shape == (80, FEATURE_DIM)
    np.testing.assert_allclose(small, one_pass, atol=1e-5)
    np.testing.assert_allclose(steps, one_pass, atol=1e-5)


def test_frame_features_separate_the_two_real_speakers(featurizer):
    audio = load_audio(REAL_DEV / "sample.wav")
    feats, state = _features(featurizer, audio, 8000)
    labels = np.full(feats.shape[0], "", dtype=object)
    for line in (REAL_DEV / "reference.rttm").read_text().splitlines():
        f = line.split()
        if f[1] == "sample":
            s, e = int(float(f[3]) * 10), int((float(f[3]) + float(f[4])) * 10)
            labels[s:e] = np.where(labels[s:e] == "", f[7], "overlap")
    speakers = sorted(set(labels) - {"", "overlap"})
    inner = np.array([i for i in range(3, len(labels) - 3) if labels[i] in speakers and len(set(labels[i - 3 : i + 4])) == 1])
    emb, lab = feats[inner, :256], labels[inner]
    centroids = np.stack([emb[lab == s].mean(axis=0) for s in speakers])
    nearest = np.array(speakers)[np.argmax(emb @ centroids.T, axis=1)]
    assert (nearest == lab).mean() > 0.9
    # VAD column: speech frames score high, silence low
    assert feats[labels != "", 256].mean() > 0.7 > 0.3 > feats[labels == "", 256].mean()
    # buffers stay bounded: only what the next frames need is kept
    assert state.pcm.size < 2 * SAMPLE_RATE and state.mel.shape[0] < 300 and state.vad_probs.size < 50
