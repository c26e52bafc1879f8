"""Enrolled names on final segments, decided from the segment's own voice.

The tracker names a speaker when a window's slot matches an enrolment, but a slot can mix two
voices and a speaker linked across windows can gather several: a name given that way spreads onto
other people, and an enrolled voice that the tracker first opened as an anonymous speaker stays
anonymous. Once a segment is final its own frames say more. The GE2E vectors of the frames where it
is the only speaker and Silero hears speech are pooled over pieces of `PIECE_S`, with the
neighbouring pieces of the segment counting `NEIGHBOUR_WEIGHT` (a 1-s piece alone is a noisy voice,
and its neighbours are most often the same person), plus, at the same weight, the session's recent
pieces whose voice is much like it (a short turn is one second of voice at best; the same person's
other turns lengthen it without pooling in another voice), and scored against each enrolment (normalised
against the training voices from both sides, see `CohortNorm`). A piece that matches an enrolment
well gets that name; a piece the tracker named whose own voice clearly does not match loses the
name. Even one solo frame is judged: its vector is the GE2E of a whole sub-window around it. A
piece with no solo frame at all (its speech all overlapped) takes the enrolled name of a judged
neighbour in the segment, else keeps the tracker's label. Within a named piece, each speech frame's
own vector must still plausibly be that person: where a segment runs on into someone else's words,
the piece's voice is mostly the named speaker's, but the other person's frames are not. The
reverse holds in an anonymous piece: an enrolled person's short turn inside someone else's segment
is a few frames of the piece, too few to name it, but those frames' own vectors can be clearly that
person's, and they take the name. Provisional labels keep the tracker's names: they have no look-ahead.
"""
from __future__ import annotations

from collections import deque

import numpy as np

from streamdiar.config import TrackerConfig
from streamdiar.engine.labels import NEIGHBOUR_WEIGHT, PIECE_S, Segment, VoicePiece, pooled_voice
from streamdiar.engine.tracker import Speaker, Tracker, normalise


class SegmentNamer:
    """Splits a closing segment into pieces and names each from its own voice."""

    def __init__(self, tracker: Tracker, config: TrackerConfig, hop_s: float):
        self.tracker = tracker
        self.config = config
        self.hop = hop_s
        self.piece_frames = int(round(PIECE_S / hop_s))
        self._unnamed: dict[str, str] = {}  # enrolled name -> anonymous label for the pieces that lost it
        self._cohort_stats: tuple[np.ndarray, np.ndarray] | None = None  # of the enrolments, once known
        self._recent: deque[np.ndarray] = deque(maxlen=config.final_context_pieces)  # judged pieces' summed voices

    @property
    def active(self) -> bool:
        return self.config.final_naming and any(s.enrolled for s in self.tracker.speakers)

    def frame_scores(self, voices: np.ndarray) -> np.ndarray:
        """(T, D) speaker vectors -> (T, enrolments) normalised scores of each one's voice."""
        return self._scores(normalise(np.asarray(voices, dtype=np.float64)))

    def __call__(self, segment: Segment, pieces: list[VoicePiece]) -> list[Segment]:
        if not self.active or not pieces:
            return [segment]
        if len(pieces) > 1 and pieces[-1].start + self.piece_frames // 2 > round(segment.end / self.hop):
            pieces[-2].absorb(pieces.pop())  # a short tail piece is decided with the one before it
        names = [self._name(segment.speaker, pieces, i) for i in range(len(pieces))]
        out: list[Segment] = []
        for i, piece in enumerate(pieces):
            start = segment.start if i == 0 else round(piece.start * self.hop, 3)
            end = segment.end if i == len(pieces) - 1 else round(pieces[i + 1].start * self.hop, 3)
            name = names[i] if piece.total is not None else self._bridged(segment.speaker, pieces, names, i)
            for part in self._vetted(name, segment.speaker, piece, start, end):
                if out and out[-1].speaker == part[0]:
                    out[-1] = Segment(part[0], out[-1].start, part[2], segment.confidence, True)
                elif part[2] > part[1]:
                    out.append(Segment(*part, segment.confidence, True))
        self._recent.extend(piece.total for piece in pieces if piece.total is not None)
        return out

    def _enrolled(self) -> list[Speaker]:
        return [s for s in self.tracker.speakers if s.enrolled]

    def _scores(self, voices: np.ndarray) -> np.ndarray:
        """(n, D) L2-normalised voices -> (n, enrolments) scores, normalised like the tracker's."""
        enrolled = self._enrolled()
        if not enrolled:
            return np.zeros((len(voices), 0))
        scores = np.stack([s.enrolled_similarity(voices, self.config.top_k) for s in enrolled], axis=1)
        if self.tracker.norm is None:
            return scores
        if self._cohort_stats is None or self._cohort_stats[0].size != len(enrolled):
            self._cohort_stats = self.tracker.norm.stats(np.stack([s.enrolment_prototype for s in enrolled]))
        return self.tracker.norm(voices, scores, self._cohort_stats)

    def _name(self, label: str, pieces: list[VoicePiece], i: int) -> str:
        if pieces[i].total is None:  # no solo speech: nothing to judge by
            return label
        enrolled = self._enrolled()
        total = pooled_voice(pieces, i)
        total = total + NEIGHBOUR_WEIGHT * self._like_voiced(total)  # like-voiced recent pieces count as neighbours do
        scores = self._scores(normalise(total)[None])[0]
        best = int(np.argmax(scores))
        if scores[best] >= self.config.final_name_similarity:
            return enrolled[best].label
        own = [i for i, s in enumerate(enrolled) if s.label == label]
        if own and scores[own[0]] < self.config.final_unname_similarity:
            return self._unnamed_label(label)
        return label

    def _like_voiced(self, voice: np.ndarray) -> np.ndarray | float:
        """The summed voices of the recent pieces of earlier segments whose cosine to `voice` is at
        least `final_context_similarity` (0 if none): whoever the tracker gave them to."""
        if not self._recent:
            return 0.0
        recent = np.stack(self._recent)
        like = normalise(recent) @ normalise(voice) >= self.config.final_context_similarity
        return recent[like].sum(axis=0)

    def _bridged(self, label: str, pieces: list[VoicePiece], names: list[str], i: int) -> str:
        """A piece with no solo speech (all of it overlapped) inside a segment takes the enrolled
        name of the piece before it, else of the piece after it, where that one was judged: the
        segment is one tracker speaker's run, and each frame is still checked on its own voice."""
        enrolled = {s.label for s in self._enrolled()}
        for j in (i - 1, i + 1):
            if 0 <= j < len(pieces) and pieces[j].total is not None and names[j] in enrolled:
                return names[j]
        return label

    def _unnamed_label(self, name: str) -> str:
        if name not in self._unnamed:
            self._unnamed[name] = self.tracker.new_label()
        return self._unnamed[name]

    def _vetted(self, name: str, label: str, piece: VoicePiece, start: float, end: float) -> list[tuple[str, float, float]]:
        """(speaker, start, end) parts of a piece named `name`, each speech frame checked on its own
        voice: in a piece named for an enrolment, a frame scoring below `final_frame_similarity`
        against it goes back to an anonymous label; in an anonymous piece, a frame scoring at least
        `final_frame_name_similarity` against an enrolment takes that name."""
        enrolled = [s.label for s in self._enrolled()]
        if name in enrolled:
            column, floor = enrolled.index(name), self.config.final_frame_similarity
            vetoed = ([f for f, scores in zip(piece.frames, piece.scores) if scores[column] < floor]
                      if floor > 0 else [])  # normalised scores can fall below 0: 0 is off
            anonymous = self._unnamed_label(label) if vetoed and label in enrolled else label
            elsewhere = [(frame, anonymous) for frame in vetoed]
        elif enrolled and self.config.final_frame_name_similarity < 1:  # normalised scores can exceed 1: 1 is off
            elsewhere = [(frame, enrolled[int(np.argmax(scores))]) for frame, scores in zip(piece.frames, piece.scores)
                         if scores.max() >= self.config.final_frame_name_similarity]
        else:
            elsewhere = []
        parts = [(name, start, end)]
        for frame, other in elsewhere:
            lo, hi = max(start, round(frame * self.hop, 3)), min(end, round((frame + 1) * self.hop, 3))
            who, a, b = parts[-1]
            if hi <= lo or lo < a:
                continue
            parts[-1:] = [(who, a, lo), (other, lo, hi), (who, hi, b)]
        return [p for p in parts if p[2] > p[1]]
