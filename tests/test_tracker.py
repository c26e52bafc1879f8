"""The tracker on synthetic slots whose embeddings come from real GE2E voices."""
import numpy as np
import pytest

from streamdiar.audio import load_audio

from streamdiar.config import TrackerConfig
from streamdiar.engine.tracker import Tracker
from tests.conftest import SPEAKERS

HOP = 0.1
T = 80


@pytest.fixture(scope="module")
def voice_frames(featurizer):
    """GE2E frame embeddings of the speech of 4 real LibriSpeech speakers."""
    frames = []
    for path in sorted(SPEAKERS.glob("*.flac"))[10:14]:
        audio = load_audio(path)
        state = featurizer.new_state()
        state.append(audio)
        state.append(np.zeros(featurizer.padding_to_flush(state), dtype=np.float32))
        feats = featurizer([state])[0]
        frames.append(feats[feats[:, 256] > 0.5, :256])
    return frames


def _voices(frames, seed=0, pool=20):
    """Slot embeddings as the pooled GE2E of `pool` random speech frames of one voice."""
    rng = np.random.default_rng(seed)

    def sample(i):
        v = frames[i][rng.choice(len(frames[i]), size=pool, replace=False)].mean(axis=0)
        return v / np.linalg.norm(v)

    return sample


def _window(active, sample, slots=4):
    """active: {voice: (start, end) frame range}; returns activity, embeddings, confidence."""
    activity = np.zeros((slots, T))
    embeddings = np.tile(np.ones(256) / 16, (slots, 1))
    for slot, (voice, (a, b)) in enumerate(active.items()):
        activity[slot, a:b] = 0.95
        embeddings[slot] = sample(voice)
    mass = activity.sum(axis=1)
    confidence = np.where(mass > 0, (activity**2).sum(axis=1) / np.maximum(mass, 1e-9), 0.0)
    return activity, embeddings, confidence


def _assign(tracker, window):
    n = len(tracker.speakers)
    return tracker.assign(*window, np.zeros((n, T)), np.zeros(T)).speakers


def test_same_voices_keep_their_labels_and_new_voice_opens_a_speaker(voice_frames):
    sample = _voices(voice_frames)
    tracker = Tracker(TrackerConfig(), HOP)
    first = _assign(tracker, _window({0: (0, 40), 1: (40, 80)}, sample))
    assert sorted(first[:2]) == [0, 1] and len(tracker.speakers) == 2
    for _ in range(10):
        again = _assign(tracker, _window({1: (0, 30), 0: (30, 80)}, sample))
        assert again[0] == first[1] and again[1] == first[0]
    third = _assign(tracker, _window({3: (0, 50)}, sample))  # voice 3: cosine < 0.8 to voices 0 and 1
    assert third[0] == 2 and len(tracker.speakers) == 3


def test_low_confidence_and_short_slots_are_ignored(voice_frames):
    sample = _voices(voice_frames)
    tracker = Tracker(TrackerConfig(confidence_gate=0.5, min_slot_s=0.3), HOP)
    activity, emb, conf = _window({0: (0, 40), 1: (40, 42)}, sample)
    activity[0] *= 0.3  # diffuse, unsure slot
    conf = (activity**2).sum(axis=1) / np.maximum(activity.sum(axis=1), 1e-9)
    result = tracker.assign(activity, emb, conf, np.zeros((0, T)), np.zeros(T)).speakers
    assert (result == -1).all() and not tracker.speakers


def test_speaker_is_recognised_after_long_silence_and_memory_is_bounded(voice_frames):
    sample = _voices(voice_frames, pool=8)
    tracker = Tracker(TrackerConfig(memory_size=16), HOP)
    first = _assign(tracker, _window({0: (0, 60)}, sample))[0]
    for _ in range(200):  # minutes of other speakers
        _assign(tracker, _window({1: (0, 40), 2: (40, 80)}, sample))
    assert _assign(tracker, _window({0: (10, 70)}, sample))[0] == first
    assert all(len(s.memory) <= 16 for s in tracker.speakers)
    assert len(tracker.speakers) == 3


def test_continuity_links_a_slot_to_the_speaker_already_placed_on_its_frames(voice_frames):
    sample = _voices(voice_frames)
    tracker = Tracker(TrackerConfig(continuity_weight=0.9), HOP)
    _assign(tracker, _window({0: (0, 40), 1: (40, 80)}, sample))
    history = np.zeros((2, T))
    history[0, :40] = 1.0  # speaker 0 was placed on frames 0..40 by earlier windows
    history[1, 40:] = 1.0
    activity, emb, conf = _window({1: (0, 40), 0: (40, 80)}, sample)
    emb[[0, 1]] = emb[[1, 0]]  # voices swapped: continuity must win
    result = tracker.assign(activity, emb, conf, history, np.ones(T)).speakers
    assert result[0] == 0 and result[1] == 1


@pytest.mark.parametrize("hint", [{"maximum": 2}, {"num": 2}])
def test_speaker_count_hints(hint, voice_frames):
    sample = _voices(voice_frames)
    tracker = Tracker(TrackerConfig(), HOP)
    tracker.set_speaker_count(**hint)
    for voice in range(4):
        _assign(tracker, _window({voice: (0, 60)}, sample))
    assert len(tracker.speakers) == 2


def test_enrolled_speakers_get_their_names(voice_frames):
    sample = _voices(voice_frames)
    tracker = Tracker(TrackerConfig(), HOP)
    tracker.add_known("alice", np.stack([sample(0) for _ in range(5)]))
    result = _assign(tracker, _window({0: (0, 50), 1: (50, 80)}, sample))
    assert tracker.speakers[result[0]].label == "alice"
    assert tracker.speakers[result[1]].label.startswith("SPEAKER_")


def test_slot_kept_apart_from_its_look_alike_opens_a_speaker_only_when_it_persists(voice_frames):
    """Two slots of one window are two people, however alike they sound: a second voice that
    matches the first speaker above new_speaker_similarity is held apart, and opens its own
    speaker once that has happened held_apart_windows windows in a row, not after a one-off."""
    sample = _voices(voice_frames)
    first, look_alike = sample(0), sample(0)  # the same real voice, as far-field speakers in one room sound
    config = TrackerConfig(held_apart_windows=3)

    def window():
        activity, _, confidence = _window({0: (0, 60), 1: (20, 80)}, sample)
        embeddings = np.tile(np.ones(256) / 16, (4, 1))
        embeddings[0], embeddings[1] = first, look_alike
        return activity, embeddings, confidence

    tracker = Tracker(config, HOP)
    assert _assign(tracker, _window({0: (0, 80)}, sample))[0] == 0
    assert list(_assign(tracker, window())[:2]) == [0, -1]
    assert list(_assign(tracker, window())[:2]) == [0, -1]
    assert _assign(tracker, _window({0: (0, 80)}, sample))[0] == 0  # the run is broken: count starts over
    assert list(_assign(tracker, window())[:2]) == [0, -1]
    assert list(_assign(tracker, window())[:2]) == [0, -1]
    assert list(_assign(tracker, window())[:2]) == [0, 1] and len(tracker.speakers) == 2


def test_nearest_speakers_names_the_known_voice_and_none_for_a_new_one(voice_frames):
    sample = _voices(voice_frames)
    tracker = Tracker(TrackerConfig(), HOP)
    assert tracker.nearest_speakers(np.stack([sample(0)])).tolist() == [-1]  # nobody known yet
    first = _assign(tracker, _window({0: (0, 40), 1: (40, 80)}, sample))
    assert tracker.nearest_speakers(np.stack([sample(1), sample(0), sample(3)])).tolist() == [first[1], first[0], -1]
