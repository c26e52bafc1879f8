"""Resident memory of one long stream, fed faster than real time.

Runs in a fresh process (`python -m bench.memory`) so that nothing else the suite did is in its
resident set: one Diarizer, one stream, real speech pushed a step at a time for `minutes`
minutes of audio; the process's RSS is read after each minute of audio.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys

from bench.audio import REPO, looped, speech
from streamdiar import SAMPLE_RATE, Diarizer, load_config


def rss_mb() -> float:
    """Current resident set size; where /proc is missing, the peak (an upper bound)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def feed(minutes: int, threads: int) -> dict:
    diarizer = Diarizer(load_config(threads=threads))
    audio = speech()
    stream = diarizer.open_stream("memory")
    step = diarizer.step_samples
    per_minute = 60 * SAMPLE_RATE
    by_minute = {}
    for start in range(0, minutes * per_minute, step):
        stream.push(looped(audio, start, step))
        if (start + step) % per_minute < step:
            by_minute[(start + step) // per_minute] = round(rss_mb(), 1)
    speakers = len(stream.state.tracker.speakers)
    stream.finish()
    return {"rss_mb_by_minute": by_minute, "speakers": speakers}


def measure(minutes: int, threads: int, timeout_s: float) -> dict:
    """Run `feed` in a fresh interpreter and summarise: RSS after 5 and 60 minutes, growth."""
    command = [sys.executable, "-m", "bench.memory", "--minutes", str(minutes), "--threads", str(threads)]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=timeout_s)
    if done.returncode != 0:
        raise RuntimeError(f"bench.memory failed: {done.stderr.strip().splitlines()[-1:]}")
    result = json.loads(done.stdout)
    series = {int(k): v for k, v in result["rss_mb_by_minute"].items()}
    at5, at60 = series.get(5), series.get(60)
    return {
        "rss_mb_5min": at5,
        "rss_mb_60min": at60,
        "growth_5_to_60_pct": round(100 * (at60 - at5) / at5, 2) if at5 and at60 else None,
        "rss_mb_by_minute": {str(k): series[k] for k in sorted(series)},
        "speakers_found": result["speakers"],
        "minutes_fed": minutes,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.memory")
    parser.add_argument("--minutes", type=int, default=60)
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    print(json.dumps(feed(args.minutes, args.threads)))


if __name__ == "__main__":
    main()
