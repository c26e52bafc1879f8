"""Issue 2's acceptance: `streamdiar file` on an 8-minute recording, timed as a whole process.

The recording is real speech (the real_dev files end to end, repeated to length), written to a
temporary WAV; the command runs in a fresh interpreter and the wall clock includes its start-up,
model loading, decoding and writing the RTTM. Target: wall time <= 0.1 x audio duration.
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import soundfile as sf

from bench.audio import REPO, looped, speech
from streamdiar import SAMPLE_RATE

TARGET_RATIO = 0.1


def file_mode(minutes: float = 8.0, threads: int = 0, timeout_s: float = 600) -> dict:
    audio = speech()
    samples = round(minutes * 60 * SAMPLE_RATE)
    with tempfile.TemporaryDirectory() as tmp:
        wav, rttm = Path(tmp) / "long.wav", Path(tmp) / "long.rttm"
        sf.write(wav, looped(audio, 0, samples), SAMPLE_RATE, subtype="PCM_16")
        command = [sys.executable, "-m", "streamdiar", "file", str(wav), "--rttm", str(rttm)]
        if threads:
            command += ["--threads", str(threads)]
        started = time.perf_counter()
        done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=timeout_s)
        wall = time.perf_counter() - started
        if done.returncode != 0:
            raise RuntimeError(f"streamdiar file failed: {done.stderr.strip().splitlines()[-1:]}")
        segments = sum(1 for line in rttm.read_text().splitlines() if line.startswith("SPEAKER"))
    duration = samples / SAMPLE_RATE
    return {"audio_s": duration, "wall_s": round(wall, 2), "ratio": round(wall / duration, 4),
            "target_ratio": TARGET_RATIO, "meets_target": wall / duration <= TARGET_RATIO, "segments": segments}
