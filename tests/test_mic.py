"""Microphone capture with a fake PortAudio input stream (never a real device)."""
from __future__ import annotations

import asyncio
import os
import signal
import threading
import time

import numpy as np
import pytest

from streamdiar.audio import SAMPLE_RATE, load_audio, resample
from streamdiar.io import microphone as mic_module
from streamdiar.io.microphone import MicOptions, Microphone, MicrophoneError
from tests.conftest import REAL_DEV

DEVICE_RATE = 44100


class FakeInputStream:
    """Stands in for sounddevice.InputStream: a thread feeds `audio` to the callback in
    PortAudio-sized blocks at `speed` x real time, then calls `on_end`."""

    def __init__(self, audio: np.ndarray, rate: int, speed: float = 0.0, on_end=None, *, callback, **kwargs):
        self.audio, self.samplerate, self.speed, self.on_end = audio, rate, speed, on_end
        self.callback, self.kwargs = callback, kwargs
        self.done = threading.Event()
        self.closed = False
        self._halt = threading.Event()
        self._thread = threading.Thread(target=self._play, daemon=True)

    def _play(self) -> None:
        block = 1024
        started = time.monotonic()
        for pos in range(0, self.audio.size, block):
            if self._halt.is_set():
                return
            chunk = self.audio[pos : pos + block]
            self.callback(chunk.reshape(-1, 1), chunk.size, None, None)
            if self.speed:
                delay = started + (pos + chunk.size) / self.samplerate / self.speed - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
        self.done.set()
        if self.on_end:
            self.on_end()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._halt.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def close(self) -> None:
        self.closed = True


def _device_audio(seconds: float) -> np.ndarray:
    audio = load_audio(REAL_DEV / "sample.wav")[: int(seconds * SAMPLE_RATE)]
    return resample(audio, SAMPLE_RATE, DEVICE_RATE)


async def _capture(mic: Microphone, fake_holder: list, timeout: float = 30.0) -> np.ndarray:
    stop = asyncio.Event()
    blocks = []

    async def stop_when_played() -> None:
        while not fake_holder:
            await asyncio.sleep(0.01)
        await asyncio.to_thread(fake_holder[0].done.wait, timeout)
        stop.set()

    stopper = asyncio.create_task(stop_when_played())
    async with asyncio.timeout(timeout):
        async for block in mic.blocks(stop):
            blocks.append(block)
    await stopper
    return np.concatenate(blocks)


async def test_capture_is_resampled_to_16k_without_loss():
    audio = _device_audio(6.0)
    fakes = []

    def factory(**kwargs):
        assert kwargs["channels"] == 1 and kwargs["dtype"] == "float32"
        fakes.append(FakeInputStream(audio, DEVICE_RATE, **kwargs))
        return fakes[-1]

    mic = Microphone(MicOptions(), input_factory=factory)
    captured = await _capture(mic, fakes)
    expected = resample(audio, DEVICE_RATE, SAMPLE_RATE)
    assert mic.samplerate == DEVICE_RATE and fakes[0].closed
    assert abs(captured.size - expected.size) <= 1
    n = min(captured.size, expected.size)
    np.testing.assert_allclose(captured[:n], expected[:n], atol=1e-3)
    assert mic.dropped_s == 0


async def test_audio_delivered_while_the_device_starts_is_kept():
    # 6 s at 44.1 kHz is more samples than the 10-s queue holds at 16 kHz: the queue limit must
    # be counted at the device's rate from the very first callback
    audio = _device_audio(6.0)
    fakes = []

    class EagerStream(FakeInputStream):
        def start(self) -> None:
            self._play()  # PortAudio may call back before start() returns

    def factory(**kwargs):
        fakes.append(EagerStream(audio, DEVICE_RATE, **kwargs))
        return fakes[-1]

    mic = Microphone(MicOptions(), input_factory=factory)
    captured = await _capture(mic, fakes)
    assert mic.dropped_s == 0
    assert abs(captured.size - resample(audio, DEVICE_RATE, SAMPLE_RATE).size) <= 1


async def test_engine_falling_behind_drops_oldest_audio_and_counts_it():
    audio = _device_audio(8.0)
    fakes = []

    def factory(**kwargs):
        fakes.append(FakeInputStream(audio, DEVICE_RATE, **kwargs))
        return fakes[-1]

    mic = Microphone(MicOptions(queue_s=2.0), input_factory=factory)
    mic.start()
    await asyncio.to_thread(fakes[0].done.wait, 10)  # nobody consumed while 8 s arrived
    captured = await _capture(mic, fakes)
    assert 5.0 < mic.dropped_s < 7.0
    assert captured.size / SAMPLE_RATE == pytest.approx(8.0 - mic.dropped_s, abs=0.1)


@pytest.mark.parametrize("error, shown", [
    (RuntimeError("Error querying device -1"), "no input device found"),
    (ValueError("No input device matching 'usb'"), "No input device matching 'usb'"),
])
async def test_portaudio_errors_become_one_line(error, shown):
    def factory(**kwargs):
        raise error

    with pytest.raises(MicrophoneError) as caught:
        Microphone(MicOptions(device="usb"), input_factory=factory).start()
    message = str(caught.value)
    assert shown in message and message.startswith("microphone: ") and "\n" not in message


async def test_unusable_device_rate_is_reported_and_the_device_closed():
    fakes = []

    def factory(**kwargs):
        fakes.append(FakeInputStream(np.zeros(100, dtype=np.float32), 4000, **kwargs))
        return fakes[-1]

    with pytest.raises(MicrophoneError, match="4000 Hz"):
        Microphone(input_factory=factory).start()
    assert fakes[0].closed


def test_mic_command_runs_until_ctrl_c_and_writes_rttm(monkeypatch, tmp_path, capsys):
    """`streamdiar mic` end to end on a fake device; Ctrl-C (SIGINT) ends it cleanly."""
    from streamdiar.cli import main

    audio = _device_audio(20.0)
    interrupt = lambda: os.kill(os.getpid(), signal.SIGINT)  # noqa: E731 - what a person's Ctrl-C sends
    monkeypatch.setattr(mic_module, "sounddevice_input",
                        lambda **kw: FakeInputStream(audio, DEVICE_RATE, speed=5.0, on_end=interrupt, **kw))
    out = tmp_path / "mic.rttm"
    assert main(["mic", "--threads", "1", "--rttm", str(out)]) == 0
    lines = out.read_text().splitlines()
    assert lines and all(line.startswith("SPEAKER mic 1 ") for line in lines)
    ends = [float(line.split()[3]) + float(line.split()[4]) for line in lines]
    assert 12.0 < max(ends) <= 20.1  # labels cover the audio up to where Ctrl-C came
    shown = capsys.readouterr()
    assert "streamdiar · microphone" in shown.out and "speaking now" in shown.out


def test_mic_command_without_a_device_prints_one_line(monkeypatch, capsys):
    from streamdiar.cli import main

    def no_device(**kwargs):
        raise RuntimeError("Error querying device -1")

    monkeypatch.setattr(mic_module, "sounddevice_input", no_device)
    assert main(["mic", "--threads", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("streamdiar: error: microphone: no input device found")
