"""From per-frame speaker activity to segments: final ones that never change, provisional ones
that show who is speaking in the newest audio and may still be revised."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Protocol

import numpy as np

from streamdiar.config import LabelConfig

FILL_CLAIM = 0.1  # a speaker with at least this activity on a speech frame nobody took has a claim to it
PIECE_S = 1.0  # final segments are named per piece of this length (engine/naming.py): a segment may hold two people, and a shorter piece spills less of one onto the other
NEIGHBOUR_WEIGHT = 0.5  # how much each adjacent piece of the segment adds to a piece's voice: one second alone is a noisy voice


def keep_counted(activity: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Activity (S, T) with all but the round(count[t]) most active speakers of each frame zeroed.

    The count (how many slots the windows found active on the frame) does not depend on linking,
    while a speaker's activity does: a voice linked to speaker A in some windows and to B in
    others can leave both A and B above the onset where one person speaks (pyannote's offline
    pipeline counts speakers the same way)."""
    if activity.shape[0] < 2:
        return activity
    keep = np.floor(count + 0.5)
    rank = np.argsort(np.argsort(-activity, axis=0, kind="stable"), axis=0, kind="stable")
    return np.where(rank < keep, activity, 0.0).astype(activity.dtype)


@dataclass(frozen=True)
class Segment:
    speaker: str
    start: float
    end: float
    confidence: float
    final: bool

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class VoicePiece:
    """The speech frames of one piece of an open segment: the summed speaker vectors of those
    where it is the only speaker, and each frame's own voice scored against every enrolment."""

    start: int  # first frame of the piece (the segment's first frame for its first piece)
    total: np.ndarray | None = None  # None while the piece has no solo speech frame
    solo_frames: int = 0  # how many vectors `total` sums
    frames: list[int] = field(default_factory=list)
    scores: list[np.ndarray] = field(default_factory=list)  # per frame: (enrolments,) scores

    def add(self, frame: int, scores: np.ndarray, solo_vector: np.ndarray | None = None) -> None:
        if solo_vector is not None:
            self.total = solo_vector.astype(np.float64) if self.total is None else self.total + solo_vector
            self.solo_frames += 1
        self.frames.append(frame)
        self.scores.append(scores)

    def absorb(self, other: "VoicePiece") -> None:
        if other.total is not None:
            self.total = other.total.copy() if self.total is None else self.total + other.total
        self.solo_frames += other.solo_frames
        self.frames.extend(other.frames)
        self.scores.extend(other.scores)


def pooled_voice(pieces: list[VoicePiece], i: int) -> np.ndarray:
    """Piece i's summed solo vectors plus its neighbours' in the segment at `NEIGHBOUR_WEIGHT`
    (piece i must have solo speech)."""
    neighbours = pieces[max(i - 1, 0) : i] + pieces[i + 1 : i + 2]
    return pieces[i].total + sum(NEIGHBOUR_WEIGHT * n.total for n in neighbours if n.total is not None)


class Namer(Protocol):
    """Names closing segments from their voice pieces (engine/naming.py)."""

    def frame_scores(self, voices: np.ndarray) -> np.ndarray:
        """(T, D) speaker vectors -> (T, enrolments) scores of each frame's voice."""

    def __call__(self, segment: Segment, pieces: list[VoicePiece]) -> list[Segment]:
        """The segment, split and renamed where its pieces' voices say so."""


class Relinker(Protocol):
    """Gives each piece of a closing segment to the speaker its voice matches (engine/relink.py)."""

    def __call__(self, segment: Segment, pieces: list[VoicePiece]) -> list[tuple[Segment, list[VoicePiece]]]:
        """The segment as consecutive runs, each with its speaker and its pieces."""

    def current(self, label: str) -> str:
        """The speaker that a tracker label's segments now go to (another where the two merged)."""


@dataclass
class _Open:
    start: int
    last_active: int
    activity_sum: float
    frames: int
    pieces: list[VoicePiece] = field(default_factory=list)


class Segmenter:
    """Closes a speaker's segment once `min_gap_s` of final silence follows it (shorter gaps are
    bridged), and drops segments shorter than `min_segment_s`.

    Speech fill: on real far-field audio the Weighter leaves much speech below the onset that
    Silero (trained on far more real audio) hears clearly; in real_dev Silero fires on 0.4% of the
    reference silence. Such a frame goes to the speaker with the most activity on it, or to the one
    heard last. The last `fill_trim_s` of each speech stretch is not filled: there Silero's
    hangover and room reverberation outlast the words.
    """

    def __init__(self, config: LabelConfig, frame_hop_s: float,
                 namer: Namer | None = None, relinker: Relinker | None = None):
        self.config = config
        self.hop = frame_hop_s
        self.namer = namer  # renames a closing segment from its voice pieces (engine/naming.py)
        self.relinker = relinker  # ...after its pieces went to the speakers their voices match (engine/relink.py)
        self.piece_frames = int(round(PIECE_S / frame_hop_s))
        self.gap_frames = int(round(config.min_gap_s / frame_hop_s))
        self.min_frames = int(round(config.min_segment_s / frame_hop_s))
        self.trim_frames = int(round(config.fill_trim_s / frame_hop_s))
        self.open: dict[int, _Open] = {}
        self.next_frame = 0  # first frame not yet final
        self.last_speaker: int | None = None  # the speaker heard last on the final frames (speech fill)
        self._emitted: dict[str, list[tuple[float, float]]] = {}  # final spans per label that a later segment may still overlap

    def finalize(self, start: int, activity: np.ndarray, labels: list[str], speech: np.ndarray | None = None,
                 voices: np.ndarray | None = None) -> list[Segment]:
        """Consume final frames [start, start + T) of activity (S, T); return closed segments.
        `speech`: the frames' speech probability, and `trim_frames` more after them (speech fill).
        `voices`: (T, D) the frames' speaker vectors, NaN rows where there is no speech; the namer's
        scores of a speech frame go to every speaker's open segment on it, and a frame with one
        speaker also adds its vector to that speaker's voice."""
        assert start == self.next_frame, "final frames must arrive in order"
        out = []
        onset = self.config.onset
        activity, self.last_speaker = self._filled(activity, speech, self.last_speaker)
        solo = (activity >= onset).sum(axis=0) == 1
        if voices is not None:
            # speech frames some speaker is on: the only ones a segment keeps scores of
            heard = ~np.isnan(voices).any(axis=1) & (activity >= onset).any(axis=0)
            solo &= heard
            judged = (self.namer.frame_scores(voices[heard]) if self.namer is not None
                      else np.zeros((int(heard.sum()), 0)))
            scores = np.full((heard.size, judged.shape[1]), np.nan)
            scores[heard] = judged
        for t in range(activity.shape[1]):
            frame = start + t
            for spk in range(activity.shape[0]):
                value = float(activity[spk, t])
                seg = self.open.get(spk)
                if value >= onset:
                    if seg is None:
                        seg = self.open[spk] = _Open(frame, frame, value, 1, [VoicePiece(frame)])
                    else:
                        seg.last_active = frame
                        seg.activity_sum += value
                        seg.frames += 1
                    if voices is not None and heard[t]:
                        if solo[t] and frame - seg.pieces[-1].start >= self.piece_frames:
                            seg.pieces.append(VoicePiece(frame))
                        seg.pieces[-1].add(frame, scores[t], voices[t] if solo[t] else None)
                elif seg is not None and frame - seg.last_active > self.gap_frames:
                    out.extend(self._close(spk, labels))
        self.next_frame = start + activity.shape[1]
        return out

    def _filled(self, activity: np.ndarray, speech: np.ndarray | None, last: int | None
                ) -> tuple[np.ndarray, int | None]:
        """Activity (S, T) with the speech fill applied, and the speaker heard last after it."""
        if speech is None or not self.config.fill_speech or 0 in activity.shape:
            return activity, last
        frames, onset = activity.shape[1], self.config.onset
        ahead = np.zeros(frames + self.trim_frames, dtype=np.float32)
        ahead[: min(speech.size, ahead.size)] = speech[: ahead.size]
        # speech frames followed by at least trim_frames more speech
        fillable = np.lib.stride_tricks.sliding_window_view(ahead, self.trim_frames + 1).min(axis=1) >= self.config.fill_speech
        activity = activity.copy()
        for t in range(frames):
            peak = activity[:, t].max()
            if peak >= onset or (fillable[t] and peak >= FILL_CLAIM):
                last = int(activity[:, t].argmax())
            if fillable[t] and peak < onset and last is not None:
                activity[last, t] = onset
        return activity, last

    def close_all(self, labels: list[str]) -> list[Segment]:
        out = []
        for spk in sorted(self.open):
            out.extend(self._close(spk, labels))
        return out

    def provisional(self, start: int, activity: np.ndarray, labels: list[str]) -> list[Segment]:
        """Segments over the not-yet-final frames [start, start + T), joined to open segments.
        Unfilled: the speech fill needs the look-ahead that only final frames have."""
        out = []
        for spk in range(activity.shape[0]):
            active = np.flatnonzero(activity[spk] >= self.config.onset)
            seg = self.open.get(spk)
            if active.size == 0 and seg is None:
                continue
            first = seg.start if seg is not None else start + int(active[0])
            last = start + int(active[-1]) if active.size else seg.last_active
            values = activity[spk, active] if active.size else np.zeros(0)
            total = (seg.activity_sum if seg else 0.0) + float(values.sum())
            count = (seg.frames if seg else 0) + values.size
            out.append(Segment(labels[spk], round(first * self.hop, 3), round((last + 1) * self.hop, 3),
                               round(total / max(count, 1), 3), False))
        return self._as_final(out) if self.relinker is not None else out

    def _as_final(self, provisional: list[Segment]) -> list[Segment]:
        """Provisional segments under the labels final ones will carry: tracker speakers the
        relinker merged show as the one speaker they now are, in one segment spanning theirs."""
        joined: dict[str, Segment] = {}
        for seg in provisional:
            label = self.relinker.current(seg.speaker)
            other = joined.get(label, seg)
            joined[label] = Segment(label, min(seg.start, other.start), max(seg.end, other.end),
                                    max(seg.confidence, other.confidence), False)
        return list(joined.values())

    def _close(self, spk: int, labels: list[str]) -> list[Segment]:
        seg = self.open.pop(spk)
        if seg.last_active - seg.start + 1 < self.min_frames:
            return []
        closed = Segment(labels[spk], round(seg.start * self.hop, 3), round((seg.last_active + 1) * self.hop, 3),
                         round(seg.activity_sum / seg.frames, 3), True)
        runs = self.relinker(closed, seg.pieces) if self.relinker is not None else [(closed, seg.pieces)]
        parts: list[Segment] = []
        for run, pieces in runs:
            for part in self.namer(run, pieces) if self.namer is not None else [run]:
                if parts and parts[-1].speaker == part.speaker and parts[-1].end == part.start:
                    part = Segment(part.speaker, parts.pop().start, part.end, part.confidence, True)  # two runs, one name
                parts.append(part)
        return self._unrepeated(parts)

    def _unrepeated(self, segments: list[Segment]) -> list[Segment]:
        """The parts of `segments` that no final segment of the same label already covers: the
        namer can give two tracker speakers' pieces one person's name, and a person speaks once."""
        # nothing now or later reaches before these, the earliest open segment or the first frame not yet final
        horizon = min([s.start for s in segments] + [o.start * self.hop for o in self.open.values()]
                      + [self.next_frame * self.hop])
        self._emitted = {label: kept for label, spans in self._emitted.items()
                         if (kept := [span for span in spans if span[1] > horizon])}
        out = []
        for seg in segments:
            parts = [(seg.start, seg.end)]
            for a, b in self._emitted.get(seg.speaker, []):
                parts = [(x, y) for lo, hi in parts for x, y in ((lo, min(hi, a)), (max(lo, b), hi)) if y > x]
            out.extend(Segment(seg.speaker, x, y, seg.confidence, seg.final) for x, y in parts)
            self._emitted.setdefault(seg.speaker, []).extend(parts)
        return out
