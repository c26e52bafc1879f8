"""Protocol v1 against a real server on loopback: real audio, concurrent sessions, every bad
input from the reliability issue, and a live fuzz. The client side uses only the protocol text."""
from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request

import numpy as np
import pytest
import websockets
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamdiar.audio import load_audio
from streamdiar.engine.pipeline import diarize_file
from streamdiar.server.background import BackgroundServer
from streamdiar.server.options import ServerOptions
from streamdiar.server.server import profile_hook
from tests.server_testkit import (SAMPLE, STOP, as_format, der, der_of_segments, exchange, sample_audio,
                                  start_message, stream)

DER_POINTS = 0.02  # a session's DER stays within 2 points of `streamdiar file` on the same audio


@pytest.fixture(scope="module")
def file_mode(diarizer):
    """The file path's final segments and DER on sample.wav (computed before the server runs:
    only one thread may use the Diarizer at a time)."""
    _, finals = asyncio.run(diarize_file(diarizer, SAMPLE))
    return finals, der_of_segments(finals)


@pytest.fixture(scope="module")
def profiles(diarizer, tmp_path_factory):
    """A profile folder holding "Ada", enrolled from one speaker's turns in sample.wav (before the
    server runs, for the same one-thread reason)."""
    from streamdiar.speakers import ProfileStore, enroll, make_profile

    audio = sample_audio()
    turns = [audio[int(a * 16000) : int(b * 16000)] for a, b in ((10.6, 14.7), (18.1, 21.5))]
    enrollment = enroll(diarizer.featurizer, turns)
    folder = tmp_path_factory.mktemp("profiles")
    ProfileStore(folder).save(make_profile("Ada", enrollment.embeddings, enrollment.speech_s, ["sample.wav"],
                                           diarizer.featurizer.config))
    return folder


@pytest.fixture(scope="module")
def server(diarizer, file_mode, profiles):
    with BackgroundServer(diarizer, ServerOptions(port=0)) as running:
        yield running


@pytest.fixture(scope="module")
def profile_server(diarizer, server, profiles):
    with BackgroundServer(diarizer, ServerOptions(port=0), apply_profiles=profile_hook(str(profiles))) as running:
        yield running


def status(server) -> dict:
    with urllib.request.urlopen(server.page_url + "v1/status", timeout=10) as response:
        return json.load(response)


async def test_http_page_status_and_unknown_paths(server):
    with urllib.request.urlopen(server.page_url, timeout=10) as response:
        page = response.read().decode()
        assert response.headers["Content-Type"].startswith("text/html")
        assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert 'src="app.js"' in page
    for path in ("app.js", "worklet.js", "style.css"):
        with urllib.request.urlopen(server.page_url + path, timeout=10) as response:
            assert response.status == 200 and response.read()
    assert status(server)["protocol"] == 1
    for path, code in (("nope", 404), ("v1/stream", 426)):
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(server.page_url + path, timeout=10)
        assert info.value.code == code


async def test_session_on_real_audio_matches_file_mode(server, file_mode):
    audio = sample_audio()
    outcome = await stream(server.url, audio)
    events = outcome.events
    assert events[0]["type"] == "ready" and events[0]["protocol"] == 1 and events[0]["session"]
    assert outcome.last == {"type": "done", "samples": audio.size, "seconds": 30.0, "reason": "stop"}
    assert outcome.close_code == 1000
    segments = [e for e in events if e["type"] == "segment"]
    assert segments, "no segment events"
    for e in segments:
        assert set(e) >= {"speaker", "start", "end", "final", "confidence", "revision", "audio_s"}
        assert 0 <= e["start"] < e["end"] <= 30.0 and 0 <= e["confidence"] <= 1
    revisions = [e["revision"] for e in segments]
    assert revisions == sorted(revisions)
    _, file_der = file_mode
    assert abs(der(events) - file_der) <= DER_POINTS, (der(events), file_der)


async def test_four_concurrent_sessions_in_every_format(server, file_mode):
    audio = sample_audio()
    formats = [(16000, "pcm_s16le", 1), (44100, "pcm_f32le", 2), (8000, "pcm_s16le", 1), (48000, "pcm_s16le", 2)]
    outcomes = await asyncio.gather(*[stream(server.url, as_format(audio, rate, ch), rate, enc, block_s=0.25)
                                      for rate, enc, ch in formats])
    _, file_der = file_mode
    for (rate, enc, ch), outcome in zip(formats, outcomes):
        assert outcome.last["type"] == "done", (rate, outcome.last)
        assert outcome.last["samples"] == outcome.sent
        assert outcome.last["seconds"] == pytest.approx(outcome.sent / rate)
        if rate >= 16000:  # 8 kHz loses the upper half of the voice band: no DER promise there
            assert abs(der(outcome.events) - file_der) <= DER_POINTS, (rate, der(outcome.events), file_der)
        else:
            assert outcome.finals(), "8 kHz session produced no final segments"


async def test_odd_sample_rate_is_cheap(server):
    """47999 Hz has no cheap exact ratio to 16 kHz; the session must not stall the engine."""
    speech = sample_audio()[: 16000 * 4]
    times = np.arange(round(speech.size * 47999 / 16000)) / 47999
    audio = np.interp(times, np.arange(speech.size) / 16000, speech).astype(np.float32)  # cheap, good enough
    started = asyncio.get_running_loop().time()
    outcome = await stream(server.url, audio, 47999)
    assert outcome.last == {"type": "done", "samples": len(audio), "seconds": round(len(audio) / 47999, 6),
                            "reason": "stop"}
    assert asyncio.get_running_loop().time() - started < 10


async def test_paced_sessions_get_labels_as_they_speak(server):
    """Four live-paced streams at once: labels arrive while the audio plays, not at the end."""
    excerpt = sample_audio()[8 * 16000 : 18 * 16000]  # 10 s of dense speech
    pace = 2.0
    outcomes = await asyncio.gather(*[stream(server.url, excerpt, pace=pace) for _ in range(4)])
    for outcome in outcomes:
        assert outcome.last["type"] == "done"
        lags = [arrived - outcome.start_wall - e["audio_s"] / pace
                for e, arrived in zip(outcome.events, outcome.arrivals) if e["type"] == "segment"]
        assert lags, "no segments"
        # an event about audio time t arrives soon after t was sent (the engine keeps up)
        assert max(lags) < 2.0, max(lags)


async def test_tail_after_stop_is_labelled(server):
    """Stop in the middle of speech: the last turn still becomes a final segment up to the end."""
    audio = sample_audio()[: int(20.0 * 16000)]  # speaker90 talks from 18.05 to 21.5 s
    outcome = await stream(server.url, audio)
    assert outcome.last["samples"] == audio.size
    ends = [e["end"] for e in outcome.finals()]
    assert max(ends) == pytest.approx(20.0, abs=0.6), ends
    assert max(ends) <= 20.0


F32_BAD = np.array([0.1, np.nan, np.inf, -np.inf], "<f4").tobytes()


@pytest.mark.parametrize("name, messages, code, close", [
    ("binary before start", [b"\x00\x00" * 10], "bad_request", 1008),
    ("invalid JSON", ["{not json"], "bad_request", 1008),
    ("unknown type", ['{"type":"pause"}'], "bad_request", 1008),
    ("stop before start", [STOP], "bad_request", 1008),
    ("rate too high", [start_message(rate=96000)], "unsupported", 1003),
    ("rate absurd", [start_message(rate=-1)], "unsupported", 1003),
    ("rate as text", [start_message(rate="16k")], "bad_request", 1008),
    ("channels 3", [start_message(channels=3)], "unsupported", 1003),
    ("channels float", [start_message(channels=1.5)], "bad_request", 1008),
    ("encoding mp3", [start_message(encoding="mp3")], "unsupported", 1003),
    ("encoding null", [start_message(encoding=None)], "bad_request", 1008),
    ("profiles without a store", [start_message(profiles=["ada"])], "unsupported", 1003),
    ("config not allowed key", [start_message(config={"weights": "x"})], "bad_request", 1008),
    ("half a sample", [start_message(), b"\x00\x00\x00"], "bad_request", 1008),
    ("half a stereo frame", [start_message(channels=2), b"\x00" * 6], "bad_request", 1008),
    ("NaN and Inf floats", [start_message(encoding="pcm_f32le"), F32_BAD], "bad_request", 1008),
    ("stop before audio", [start_message(), STOP], "bad_request", 1008),
    ("start twice", [start_message(), start_message()], "bad_request", 1008),
    ("unknown type mid-session", [start_message(), b"\x00\x00" * 1600, '{"type":"flush"}'], "bad_request", 1008),
    ("oversized frame", [start_message(), b"\x00" * ((1 << 20) + 2)], "too_large", 1009),
])
async def test_bad_input_gets_an_error_and_a_fitting_close(server, name, messages, code, close):
    outcome = await exchange(server.url, *messages)
    assert outcome.error_code() == code, (name, outcome.events)
    assert outcome.last["message"] and outcome.close_code == close, name


async def test_audio_after_stop(server):
    """Stop, then audio before the server has answered: an error (the stop was final)."""
    audio = sample_audio()[: 16000 * 3]
    frame = (audio * 32767).astype("<i2").tobytes()
    outcome = await exchange(server.url, start_message(), frame, STOP, frame)
    types = [e["type"] for e in outcome.events]
    # either the server had already finished (done) or it refuses the late audio
    assert types[-1] in ("done", "error")
    if types[-1] == "error":
        assert outcome.error_code() == "bad_request" and "after stop" in outcome.last["message"]


async def test_giant_frame_is_cut_off_by_the_transport(server):
    """Beyond twice the frame limit websockets closes (1009) before reading the frame at all."""
    outcome = await exchange(server.url, start_message(), b"\x00" * (3 << 20))
    assert outcome.close_code == 1009


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(
    st.binary(max_size=64),
    st.text(max_size=60),
    st.fixed_dictionaries({"type": st.sampled_from(["start", "stop", "x"])},
                          optional={"sample_rate": st.one_of(st.integers(0, 60000), st.text(max_size=5)),
                                    "encoding": st.sampled_from(["pcm_s16le", "pcm_f32le", "?"]),
                                    "channels": st.integers(-1, 3)}).map(json.dumps)), min_size=1, max_size=5))
def test_live_fuzz_never_hurts_the_server(server, messages):
    outcome = asyncio.run(exchange(server.url, *messages, STOP, timeout=10))
    kinds = [e["type"] for e in outcome.events]
    assert set(kinds) <= {"ready", "segment", "done", "error"}
    assert outcome.close_code is not None
    if outcome.close_code not in (1000,):
        assert kinds and kinds[-1] == "error", (messages, outcome.events, outcome.close_code)


async def test_server_healthy_after_abuse(server, file_mode):
    """After everything above, a well-behaved session still gets its DER; nothing is left open."""
    outcome = await stream(server.url, sample_audio())
    assert outcome.last["type"] == "done"
    assert abs(der(outcome.events) - file_mode[1]) <= DER_POINTS
    for _ in range(50):
        if status(server)["sessions"] == 0:
            break
        await asyncio.sleep(0.1)
    assert status(server)["sessions"] == 0


async def test_session_config_overrides(server):
    audio = load_audio(SAMPLE)
    outcome = await stream(server.url, audio, config={"max_speakers": 1, "labels": {"min_segment_s": 1.0}})
    assert outcome.last["type"] == "done"
    finals = outcome.finals()
    assert len({e["speaker"] for e in finals}) <= 1
    assert all(e["end"] - e["start"] >= 1.0 - 1e-6 for e in finals)


async def test_profiles_name_enrolled_speakers(profile_server):
    async with websockets.connect(profile_server.url) as ws:
        await ws.send(start_message(profiles=["Ada"], config={"max_speakers": 3}))
        ready = json.loads(await ws.recv())
        tracker = profile_server.call(lambda: profile_server.server.sessions[ready["session"]].stream.state.tracker)
        assert [s.label for s in tracker.speakers] == ["Ada"] and tracker.max_speakers == 3
        await ws.send(STOP)
        assert json.loads(await ws.recv())["code"] == "bad_request"  # stop before any audio
    unknown = await exchange(profile_server.url, start_message(profiles=["Bob"]))
    assert unknown.error_code() == "bad_request" and "Bob" in unknown.last["message"]
    named = await stream(profile_server.url, sample_audio(), profiles=["Ada"])
    assert named.last["type"] == "done"
