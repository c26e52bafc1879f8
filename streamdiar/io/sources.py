"""Audio sources. A file is delivered in blocks exactly as a live source would deliver it."""
from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import numpy as np

from streamdiar.audio import SAMPLE_RATE, load_audio


def file_blocks(path: str | Path, block_s: float, gain_db: float = 0.0) -> Iterator[np.ndarray]:
    """16 kHz mono float32 blocks of `block_s` seconds (the last one may be shorter), played
    `gain_db` louder (clipped at full scale, as a louder recording would be)."""
    audio = load_audio(path)
    if gain_db:
        audio = np.clip(audio * np.float32(10 ** (gain_db / 20)), -1.0, 1.0)
    size = max(1, round(block_s * SAMPLE_RATE))
    for start in range(0, audio.size, size):
        yield audio[start : start + size]


async def paced(blocks: Iterator[np.ndarray], pace: float = 1.0) -> AsyncIterator[np.ndarray]:
    """Yield blocks no faster than `pace` x real time (pace <= 0: as fast as possible)."""
    start = time.monotonic()
    sent = 0
    for block in blocks:
        if pace > 0:
            due = start + sent / SAMPLE_RATE / pace
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        sent += block.size
        yield block
        if pace <= 0:
            await asyncio.sleep(0)
