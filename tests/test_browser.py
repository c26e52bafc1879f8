"""The browser page end to end: headless Chromium (Debian's) opens `GET /`, its fake microphone
plays a two-speaker recording, the page streams it over protocol v1 from an AudioWorklet, and
labels for two speakers must appear on the page. Driven through the DevTools protocol.

`make system-deps` installs chromium; without it this test is skipped with that reason.
"""
from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
import soundfile
import websockets

from streamdiar.audio import SAMPLE_RATE, load_audio
from streamdiar.engine.pipeline import diarize_file
from streamdiar.server.background import BackgroundServer
from streamdiar.server.options import ServerOptions
from tests.conftest import DEMO

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
TWO_SPEAKERS_S = 75.0  # the fake microphone loops the 30 s recording; two and a half passes
DONE_S = 15.0
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (`make system-deps` installs it)")

PAGE_STATE = """JSON.stringify({
  status: window.streamdiar.status, sent: window.streamdiar.sentS, speakers: window.streamdiar.speakers,
  finals: window.streamdiar.finals.length, done: window.streamdiar.done, error: window.streamdiar.error,
  shown: [...document.querySelectorAll('#speakers li')].map((item) => item.textContent),
  now: document.getElementById('now').textContent})"""


def chromium_args(profile: Path, wav: Path, url: str) -> list[str]:
    return [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={profile}", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={wav}", "--autoplay-policy=no-user-gesture-required",
            "--remote-debugging-port=0", url]


class DevTools:
    """Just enough of the Chrome DevTools Protocol: evaluate JavaScript in the page."""

    def __init__(self, ws):
        self.ws = ws
        self.next_id = 0

    async def evaluate(self, expression: str):
        self.next_id += 1
        await self.ws.send(json.dumps({"id": self.next_id, "method": "Runtime.evaluate",
                                       "params": {"expression": expression, "returnByValue": True}}))
        while True:
            async with asyncio.timeout(10):
                reply = json.loads(await self.ws.recv())
            if reply.get("id") == self.next_id:
                return reply["result"]["result"].get("value")


async def page_target(profile: Path, page_url: str, process: subprocess.Popen) -> str:
    """The DevTools WebSocket of the page: Chromium writes its port into DevToolsActivePort."""
    port_file = profile / "DevToolsActivePort"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, "chromium exited"
        if port_file.is_file() and "\n" in port_file.read_text():
            port = int(port_file.read_text().split()[0])
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as response:
                pages = [t for t in json.load(response) if t["type"] == "page" and t["url"].startswith(page_url)]
            if pages:
                return pages[0]["webSocketDebuggerUrl"]
        await asyncio.sleep(0.2)
    raise AssertionError("chromium did not open the page")


@pytest.fixture(scope="module")
def conversation(tmp_path_factory):
    """The bundled demo conversation (held-out voices) as the WAV chromium's fake capture needs."""
    path = tmp_path_factory.mktemp("audio") / "demo.wav"
    soundfile.write(path, load_audio(DEMO), SAMPLE_RATE, subtype="PCM_16")
    return path


@pytest.fixture(scope="module")
def engine_speakers(diarizer, conversation):
    """How many speakers the engine itself finds in the recording (to tell page bugs from model limits)."""
    _, finals = asyncio.run(diarize_file(diarizer, conversation))
    return sorted({s.speaker for s in finals})


async def test_page_shows_two_speakers_live(diarizer, engine_speakers, conversation, tmp_path):
    with BackgroundServer(diarizer, ServerOptions(port=0)) as server:
        process = subprocess.Popen(chromium_args(tmp_path / "profile", conversation, server.page_url + "?autostart=1"),
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            target = await page_target(tmp_path / "profile", server.page_url, process)
            async with websockets.connect(target, max_size=None) as ws:
                page = DevTools(ws)
                state = await poll(page, lambda s: s and len(s["shown"]) >= 2, TWO_SPEAKERS_S)
                await page.evaluate("document.getElementById('stop').click()")
                final = await poll(page, lambda s: s and (s["done"] or s["error"]), DONE_S)
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(10)
    assert state is not None and state["sent"] > 5, f"the page sent no audio: {state}"
    assert final["error"] is None and final["done"]["samples"] > 0, final
    assert state["shown"] == state["speakers"], "the page's speaker list differs from the labels it received"
    assert len(state["shown"]) >= 2, (f"the page showed {state['shown']} after {state['sent']:.0f} s of audio; "
                                      f"the engine itself finds {engine_speakers} in {conversation.name}")


async def poll(page: DevTools, ready, timeout_s: float) -> dict | None:
    deadline = time.monotonic() + timeout_s
    state = None
    while time.monotonic() < deadline:
        raw = await page.evaluate(f"window.streamdiar ? {PAGE_STATE} : null")
        state = json.loads(raw) if raw else None
        if ready(state):
            return state
        await asyncio.sleep(1.0)
    return state
