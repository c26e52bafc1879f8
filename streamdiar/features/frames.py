"""Incremental frame features for many streams at once.

Frame f covers samples [f*H, (f+1)*H) with H = frame_hop_s * 16 kHz. Its feature vector is:
- the GE2E embedding of an `embed_window_s` sub-window centred on the frame (level-normalised,
  since GE2E reads raw mel power and far-field speech is quiet),
- the mean and max Silero speech probability over the frame,
- the frame's level in dBFS, scaled to about [0, 1].
A frame becomes available once the audio its sub-window needs has arrived; each call computes
only frames that became available since the last one, for every stream in one batched call.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from streamdiar.audio import SAMPLE_RATE
from streamdiar.config import FeatureConfig
from streamdiar.features.speaker_encoder import EMBED_DIM, MEL_HOP, MEL_WINDOW, MelFrontend, SpeakerEncoder
from streamdiar.features.vad import CHUNK, CONTEXT, SileroVAD

FEATURE_DIM = EMBED_DIM + 3
# frame feature columns after the GE2E vector: Silero speech probability (mean, max over the frame), level
VAD_MEAN_COLUMN, VAD_MAX_COLUMN, LEVEL_COLUMN = EMBED_DIM, EMBED_DIM + 1, EMBED_DIM + 2
SPEECH_PROBABILITY = 0.5  # a frame whose mean VAD probability reaches this is speech (enrolment, naming)
LEVEL_FLOOR_DB = -80.0
ENCODER_BATCH = 1024  # sub-windows per LSTM call: bounds memory when a whole file arrives at once
SIGNAL_BATCH = 64  # whole signals featurized together by `FrameFeaturizer.whole_signals`


@dataclass
class FeatureState:
    """One stream's buffers. Every index is absolute (counted from the stream's first sample)."""

    pcm: np.ndarray = field(default_factory=lambda: np.zeros(MEL_WINDOW // 2, dtype=np.float32))
    pcm_start: int = -(MEL_WINDOW // 2)  # absolute index of pcm[0]; negative = left zero padding
    received: int = 0
    mel: torch.Tensor = field(default_factory=lambda: torch.zeros(0, 40))
    mel_power: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    mel_start: int = 0  # absolute mel frame index of mel[0]
    vad_state: torch.Tensor = field(default_factory=lambda: SileroVAD.initial_state(1)[:, 0])
    vad_context: torch.Tensor = field(default_factory=lambda: torch.zeros(CONTEXT))
    vad_probs: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    vad_start: int = 0  # absolute chunk index of vad_probs[0]
    vad_done: int = 0  # chunks computed
    frames_done: int = 0

    def append(self, samples: np.ndarray) -> None:
        self.pcm = np.concatenate([self.pcm, samples.astype(np.float32, copy=False)])
        self.received += samples.size


class FrameFeaturizer:
    """Shared models plus the arithmetic that turns buffered audio into frame features."""

    def __init__(self, config: FeatureConfig, encoder: SpeakerEncoder | None = None, vad: SileroVAD | None = None):
        self.config = config
        self.hop = round(config.frame_hop_s * SAMPLE_RATE)
        self.mels_per_frame = self.hop // MEL_HOP
        self.embed_mels = round(config.embed_window_s * SAMPLE_RATE) // MEL_HOP
        self.encoder = encoder or SpeakerEncoder.pretrained()
        self.vad = vad or SileroVAD.pretrained()
        self.mel = MelFrontend()

    def new_state(self) -> FeatureState:
        """A stream's empty buffers; mel frames before the first sample are silence."""
        lead = max(0, -self._first_mel(0))
        return FeatureState(mel=torch.zeros(lead, 40), mel_power=np.zeros(lead, dtype=np.float32), mel_start=-lead)

    # -- geometry -------------------------------------------------------------------------
    def _first_mel(self, frame: int) -> int:
        centre = (frame * self.hop + self.hop // 2) // MEL_HOP
        return centre - self.embed_mels // 2

    def samples_needed(self, frame: int) -> int:
        """Samples that must have arrived before frame `frame` can be computed."""
        last_mel = self._first_mel(frame) + self.embed_mels - 1
        return last_mel * MEL_HOP + MEL_WINDOW // 2

    def lookahead_s(self) -> float:
        """How long after a frame ends its features become available."""
        return (self.samples_needed(0) - self.hop) / SAMPLE_RATE

    def frames_available(self, state: FeatureState) -> int:
        return max(0, (state.received - self.samples_needed(0)) // self.hop + 1)

    def padding_to_flush(self, state: FeatureState) -> int:
        """Zero samples to append at end of stream so every frame with real audio is computed."""
        frames = -(-state.received // self.hop)
        if frames == 0:
            return 0
        return max(0, self.samples_needed(frames - 1) - state.received)

    # -- compute --------------------------------------------------------------------------
    @torch.inference_mode()
    def __call__(self, states: list[FeatureState]) -> list[np.ndarray]:
        """Advance every stream; returns each one's new frame features, shape (new_frames, FEATURE_DIM)."""
        self._advance_mels(states)
        self.advance_vad(states)
        counts = [max(0, self.frames_available(state) - state.frames_done) for state in states]
        outputs = [np.zeros((0, FEATURE_DIM), dtype=np.float32) for _ in states]
        if not any(counts):
            return outputs
        windows, powers = [], []
        for i, state in enumerate(states):
            if not counts[i]:
                continue
            starts = self._first_mel(np.arange(state.frames_done, state.frames_done + counts[i])) - state.mel_start
            windows.extend(state.mel[lo : lo + self.embed_mels] for lo in starts.tolist())
            powers.append(_window_means(state.mel_power, starts, self.embed_mels))
        mels = torch.stack(windows) * torch.tensor(self._gains(np.concatenate(powers)), dtype=torch.float32)[:, None, None]
        embeddings = torch.cat([self.encoder(part) for part in mels.split(ENCODER_BATCH)]).numpy()
        rows = 0
        for i, state in enumerate(states):
            count = counts[i]
            if not count:
                continue
            frames = np.arange(state.frames_done, state.frames_done + count)
            vad_mean, vad_max = self._frame_vad(state, frames)
            extra = np.stack([vad_mean, vad_max, self._frame_level(state, frames)], axis=1)
            outputs[i] = np.concatenate([embeddings[rows : rows + count], extra], axis=1).astype(np.float32)
            rows += count
            state.frames_done += count
            self._trim(state)
        return outputs

    def whole_signals(self, signals: list[np.ndarray], batch: int = SIGNAL_BATCH) -> list[np.ndarray]:
        """(frames, FEATURE_DIM) features of whole 16 kHz signals, exactly as a stream computes them,
        `batch` signals advanced together."""
        out = []
        for i in range(0, len(signals), batch):
            states = []
            for audio in signals[i : i + batch]:
                state = self.new_state()
                state.append(audio)
                state.append(np.zeros(self.padding_to_flush(state), dtype=np.float32))
                states.append(state)
            feats = self(states)
            out.extend(f[: -(-audio.size // self.hop)] for f, audio in zip(feats, signals[i : i + batch]))
        return out

    def _gains(self, mean_power: np.ndarray) -> list[float]:
        """Power gains that bring windows of these mean mel powers to the target level."""
        level_db = 10 * np.log10(mean_power.astype(np.float64) + 1e-12)
        gain_db = np.clip(self.config.target_dbfs - level_db, -self.config.max_gain_db, self.config.max_gain_db)
        return [10 ** (g / 10) for g in gain_db.tolist()]

    def _advance_mels(self, states: list[FeatureState]) -> None:
        """Every stream's new mel frames. Streams whose new blocks are equally long (in a round
        of steps, most of them) share one STFT call: per-stream calls cost more in dispatch than
        in arithmetic once there are hundreds of streams."""
        groups: dict[int, list[tuple[FeatureState, int, int]]] = {}
        for state in states:
            next_mel = state.mel_start + state.mel.shape[0]
            last_mel = (state.pcm_start + state.pcm.size - MEL_WINDOW // 2) // MEL_HOP  # highest computable index
            if last_mel < next_mel:
                continue
            lo = next_mel * MEL_HOP - MEL_WINDOW // 2 - state.pcm_start
            hi = last_mel * MEL_HOP + MEL_WINDOW // 2 - state.pcm_start
            groups.setdefault(hi - lo, []).append((state, lo, hi))
        for group in groups.values():
            blocks = torch.from_numpy(np.stack([state.pcm[lo:hi] for state, lo, hi in group]))
            mels = self.mel(blocks)  # (streams, new mel frames, 40)
            power = (blocks.unfold(1, MEL_WINDOW, MEL_HOP) ** 2).mean(dim=2).numpy()
            for k, (state, _, _) in enumerate(group):
                state.mel = torch.cat([state.mel, mels[k]])
                state.mel_power = np.concatenate([state.mel_power, power[k]])

    @torch.inference_mode()
    def advance_vad(self, states: list[FeatureState]) -> None:
        # Chunks of one stream are sequential (recurrent state), streams are batched per round.
        # The batch's state and context stay stacked from one round to the next; a stream whose
        # chunks are done leaves the batch and keeps its own copy.
        pending = np.array([s.received // CHUNK - s.vad_done for s in states], dtype=np.int64)
        rows = np.flatnonzero(pending > 0)  # streams with new chunks, in order
        if rows.size == 0:
            return
        rounds = int(pending[rows].max())
        audio = np.zeros((rows.size, rounds, CHUNK), dtype=np.float32)
        for k, i in enumerate(rows):
            s = states[i]
            start = s.vad_done * CHUNK - s.pcm_start
            audio[k, : pending[i]] = s.pcm[start : start + pending[i] * CHUNK].reshape(-1, CHUNK)
        probs = np.zeros((rows.size, rounds), dtype=np.float32)
        batch = np.arange(rows.size)  # positions in `rows` of the streams in this round's batch
        context = torch.stack([states[i].vad_context for i in rows])
        state = torch.stack([states[i].vad_state for i in rows], dim=1)
        for r in range(rounds):
            going = pending[rows[batch]] > r
            if not going.all():
                self._keep_vad_state(states, rows[batch[~going]], np.flatnonzero(~going), context, state)
                keep = torch.from_numpy(going)
                batch, context, state = batch[going], context[keep], state[:, keep]
            chunk = torch.from_numpy(audio[batch, r])
            p, state = self.vad(torch.cat([context, chunk], dim=1), state)
            context = chunk[:, -CONTEXT:]
            probs[batch, r] = p.numpy()
        self._keep_vad_state(states, rows[batch], range(batch.size), context, state)
        for k, i in enumerate(rows):
            s = states[i]
            s.vad_probs = np.concatenate([s.vad_probs, probs[k, : pending[i]]])
            s.vad_done += int(pending[i])

    @staticmethod
    def _keep_vad_state(states: list[FeatureState], streams, rows, context: torch.Tensor, state: torch.Tensor) -> None:
        """Give each stream its own copy of its row of the batch's VAD context and state."""
        for i, k in zip(streams, rows):
            states[i].vad_context = context[k].clone()
            states[i].vad_state = state[:, k].clone()

    def _frame_vad(self, state: FeatureState, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Overlap-weighted mean and max of the VAD probabilities of the chunks each frame touches
        (0 where none is computed yet)."""
        lo, hi = frames * self.hop, (frames + 1) * self.hop
        first = lo // CHUNK
        last = np.minimum((hi - 1) // CHUNK, state.vad_done - 1)
        chunk = first[:, None] + np.arange(int((last - first).max(initial=0)) + 1)  # (frames, chunks)
        touched = chunk <= last[:, None]
        overlap = np.minimum(chunk * CHUNK + CHUNK, hi[:, None]) - np.maximum(chunk * CHUNK, lo[:, None])
        weights = np.where(touched, overlap, 0)
        probs = np.zeros(chunk.shape, dtype=np.float32)
        probs[touched] = state.vad_probs[chunk[touched] - state.vad_start]
        # frames touching the same number of chunks are summed together, without padding, so
        # each sum runs in the order np.average gives one frame on its own: bit-identical results
        weighted = probs.astype(np.float64) * weights
        touches = touched.sum(axis=1)
        mean = np.zeros(frames.size, dtype=np.float32)
        for count in np.unique(touches[touches > 0]):
            group = touches == count
            mean[group] = weighted[group, :count].sum(axis=1) / weights[group, :count].sum(axis=1, dtype=np.float64)
        some = touches > 0
        peak = np.where(some, np.where(touched, probs, -np.inf).max(axis=1), 0).astype(np.float32)
        return mean, peak

    def _frame_level(self, state: FeatureState, frames: np.ndarray) -> np.ndarray:
        power = _window_means(state.mel_power, frames * self.mels_per_frame - state.mel_start, self.mels_per_frame)
        db = np.maximum(10 * np.log10(power.astype(np.float64) + 1e-12), LEVEL_FLOOR_DB)
        return ((db - LEVEL_FLOOR_DB) / -LEVEL_FLOOR_DB).astype(np.float32)

    def _trim(self, state: FeatureState) -> None:
        """Drop what no future frame, mel or VAD chunk needs, so buffers stay bounded."""
        keep_mel = min(self._first_mel(state.frames_done), state.frames_done * self.mels_per_frame)
        drop = keep_mel - state.mel_start
        if drop > 0:
            state.mel = state.mel[drop:]
            state.mel_power = state.mel_power[drop:]
            state.mel_start = keep_mel
        next_mel = state.mel_start + state.mel.shape[0]
        keep_pcm = min(next_mel * MEL_HOP - MEL_WINDOW // 2, state.vad_done * CHUNK)
        drop = keep_pcm - state.pcm_start
        if drop > 0:
            state.pcm = state.pcm[drop:]
            state.pcm_start = keep_pcm
        keep_chunk = state.frames_done * self.hop // CHUNK
        drop = keep_chunk - state.vad_start
        if drop > 0:
            state.vad_probs = state.vad_probs[drop:]
            state.vad_start = keep_chunk


def _window_means(values: np.ndarray, starts: np.ndarray, length: int) -> np.ndarray:
    """values[s : s + length].mean() for each s in starts, in one call (float32, as each alone)."""
    return np.lib.stride_tricks.sliding_window_view(values, length)[starts].mean(axis=1)
