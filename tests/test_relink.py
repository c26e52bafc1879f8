"""Final pieces moved to the speaker whose running voice they match (engine/relink.py)."""
import numpy as np

from streamdiar.config import LabelConfig, TrackerConfig
from streamdiar.engine.labels import Segment, Segmenter, VoicePiece
from streamdiar.engine.relink import MERGE_MIN_PIECES, PieceRelinker
from streamdiar.engine.tracker import Tracker

RNG = np.random.default_rng(11)
HOP = 0.1


def _unit(dim: int = 256) -> np.ndarray:
    v = RNG.standard_normal(dim)
    return v / np.linalg.norm(v)


def _relinker(**config) -> PieceRelinker:
    return PieceRelinker(LabelConfig(**config), HOP, Tracker(TrackerConfig(), HOP))


def _near(voice: np.ndarray, spread: float) -> np.ndarray:
    """A piece of one person's voice: the person plus what one second of speech adds."""
    v = voice + spread * _unit()
    return v / np.linalg.norm(v)


def _piece(start: int, voice: np.ndarray, frames: int = 10) -> VoicePiece:
    piece = VoicePiece(start)
    for k in range(frames):
        noisy = voice + 0.05 * _unit()
        piece.add(start + k, np.zeros(0), noisy / np.linalg.norm(noisy))
    return piece


def _runs(relinker: PieceRelinker, speaker: str, start: float, voices: list[np.ndarray], frames: int = 10):
    first = round(start / HOP)
    pieces = [_piece(first + 10 * i, v, frames) for i, v in enumerate(voices)]
    seg = Segment(speaker, start, start + len(voices), 0.8, True)
    return [(s.speaker, s.start, s.end, [p.start for p in ps]) for s, ps in relinker(seg, pieces)]


def test_a_piece_goes_to_the_speaker_whose_running_voice_it_matches():
    relinker = _relinker()
    ann, bob = _unit(), _unit()
    assert _runs(relinker, "A", 0.0, [ann, ann]) == [("A", 0.0, 2.0, [0, 10])]
    assert _runs(relinker, "B", 2.0, [bob, bob]) == [("B", 2.0, 4.0, [20, 30])]
    # the tracker gave Bob's second half of this segment to A: it goes back to B, at the piece boundary
    assert _runs(relinker, "A", 4.0, [ann, ann, bob, bob]) == [("A", 4.0, 6.0, [40, 50]), ("B", 6.0, 8.0, [60, 70])]


def test_pieces_stay_where_the_voice_does_not_clearly_say_otherwise():
    relinker = _relinker()
    ann, bob = _unit(), _unit()
    _runs(relinker, "A", 0.0, [ann, ann])
    _runs(relinker, "B", 2.0, [bob, bob])
    assert _runs(relinker, "A", 4.0, [_unit()])[0][0] == "A"  # a third voice is near no one
    assert _runs(relinker, "A", 5.0, [bob], frames=2)[0][0] == "A"  # two solo frames are too little voice
    assert _runs(relinker, "C", 6.0, [bob])[0][0] == "C"  # a speaker with no final piece yet is not judged
    halfway = (ann + bob) / np.linalg.norm(ann + bob)
    assert _runs(relinker, "A", 7.0, [halfway])[0][0] == "A"  # no clear margin
    strict = _relinker(relink_similarity=1.0)
    _runs(strict, "A", 0.0, [ann])
    _runs(strict, "B", 1.0, [bob])
    assert _runs(strict, "A", 2.0, [bob])[0][0] == "A"  # below the similarity floor


def test_the_segmenter_closes_relinked_runs_without_a_namer():
    relinker = _relinker()
    ann, bob = _unit(), _unit()
    seg = Segmenter(LabelConfig(min_gap_s=0.0, min_segment_s=0.0, fill_speech=0.0, relink=True), HOP, relinker=relinker)
    # frames 0-19 speaker 0 (Ann), 20-39 speaker 1 (Bob), then speaker 0 for 40-79 but Bob from frame 60 on
    act = np.zeros((2, 81), dtype=np.float32)
    act[0, :20] = act[1, 20:40] = act[0, 40:80] = 1.0
    voices = np.stack([ann] * 20 + [bob] * 20 + [ann] * 20 + [bob] * 20 + [ann])
    out = seg.finalize(0, act, ["A", "B"], voices=voices)
    assert [(s.speaker, s.start, s.end) for s in out] == [("A", 0.0, 2.0), ("B", 2.0, 4.0), ("A", 4.0, 6.0), ("B", 6.0, 8.0)]


def test_a_running_voice_that_holds_two_people_splits_and_later_pieces_follow_their_voice():
    relinker = _relinker()
    ann = _unit()
    bob = _near(ann, 0.8)  # cosine about 0.78: two voices of one room
    # the tracker links both to A: one-piece turns, Ann and Bob taking turns; one voice of
    # the two, A's running voice is no closer to either, so nothing moves until it splits
    labels = [_runs(relinker, "A", float(t), [_near(ann if t % 2 else bob, 0.3)])[0][0] for t in range(16)]
    assert set(labels) == {"A"}
    later = [_runs(relinker, "A", 16.0 + t, [_near(who, 0.3)])[0][0] for t, who in enumerate([ann, bob, ann, bob])]
    assert later[0] == later[2] != later[1] == later[3]  # from now on Ann's and Bob's pieces part
    assert set(later) == {"A", "SPEAKER_00"}  # the new speaker's label comes from the tracker


def test_one_voice_never_splits_and_a_speaker_count_hint_holds():
    relinker = _relinker()
    ann = _unit()
    labels = {_runs(relinker, "A", float(t), [_near(ann, 0.3)])[0][0] for t in range(64)}
    assert labels == {"A"}
    capped = PieceRelinker(LabelConfig(), HOP, tracker := Tracker(TrackerConfig(), HOP))
    tracker.set_speaker_count(num=1)
    bob = _near(ann, 0.8)
    labels = {_runs(capped, "A", float(t), [_near(ann if t % 2 else bob, 0.3)])[0][0] for t in range(40)}
    assert labels == {"A"}


def test_two_speakers_with_one_voice_merge_into_the_older_and_distinct_voices_never_do():
    relinker = _relinker()
    ann = _unit()
    bob = _near(ann, 0.6)  # cosine about 0.86: alike, but two people
    # the tracker opened Ann twice (A, then C) and Bob once; pieces stay where the tracker put them
    for t in range(MERGE_MIN_PIECES - 1):
        assert [_runs(relinker, who, 3.0 * t + k, [_near(voice, 0.3)])[0][0] for k, (who, voice) in
                enumerate([("A", ann), ("B", bob), ("C", ann)])] == ["A", "B", "C"]
    # once A and C each hold enough pieces, their running voices are one person's: C merges into
    # A, also for the segments the tracker still labels C
    t = 3.0 * MERGE_MIN_PIECES
    assert _runs(relinker, "A", t, [_near(ann, 0.3)])[0][0] == "A"
    assert _runs(relinker, "B", t + 1, [_near(bob, 0.3)])[0][0] == "B"
    assert _runs(relinker, "C", t + 2, [_near(ann, 0.3)])[0][0] == "A"
    assert _runs(relinker, "C", 50.0, [_near(ann, 0.3), _near(ann, 0.3)]) == [("A", 50.0, 52.0, [500, 510])]
    assert [_runs(relinker, "B", 52.0 + k, [_near(bob, 0.3)])[0][0] for k in range(20)] == ["B"] * 20
    # live labels follow: the tracker's A and C, both active now, show as one speaker A
    segmenter = Segmenter(LabelConfig(), HOP, relinker=relinker)
    act = np.zeros((3, 20), dtype=np.float32)
    act[0, :8] = act[2, 5:15] = act[1, 16:] = 0.9
    assert [(s.speaker, s.start, s.end, s.final) for s in segmenter.provisional(720, act, ["A", "B", "C"])] == [
        ("A", 72.0, 73.5, False), ("B", 73.6, 74.0, False)]
    never = _relinker(relink_merge_similarity=0.0)
    for k in range(20):
        _runs(never, "A", 2.0 * k, [_near(ann, 0.3)])
        _runs(never, "C", 2.0 * k + 1, [_near(ann, 0.3)])
    assert _runs(never, "C", 40.0, [_near(ann, 0.3)])[0][0] == "C"


def test_an_anonymous_speaker_with_an_enrolled_voice_merges_into_the_name():
    tracker = Tracker(TrackerConfig(), HOP)
    ann = _unit()
    tracker.add_known("Ann", ann[None])
    relinker = PieceRelinker(LabelConfig(), HOP, tracker)
    for t in range(MERGE_MIN_PIECES):  # the anonymous speaker's first piece came before the name's
        _runs(relinker, "SPEAKER_00", 2.0 * t, [_near(ann, 0.3)])
        _runs(relinker, "Ann", 2.0 * t + 1, [_near(ann, 0.3)])
    assert _runs(relinker, "SPEAKER_00", 50.0, [_near(ann, 0.3)])[0][0] == "Ann"
