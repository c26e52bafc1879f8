"""The engine: shared models, and the step loop that advances any number of streams together.

Audio pushed to a stream is cut at step boundaries; at each boundary the stream's new frames
are featurized, its newest window goes through the Weighter (batched with every other stream
due at the same round), the tracker links slots to speakers, windows are aggregated per frame,
and frames older than the latency are finalized into segments.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from streamdiar.audio import SAMPLE_RATE, sanitize
from streamdiar.config import Config, LabelConfig, TrackerConfig, load_config
from streamdiar.engine.aggregate import Aggregator
from streamdiar.engine.labels import Segment, Segmenter, keep_counted
from streamdiar.engine.naming import SegmentNamer
from streamdiar.engine.relink import PieceRelinker
from streamdiar.engine.runner import make_runner
from streamdiar.engine.slot_split import MIN_PART_S, split_mixed_slots
from streamdiar.engine.stream import StreamState, Update
from streamdiar.engine.tracker import CohortNorm, Tracker
from streamdiar.engine.windows import FrameRing
from streamdiar.features import FEATURE_DIM, SPEECH_PROBABILITY, VAD_MAX_COLUMN, VAD_MEAN_COLUMN, FrameFeaturizer
from streamdiar.features.speaker_encoder import EMBED_DIM
from streamdiar.model import load_weighter


class StreamClosed(RuntimeError):
    pass


class Diarizer:
    """Shared models plus per-stream state. Not thread-safe: one thread (or event loop) drives it."""

    def __init__(self, config: Config | None = None):
        self.config = config or load_config()
        if self.config.threads:
            torch.set_num_threads(self.config.threads)
        model, features, self.model_meta = load_weighter(self.config.weights)
        self._cohort_norms: dict[int, CohortNorm] = {}
        self.model_config = model.config
        self.featurizer = FrameFeaturizer(features)
        self.runner = make_runner(model, self.config, self.featurizer)
        self.hop_s = features.frame_hop_s
        self.step_samples = round(self.config.stream.step_s * SAMPLE_RATE)
        self.split_min_frames = round(MIN_PART_S / self.hop_s)
        # a frame cannot be final before its features exist
        self.latency_s = max(self.config.stream.latency_s, self.featurizer.lookahead_s())

    # -- streams ----------------------------------------------------------------------------
    def open_stream(self, uri: str = "stream", record_features: bool = False, record_steps: bool = False) -> "Stream":
        cfg = self.config
        tracker = self.new_tracker(cfg.tracker)
        state = StreamState(
            uri=uri,
            features=self.featurizer.new_state(),
            ring=FrameRing(self.model_config.window_frames, FEATURE_DIM),
            tracker=tracker,
            aggregator=Aggregator(self.model_config.window_frames, cfg.labels.unlinked_weight),
            segmenter=self.new_segmenter(cfg.labels, tracker),
            feature_log=[] if record_features else None,
            step_log=[] if record_steps else None,
        )
        return Stream(self, state)

    def new_tracker(self, config: TrackerConfig) -> Tracker:
        return Tracker(config, self.hop_s, norm=self._cohort_norm(config.cohort_top_k))

    def new_segmenter(self, config: LabelConfig, tracker: Tracker) -> Segmenter:
        relinker = PieceRelinker(config, self.hop_s, tracker) if config.relink else None
        return Segmenter(config, self.hop_s, namer=SegmentNamer(tracker, tracker.config, self.hop_s), relinker=relinker)

    def _cohort_norm(self, top_k: int) -> CohortNorm | None:
        """One CohortNorm per top-k, shared by every stream: its cohort statistics never change."""
        cohort = self.model_meta.get("cohort")
        if cohort is None or not top_k:
            return None
        if top_k not in self._cohort_norms:
            self._cohort_norms[top_k] = CohortNorm(cohort, top_k)
        return self._cohort_norms[top_k]

    def process(self, work: list[tuple["Stream", np.ndarray]]) -> list[Update]:
        """Push audio to several streams and advance all of them, batching their model calls."""
        for stream, samples in work:
            if stream.state.finished:
                raise StreamClosed(f"stream {stream.state.uri!r} is finished")
            samples = sanitize(np.asarray(samples, dtype=np.float32).reshape(-1))
            stream.state.pending = np.concatenate([stream.state.pending, samples])
            stream.state.received += samples.size
        states = [stream.state for stream, _ in work]
        finals = {id(s): [] for s in states}
        # a push that completes no step leaves the provisional picture as it was
        provisional = {id(s): s.provisional for s in states}
        while True:
            due = [s for s in states if s.pending.size >= self._step_end(s) - s.features.received]
            if not due:
                break
            for s in due:
                take = self._step_end(s) - s.features.received
                s.features.append(s.pending[:take])
                s.pending = s.pending[take:]
            self._advance(due, finals, provisional, final=False)
        return [Update(finals[id(s)], provisional[id(s)], s.received / SAMPLE_RATE) for s in states]

    def finish(self, streams: list["Stream"]) -> list[Update]:
        """End of audio: process what is left and finalize every frame of each stream."""
        states = [s.state for s in streams]
        updates = self.process([(s, np.zeros(0, dtype=np.float32)) for s in streams])
        finals = {id(s): list(u.final) for s, u in zip(states, updates)}
        provisional = {id(s): [] for s in states}
        for s in states:
            s.features.append(s.pending)
            s.pending = np.zeros(0, dtype=np.float32)
            s.features.append(np.zeros(self.featurizer.padding_to_flush(s.features), dtype=np.float32))
        live = [s for s in states if s.received > 0]
        if live:
            self._advance(live, finals, provisional, final=True)
        for s in states:
            finals[id(s)].extend(closing_segments(s, s.received / SAMPLE_RATE))
            s.finished = True
        return [Update(finals[id(s)], [], s.received / SAMPLE_RATE) for s in states]

    # -- one round ----------------------------------------------------------------------------
    def _step_end(self, s: StreamState) -> int:
        return (s.steps_done + 1) * self.step_samples

    def _advance(self, states: list[StreamState], finals: dict, provisional: dict, final: bool) -> None:
        new = self.featurizer([s.features for s in states])
        windows, pushed = [], []
        for s, frames in zip(states, new):
            if final:
                # flush padding may complete frames past the real audio: keep only real ones
                real = math.ceil(s.received / self.featurizer.hop)
                frames = frames[: max(0, real - s.ring.count)]
            s.ring.push(frames)
            pushed.append(frames)
            if s.feature_log is not None:
                s.feature_log.append(frames)
            windows.append(s.ring.window()[0])
        slots = self.runner(np.stack(windows))
        for i, s in enumerate(states):
            if final:
                final_upto = s.ring.count
            else:
                s.steps_done += 1
                heard = s.steps_done * self.step_samples
                final_upto = min(s.ring.count, int((heard / SAMPLE_RATE - self.latency_s + 1e-9) / self.hop_s))
            speech = windows[i][:, VAD_MAX_COLUMN]
            # the new frames too: relinking and naming read the final frames' voices from the window
            step = (pushed[i], final_upto, slots.activity[i], slots.embeddings[i], slots.confidence[i], speech)
            if s.step_log is not None:
                s.step_log.append(step)
            f, p = self._link_and_label(s, *step[2:], final_upto)
            finals[id(s)].extend(f)
            provisional[id(s)] = s.provisional = p

    def _link_and_label(self, s: StreamState, activity, embeddings, confidence, speech, final_upto: int):
        window = self.model_config.window_frames
        start = s.ring.count - window
        if s.tracker.config.slot_split_score > 0:
            frames = s.ring.window()[0]
            activity, embeddings, confidence = split_mixed_slots(
                activity, embeddings, confidence, frames[:, :EMBED_DIM], frames[:, VAD_MEAN_COLUMN] >= SPEECH_PROBABILITY,
                self.config.labels.onset, self.split_min_frames, s.tracker.config.slot_split_score, s.tracker.nearest_speakers)
        # Silero, trained on far more real audio than the Weighter, vetoes frames it is sure hold no
        # speech (coughs, paper, room noise that simulation never showed the Weighter)
        activity = np.where(speech >= self.config.labels.vad_floor, activity, 0.0)
        if start < 0:  # stream start: the padded frames hold no speech
            activity[:, : -start] = 0.0
        history, weight = s.aggregator.mean(start, start + window, len(s.tracker.speakers))
        assignment = s.tracker.assign(activity, embeddings, confidence, history, weight)
        tracks = {int(spk): activity[slot] for slot, spk in enumerate(assignment.speakers) if spk >= 0}
        speakers = len(s.tracker.speakers)
        s.aggregator.add(start, tracks, speakers, speech, (activity >= self.config.labels.onset).sum(axis=0))
        finals: list[Segment] = []
        first = s.segmenter.next_frame
        if final_upto > first:
            act = self._activity(s, first, final_upto, speakers)
            speech_ahead = s.aggregator.speech_between(first, final_upto + s.segmenter.trim_frames)
            finals = s.segmenter.finalize(first, act, s.labels, speech_ahead, self._voices(s, first, final_upto))
        upto = max(final_upto, s.segmenter.next_frame)
        provisional = s.segmenter.provisional(upto, self._activity(s, upto, s.ring.count, speakers), s.labels)
        s.aggregator.forget_before(min(s.segmenter.next_frame, s.ring.count - window))
        return finals, provisional

    def _voices(self, s: StreamState, start: int, end: int) -> np.ndarray | None:
        """(end-start, D) speaker vectors of final frames for the relinker and namer, NaN where
        Silero hears no speech; None when neither needs them or the frames left the window."""
        namer = s.segmenter.namer
        if s.segmenter.relinker is None and (namer is None or not namer.active):
            return None
        frames = s.ring.between(start, end)
        if frames is None:
            return None
        return np.where(frames[:, VAD_MEAN_COLUMN:VAD_MEAN_COLUMN + 1] >= SPEECH_PROBABILITY, frames[:, :EMBED_DIM], np.nan)

    def _activity(self, s: StreamState, start: int, end: int, speakers: int) -> np.ndarray:
        """(speakers, end-start) aggregated activity, limited to the frames' speaker count."""
        act, _ = s.aggregator.mean(start, end, speakers)
        if self.config.labels.count_speakers:
            act = keep_counted(act, s.aggregator.speaker_count(start, end))
        return act


def closing_segments(s: StreamState, end_s: float) -> list[Segment]:
    """The segments still open at the end of a stream, final and cut at its last sample."""
    out = []
    for seg in s.segmenter.close_all(s.labels):
        if seg.end > end_s:
            seg = Segment(seg.speaker, seg.start, round(end_s, 3), seg.confidence, seg.final)
        if seg.end > seg.start:
            out.append(seg)
    return out


class Stream:
    """Handle to one stream of a Diarizer: push 16 kHz mono float32 audio, get label updates."""

    def __init__(self, diarizer: Diarizer, state: StreamState):
        self.diarizer = diarizer
        self.state = state

    @property
    def uri(self) -> str:
        return self.state.uri

    def push(self, samples: np.ndarray) -> Update:
        return self.diarizer.process([(self, samples)])[0]

    def finish(self) -> Update:
        return self.diarizer.finish([self])[0]

    def add_known_speaker(self, name: str, embeddings: np.ndarray) -> None:
        self.state.tracker.add_known(name, embeddings)
