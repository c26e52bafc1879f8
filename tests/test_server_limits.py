"""Limits and access control of a real server on loopback: each exceeded limit ends only the
offending session with the protocol's error; tokens, origins and TLS."""
from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
import urllib.request

import pytest
import websockets
from websockets.asyncio.client import connect

from streamdiar.server.background import BackgroundServer
from streamdiar.server.options import Access, Limits, ServerOptions
from tests.server_testkit import STOP, Outcome, exchange, read_all, sample_audio, start_message, stream

TOKEN = "correct horse battery staple"
SPEECH = (sample_audio()[8 * 16000 : 12 * 16000] * 32767).astype("<i2").tobytes()  # 4 s of speech


@pytest.fixture(scope="module")
def limited(diarizer):
    limits = Limits(max_sessions=2, max_frame_bytes=4096, handshake_timeout_s=0.5, idle_timeout_s=0.7,
                    max_session_s=1.5)
    with BackgroundServer(diarizer, ServerOptions(port=0, limits=limits)) as running:
        yield running


@pytest.fixture(scope="module")
def guarded(diarizer):
    access = Access(token=TOKEN, allowed_origins=("https://app.example",))
    with BackgroundServer(diarizer, ServerOptions(port=0, access=access)) as running:
        yield running


async def test_max_sessions(limited):
    async with connect(limited.url) as a, connect(limited.url) as b:
        for ws in (a, b):
            await ws.send(start_message())
            assert '"ready"' in await ws.recv()
        third = await exchange(limited.url, start_message())
        assert third.error_code() == "overloaded" and third.close_code == 1013
        # the two open sessions are untouched by the refusal
        for ws in (a, b):
            await ws.send(SPEECH[:4000])
            await ws.send(STOP)
            outcome = await read_all(ws, Outcome())
            assert outcome.last == {"type": "done", "samples": 2000, "seconds": 0.125, "reason": "stop"}


async def test_frame_size_limit(limited):
    outcome = await exchange(limited.url, start_message(), b"\x00" * 4096, b"\x00" * 4098)
    assert outcome.error_code() == "too_large" and outcome.close_code == 1009
    assert "4098" in outcome.last["message"]


async def test_handshake_timeout(limited):
    async with connect(limited.url) as ws:
        outcome = await read_all(ws, Outcome(), timeout=5)
    assert outcome.error_code() == "timeout" and outcome.close_code == 1008


async def test_idle_timeout(limited):
    async with connect(limited.url) as ws:
        await ws.send(start_message())
        await ws.send(SPEECH[:3200])
        outcome = await read_all(ws, Outcome(), timeout=5)
    assert outcome.events[0]["type"] == "ready"
    assert outcome.error_code() == "timeout" and outcome.close_code == 1008


async def test_max_session_length_keeps_the_labels(limited):
    audio = sample_audio()[8 * 16000 : 12 * 16000]
    outcome = await stream(limited.url, audio, block_s=0.05, pace=1.0)
    assert outcome.error_code() == "session_too_long" and outcome.close_code == 1008
    # the audio received before the limit is finished and labelled; samples says how much
    assert 0 < outcome.last["samples"] < audio.size
    assert outcome.last["seconds"] == pytest.approx(outcome.last["samples"] / 16000)


async def test_token_in_start_message(guarded):
    assert (await exchange(guarded.url, start_message())).error_code() == "unauthorized"
    wrong = await exchange(guarded.url, start_message(token="correct horse"))
    assert wrong.error_code() == "unauthorized" and wrong.close_code == 1008
    ok = await exchange(guarded.url, start_message(token=TOKEN), SPEECH, STOP)
    assert ok.events[0]["type"] == "ready" and ok.last["type"] == "done"


async def test_token_as_bearer_header(guarded):
    ok = await exchange(guarded.url, start_message(), SPEECH, STOP, headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.last["type"] == "done"
    with pytest.raises(websockets.InvalidStatus) as info:
        await exchange(guarded.url, start_message(), headers={"Authorization": "Bearer nope"})
    assert info.value.response.status_code == 401


async def test_origins(guarded):
    with pytest.raises(websockets.InvalidStatus) as info:
        await exchange(guarded.url, start_message(), origin="https://evil.example")
    assert info.value.response.status_code == 403
    page_origin = guarded.page_url.rstrip("/")
    for origin in (page_origin, "https://app.example"):
        ok = await exchange(guarded.url, start_message(token=TOKEN), SPEECH, STOP, origin=origin)
        assert ok.last["type"] == "done", origin


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed: cannot make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


async def test_wss_with_certificate(diarizer, certificate):
    cert, key = certificate
    access = Access(certfile=str(cert), keyfile=str(key))
    context = ssl.create_default_context(cafile=str(cert))
    with BackgroundServer(diarizer, ServerOptions(port=0, access=access)) as running:
        assert running.url.startswith("wss://")
        ok = await exchange(running.url, start_message(), SPEECH, STOP, ssl=context)
        assert ok.last["type"] == "done"
        page = await asyncio.to_thread(lambda: urllib.request.urlopen(running.page_url, context=context, timeout=10).read())
        assert b"streamdiar" in page
        with pytest.raises(ssl.SSLCertVerificationError):
            await exchange(running.url, start_message(), ssl=ssl.create_default_context())


def test_limits_are_validated():
    with pytest.raises(ValueError, match="max-sessions"):
        Limits(max_sessions=0).check()
    with pytest.raises(ValueError, match="idle-timeout"):
        Limits(idle_timeout_s=0).check()
    with pytest.raises(ValueError, match="send-buffer-bytes"):
        Limits(send_buffer_bytes=100).check()
