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
from itertools import groupby

import numpy as np

from streamdiar.config import LabelConfig
from streamdiar.engine.labels import Segment, VoicePiece, pooled_voice
from streamdiar.engine.tracker import normalise

MEMORY = 64  # final pieces per speaker in its running voice
MIN_SOLO_FRAMES = 3  # a piece with fewer solo speech frames holds too little voice to move


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
        groups = [[i for i, _ in run] for _, run in groupby(enumerate(labels), key=lambda item: item[1])]
        # a run starts at its first piece (the segment's start for the first) and ends where the next starts
        bounds = [segment.start] + [round(pieces[g[0]].start * self.hop, 3) for g in groups[1:]] + [segment.end]
        return [(Segment(labels[g[0]], bounds[k], bounds[k + 1], segment.confidence, True), [pieces[i] for i in g])
                for k, g in enumerate(groups)]

    def _speaker(self, label: str, pieces: list[VoicePiece], i: int, prototypes: dict[str, np.ndarray]) -> str:
        piece = pieces[i]
        if piece.total is None or piece.solo_frames < MIN_SOLO_FRAMES or label not in prototypes:
            return label
        voice = normalise(pooled_voice(pieces, i))
        scores = {other: float(prototype @ voice) for other, prototype in prototypes.items()}
        best = max(scores, key=scores.__getitem__)
        if best != label and scores[best] >= self.floor and scores[best] >= scores[label] + self.margin:
            return best
        return label
