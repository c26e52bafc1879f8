"""Simulated conversations that resemble real rooms, built from single-speaker utterances.

Turn taking follows the source documents' idea that speakers switch rarely compared with a coin
flip per frame: who holds the floor is drawn from a bounded random walk over the speakers'
dominance, turns have heavy-tailed lengths, and transitions are pauses or overlaps. On top:
back-channels, per-speaker level and distance (synthetic reverberation), background noise and a
random recording level, so training sees far-field, overlapping, quiet speech as in meetings.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from scipy.signal import fftconvolve, lfilter

from streamdiar.audio import SAMPLE_RATE, load_audio, resample


@dataclass(frozen=True)
class SimulationConfig:
    min_duration_s: float = 30.0
    max_duration_s: float = 60.0
    speaker_counts: tuple[int, ...] = (1, 2, 3, 4)
    speaker_count_weights: tuple[float, ...] = (0.05, 0.35, 0.3, 0.3)
    overlap_probability: float = 0.35
    backchannel_probability: float = 0.25
    reverb_probability: float = 0.5
    rt60_s: tuple[float, ...] = (0.15, 0.6)
    direct_to_reverberant_db: tuple[float, ...] = (0.0, 15.0)
    noise_probability: float = 0.7
    snr_db: tuple[float, ...] = (10.0, 40.0)
    speaker_gain_db: tuple[float, ...] = (-6.0, 3.0)
    level_dbfs: tuple[float, ...] = (-40.0, -15.0)

    def dry(self) -> "SimulationConfig":
        """The same conversations' settings without room or noise: the voices as recorded."""
        return replace(self, reverb_probability=0.0, noise_probability=0.0)


@dataclass
class Utterance:
    speaker: str
    audio: np.ndarray
    speech: np.ndarray  # bool per sample-block of SPEECH_RES samples


@dataclass
class Conversation:
    audio: np.ndarray
    speakers: list[str]
    activity: np.ndarray  # (K, samples // SPEECH_RES) bool at SPEECH_RES resolution

    def frame_labels(self, hop: int) -> np.ndarray:
        """(K, frames) float: a speaker is active in a frame if active in half of it or more."""
        per = hop // SPEECH_RES
        frames = -(-self.audio.size // hop)
        act = np.zeros((len(self.speakers), frames * per), dtype=np.float32)
        act[:, : self.activity.shape[1]] = self.activity[:, : frames * per]
        return (act.reshape(len(self.speakers), frames, per).mean(axis=2) >= 0.5).astype(np.float32)

    def rttm(self, uri: str, hop: int = 160) -> list[str]:
        lines = []
        for k, spk in enumerate(self.speakers):
            act = np.concatenate([[0], self.activity[k].astype(np.int8), [0]])
            edges = np.flatnonzero(np.diff(act))
            for start, end in zip(edges[::2], edges[1::2]):
                t0, t1 = start * SPEECH_RES / SAMPLE_RATE, end * SPEECH_RES / SAMPLE_RATE
                lines.append(f"SPEAKER {uri} 1 {t0:.3f} {t1 - t0:.3f} <NA> <NA> {spk} <NA> <NA>")
        return lines


SPEECH_RES = 160  # speech masks at 10 ms


def speech_mask(vad_probs: np.ndarray, chunk: int, samples: int) -> np.ndarray:
    """Per-10-ms speech mask from VAD chunk probabilities; gaps under 100 ms are closed."""
    blocks = -(-samples // SPEECH_RES)
    centre_chunk = np.minimum((np.arange(blocks) * SPEECH_RES + SPEECH_RES // 2) // chunk, vad_probs.size - 1)
    mask = vad_probs[centre_chunk] > 0.5
    idx = np.flatnonzero(mask)
    if idx.size:
        gaps = np.diff(idx)
        for i in np.flatnonzero((gaps > 1) & (gaps <= 10)):
            mask[idx[i] : idx[i + 1]] = True
    return mask


def load_speakers(folder: str | Path) -> list[Utterance]:
    """One Utterance per file; speaker = the file name's first '-' field (LibriSpeech style).
    Speech masks are filled in by the caller (they need the VAD)."""
    paths = sorted(Path(folder).glob("*.flac")) + sorted(Path(folder).glob("*.wav"))
    if not paths:
        raise FileNotFoundError(f"{folder}: no .flac or .wav speaker files")
    utterances = []
    for path in paths:
        audio = load_audio(path)
        utterances.append(Utterance(path.stem.split("-")[0], audio, np.zeros(0, dtype=bool)))
    return utterances


def synthetic_rir(rng: np.random.Generator, rt60: float, drr_db: float) -> np.ndarray:
    """Exponentially decaying noise tail after a direct path: cheap stand-in for a room."""
    length = int(min(rt60, 1.2) * SAMPLE_RATE)
    t = np.arange(length) / SAMPLE_RATE
    tail = rng.standard_normal(length) * np.exp(-6.9 * t / rt60)
    tail = lfilter([1.0], [1.0, -0.6], tail)  # rooms absorb high frequencies faster
    delay = int(rng.uniform(0.002, 0.01) * SAMPLE_RATE)
    tail[:delay] = 0
    tail *= 10 ** (-drr_db / 20) / (np.sqrt(np.sum(tail**2)) + 1e-9)
    tail[0] = 1.0
    return tail.astype(np.float32)


def colored_noise(rng: np.random.Generator, n: int) -> np.ndarray:
    white = rng.standard_normal(n)
    kind = rng.integers(3)
    if kind == 1:  # pink-ish
        noise = lfilter([0.049922, -0.095993, 0.050612, -0.004408], [1, -2.494956, 2.017265, -0.522189], white)
    elif kind == 2:  # brown-ish (room rumble, HVAC)
        noise = lfilter([1.0], [1.0, -0.98], white)
    else:
        noise = white
    if rng.random() < 0.2:  # mains hum
        t = np.arange(n) / SAMPLE_RATE
        noise = noise / (np.std(noise) + 1e-9) + 3 * np.sin(2 * np.pi * rng.choice([50, 60]) * t)
    return (noise / (np.std(noise) + 1e-9)).astype(np.float32)


def _crop(rng: np.random.Generator, utt: Utterance, length: int) -> tuple[np.ndarray, np.ndarray]:
    """A random piece of the utterance of `length` samples (tiled if the utterance is shorter)."""
    reps = -(-length // utt.audio.size) + 1
    audio = np.tile(utt.audio, reps)
    mask = np.tile(utt.speech, reps)
    start = int(rng.integers(0, utt.audio.size))
    start -= start % SPEECH_RES
    piece = audio[start : start + length]
    m = mask[start // SPEECH_RES : start // SPEECH_RES + -(-length // SPEECH_RES)]
    return piece, m


def _turns(rng: np.random.Generator, k: int, total: float, cfg: SimulationConfig) -> list[tuple[int, float, float]]:
    """(speaker, start_s, end_s) turns from a bounded random walk over speaker dominance."""
    dominance = rng.uniform(0.2, 1.0, size=k)
    turns = []
    t = float(rng.uniform(0.0, 1.5))
    current = int(rng.integers(k))
    while t < total:
        length = float(np.clip(rng.lognormal(np.log(2.5), 0.7), 0.4, 12.0))
        turns.append((current, t, min(t + length, total)))
        if k > 1 and rng.random() < cfg.backchannel_probability:
            other = int(rng.choice([s for s in range(k) if s != current]))
            b0 = t + rng.uniform(0.2, max(0.3, length - 0.5))
            turns.append((other, b0, min(b0 + rng.uniform(0.3, 1.0), total)))
        # bounded random walk: dominance drifts but stays in [0.05, 1]
        dominance = np.clip(dominance + rng.normal(0, 0.15, size=k), 0.05, 1.0)
        if k > 1:
            weights = dominance.copy()
            weights[current] = 0
            current = int(rng.choice(k, p=weights / weights.sum()))
        if rng.random() < cfg.overlap_probability and k > 1:
            gap = -float(rng.uniform(0.2, min(2.0, length)))
        else:
            gap = float(rng.exponential(0.5)) + 0.05
            if k == 1:
                gap += float(rng.exponential(1.5))
        t = t + length + gap
    return turns


def simulate(rng: np.random.Generator, utterances: list[Utterance], cfg: SimulationConfig) -> Conversation:
    """One conversation among speakers drawn from `utterances` (one utterance per speaker)."""
    by_speaker: dict[str, list[Utterance]] = {}
    for u in utterances:
        by_speaker.setdefault(u.speaker, []).append(u)
    names = sorted(by_speaker)
    k = int(rng.choice(cfg.speaker_counts, p=np.asarray(cfg.speaker_count_weights) / sum(cfg.speaker_count_weights)))
    k = min(k, len(names))
    chosen = [names[i] for i in rng.choice(len(names), size=k, replace=False)]
    total = float(rng.uniform(cfg.min_duration_s, cfg.max_duration_s))
    n = int(total * SAMPLE_RATE)
    n -= n % SPEECH_RES
    dry = np.zeros((k, n), dtype=np.float32)
    activity = np.zeros((k, n // SPEECH_RES), dtype=bool)
    for spk, t0, t1 in _turns(rng, k, total, cfg):
        a = int(t0 * SAMPLE_RATE) // SPEECH_RES * SPEECH_RES
        b = min(int(t1 * SAMPLE_RATE) // SPEECH_RES * SPEECH_RES, n)
        if b - a < SPEECH_RES * 20:
            continue
        utt = by_speaker[chosen[spk]][int(rng.integers(len(by_speaker[chosen[spk]])))]
        piece, mask = _crop(rng, utt, b - a)
        dry[spk, a:b] += piece
        activity[spk, a // SPEECH_RES : b // SPEECH_RES] |= mask[: (b - a) // SPEECH_RES]
    mix = np.zeros(n, dtype=np.float32)
    for s in range(k):
        track = dry[s] / (np.sqrt(np.mean(dry[s][np.repeat(activity[s], SPEECH_RES)] ** 2)) + 1e-9) if activity[s].any() else dry[s]
        track = track * 10 ** (rng.uniform(*cfg.speaker_gain_db) / 20)
        if rng.random() < cfg.reverb_probability:
            rir = synthetic_rir(rng, rt60=float(rng.uniform(*cfg.rt60_s)), drr_db=float(rng.uniform(*cfg.direct_to_reverberant_db)))
            track = fftconvolve(track, rir)[:n].astype(np.float32)
        mix += track
    speech_rms = np.sqrt(np.mean(mix[np.repeat(activity.any(axis=0), SPEECH_RES)] ** 2)) if activity.any() else 0.1
    if rng.random() < cfg.noise_probability:
        snr = rng.uniform(*cfg.snr_db)
        mix += colored_noise(rng, n) * speech_rms * 10 ** (-snr / 20)
    level_db = rng.uniform(*cfg.level_dbfs)
    mix *= 10 ** (level_db / 20) / (speech_rms + 1e-9)
    peak = np.abs(mix).max()
    if peak > 0.99:
        mix *= 0.99 / peak
    return Conversation(mix.astype(np.float32), chosen, activity)


def speed_perturbed(utterances: list[Utterance], factors: tuple[float, ...]) -> list[Utterance]:
    """New voices from old ones: each utterance played `factor` times faster (pitch and tempo move
    together, as on a tape), taken as another speaker. 211 real voices are few for a model that
    must tell unseen voices apart; speeds of 0.9 and 1.1 move GE2E embeddings about as far apart as
    different people are (the Kaldi speed-perturbation recipe)."""
    out = []
    for factor in factors:
        source_rate = round(SAMPLE_RATE * factor)
        for u in utterances:
            audio = resample(u.audio, source_rate)
            blocks = np.minimum((np.arange(-(-audio.size // SPEECH_RES)) * factor).astype(int), u.speech.size - 1)
            out.append(Utterance(f"{u.speaker}x{factor:g}", audio, u.speech[blocks]))
    return out


def split_speakers(utterances: list[Utterance], held_out: int, seed: int) -> tuple[list[Utterance], list[Utterance]]:
    """Train / validation utterances with disjoint speakers."""
    names = sorted({u.speaker for u in utterances})
    rng = np.random.default_rng(seed)
    val = set(rng.choice(names, size=held_out, replace=False).tolist())
    return [u for u in utterances if u.speaker not in val], [u for u in utterances if u.speaker in val]
