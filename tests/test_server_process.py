"""`streamdiar serve` and `streamdiar client` as real processes: the CLI client writes RTTM, and
SIGTERM with open sessions gives each its final segments, `done` and a going-away close."""
from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from streamdiar.evaluate.der import read_rttm
from websockets.asyncio.client import connect

from tests.server_testkit import SAMPLE, Outcome, read_all, sample_audio, stream

START_TIMEOUT_S = 90


@pytest.fixture(scope="module")
def serve_process():
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([sys.executable, "-m", "streamdiar", "serve", "--port", "0", "--threads", "1"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    url = None
    deadline = time.monotonic() + START_TIMEOUT_S
    lines = []
    while time.monotonic() < deadline and process.poll() is None:
        line = process.stderr.readline()
        lines.append(line)
        match = re.search(r"serving (ws://\S+)", line)
        if match:
            url = match.group(1)
            break
    if url is None:
        process.kill()
        pytest.fail(f"streamdiar serve did not start: {''.join(lines)}")
    yield process, url
    if process.poll() is None:
        process.kill()
    process.wait(10)


def test_cli_client_streams_a_file_and_writes_rttm(serve_process, tmp_path):
    _, url = serve_process
    rttm = tmp_path / "out.rttm"
    result = subprocess.run([sys.executable, "-m", "streamdiar", "client", str(SAMPLE), "--url", url, "--pace", "0",
                             "--rttm", str(rttm)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "speaking now" in result.stdout and "final" in result.stdout
    assert "30.0 s of audio" in result.stderr
    segments = read_rttm(rttm)["sample"]
    assert len(segments) > 0 and segments.get_timeline().extent().end <= 30.0


def test_cli_client_reports_errors_in_one_line(serve_process):
    _, url = serve_process
    refused = subprocess.run([sys.executable, "-m", "streamdiar", "client", str(SAMPLE), "--url",
                              url.replace("/v1/stream", "/v2/stream")], capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0 and "Traceback" not in refused.stderr and "404" in refused.stderr


async def test_sigterm_finishes_open_sessions(serve_process):
    process, url = serve_process
    audio = sample_audio()
    sessions = [asyncio.create_task(stream(url, audio, pace=2.0)) for _ in range(2)]
    async with connect(url) as waiting:  # connected, start not sent yet
        await asyncio.sleep(6.0)  # about 12 s of audio each: the first turns are final by now
        process.send_signal(signal.SIGTERM)
        outcomes = await asyncio.gather(*sessions)
        assert (await read_all(waiting, Outcome(), timeout=10)).close_code == 1001
    assert await asyncio.to_thread(process.wait, 30) == 0
    for outcome in outcomes:
        done = outcome.last
        assert done["type"] == "done" and done["reason"] == "shutdown", outcome.events[-2:]
        assert outcome.close_code == 1001
        assert 0 < done["samples"] <= outcome.sent < audio.size
        finals = outcome.finals()
        assert finals, "no final segments before the shutdown"
        assert max(e["end"] for e in finals) <= done["seconds"] + 1e-6
    assert "Traceback" not in process.stderr.read()
