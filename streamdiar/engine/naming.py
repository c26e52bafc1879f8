"""Enrolled names on final segments, decided from the segment's own voice.

The tracker names a speaker when a window's slot matches an enrolment, but a slot can mix two
voices and a speaker linked across windows can gather several: a name given that way spreads onto
other people, and an enrolled voice that the tracker first opened as an anonymous speaker stays
anonymous. Once a segment is final its own frames say more. The GE2E vectors of the frames where
it is the only speaker and Silero hears speech are pooled over pieces of `PIECE_S`, with the
neighbouring pieces of the segment counting `NEIGHBOUR_WEIGHT` (a 1-s piece alone is a noisy
voice, and its neighbours are most often the same person), and scored against each enrolment
exactly as slots are (test-normalised against the training voices). A piece that matches an
enrolment well gets that name; a piece the tracker named whose own voice clearly does not match
loses the name. Even one solo frame is judged: its vector is the GE2E of a whole sub-window around
it. Provisional labels keep the tracker's names: they have no look-ahead.
"""
from __future__ import annotations

import numpy as np

from streamdiar.config import TrackerConfig
from streamdiar.engine.labels import PIECE_S, Segment, VoicePiece
from streamdiar.engine.tracker import Tracker, normalise

NEIGHBOUR_WEIGHT = 0.5  # how much each adjacent piece of the segment adds to a piece's voice


class SegmentNamer:
    """Splits a closing segment into pieces and names each from its own voice."""

    def __init__(self, tracker: Tracker, config: TrackerConfig, hop_s: float):
        self.tracker = tracker
        self.config = config
        self.hop = hop_s
        self.piece_frames = int(round(PIECE_S / hop_s))
        self._unnamed: dict[str, str] = {}  # enrolled name -> anonymous label for the pieces that lost it

    @property
    def active(self) -> bool:
        return self.config.final_naming and any(s.enrolled for s in self.tracker.speakers)

    def __call__(self, segment: Segment, pieces: list[VoicePiece]) -> list[Segment]:
        if not self.active or not pieces:
            return [segment]
        if len(pieces) > 1 and pieces[-1].start + self.piece_frames // 2 > round(segment.end / self.hop):
            pieces[-2].absorb(pieces.pop())  # a short tail piece is decided with the one before it
        out: list[Segment] = []
        for i, piece in enumerate(pieces):
            start = segment.start if i == 0 else round(piece.start * self.hop, 3)
            end = segment.end if i == len(pieces) - 1 else round(pieces[i + 1].start * self.hop, 3)
            name = self._name(segment.speaker, piece, pieces[max(i - 1, 0) : i] + pieces[i + 1 : i + 2])
            if out and out[-1].speaker == name:
                out[-1] = Segment(name, out[-1].start, end, segment.confidence, True)
            elif end > start:
                out.append(Segment(name, start, end, segment.confidence, True))
        return out

    def _name(self, label: str, piece: VoicePiece, neighbours: list[VoicePiece]) -> str:
        if piece.total is None:  # no solo speech: nothing to judge by
            return label
        enrolled = [s for s in self.tracker.speakers if s.enrolled]
        total = piece.total + sum(NEIGHBOUR_WEIGHT * n.total for n in neighbours if n.total is not None)
        voice = normalise(total)[None]
        scores = np.array([[s.enrolled_similarity(voice, self.config.top_k)[0] for s in enrolled]])
        if self.tracker.norm is not None:
            scores = self.tracker.norm(voice, scores)
        scores = scores[0]
        best = int(np.argmax(scores))
        if scores[best] >= self.config.final_name_similarity:
            return enrolled[best].label
        own = [i for i, s in enumerate(enrolled) if s.label == label]
        if own and scores[own[0]] < self.config.final_unname_similarity:
            if label not in self._unnamed:
                self._unnamed[label] = self.tracker.new_label()
            return self._unnamed[label]
        return label
