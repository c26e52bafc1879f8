"""Final pieces moved to the speaker whose running voice they match (engine/relink.py)."""
import numpy as np

from streamdiar.config import LabelConfig
from streamdiar.engine.labels import Segment, Segmenter, VoicePiece
from streamdiar.engine.relink import PieceRelinker

RNG = np.random.default_rng(11)
HOP = 0.1


def _unit(dim: int = 256) -> np.ndarray:
    v = RNG.standard_normal(dim)
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
    relinker = PieceRelinker(LabelConfig(), HOP)
    ann, bob = _unit(), _unit()
    assert _runs(relinker, "A", 0.0, [ann, ann]) == [("A", 0.0, 2.0, [0, 10])]
    assert _runs(relinker, "B", 2.0, [bob, bob]) == [("B", 2.0, 4.0, [20, 30])]
    # the tracker gave Bob's second half of this segment to A: it goes back to B, at the piece boundary
    assert _runs(relinker, "A", 4.0, [ann, ann, bob, bob]) == [("A", 4.0, 6.0, [40, 50]), ("B", 6.0, 8.0, [60, 70])]


def test_pieces_stay_where_the_voice_does_not_clearly_say_otherwise():
    relinker = PieceRelinker(LabelConfig(), HOP)
    ann, bob = _unit(), _unit()
    _runs(relinker, "A", 0.0, [ann, ann])
    _runs(relinker, "B", 2.0, [bob, bob])
    assert _runs(relinker, "A", 4.0, [_unit()])[0][0] == "A"  # a third voice is near no one
    assert _runs(relinker, "A", 5.0, [bob], frames=2)[0][0] == "A"  # two solo frames are too little voice
    assert _runs(relinker, "C", 6.0, [bob])[0][0] == "C"  # a speaker with no final piece yet is not judged
    halfway = (ann + bob) / np.linalg.norm(ann + bob)
    assert _runs(relinker, "A", 7.0, [halfway])[0][0] == "A"  # no clear margin
    strict = PieceRelinker(LabelConfig(relink_similarity=1.0), HOP)
    _runs(strict, "A", 0.0, [ann])
    _runs(strict, "B", 1.0, [bob])
    assert _runs(strict, "A", 2.0, [bob])[0][0] == "A"  # below the similarity floor


def test_the_segmenter_closes_relinked_runs_without_a_namer():
    relinker = PieceRelinker(LabelConfig(), HOP)
    ann, bob = _unit(), _unit()
    seg = Segmenter(LabelConfig(min_gap_s=0.0, min_segment_s=0.0, fill_speech=0.0, relink=True), HOP, relinker=relinker)
    # frames 0-19 speaker 0 (Ann), 20-39 speaker 1 (Bob), then speaker 0 for 40-79 but Bob from frame 60 on
    act = np.zeros((2, 81), dtype=np.float32)
    act[0, :20] = act[1, 20:40] = act[0, 40:80] = 1.0
    voices = np.stack([ann] * 20 + [bob] * 20 + [ann] * 20 + [bob] * 20 + [ann])
    out = seg.finalize(0, act, ["A", "B"], voices=voices)
    assert [(s.speaker, s.start, s.end) for s in out] == [("A", 0.0, 2.0), ("B", 2.0, 4.0), ("A", 4.0, 6.0), ("B", 6.0, 8.0)]
