"""Real speech for the benchmarks: the real_dev recordings concatenated, read as a loop."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from streamdiar.audio import load_audio

REPO = Path(__file__).resolve().parents[1]
REAL_DEV = REPO.parent / "shared" / "data" / "real_dev"
DEMO = REPO / "streamdiar" / "data" / "demo.flac"  # travels with the checkout (a GPU machine has no ../shared)


def speech(folder: Path = REAL_DEV) -> np.ndarray:
    """Every WAV of `folder` in name order, end to end; the bundled demo when the folder is absent."""
    files = sorted(folder.glob("*.wav"))
    if not files:
        return load_audio(DEMO)
    return np.concatenate([load_audio(f) for f in files])


def looped(audio: np.ndarray, start: int, length: int) -> np.ndarray:
    """`length` samples of `audio` from `start`, wrapping around at its end."""
    return np.take(audio, np.arange(start, start + length), mode="wrap")


def stream_offsets(audio: np.ndarray, streams: int) -> list[int]:
    """Start points spread over the audio so concurrent streams carry different speech."""
    return [round(i * audio.size / streams) % audio.size for i in range(streams)]
