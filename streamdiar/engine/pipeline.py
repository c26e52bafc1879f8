"""The asyncio layer: move audio blocks from a source into a stream and updates to sinks.

The same coroutine serves a file (source = file blocks, pace = 0), a microphone and a network
session; only the source and the pacing differ.
"""
from __future__ import annotations

import inspect
from collections.abc import AsyncIterable, Awaitable, Callable
from pathlib import Path

import numpy as np

from streamdiar.engine.diarizer import Diarizer, Stream
from streamdiar.engine.labels import Segment
from streamdiar.engine.stream import Update
from streamdiar.io.sources import file_blocks, paced

OnUpdate = Callable[[Update], Awaitable[None] | None]


async def run_stream(stream: Stream, blocks: AsyncIterable[np.ndarray], on_update: OnUpdate | None = None) -> list[Segment]:
    """Push every block, then finish; returns all final segments in emission order."""
    finals: list[Segment] = []

    async def emit(update: Update) -> None:
        finals.extend(update.final)
        if on_update is not None:
            result = on_update(update)
            if inspect.isawaitable(result):
                await result

    async for block in blocks:
        await emit(stream.push(block))
    await emit(stream.finish())
    return finals


async def diarize_file(diarizer: Diarizer, path: str | Path, pace: float = 0.0, on_update: OnUpdate | None = None,
                       uri: str | None = None, prepare: Callable[[Stream], object] | None = None,
                       gain_db: float = 0.0, **record) -> tuple[Stream, list[Segment]]:
    """A file through the live path in step-sized blocks; pace 0 = as fast as the CPU allows.
    `prepare` sets up the new stream before its first audio (known speakers, count hints);
    `gain_db` plays the file louder or quieter (tuning); `record` passes record_features /
    record_steps to the stream (evaluation and tuning)."""
    stream = diarizer.open_stream(uri or Path(path).stem, **record)
    if prepare is not None:
        prepare(stream)
    blocks = file_blocks(path, diarizer.config.stream.step_s, gain_db)
    finals = await run_stream(stream, paced(blocks, pace), on_update)
    return stream, finals
