"""A live terminal view of one stream (rich): who is speaking now, a colour timeline of the last
~30 s per speaker, confidence, audio time and label latency.

`LiveView` only folds engine updates into what it shows; `run_live` drives any block source
(microphone, file) through the same pipeline coroutine as every other front end and redraws
after each update. Label latency is how far the labels trail the newest audio when shown: the
audio not yet labelled (feature look-ahead plus the unfinished step) plus the compute time.
"""
from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass, field

import numpy as np
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from streamdiar.engine.labels import Segment
from streamdiar.engine.pipeline import run_stream
from streamdiar.engine.stream import Update

TIMELINE_S = 30.0
TIMELINE_CELLS = 60
NOW_TOLERANCE_S = 0.6  # a provisional segment reaching this close to the labelled edge is "now"
PALETTE = ("bright_cyan", "bright_magenta", "bright_green", "bright_yellow", "bright_blue", "bright_red",
           "cyan", "magenta", "green", "yellow", "blue", "red")
FINAL_CELL, PROVISIONAL_CELL, SILENT_CELL, UNLABELLED_CELL = "█", "▒", "·", " "
REFRESH_PER_SECOND = 8


@dataclass
class SpeakerTrack:
    label: str
    colour: str
    recent: list[Segment] = field(default_factory=list)  # final segments inside the timeline span
    talk_s: float = 0.0
    confidence_sum: float = 0.0  # duration-weighted, over final segments

    @property
    def confidence(self) -> float:
        return self.confidence_sum / self.talk_s if self.talk_s else 0.0


class LiveView:
    """What the terminal shows, folded from a stream's updates. Memory stays bounded: only the
    final segments inside the timeline span are kept, plus per-speaker totals."""

    def __init__(self, title: str = "streamdiar", timeline_s: float = TIMELINE_S, cells: int = TIMELINE_CELLS):
        self.title = title
        self.timeline_s = timeline_s
        self.cells = cells
        self.tracks: dict[str, SpeakerTrack] = {}
        self.provisional: list[Segment] = []
        self.audio_s = 0.0
        self.labelled_s = 0.0
        self.latency_s: float | None = None
        self.note = ""  # one line from the source (device, dropped audio...)
        self.finished = False

    # -- state --------------------------------------------------------------------------------
    def update(self, update: Update, labelled_s: float | None = None, latency_s: float | None = None) -> None:
        labelled = update.audio_s if labelled_s is None else min(labelled_s, update.audio_s)
        # a push that ran no model step carries no provisional segments: the previous ones still hold
        advanced = labelled_s is None or labelled > self.labelled_s or bool(update.final)
        self.audio_s = update.audio_s
        self.labelled_s = labelled
        self.latency_s = latency_s
        for seg in update.final:
            track = self._track(seg.speaker)
            track.recent.append(seg)
            track.talk_s += seg.end - seg.start
            track.confidence_sum += seg.confidence * (seg.end - seg.start)
        if advanced:
            for seg in update.provisional:
                self._track(seg.speaker)
            self.provisional = list(update.provisional)
        horizon = self.audio_s - self.timeline_s
        for track in self.tracks.values():
            track.recent = [s for s in track.recent if s.end > horizon]

    def finish(self, update: Update) -> None:
        self.update(update, latency_s=self.latency_s)
        self.finished = True

    def speaking_now(self) -> list[Segment]:
        """Provisional segments that reach the newest labelled audio, most confident first."""
        edge = self.labelled_s - NOW_TOLERANCE_S
        return sorted((s for s in self.provisional if s.end >= edge), key=lambda s: -s.confidence)

    def _track(self, label: str) -> SpeakerTrack:
        if label not in self.tracks:
            self.tracks[label] = SpeakerTrack(label, PALETTE[len(self.tracks) % len(PALETTE)])
        return self.tracks[label]

    # -- drawing -------------------------------------------------------------------------------
    def timeline(self, track: SpeakerTrack) -> Text:
        """One character per cell of the last `timeline_s` seconds: final speech, provisional
        speech, labelled silence, and audio not labelled yet."""
        width = self.timeline_s / self.cells
        start = self.audio_s - self.timeline_s
        centres = start + (np.arange(self.cells) + 0.5) * width
        kind = np.where(centres < self.labelled_s, 0, 3)  # 0 silent, 1 final, 2 provisional, 3 unlabelled
        kind[centres < 0] = 3
        for seg, value in [(s, 2) for s in self.provisional if s.speaker == track.label] + [(s, 1) for s in track.recent]:
            lo = max(0, int(np.floor((seg.start - start) / width)))
            hi = min(self.cells, int(np.ceil((seg.end - start) / width)))
            if hi > lo:
                kind[lo:hi] = np.where(kind[lo:hi] == 1, 1, value)
        text = Text()
        for value in kind:
            if value == 1:
                text.append(FINAL_CELL, style=track.colour)
            elif value == 2:
                text.append(PROVISIONAL_CELL, style=track.colour)
            elif value == 0:
                text.append(SILENT_CELL, style="grey35")
            else:
                text.append(UNLABELLED_CELL)
        return text

    def header(self) -> Text:
        minutes, seconds = divmod(self.audio_s, 60)
        text = Text.assemble(("audio ", "dim"), (f"{int(minutes):02d}:{seconds:04.1f}", "bold"))
        if self.latency_s is not None:
            text.append("   label latency ", style="dim")
            text.append(f"{self.latency_s:.2f} s", style="bold")
        text.append("   speakers ", style="dim")
        text.append(str(len(self.tracks)), style="bold")
        if self.note:
            text.append(f"   {self.note}", style="yellow")
        return text

    def now_line(self) -> Text:
        text = Text("speaking now: ", style="dim")
        now = self.speaking_now()
        if self.finished:
            text.append("(stream finished)", style="dim")
        elif not now:
            text.append("nobody", style="dim")
        for i, seg in enumerate(now):
            if i:
                text.append(", ")
            text.append(seg.speaker, style=f"bold {self._track(seg.speaker).colour}")
            text.append(f" ({seg.confidence:.2f})", style="dim")
        return text

    def __rich__(self) -> RenderableType:
        table = Table.grid(padding=(0, 1))
        table.add_column(no_wrap=True)
        table.add_column(no_wrap=True)
        table.add_column(justify="right", no_wrap=True)
        table.add_column(justify="right", no_wrap=True)
        for track in self.tracks.values():
            table.add_row(Text(track.label, style=f"bold {track.colour}"), self.timeline(track),
                          f"{track.talk_s:6.1f} s", Text(f"conf {track.confidence:.2f}", style="dim"))
        axis = Text(f"-{self.timeline_s:.0f} s".ljust(self.cells - 3) + "now", style="dim")
        table.add_row("", axis, "", "")
        body = Group(self.header(), self.now_line(), Text(""), table)
        return Panel(body, title=self.title, title_align="left", border_style="grey50")


def labelled_until(stream) -> float:
    """Seconds of the stream's audio that have labels (final or provisional)."""
    return stream.state.ring.count * stream.diarizer.hop_s


async def run_live(stream, blocks: AsyncIterable, view: LiveView, console: Console | None = None,
                   refresh_per_second: float = REFRESH_PER_SECOND) -> list[Segment]:
    """Every block through `stream` (pipeline.run_stream), the view redrawn after each update.
    Returns all final segments."""
    arrived = [time.monotonic()]

    async def stamped() -> AsyncIterator:
        async for block in blocks:
            arrived[0] = time.monotonic()
            yield block

    with Live(view, console=console, refresh_per_second=refresh_per_second, transient=False) as live:
        def on_update(update: Update) -> None:
            if stream.state.finished:
                view.finish(update)
            else:
                compute_s = time.monotonic() - arrived[0]
                labelled = labelled_until(stream)
                view.update(update, labelled, max(0.0, update.audio_s - labelled) + compute_s)
            live.refresh()

        return await run_stream(stream, stamped(), on_update)


def stop_on_interrupt(stop: asyncio.Event) -> None:
    """First Ctrl-C (or SIGTERM) sets `stop`, so the stream is finished and its labels kept;
    a second Ctrl-C interrupts at once."""
    loop = asyncio.get_running_loop()

    def first() -> None:
        stop.set()
        loop.remove_signal_handler(signal.SIGINT)

    loop.add_signal_handler(signal.SIGINT, first)
    loop.add_signal_handler(signal.SIGTERM, stop.set)


async def live_microphone(stream, microphone, console: Console | None = None, title: str = "streamdiar · microphone"
                          ) -> list[Segment]:
    """The microphone through `stream` in a live view until Ctrl-C; returns all final segments."""
    stop = asyncio.Event()
    stop_on_interrupt(stop)
    microphone.start()  # a device error is reported before the view is drawn
    view = LiveView(title)

    async def blocks() -> AsyncIterator:
        async for block in microphone.blocks(stop):
            if microphone.dropped_s or microphone.overflows:
                view.note = f"input lost: {microphone.dropped_s:.1f} s dropped, {microphone.overflows} overflow(s)"
            yield block

    try:
        return await run_live(stream, blocks(), view, console)
    finally:
        microphone.close()
