"""The live terminal view: real audio through the same path as the microphone, rendered to a
recording rich Console."""
from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

from streamdiar.engine.labels import Segment
from streamdiar.engine.stream import Update
from streamdiar.io.sources import file_blocks, paced
from streamdiar.io.view import FINAL_CELL, PROVISIONAL_CELL, LiveView, run_live
from tests.conftest import DEMO


def _console(width: int = 120) -> Console:
    return Console(file=io.StringIO(), record=True, width=width, color_system="truecolor", force_terminal=False)


def _text(renderable, width: int = 120) -> str:
    console = _console(width)
    console.print(renderable)
    return console.export_text()


async def test_demo_through_the_live_path_shows_speakers_timeline_and_latency(diarizer):
    stream = diarizer.open_stream("demo")
    view = LiveView("streamdiar · demo")
    snapshots = []

    async def blocks():
        async for block in paced(file_blocks(DEMO, 0.1), 0):  # microphone-sized blocks
            snapshots.append((view.audio_s, view.labelled_s, _text(view), [s.speaker for s in view.speaking_now()],
                              view.latency_s))
            yield block

    console = _console()
    finals = await run_live(stream, blocks(), view, console)
    final_screen = console.export_text()

    labels = sorted({s.speaker for s in finals})
    assert len(labels) >= 2
    rows = {label: next(line for line in final_screen.splitlines() if f"│ {label} " in line) for label in labels}
    for label, row in rows.items():  # speech of the last 30 s is drawn in its speaker's colour row
        recent = any(s.speaker == label and s.end > 40.0 - view.timeline_s for s in finals)
        assert (FINAL_CELL in row) == recent
    assert "audio 00:40.0" in final_screen and "(stream finished)" in final_screen

    # while streaming, "speaking now" agrees with what the engine finally decided for the newest
    # labelled audio: who, when someone spoke, and nobody in silence
    def final_speakers(lo: float, hi: float) -> set[str]:
        return {s.speaker for s in finals if s.start < hi and s.end > lo}

    checked = [(set(names), screen, final_speakers(labelled - 0.3, labelled))
               for _, labelled, screen, names, _ in snapshots if labelled > 2]
    speaking = [c for c in checked if c[2]]
    quiet = [c for c in checked if not c[2]]
    assert speaking and quiet
    assert sum(1 for now, screen, truth in speaking if now & truth and "speaking now: nobody" not in screen) >= 0.7 * len(speaking)
    assert sum(1 for now, screen, truth in quiet if not now and "speaking now: nobody" in screen) >= 0.5 * len(quiet)
    # latency: the feature look-ahead plus an unfinished step, i.e. around a second, never more than a few
    latencies = [s[-1] for s in snapshots if s[-1] is not None]
    assert latencies and 0.2 < sorted(latencies)[len(latencies) // 2] < 2.5
    assert re.search(r"label latency \d+\.\d\d s", snapshots[-1][2])


def test_timeline_draws_final_and_provisional_speech_at_the_right_cells():
    view = LiveView(timeline_s=30.0, cells=60)
    view.update(Update([Segment("Alice", 5.0, 10.0, 0.9, True)], [Segment("SPEAKER_00", 28.0, 29.5, 0.7, False)], 30.0),
                labelled_s=29.5, latency_s=0.8)
    alice = view.timeline(view.tracks["Alice"]).plain
    other = view.timeline(view.tracks["SPEAKER_00"]).plain
    assert len(alice) == 60
    assert alice[10:20] == FINAL_CELL * 10 and FINAL_CELL not in alice[:10] + alice[20:]
    assert other[56:59] == PROVISIONAL_CELL * 3
    assert [s.speaker for s in view.speaking_now()] == ["SPEAKER_00"]
    screen = _text(view)
    assert "speaking now: SPEAKER_00 (0.70)" in screen and "label latency 0.80 s" in screen
    assert re.search(r"Alice .* 5\.0 s", screen)


def test_old_segments_scroll_out_but_totals_stay():
    view = LiveView(timeline_s=30.0)
    view.update(Update([Segment("Bob", 1.0, 4.0, 0.8, True)], [], 5.0))
    view.update(Update([], [], 100.0))
    assert view.tracks["Bob"].recent == [] and view.tracks["Bob"].talk_s == pytest.approx(3.0)
    assert FINAL_CELL not in view.timeline(view.tracks["Bob"]).plain
