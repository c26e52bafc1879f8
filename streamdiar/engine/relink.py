"""Final pieces moved to the speaker whose voice they carry.

The tracker links whole window slots, and a slot can mix two voices or go to the wrong speaker.
Once a segment is final, each of its 1-s pieces has a voice of its own: the pooled speaker vectors
of its frames where it is the only speaker (the pieces the namer judges too), its neighbours in the
segment counting half. A piece whose voice is at least `relink_margin` closer (cosine) to another
speaker's running voice than to its segment's speaker's, and at least `relink_similarity` close to
it, moves to that speaker. A speaker's running voice is the mean of the last `MEMORY` final pieces
that ended up with it, so the final labels themselves are the judge, not the slots. Runs before
the namer: enrolled names are then given to what each person said.

A running voice can hold two people: the tracker opens a speaker only for a slot that sounds like
no one known, and two voices in one room can sound alike from the first window on, so it links
both to one speaker for good. When a speaker's remembered pieces fall into two groups whose own
voices fit them clearly better than one voice does (`relink_split_gain`), the smaller group becomes
a new speaker, and later pieces go to whichever of the two they match.

The opposite happens too: the tracker can open a second speaker for one person (from a slot
that mixed in another voice, or a stretch that sounded unlike the person's earlier slots), and
the two then share that person's words for good, since each piece is as close to one as to the
other. When the running voices of two speakers, each with `MERGE_MIN_PIECES` or more pieces, are
at least `relink_merge_similarity` alike (one person's two running voices measured 0.97-0.99 on
simulated long conversations, two people's at most 0.96), the newer one merges into the older,
an anonymous one into an enrolled name: its later segments, provisional ones too, carry the label
that stays.
"""
from __future__ import annotations

from collections import deque
from itertools import groupby

import numpy as np

from streamdiar.config import LabelConfig
from streamdiar.engine.labels import Segment, VoicePiece, pooled_voice
from streamdiar.engine.tracker import Tracker, normalise
from streamdiar.engine.voice_groups import two_voices

MEMORY = 64  # final pieces per speaker in its running voice
MIN_SOLO_FRAMES = 3  # a piece with fewer solo speech frames holds too little voice to move
SPLIT_MIN_PIECES = 16  # a running voice is tested for two people once it holds this many pieces...
SPLIT_MIN_SHARE = 0.25  # ...and the smaller of its two groups must hold at least this share of them
MERGE_MIN_PIECES = 12  # two running voices are compared once each holds this many pieces


class PieceRelinker:
    """Splits a closing segment into runs of pieces, each run given to the speaker its voice matches."""

    def __init__(self, config: LabelConfig, hop_s: float, tracker: Tracker):
        self.margin = config.relink_margin
        self.floor = config.relink_similarity
        self.split_gain = config.relink_split_gain
        self.merge_similarity = config.relink_merge_similarity
        self.hop = hop_s
        self.tracker = tracker  # gives a split-off speaker its label, and the speaker-count limit
        self._voices: dict[str, deque[np.ndarray]] = {}  # speaker -> its last final pieces' unit voices (oldest speaker first)
        self._merged: dict[str, str] = {}  # label -> the speaker it merged into

    def __call__(self, segment: Segment, pieces: list[VoicePiece]) -> list[tuple[Segment, list[VoicePiece]]]:
        if not pieces:
            return [(segment, pieces)]
        speaker = self.current(segment.speaker)
        prototypes = {label: running_voice(voices) for label, voices in self._voices.items()}
        labels = [self._speaker(speaker, pieces, i, prototypes) for i in range(len(pieces))]
        for label, piece in zip(labels, pieces):
            if piece.total is not None:
                self._voices.setdefault(label, deque(maxlen=MEMORY)).append(normalise(piece.total))
        if self.split_gain > 0:
            for label in dict.fromkeys(labels):
                self._split(label)
        if self.merge_similarity > 0:
            for label in dict.fromkeys(labels):
                self._merge(label)
            labels = [self.current(label) for label in labels]
        groups = [[i for i, _ in run] for _, run in groupby(enumerate(labels), key=lambda item: item[1])]
        # a run starts at its first piece (the segment's start for the first) and ends where the next starts
        bounds = [segment.start] + [round(pieces[g[0]].start * self.hop, 3) for g in groups[1:]] + [segment.end]
        return [(Segment(labels[g[0]], bounds[k], bounds[k + 1], segment.confidence, True), [pieces[i] for i in g])
                for k, g in enumerate(groups)]

    def current(self, label: str) -> str:
        """The speaker `label`'s segments now go to: itself, or the one it merged into."""
        return self._merged.get(label, label)

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

    def _split(self, label: str) -> None:
        """Gives the smaller of two clearly distinct groups of `label`'s remembered pieces to a new speaker."""
        voices = self._voices.get(label, ())
        if len(voices) < SPLIT_MIN_PIECES or len(self._voices) >= self.tracker.max_speakers:
            return
        stacked = np.stack(voices)
        kept = split_in_two(stacked, self.split_gain)
        if kept is not None:
            self._voices[label] = deque(stacked[kept], maxlen=MEMORY)
            self._voices[self.tracker.new_label()] = deque(stacked[~kept], maxlen=MEMORY)

    def _merge(self, label: str) -> None:
        """Merges `label` and the first speaker whose running voice is as alike as one person's
        (both with enough pieces): the newer of the two goes into the older, an anonymous one into
        an enrolled name."""
        voices = self._voices.get(label, ())
        if len(voices) < MERGE_MIN_PIECES:
            return
        voice = running_voice(voices)
        for other, theirs in self._voices.items():
            if other != label and len(theirs) >= MERGE_MIN_PIECES and running_voice(theirs) @ voice >= self.merge_similarity:
                named = {s.label for s in self.tracker.speakers if s.enrolled}
                order = list(self._voices)
                older, newer = sorted((label, other), key=lambda who: (who not in named, order.index(who)))
                self._voices[older].extend(self._voices.pop(newer))
                self._merged = {was: (older if into == newer else into) for was, into in self._merged.items()}
                self._merged[newer] = older
                return


def running_voice(voices: deque[np.ndarray]) -> np.ndarray:
    """A speaker's running voice: the mean direction of its remembered pieces' unit voices."""
    return normalise(np.sum(voices, axis=0))


def split_in_two(voices: np.ndarray, min_gain: float) -> np.ndarray | None:
    """Unit vectors (n, D) of what one speaker said -> a mask of the larger of two groups, when
    two voices (the groups' mean directions) fit the vectors at least `min_gain` better in mean
    cosine than one does and the smaller group holds at least `SPLIT_MIN_SHARE` of them; else None."""
    groups = two_voices(voices)
    if groups is None or groups.gain < min_gain or groups.sizes.min() < SPLIT_MIN_SHARE * len(voices):
        return None
    return groups.group == int(groups.sizes.argmax())
