"""Naming final segments piece by piece from their own solo speech (engine/naming.py)."""
import numpy as np

from streamdiar.config import TrackerConfig
from streamdiar.engine.labels import Segment, VoicePiece
from streamdiar.engine.naming import SegmentNamer
from streamdiar.engine.tracker import Tracker

RNG = np.random.default_rng(5)
HOP = 0.1


def _unit(dim: int = 256) -> np.ndarray:
    v = RNG.standard_normal(dim)
    return v / np.linalg.norm(v)


def _orthogonal(v: np.ndarray) -> np.ndarray:
    u = _unit(v.size)
    u -= (u @ v) * v
    return u / np.linalg.norm(u)


def _piece(namer: SegmentNamer, start: int, voice: np.ndarray, frames: int) -> VoicePiece:
    """A piece of `frames` solo frames of `voice` (each a little noisy), scored as the segmenter does."""
    piece = VoicePiece(start)
    vectors = voice + 0.05 * np.stack([_unit() for _ in range(frames)])
    for k, (vector, scores) in enumerate(zip(vectors, namer.frame_scores(vectors))):
        piece.add(start + k, scores, vector)
    return piece


def _namer(**config):
    tracker = Tracker(TrackerConfig(**config), HOP)  # raw cosine: no cohort
    ann, bob = _unit(), _unit()
    tracker.add_known("Ann", ann[None])
    tracker.add_known("Bob", bob[None])
    tracker.speakers.append(tracker.speakers[0].__class__("SPEAKER_00", np.zeros(256)))
    tracker.new_label()
    return SegmentNamer(tracker, tracker.config, HOP), ann, bob


def test_each_piece_is_named_from_its_own_voice_and_equal_neighbours_merge():
    namer, ann, _ = _namer()
    stranger = _unit()
    seg = Segment("SPEAKER_00", 0.0, 6.0, 0.8, True)
    out = namer(seg, [_piece(namer, 0, ann, 15), _piece(namer, 20, ann, 12), _piece(namer, 40, stranger, 15)])
    assert [(s.speaker, s.start, s.end) for s in out] == [("Ann", 0.0, 4.0), ("SPEAKER_00", 4.0, 6.0)]
    assert all(s.final and s.confidence == 0.8 for s in out)


def test_a_weak_piece_is_judged_with_its_neighbours_of_the_same_segment():
    namer, ann, _ = _namer()
    weak = 0.8 * ann + 0.6 * _orthogonal(ann)  # cosine 0.8 to Ann: below the threshold alone
    alone = namer(Segment("SPEAKER_00", 0.0, 1.0, 0.8, True), [_piece(namer, 0, weak, 10)])
    assert alone[0].speaker == "SPEAKER_00"
    flanked = namer(Segment("SPEAKER_00", 0.0, 3.0, 0.8, True),
                    [_piece(namer, 0, ann, 10), _piece(namer, 10, weak, 10), _piece(namer, 20, ann, 10)])
    assert [(s.speaker, s.start, s.end) for s in flanked] == [("Ann", 0.0, 3.0)]
    # a different voice between two of Ann's pieces is not carried along
    stranger = namer(Segment("SPEAKER_00", 0.0, 3.0, 0.8, True),
                     [_piece(namer, 0, ann, 10), _piece(namer, 10, _unit(), 10), _piece(namer, 20, ann, 10)])
    assert [s.speaker for s in stranger] == ["Ann", "SPEAKER_00", "Ann"]


def test_a_short_turn_is_judged_with_like_voiced_pieces_of_earlier_segments():
    """A 1-s turn alone is a noisy voice: the session's recent pieces that sound much like it
    (raw cosine >= final_context_similarity) count half, whoever the tracker gave them to; pieces
    of other voices, or of a voice merely near the enrolment, do not."""
    def last_turn(earlier: list[str], **config) -> str:
        namer, ann, _ = _namer(**config)
        other = _orthogonal(ann)
        voices = {"strong": 0.95 * ann + 0.312 * other, "weak": 0.8 * ann + 0.6 * other, "ann": ann, "stranger": _unit()}
        for k, voice in enumerate(earlier):
            namer(Segment("SPEAKER_00", 2.0 * k, 2.0 * k + 1, 0.8, True), [_piece(namer, 20 * k, voices[voice], 10)])
        seg = Segment("SPEAKER_00", 10.0, 11.0, 0.8, True)
        return namer(seg, [_piece(namer, 100, voices["weak"], 10)])[0].speaker

    assert last_turn([]) == "SPEAKER_00"  # cosine 0.8 to Ann alone: below the threshold
    assert last_turn(["strong", "stranger"]) == "Ann"  # cosine 0.95 to the weak turn: pooled
    assert last_turn(["strong"], final_context_pieces=0) == "SPEAKER_00"
    assert last_turn(["ann", "stranger"]) == "SPEAKER_00"  # Ann's enrolled voice is only 0.8 like this turn
    assert last_turn(["strong", "stranger"], final_context_pieces=1) == "SPEAKER_00"  # it has left the memory


def test_a_name_the_voice_does_not_bear_out_goes_to_one_anonymous_label():
    namer, _, bob = _namer()
    first = namer(Segment("Bob", 0.0, 2.0, 0.9, True), [_piece(namer, 0, _unit(), 15)])
    second = namer(Segment("Bob", 5.0, 7.0, 0.9, True), [_piece(namer, 50, _unit(), 15)])
    kept = namer(Segment("Bob", 9.0, 11.0, 0.9, True), [_piece(namer, 90, bob, 15)])
    assert first[0].speaker == second[0].speaker == "SPEAKER_01"
    assert kept[0].speaker == "Bob"


def test_frames_of_a_named_piece_that_are_not_that_voice_stay_anonymous():
    """A segment that runs on into someone else's words: the piece is mostly Ann's voice and is
    named Ann, but the stranger's frames keep the tracker's anonymous label."""
    def named(**config):
        namer, ann, _ = _namer(**config)
        piece = VoicePiece(0)
        vectors = np.stack([ann] * 6 + [-ann] * 2 + [ann] * 2)  # two frames scoring below 0 against Ann
        for frame, (vector, scores) in enumerate(zip(vectors, namer.frame_scores(vectors))):
            piece.add(frame, scores, vector)
        return [(s.speaker, s.start, s.end) for s in namer(Segment("SPEAKER_00", 0.0, 1.0, 0.8, True), [piece])]

    assert named() == [("Ann", 0.0, 0.6), ("SPEAKER_00", 0.6, 0.8), ("Ann", 0.8, 1.0)]
    assert named(final_frame_similarity=0.0) == [("Ann", 0.0, 1.0)]  # 0: the frame check off


def test_frames_of_an_anonymous_piece_that_are_an_enrolled_voice_take_the_name():
    """A short turn inside someone else's segment: the piece's pooled voice is the stranger's and
    stays anonymous, but the frames whose own vector is Bob's are named Bob."""
    def named(**config):
        namer, _, bob = _namer(**config)
        stranger = _unit()
        piece = VoicePiece(0)
        vectors = np.stack([stranger] * 7 + [bob] * 3)
        for frame, (vector, scores) in enumerate(zip(vectors, namer.frame_scores(vectors))):
            piece.add(frame, scores, vector)
        return [(s.speaker, s.start, s.end) for s in namer(Segment("SPEAKER_00", 0.0, 1.0, 0.8, True), [piece])]

    assert named() == [("SPEAKER_00", 0.0, 0.7), ("Bob", 0.7, 1.0)]
    assert named(final_frame_name_similarity=1.0) == [("SPEAKER_00", 0.0, 1.0)]  # the frame naming off


def _overlapped(namer: SegmentNamer, start: int, voice: np.ndarray, frames: int) -> VoicePiece:
    """A piece whose speech frames all overlap another speaker: scored, but no solo vector."""
    piece = VoicePiece(start)
    vectors = np.stack([voice] * frames)
    for k, scores in enumerate(namer.frame_scores(vectors)):
        piece.add(start + k, scores)
    return piece


def test_an_overlapped_piece_takes_a_judged_neighbours_name_and_its_frames_are_still_checked():
    namer, ann, _ = _namer()
    seg = Segment("SPEAKER_00", 0.0, 3.0, 0.8, True)
    out = namer(seg, [_piece(namer, 0, ann, 10), _overlapped(namer, 10, ann, 10), _piece(namer, 20, _unit(), 10)])
    assert [(s.speaker, s.start, s.end) for s in out] == [("Ann", 0.0, 2.0), ("SPEAKER_00", 2.0, 3.0)]
    # the name comes from the piece after it when the one before is anonymous
    out = namer(seg, [_piece(namer, 0, _unit(), 10), _overlapped(namer, 10, ann, 10), _piece(namer, 20, ann, 10)])
    assert [(s.speaker, s.start, s.end) for s in out] == [("SPEAKER_00", 0.0, 1.0), ("Ann", 1.0, 3.0)]
    # frames of another voice in the bridged piece stay anonymous
    out = namer(seg, [_piece(namer, 0, ann, 10), _overlapped(namer, 10, _orthogonal(ann), 10), _piece(namer, 20, ann, 10)])
    assert [(s.speaker, s.start, s.end) for s in out] == [("Ann", 0.0, 1.0), ("SPEAKER_00", 1.0, 2.0), ("Ann", 2.0, 3.0)]


def test_no_solo_speech_keeps_the_trackers_label_and_a_short_tail_joins_the_piece_before():
    namer, ann, _ = _namer(final_frame_name_similarity=1.0)  # frame naming off: pieces first
    assert namer(Segment("SPEAKER_00", 0.0, 1.0, 0.7, True), [VoicePiece(0)])[0].speaker == "SPEAKER_00"
    overlapped = [_overlapped(namer, 0, ann, 10), _overlapped(namer, 10, ann, 10)]
    assert namer(Segment("SPEAKER_00", 0.0, 2.0, 0.7, True), overlapped)[0].speaker == "SPEAKER_00"
    # ...the pieces are not judged, but frames whose own voice is clearly Ann's are named
    frame_naming = SegmentNamer(namer.tracker, TrackerConfig(), HOP)
    assert frame_naming(Segment("SPEAKER_00", 0.0, 2.0, 0.7, True), overlapped)[0].speaker == "Ann"
    # one solo frame is judged: its vector is already the voice of a whole sub-window
    assert namer(Segment("SPEAKER_00", 0.0, 1.0, 0.7, True), [_piece(namer, 0, ann, 1)])[0].speaker == "Ann"
    # the tail piece (frames 10-13, 0.4 s) is decided with the first: Ann's voice outweighs it, and
    # only the tail's own frames of another voice (10-12) stay anonymous
    out = namer(Segment("SPEAKER_00", 0.0, 1.4, 0.7, True), [_piece(namer, 0, ann, 9), _piece(namer, 10, _unit(), 3)])
    assert [(s.speaker, s.start, s.end) for s in out] == [("Ann", 0.0, 1.0), ("SPEAKER_00", 1.0, 1.3), ("Ann", 1.3, 1.4)]


def test_nothing_changes_without_enrolled_speakers_or_when_switched_off():
    tracker = Tracker(TrackerConfig(), HOP)
    seg = Segment("SPEAKER_00", 0.0, 2.0, 0.7, True)
    assert SegmentNamer(tracker, tracker.config, HOP)(seg, [VoicePiece(0, total=_unit())]) == [seg]
    namer, ann, _ = _namer(final_naming=False)
    assert namer(seg, [_piece(namer, 0, ann, 15)]) == [seg]
