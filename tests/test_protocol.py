"""Protocol v1 parsing and validation (no server): every bad message is a ProtocolError with a
code from the protocol, never another exception; a hypothesis fuzz checks that for any input."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamdiar.config import load_config
from streamdiar.engine.labels import Segment
from streamdiar.server.access import bearer_token, is_public, origin_allowed, public_bind_warning, tokens_equal
from streamdiar.server.options import DEFAULT_ALLOWED_CONFIG, Access
from streamdiar.server.overrides import session_settings
from streamdiar.server.protocol import (CLOSE_CODES, ERROR_CODES, MAX_TEXT_BYTES, AudioFormat, ProtocolError,
                                        StartMessage, StopMessage, decode_frame, done_event, parse_text,
                                        segment_event)

START = {"type": "start", "sample_rate": 16000, "encoding": "pcm_s16le", "channels": 1}


def start(**changes) -> str:
    return json.dumps({**START, **changes})


def code_of(text: str) -> str:
    with pytest.raises(ProtocolError) as info:
        parse_text(text)
    return info.value.code


def test_start_and_stop_parse():
    message = parse_text(start(token="t", config={"num_speakers": 2}, profiles=["ada"]))
    assert isinstance(message, StartMessage)
    assert message.audio == AudioFormat(16000, "pcm_s16le", 1)
    assert (message.token, message.config, message.profiles) == ("t", {"num_speakers": 2}, ("ada",))
    assert isinstance(parse_text('{"type":"stop"}'), StopMessage)
    for rate in (8000, 22050, 44100, 48000):
        assert parse_text(start(sample_rate=rate, encoding="pcm_f32le", channels=2)).audio.sample_rate == rate


@pytest.mark.parametrize("text, code", [
    ("not json", "bad_request"),
    ("[1, 2]", "bad_request"),
    ('{"type": "hello"}', "bad_request"),
    ('{"no_type": 1}', "bad_request"),
    ('{"type": 5}', "bad_request"),
    ('{"type":"start","sample_rate":NaN,"encoding":"pcm_s16le","channels":1}',
     "bad_request"),
    (start(sample_rate="16000"), "bad_request"),
    (start(sample_rate=16000.0), "bad_request"),
    (start(sample_rate=True), "bad_request"),
    (start(sample_rate=7999), "unsupported"),
    (start(sample_rate=48001), "unsupported"),
    (start(sample_rate=-16000), "unsupported"),
    (start(sample_rate=10**30), "unsupported"),
    (start(encoding="mp3"), "unsupported"),
    (start(encoding=["pcm_s16le"]), "bad_request"),
    (start(channels=0), "unsupported"),
    (start(channels=6), "unsupported"),
    (start(channels="1"), "bad_request"),
    (start(protocol=2), "unsupported"),
    (start(token=123), "bad_request"),
    (start(config=[1]), "bad_request"),
    (start(profiles="ada"), "bad_request"),
    (start(profiles=[""]), "bad_request"),
    (start(extra=1), "bad_request"),
    ('{"type":"stop","now":true}', "bad_request"),
    (json.dumps({k: v for k, v in START.items() if k != "encoding"}), "bad_request"),
    ("[" * 100000 + "]" * 100000, "too_large"),
    ("[" * 30000 + "]" * 30000, "bad_request"),  # deep nesting: RecursionError, answered as bad JSON
])
def test_bad_messages_get_protocol_codes(text, code):
    assert code_of(text) == code


def test_every_code_has_a_close_code():
    assert set(ERROR_CODES) == set(CLOSE_CODES)
    assert all(1000 <= c < 5000 for c in CLOSE_CODES.values())


def test_decode_frame_formats():
    mono16 = AudioFormat(16000, "pcm_s16le", 1)
    assert np.allclose(decode_frame(np.array([0, 16384, -32768], "<i2").tobytes(), mono16), [0, 0.5, -1])
    stereo32 = AudioFormat(44100, "pcm_f32le", 2)
    out = decode_frame(np.array([0.5, -0.5, 1.0, 0.0, 3.0, 3.0], "<f4").tobytes(), stereo32)
    assert np.allclose(out, [0.0, 0.5, 1.0])  # downmixed, clipped to [-1, 1]
    assert decode_frame(b"", mono16).size == 0


@pytest.mark.parametrize("payload, audio", [
    (b"\x00", AudioFormat(16000, "pcm_s16le", 1)),
    (b"\x00" * 6, AudioFormat(16000, "pcm_s16le", 2)),
    (b"\x00" * 6, AudioFormat(16000, "pcm_f32le", 1)),
    (np.array([0.1, np.nan], "<f4").tobytes(), AudioFormat(16000, "pcm_f32le", 1)),
    (np.array([np.inf, 0.0], "<f4").tobytes(), AudioFormat(16000, "pcm_f32le", 2)),
])
def test_decode_frame_rejects(payload, audio):
    with pytest.raises(ProtocolError) as info:
        decode_frame(payload, audio)
    assert info.value.code == "bad_request"


def test_events_are_json_with_the_documented_fields():
    event = json.loads(segment_event(Segment("SPEAKER_00", 1.0, 2.5, 0.93, False), 7, 3.0))
    assert event == {"type": "segment", "speaker": "SPEAKER_00", "start": 1.0, "end": 2.5, "final": False,
                     "confidence": 0.93, "revision": 7, "audio_s": 3.0}
    assert json.loads(segment_event(Segment("A", 0, 1, math.nan, True), 1, 1))["confidence"] == 0.0
    assert json.loads(done_event(44100, 44100)) == {"type": "done", "samples": 44100, "seconds": 1.0, "reason": "stop"}


def test_session_config_policy():
    base = load_config()
    assert session_settings(base, {}, DEFAULT_ALLOWED_CONFIG) is None
    settings = session_settings(base, {"tracker": {"max_speakers": 3}, "labels": {"onset": 0.4}, "num_speakers": 2},
                                DEFAULT_ALLOWED_CONFIG)
    assert (settings.tracker.max_speakers, settings.labels.onset, settings.num_speakers) == (3, 0.4, 2)
    assert settings.tracker.memory_size == base.tracker.memory_size
    for bad, code in [({"tracker": {"max_speakers": 10**6}}, "bad_request"),
                      ({"tracker": {"nonsense": 1}}, "bad_request"),
                      ({"tracker": {"assign_similarity": "high"}}, "bad_request"),
                      ({"labels": {"onset": 2}}, "bad_request"),
                      ({"num_speakers": 0}, "bad_request"),
                      ({"min_speakers": 3, "max_speakers": 2}, "bad_request"),
                      ({"weights": "/etc/passwd"}, "bad_request"),
                      ({"tracker": 5}, "bad_request")]:
        with pytest.raises(ProtocolError) as info:
            session_settings(base, bad, DEFAULT_ALLOWED_CONFIG)
        assert info.value.code == code, bad
    with pytest.raises(ProtocolError) as info:
        session_settings(base, {"tracker": {"max_speakers": 3}}, frozenset({"num_speakers"}))
    assert info.value.code == "unsupported"


def test_access_helpers():
    assert tokens_equal("s3cret", "s3cret") and not tokens_equal("s3cre", "s3cret") and not tokens_equal("", "x")
    assert bearer_token("Bearer abc") == "abc" and bearer_token("bearer  abc ") == "abc"
    assert bearer_token("Basic abc") == "" and bearer_token(None) is None
    access = Access(allowed_origins=("https://app.example",))
    assert origin_allowed(None, "127.0.0.1:7007", access)  # programs send no Origin
    assert origin_allowed("http://127.0.0.1:7007", "127.0.0.1:7007", access)  # the server's own page
    assert origin_allowed("https://app.example", "127.0.0.1:7007", access)
    assert not origin_allowed("https://evil.example", "127.0.0.1:7007", access)
    assert not origin_allowed("http://127.0.0.1:7008", "127.0.0.1:7007", access)
    assert origin_allowed("https://evil.example", "x", Access(allowed_origins=("*",)))
    assert [is_public(h) for h in ("127.0.0.1", "::1", "localhost", "0.0.0.0", "192.168.1.5", "example.org")] == \
        [False, False, False, True, True, True]
    assert public_bind_warning("0.0.0.0", None) and not public_bind_warning("0.0.0.0", "t")
    assert not public_bind_warning("127.0.0.1", None)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12)
start_like = st.fixed_dictionaries({"type": st.sampled_from(["start", "stop", "Start", ""])}, optional={
    "sample_rate": st.one_of(st.integers(-10**6, 10**6), json_values),
    "encoding": st.one_of(st.sampled_from(["pcm_s16le", "pcm_f32le", "PCM"]), json_values),
    "channels": st.one_of(st.integers(-3, 3), json_values),
    "token": json_values, "config": json_values, "profiles": json_values, "protocol": json_values})


def _check_parse(text: str) -> None:
    try:
        message = parse_text(text)
    except ProtocolError as exc:
        assert exc.code in ERROR_CODES and exc.message and "\n" not in exc.message
        return
    assert isinstance(message, (StartMessage, StopMessage))
    if isinstance(message, StartMessage):
        assert 8000 <= message.audio.sample_rate <= 48000 and message.audio.channels in (1, 2)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(max_size=200), json_values.map(json.dumps), start_like.map(json.dumps)))
def test_fuzz_parser_never_raises_anything_else(text):
    _check_parse(text)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64), st.sampled_from(["pcm_s16le", "pcm_f32le"]), st.sampled_from([1, 2]))
def test_fuzz_frames(payload, encoding, channels):
    audio = AudioFormat(16000, encoding, channels)
    try:
        samples = decode_frame(payload, audio)
    except ProtocolError as exc:
        assert exc.code == "bad_request"
        return
    assert samples.dtype == np.float32 and np.isfinite(samples).all() and np.abs(samples).max(initial=0) <= 1
    assert samples.size * audio.frame_bytes == len(payload)


def test_text_limit_counts_bytes():
    assert code_of('{"type":"stop","x":"' + "é" * (MAX_TEXT_BYTES // 2) + '"}') == "too_large"


def test_resampling_rate_is_exact_for_common_rates_and_close_for_any():
    from streamdiar.server.server import MAX_RESAMPLE_PHASES, resampling_rate

    for rate in (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000):
        assert resampling_rate(rate) == rate
    for rate in range(8000, 48001):
        snapped = resampling_rate(rate)
        assert abs(snapped - rate) <= 0.001 * rate
        assert snapped // math.gcd(snapped, 16000) <= MAX_RESAMPLE_PHASES
