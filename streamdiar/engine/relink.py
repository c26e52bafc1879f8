"""Final pieces moved to the speaker whose voice they carry.

The tracker links whole window slots, and a slot can mix two voices or go to the wrong speaker.
Once a segment is final, each of its 1-s pieces has a voice of its own: the pooled speaker vectors
of its frames where it is the only speaker (the pieces the namer judges too), its neighbours in the
segment counting half. A piece whose voice is at least `relink_margin` closer (cosine) to another
speaker's running voice than to its segment's speaker's, and at least `relink_similarity` close to
it, moves to that speaker. A speaker's running voice is the mean of the last `MEMORY` final pieces
that ended up with it, so the final labels themselves are the judge, not the slots. Runs before
the namer: enrolled names are then given to what each person said.
"""
from __future__ import annotations

from collections import deque

import numpy as np

from streamdiar.config import LabelConfig
from streamdiar.engine.labels import Segment, VoicePiece
from streamdiar.engine.tracker import normalise

MEMORY = 64  # final pieces per speaker in its running voice
MIN_SOLO_FRAMES = 3  # a piece with fewer solo speech frames holds too little voice to move
NEIGHBOUR_WEIGHT = 0.5  # how much each adjacent piece of the segment adds to a piece's voice


class PieceRelinker:
    """Splits a closing segment into runs of pieces, each run given to the speaker its voice matches."""

    def __init__(self, config: LabelConfig, hop_s: float):
        self.margin = config.relink_margin
        self.floor = config.relink_similarity
        self.hop = hop_s
        self._voices: dict[str, deque[np.ndarray]] = {}  # speaker -> its last final pieces' unit voices

    def __call__(self, segment: Segment, pieces: list[VoicePiece]) -> list[tuple[Segment, list[VoicePiece]]]:
        if not pieces:
            return [(segment, pieces)]
        prototypes = {label: normalise(np.sum(voices, axis=0)) for label, voices in self._voices.items()}
        labels = [self._speaker(segment.speaker, pieces, i, prototypes) for i in range(len(pieces))]
        for label, piece in zip(labels, pieces):
            if piece.total is not None:
                self._voices.setdefault(label, deque(maxlen=MEMORY)).append(normalise(piece.total))
        runs: list[tuple[Segment, list[VoicePiece]]] = []
        for i, (label, piece) in enumerate(zip(labels, pieces)):
            if runs and runs[-1][0].speaker == label:
                runs[-1][1].append(piece)
                continue
            start = segment.start if i == 0 else round(piece.start * self.hop, 3)
            if runs:
                prev, prev_pieces = runs[-1]
                runs[-1] = (Segment(prev.speaker, prev.start, start, prev.confidence, True), prev_pieces)
            runs.append((Segment(label, start, segment.end, segment.confidence, True), [piece]))
        return runs

    def _speaker(self, label: str, pieces: list[VoicePiece], i: int, prototypes: dict[str, np.ndarray]) -> str:
        piece = pieces[i]
        if piece.total is None or piece.solo_frames < MIN_SOLO_FRAMES or label not in prototypes:
            return label
        voice = piece.total + sum(NEIGHBOUR_WEIGHT * n.total for n in pieces[max(i - 1, 0) : i] + pieces[i + 1 : i + 2]
                                  if n.total is not None)
        voice = normalise(voice)
        scores = {other: float(prototype @ voice) for other, prototype in prototypes.items()}
        best = max(scores, key=scores.__getitem__)
        if best != label and scores[best] >= self.floor and scores[best] >= scores[label] + self.margin:
            return best
        return label
