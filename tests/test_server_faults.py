"""Faults against a real server on loopback: clients that vanish (mid-frame, mid-session, mid-
handshake), garbage on the port, a client that never reads, an engine failure in one stream;
and the load-shedding policy. After each, other sessions are unharmed and nothing stays open."""
from __future__ import annotations

import asyncio
import json
import socket
import time
import types
import urllib.request

import numpy as np
import pytest
import websockets
from websockets.asyncio.client import connect

from streamdiar.server.background import BackgroundServer
from streamdiar.server.options import Limits, ServerOptions
from streamdiar.server.scheduler import Scheduler
from streamdiar.server.session import State
from tests.server_testkit import Outcome, read_all, sample_audio, start_message, stream

SPEECH = sample_audio()[8 * 16000 : 16 * 16000]
SPEECH_BYTES = (SPEECH * 32767).astype("<i2").tobytes()


@pytest.fixture(scope="module")
def server(diarizer):
    # small buffers so that a client that stops reading fills them quickly
    limits = Limits(max_pending_events=8, send_buffer_bytes=4096)
    with BackgroundServer(diarizer, ServerOptions(port=0, limits=limits)) as running:
        yield running


def status(server) -> dict:
    with urllib.request.urlopen(server.page_url + "v1/status", timeout=10) as response:
        return json.load(response)


def open_sessions(server) -> int:
    return status(server)["sessions"]


async def wait_no_sessions(server, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while open_sessions(server) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert open_sessions(server) == 0


async def well_behaved(server) -> Outcome:
    outcome = await stream(server.url, SPEECH)
    assert outcome.last == {"type": "done", "samples": SPEECH.size, "seconds": SPEECH.size / 16000, "reason": "stop"}
    assert outcome.finals()
    return outcome


async def test_client_vanishes_mid_frame(server):
    async with connect(server.url) as ws:
        await ws.send(start_message())
        await ws.recv()
        await ws.send(SPEECH_BYTES[:32000])
        # a masked binary frame header that announces 4096 bytes, then only 100 of them
        ws.transport.write(bytes([0x82, 0xFE, 0x10, 0x00, 1, 2, 3, 4]) + b"\x00" * 100)
        ws.transport.abort()
    await wait_no_sessions(server)
    await well_behaved(server)


async def test_client_vanishes_mid_session_while_others_stream(server):
    async def vanish():
        async with connect(server.url) as ws:
            await ws.send(start_message())
            await ws.recv()
            for i in range(0, len(SPEECH_BYTES), 6400):
                await ws.send(SPEECH_BYTES[i : i + 6400])
            ws.transport.abort()  # no close frame, no FIN handshake: gone

    outcomes = await asyncio.gather(vanish(), vanish(), well_behaved(server))
    assert outcomes[2].last["type"] == "done"
    await wait_no_sessions(server)


async def test_garbage_and_half_handshakes(server):
    host, port = "127.0.0.1", server.server.port
    for payload in (b"\x16\x03\x01\x02\x00garbage-that-looks-like-tls", b"GET /v1/stream HTTP/1.1\r\nHost: x\r\n",
                    b"\x00" * 5000, b"POST / HTTP/1.1\r\n\r\n"):
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(payload)
        await writer.drain()
        writer.close()
    await well_behaved(server)


def outcome_of(server, session_id: str) -> str:
    session = server.call(lambda: server.server.sessions.get(session_id))
    return session.outcome if session is not None else "closed"


async def flood_without_reading(server, read_in_the_end: bool) -> Outcome:
    """Send speech at 8 x real time and read nothing after `ready` until the server has ended the
    session; then read what arrives, or just keep the connection open and silent."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)  # the kernel's smallest receive buffer
    sock.connect(("127.0.0.1", server.server.port))
    sock.setblocking(False)
    audio = np.tile(SPEECH, 40)  # up to 320 s of speech
    frame = 8000  # 0.5 s: one engine step per frame, so one update (and event) per frame
    async with connect(server.url, sock=sock, max_queue=1) as ws:
        await ws.send(start_message())
        session_id = json.loads(await ws.recv())["session"]
        started = time.monotonic()
        for i in range(0, audio.size, frame):
            await asyncio.sleep(max(0.0, started + i / 16000 / 8 - time.monotonic()))
            await ws.send((audio[i : i + frame] * 32767).astype("<i2").tobytes())
            if i % (4 * frame) == 0 and outcome_of(server, session_id) != "open":
                break
        else:
            pytest.fail("the server kept queueing events for a client that does not read")
        if read_in_the_end:
            return await read_all(ws, Outcome(), timeout=10)  # the error is waiting behind the events
        await wait_no_sessions(server, timeout_s=15)  # the server drops a client that never reads
        return await read_all(ws, Outcome(), timeout=10)


async def test_client_that_never_reads_gets_overloaded(server):
    """A client that sends but never reads fills its bounded event queue: the server ends it with
    `overloaded`, delivered if the client reads again, and drops the connection if it never does."""
    before = status(server)["ended"].get("overloaded", 0)
    reads_again, never_reads = await asyncio.gather(flood_without_reading(server, True),
                                                    flood_without_reading(server, False))
    assert reads_again.error_code() == "overloaded", reads_again.events[-3:]
    assert "not reading" in reads_again.last["message"] and reads_again.close_code == 1013
    assert never_reads.close_code == 1006  # dropped without a closing handshake
    assert status(server)["ended"]["overloaded"] == before + 2
    await wait_no_sessions(server)
    await well_behaved(server)


async def test_engine_failure_ends_only_that_session(server):
    async with connect(server.url) as ws:
        await ws.send(start_message())
        session_id = json.loads(await ws.recv())["session"]

        def poison():  # on the server's loop; the stream has no audio yet, so no round holds it
            server.server.sessions[session_id].stream.state.features = None

        server.call(poison)
        healthy = asyncio.create_task(well_behaved(server))
        for i in range(0, len(SPEECH_BYTES), 16000):
            try:
                await ws.send(SPEECH_BYTES[i : i + 16000])
            except websockets.ConnectionClosed:
                break
        outcome = await read_all(ws, Outcome(), timeout=10)
    assert outcome.error_code() == "internal" and outcome.close_code == 1011
    assert (await healthy).last["type"] == "done"
    await wait_no_sessions(server)


class FakeSession:
    """Just what the shedding policy looks at."""

    def __init__(self, started: float, lag: float):
        self.state = State.OPEN
        self.first_audio = started
        self.started = started
        self.lag = lag
        self.failed: str | None = None

    def lag_s(self, now: float) -> float:
        return self.lag

    def fail(self, code: str, message: str) -> None:
        self.failed = code
        self.state = State.ENDED


async def test_shedding_ends_the_newest_sessions_down_to_capacity():
    config = types.SimpleNamespace(config=types.SimpleNamespace(stream=types.SimpleNamespace(step_s=0.5)))
    scheduler = Scheduler(config, Limits(max_lag_s=2.0))
    now = time.monotonic()
    sessions = [FakeSession(now - 10 + i, lag=1.0) for i in range(5)]
    scheduler.sessions.update(sessions)
    scheduler._shed_if_over_capacity(now)
    assert not any(s.failed for s in sessions), "no stream is behind by more than max_lag: nobody is shed"
    sessions[0].lag = 3.0  # the oldest falls behind: the engine is over capacity
    scheduler._meter.append((now, 1.0, 3.0))  # the engine does 3 s of audio per second of work
    scheduler._shed_if_over_capacity(now)
    assert [s.failed for s in sessions] == [None, None, "overloaded", "overloaded", "overloaded"]
    assert scheduler.strained(now) and scheduler.shed_total == 3
    survivors = sessions[:2]
    survivors[1].lag = 4.0
    scheduler._shed_if_over_capacity(now + 1.0)  # still recovering: no second wave yet
    assert not any(s.failed for s in survivors)
    await scheduler.close()
