"""The Python client API against a real server on loopback."""
from __future__ import annotations

import io

import numpy as np
import pytest

from streamdiar.io.sinks import ConsoleSink
from streamdiar.server.background import BackgroundServer
from streamdiar.server.client import EventPrinter, ServerError, connect, encode, stream_file
from streamdiar.server.options import Access, ServerOptions
from tests.server_testkit import SAMPLE, sample_audio

TOKEN = "t0ken"


@pytest.fixture(scope="module")
def server(diarizer):
    with BackgroundServer(diarizer, ServerOptions(port=0, access=Access(token=TOKEN))) as running:
        yield running


def test_encode_round_trips_within_a_quantisation_step():
    samples = np.array([-1.0, -0.5, 0.0, 0.25, 1.0], dtype=np.float32)
    back = np.frombuffer(encode(samples, "pcm_s16le"), "<i2") / 32768
    assert np.abs(back - samples).max() <= 1 / 32768
    assert np.array_equal(np.frombuffer(encode(samples, "pcm_f32le"), "<f4"), samples)


async def test_stream_file_collects_finals_and_done(server):
    events = []
    result = await stream_file(server.url, SAMPLE, pace=0, on_event=events.append, token=TOKEN)
    assert result.done["samples"] == result.sent == sample_audio().size
    assert result.segments and all(s.final for s in result.segments)
    assert result.first_segment_s is not None
    assert events[-1]["type"] == "done" and any(e["type"] == "segment" and not e["final"] for e in events)


async def test_session_api_with_bearer_token_and_stereo_float(server):
    audio = sample_audio()[8 * 16000 : 12 * 16000]
    stereo = np.repeat(audio[:, None], 2, axis=1)
    async with connect(server.url, sample_rate=16000, encoding="pcm_f32le", channels=2, token=TOKEN,
                       bearer=True) as session:
        assert session.id
        for i in range(0, len(stereo), 4000):
            await session.send(stereo[i : i + 4000])
        await session.stop()
        events = [event async for event in session.events()]
    assert events[-1] == {"type": "done", "samples": len(stereo), "seconds": 4.0, "reason": "stop"}


async def test_server_errors_raise(server):
    with pytest.raises(ServerError) as info:
        async with connect(server.url, token="wrong"):
            pass
    assert info.value.code == "unauthorized"
    async with connect(server.url, token=TOKEN) as session:
        await session.stop()  # before any audio: refused
        with pytest.raises(ServerError) as info:
            async for _ in session.events():
                pass
    assert info.value.code == "bad_request"


async def test_event_printer_groups_one_update():
    out = io.StringIO()
    printer = EventPrinter(ConsoleSink(out), "call")
    base = {"type": "segment", "speaker": "A", "confidence": 0.9}
    printer({**base, "start": 0.0, "end": 1.0, "final": True, "revision": 1, "audio_s": 2.0})
    printer({**base, "start": 1.5, "end": 2.0, "final": False, "revision": 1, "audio_s": 2.0})
    printer({"type": "done", "samples": 1, "seconds": 1.0})
    text = out.getvalue()
    assert "A" in text and "final" in text and "speaking now: A" in text
