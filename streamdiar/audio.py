"""Audio constants and conversions: every path into the engine ends as 16 kHz mono float32."""
from __future__ import annotations

from math import gcd
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

SAMPLE_RATE = 16000
MIN_INPUT_RATE = 8000
MAX_INPUT_RATE = 192000


class AudioError(ValueError):
    """Audio that cannot be turned into a usable 16 kHz mono signal."""


def to_mono(samples: np.ndarray) -> np.ndarray:
    """(frames,) or (frames, channels) -> (frames,) float32, averaging channels."""
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim == 2:
        samples = samples.mean(axis=1)
    elif samples.ndim != 1:
        raise AudioError(f"expected 1 or 2 dimensions of audio, got {samples.ndim}")
    return samples


def _checked_rate(orig: int) -> int:
    if not MIN_INPUT_RATE <= orig <= MAX_INPUT_RATE:
        raise AudioError(f"sample rate {orig} Hz is outside {MIN_INPUT_RATE}..{MAX_INPUT_RATE} Hz")
    return orig


def resample(samples: np.ndarray, orig_rate: int, new_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Band-limited resampling of a whole mono signal."""
    orig_rate = _checked_rate(int(orig_rate))
    if orig_rate == new_rate or samples.size == 0:
        return samples.astype(np.float32, copy=False)
    out = AF.resample(torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32)), orig_rate, new_rate)
    return out.numpy()


def sanitize(samples: np.ndarray) -> np.ndarray:
    """Replace NaN/Inf with silence and clip to [-1, 1] so one bad sample cannot poison a stream."""
    samples = np.asarray(samples, dtype=np.float32)
    bad = ~np.isfinite(samples)
    if bad.any():
        samples = np.where(bad, 0.0, samples).astype(np.float32)
    return np.clip(samples, -1.0, 1.0)


def load_audio(path: str | Path) -> np.ndarray:
    """Read WAV/FLAC/OGG of any rate, channel count and sample format as 16 kHz mono float32.

    NaN/Inf samples become silence (the caller may warn using `count_nonfinite` first).
    Raises AudioError with a one-line reason for anything unreadable.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: no such file")
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise AudioError(f"{path}: not a readable audio file ({str(exc).strip() or type(exc).__name__})") from None
    mono = to_mono(data)
    return sanitize(resample(sanitize(mono), rate))


class StreamResampler:
    """Resamples a stream block by block with the same result as resampling it whole.

    The input kept in `_buf` always starts on a sample where the input and output grids meet
    (a multiple of `orig / gcd`), so each call's output lines up with the global output grid.
    Outputs closer than `_margin` to the newest input wait for the next block (or `final`).
    """

    def __init__(self, orig_rate: int, new_rate: int = SAMPLE_RATE):
        self.orig_rate = _checked_rate(int(orig_rate))
        self.new_rate = new_rate
        g = gcd(self.orig_rate, new_rate)
        self._up, self._down = new_rate // g, self.orig_rate // g
        self._margin = 64 + self.orig_rate // 200
        self._buf = np.zeros(0, dtype=np.float32)
        self._buf_start = 0
        self._out_done = 0

    def __call__(self, block: np.ndarray, final: bool = False) -> np.ndarray:
        if self.orig_rate == self.new_rate:
            return block
        self._buf = np.concatenate([self._buf, block])
        in_end = self._buf_start + self._buf.size
        if final:
            out_end = -(-in_end * self._up // self._down)
        else:
            out_end = max(0, (in_end - self._margin) * self._up // self._down)
        if out_end <= self._out_done:
            return np.zeros(0, dtype=np.float32)
        out = resample(self._buf, self.orig_rate, self.new_rate)
        first = self._buf_start * self._up // self._down
        piece = out[self._out_done - first : out_end - first]
        self._out_done = out_end
        keep_from = (self._out_done * self._down // self._up - 2 * self._margin) // self._down * self._down
        if keep_from > self._buf_start:
            self._buf = self._buf[keep_from - self._buf_start :]
            self._buf_start = keep_from
        return piece


def decode_pcm(payload: bytes, encoding: str, channels: int) -> np.ndarray:
    """Raw little-endian PCM bytes -> mono float32. Raises AudioError on partial samples."""
    width = {"pcm_s16le": 2, "pcm_f32le": 4}.get(encoding)
    if width is None:
        raise AudioError(f"unsupported encoding {encoding!r}")
    if len(payload) % (width * channels):
        raise AudioError(f"frame of {len(payload)} bytes is not a whole number of {channels}-channel {encoding} samples")
    if encoding == "pcm_s16le":
        samples = np.frombuffer(payload, dtype="<i2").astype(np.float32) / 32768.0
    else:
        samples = np.frombuffer(payload, dtype="<f4").astype(np.float32)
    if channels > 1:
        samples = samples.reshape(-1, channels)
    return sanitize(to_mono(samples))
