"""Window slots holding two voices are split by their frames' voices before linking (engine/slot_split.py)."""
import numpy as np
import pytest

from streamdiar.audio import load_audio
from streamdiar.config import ConfigError, TrackerConfig
from streamdiar.engine.slot_split import split_mixed_slots
from streamdiar.evaluate.der import read_rttm, speaker_activity
from streamdiar.features import SPEECH_PROBABILITY, VAD_MEAN_COLUMN
from streamdiar.features.speaker_encoder import EMBED_DIM
from tests.conftest import DEMO

RNG = np.random.default_rng(5)
WINDOW, PART, ONSET = 80, 10, 0.5
SCORE = TrackerConfig().slot_split_score  # the shipped setting


def _voice_frames(voice: np.ndarray, n: int, spread: float = 0.6) -> np.ndarray:
    """n frame vectors of one voice: the voice plus what one second of speech adds."""
    v = voice + spread * RNG.standard_normal((n, voice.size)) / np.sqrt(voice.size)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _unit() -> np.ndarray:
    v = RNG.standard_normal(EMBED_DIM)
    return v / np.linalg.norm(v)


def _split(activity, voices, speech=None, nearest_speakers=None):
    slots = activity.shape[0]
    embeddings = np.ones((slots, EMBED_DIM), dtype=np.float32) / np.sqrt(EMBED_DIM)
    confidence = np.full(slots, 0.9, dtype=np.float32)
    speech = np.linalg.norm(voices, axis=1) > 0 if speech is None else speech  # silence: no voice, no speech
    return split_mixed_slots(activity, embeddings, confidence, voices, speech, ONSET, PART, SCORE, nearest_speakers)


def test_a_slot_holding_two_voices_becomes_two_slots_each_pooled_from_its_own_frames():
    ann, bob = _unit(), _unit()
    voices = np.concatenate([_voice_frames(ann, 35), np.zeros((5, EMBED_DIM)), _voice_frames(bob, 25),
                             np.zeros((15, EMBED_DIM))]).astype(np.float32)
    activity = np.zeros((3, WINDOW), dtype=np.float32)
    activity[0, :65] = 0.9
    activity[1, 70:] = 0.8  # another slot, on frames of its own: left as it is
    out_activity, out_embeddings, out_confidence = _split(activity, voices)
    assert out_activity.shape == (4, WINDOW) and out_embeddings.shape == (4, EMBED_DIM)
    # the larger part (Ann's 35 frames) keeps the slot's place; Bob's is appended
    assert np.flatnonzero(out_activity[0]).max() < 40 and np.flatnonzero(out_activity[3]).min() >= 35
    assert np.allclose(out_activity[0] + out_activity[3], activity[0])
    assert out_embeddings[0] @ ann > 0.8 and out_embeddings[3] @ bob > 0.8
    assert out_confidence[0] == pytest.approx(0.9) and out_confidence[3] == pytest.approx(0.9)
    assert np.array_equal(out_activity[1:3], activity[1:3]) and out_confidence[1] == pytest.approx(0.9)


def test_one_voice_a_short_second_voice_or_a_shared_stretch_leave_the_slot_whole():
    ann, bob = _unit(), _unit()
    activity = np.zeros((2, WINDOW), dtype=np.float32)
    activity[0, :60] = 0.9
    one = np.concatenate([_voice_frames(ann, 60), np.zeros((20, EMBED_DIM))]).astype(np.float32)
    assert _split(activity, one)[0].shape == (2, WINDOW)
    # Bob holds the slot for 0.8 s only: under a second of his voice is no part of its own
    short = np.concatenate([_voice_frames(ann, 52), _voice_frames(bob, 8), np.zeros((20, EMBED_DIM))]).astype(np.float32)
    assert _split(activity, short)[0].shape == (2, WINDOW)
    # Bob's 25 frames are shared with another active slot (overlap) or heard by no VAD: not his alone
    both = np.concatenate([_voice_frames(ann, 35), _voice_frames(bob, 25), np.zeros((20, EMBED_DIM))]).astype(np.float32)
    shared = activity.copy()
    shared[1, 35:60] = 0.7
    assert _split(shared, both)[0].shape == (2, WINDOW)
    silent = np.arange(WINDOW) < 35
    assert _split(activity, both, speech=silent)[0].shape == (2, WINDOW)
    assert _split(activity, both)[0].shape == (3, WINDOW)


def test_two_parts_that_are_one_known_speaker_stay_one_slot():
    """A split is for two people: parts the tracker would both give to one known speaker are one
    voice's spread; a part matching nobody known, or two different speakers, still splits."""
    ann, bob = _unit(), _unit()
    voices = np.concatenate([_voice_frames(ann, 35), _voice_frames(bob, 25), np.zeros((20, EMBED_DIM))]).astype(np.float32)
    activity = np.zeros((2, WINDOW), dtype=np.float32)
    activity[0, :60] = 0.9
    asked = []

    def known(answer):
        def nearest(parts):
            asked.append(parts @ np.stack([ann, bob]).T)
            return np.array(answer)
        return nearest

    assert _split(activity, voices, nearest_speakers=known([2, 2]))[0].shape == (2, WINDOW)
    assert _split(activity, voices, nearest_speakers=known([2, -1]))[0].shape == (3, WINDOW)
    assert _split(activity, voices, nearest_speakers=known([-1, -1]))[0].shape == (3, WINDOW)
    assert _split(activity, voices, nearest_speakers=known([0, 1]))[0].shape == (3, WINDOW)
    # it is asked about the two parts' pooled voices, the larger part (Ann's) first
    assert all(a[0, 0] > 0.8 and a[1, 1] > 0.8 for a in asked)


def test_the_slot_split_score_is_checked():
    with pytest.raises(ConfigError, match="slot_split_score"):
        TrackerConfig(slot_split_score=-0.1).check("tracker")


def test_real_voices_two_in_a_slot_are_parted_and_one_is_left_whole(diarizer):
    """The bundled demo's real GE2E frames: a slot made of two LibriSpeech speakers' solo turns in
    one 8-s window splits along the reference; a slot of one speaker's turns does not."""
    audio = load_audio(DEMO)
    stream = diarizer.open_stream("demo", record_features=True)
    stream.push(audio)
    stream.finish()
    frames = np.concatenate(stream.state.feature_log)
    _, reference = speaker_activity(read_rttm(DEMO.with_suffix(".rttm"))["demo"], len(frames), 0.1)
    speech = frames[:, VAD_MEAN_COLUMN] >= SPEECH_PROBABILITY
    solo = reference & (reference.sum(axis=0) == 1) & speech
    starts = range(0, len(frames) - WINDOW, 5)

    def held(start: int) -> np.ndarray:  # (speakers,) solo frames of each in the window
        return solo[:, start : start + WINDOW].sum(axis=1)

    two = max(starts, key=lambda s: np.sort(held(s))[-2])
    a, b = np.argsort(-held(two))[:2]
    assert held(two)[b] >= 2 * PART
    window = slice(two, two + WINDOW)
    activity = np.zeros((2, WINDOW), dtype=np.float32)
    activity[0] = np.where(solo[a, window] | solo[b, window], 0.9, 0.0)
    voices = frames[window, :EMBED_DIM]
    parts, _, _ = _split(activity, voices, speech[window])
    assert parts.shape == (3, WINDOW)
    owners = [reference[[a, b], window][:, part > 0].mean(axis=1) for part in (parts[0], parts[2])]
    assert max(owners[0]) >= 0.9 and max(owners[1]) >= 0.9
    assert np.argmax(owners[0]) != np.argmax(owners[1])

    one = max(starts, key=lambda s: held(s).max())
    who = int(np.argmax(held(one)))
    window = slice(one, one + WINDOW)
    activity = np.zeros((2, WINDOW), dtype=np.float32)
    activity[0] = np.where(solo[who, window], 0.9, 0.0)
    assert activity[0].sum() >= 4 * PART * 0.9
    assert _split(activity, frames[window, :EMBED_DIM], speech[window])[0].shape == (2, WINDOW)
