"""The live server under load, on loopback: `streamdiar serve` runs as its own process and this
one plays the clients (protocol v1 only), so the figures are the server's alone.

    python -m bench.load_server sessions --count 64 --seconds 60   # concurrent live (paced) streams
    python -m bench.load_server long --hours 2                     # one stream, as fast as accepted
    python -m bench.load_server mixed                              # 4 real-time + 4 flat out: DER vs file mode

`sessions`: how many sessions were held to the end, how many got `overloaded` (shed, or refused at
start) and none that got silence; label lag (an event's arrival minus the moment its audio had
been sent) and the server's resident memory. `long`: the server's memory and the wall time per
audio minute along a long stream, which must stay flat. Results go to bench/results/server_*.json.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import websockets
from websockets.asyncio.client import connect

from bench.audio import REAL_DEV, REPO, looped, speech, stream_offsets
from streamdiar import SAMPLE_RATE

RESULTS = REPO / "bench" / "results"
BLOCK_S = 0.1
START_TIMEOUT_S = 120


def start_server(*extra: str) -> tuple[subprocess.Popen, str]:
    """`streamdiar serve` on a free port, its log in a temporary file (named if it fails)."""
    log = tempfile.NamedTemporaryFile("w+", prefix="streamdiar-serve-", suffix=".log", delete=False)
    process = subprocess.Popen([sys.executable, "-m", "streamdiar", "serve", "--port", "0", *extra],
                               stdout=subprocess.DEVNULL, stderr=log, text=True)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline and process.poll() is None:
        match = re.search(r"serving (ws://\S+)", Path(log.name).read_text())
        if match:
            return process, match.group(1)
        time.sleep(0.2)
    process.kill()
    raise SystemExit(f"streamdiar serve did not start; see {log.name}")


def server_status(url: str) -> dict:
    with urllib.request.urlopen(url.replace("ws://", "http://").replace("/v1/stream", "/v1/status"),
                                timeout=10) as response:
        return json.load(response)


def engine_figures(status: dict) -> dict:
    """Engine seconds per audio minute over the server's last rounds, and its longest round."""
    capacity = status["capacity"]
    return {"engine_s_per_audio_min": round(60 / capacity, 2) if capacity else None,
            "longest_round_s": status["longest_round_s"]}


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def pcm(samples: np.ndarray) -> bytes:
    return (np.clip(samples, -1, 32767 / 32768) * 32768).astype("<i2").tobytes()


async def live_session(url: str, audio: np.ndarray, offset: int, seconds: float, pace: float) -> dict:
    """One client: start, PCM blocks at `pace` x real time (0: as fast as accepted), stop."""
    result = {"outcome": None, "lags": [], "sent_s": 0.0, "first_event_s": None, "first_label_delay_s": None,
              "finals": []}
    block = round(BLOCK_S * SAMPLE_RATE)
    total = round(seconds * SAMPLE_RATE)
    sent_at: list[float] = []  # wall time each block was sent
    try:
        async with connect(url, open_timeout=30, max_size=2**22, ping_timeout=120) as ws:
            await ws.send(json.dumps({"type": "start", "sample_rate": SAMPLE_RATE, "encoding": "pcm_s16le",
                                      "channels": 1}))
            started = time.monotonic()

            async def send() -> None:
                for i in range(0, total, block):
                    if pace > 0:
                        await asyncio.sleep(max(0.0, started + i / SAMPLE_RATE / pace - time.monotonic()))
                    await ws.send(pcm(looped(audio, offset + i, min(block, total - i))))
                    sent_at.append(time.monotonic())
                    result["sent_s"] = (i + block) / SAMPLE_RATE
                await ws.send(json.dumps({"type": "stop"}))

            sender = asyncio.create_task(send())
            try:
                async for text in ws:
                    event = json.loads(text)
                    now = time.monotonic()
                    if event["type"] == "segment":
                        if result["first_event_s"] is None:
                            result["first_event_s"] = now - started
                            # how long after the speaker's first audio was sent its label appeared
                            first_block = min(int(event["start"] / BLOCK_S), len(sent_at) - 1)
                            result["first_label_delay_s"] = now - sent_at[first_block]
                        if pace > 0:  # since the block holding the update's last audio was sent
                            result["lags"].append(now - started - max(0.0, event["audio_s"] - BLOCK_S) / pace)
                        if event["final"]:
                            result["finals"].append((event["start"], event["end"], event["speaker"]))
                    elif event["type"] in ("done", "error"):
                        result["outcome"] = "done" if event["type"] == "done" else event["code"]
                        if event["type"] == "done":
                            result["done_samples"] = event["samples"]
            except websockets.ConnectionClosed:
                pass
            finally:
                sender.cancel()
    except (OSError, websockets.WebSocketException) as exc:
        result["outcome"] = f"connect failed: {type(exc).__name__}"
    return result


async def sample_memory(pid: int, every_s: float, into: list, stop: asyncio.Event) -> None:
    started = time.monotonic()
    while not stop.is_set():
        into.append((round(time.monotonic() - started, 1), round(rss_mb(pid), 1)))
        try:
            await asyncio.wait_for(stop.wait(), every_s)
        except TimeoutError:
            pass


async def run_sessions(count: int, seconds: float, pace: float, stagger_s: float, threads: int) -> dict:
    process, url = start_server("--threads", str(threads), "--max-sessions", str(count))
    audio = speech()
    memory: list = []
    stop = asyncio.Event()
    try:
        idle_mb = rss_mb(process.pid)
        sampler = asyncio.create_task(sample_memory(process.pid, 2.0, memory, stop))

        async def delayed(i: int, offset: int) -> dict:
            await asyncio.sleep(i * stagger_s)
            return await live_session(url, audio, offset, seconds, pace)

        started = time.monotonic()
        results = await asyncio.gather(*[delayed(i, o) for i, o in enumerate(stream_offsets(audio, count))])
        wall = time.monotonic() - started
        stop.set()
        await sampler
        status = server_status(url)
    finally:
        process.terminate()
        process.wait(60)
    outcomes: dict[str, int] = {}
    for r in results:
        outcomes[r["outcome"] or "no answer"] = outcomes.get(r["outcome"] or "no answer", 0) + 1
    for r in results:
        del r["finals"]
    held = [r for r in results if r["outcome"] == "done"]
    lags = [lag for r in held for lag in r["lags"]]
    silent = [r for r in results if r["outcome"] is None]
    return {
        "sessions": count, "audio_s_each": seconds, "pace": pace, "threads": threads, "wall_s": round(wall, 1),
        "outcomes": outcomes, "held_to_the_end": len(held), "silent_failures": len(silent),
        "done_samples_match": all(r.get("done_samples") == round(seconds * SAMPLE_RATE) for r in held),
        "label_lag_s": {"median": round(statistics.median(lags), 3), "p95": round(float(np.percentile(lags, 95)), 3),
                        "max": round(max(lags), 3)} if lags else None,
        "first_event_s_median": round(statistics.median([r["first_event_s"] for r in held if r["first_event_s"]]), 2)
        if held else None,
        "server_rss_mb": {"idle": round(idle_mb, 1), "peak": max(m for _, m in memory), "samples": memory},
        "server_status": status,
    }


async def run_long(hours: float, threads: int) -> dict:
    """One stream of `hours` of real speech, sent as fast as the server accepts it."""
    process, url = start_server("--threads", str(threads), "--max-session-length", str(hours * 3600 * 4 + 3600))
    audio = speech()
    total = round(hours * 3600 * SAMPLE_RATE)
    block = round(1.0 * SAMPLE_RATE)
    per_minute: list[dict] = []
    try:
        async with connect(url, open_timeout=30, max_size=2**22) as ws:
            await ws.send(json.dumps({"type": "start", "sample_rate": SAMPLE_RATE, "encoding": "pcm_s16le",
                                      "channels": 1}))
            await ws.recv()
            events = {"segments": 0, "done": None}

            async def read() -> None:
                async for text in ws:
                    event = json.loads(text)
                    if event["type"] == "segment":
                        events["segments"] += 1
                    else:
                        events["done"] = event

            reader = asyncio.create_task(read())
            started = last = time.monotonic()
            minute = 60 * SAMPLE_RATE
            for i in range(0, total, block):
                await ws.send(pcm(looped(audio, i, min(block, total - i))))
                if (i + block) % (10 * minute) < block:
                    now = time.monotonic()
                    per_minute.append({"audio_min": round((i + block) / minute), "wall_s_per_audio_min":
                                       round((now - last) / 10, 2), "server_rss_mb": round(rss_mb(process.pid), 1),
                                       **engine_figures(server_status(url))})
                    last = now
                    print(per_minute[-1], flush=True)
            await ws.send(json.dumps({"type": "stop"}))
            await reader
            wall = time.monotonic() - started
    finally:
        process.terminate()
        process.wait(60)
    rss = [p["server_rss_mb"] for p in per_minute]
    speed = [p["engine_s_per_audio_min"] for p in per_minute]
    return {"hours": hours, "threads": threads, "wall_s": round(wall, 1), "done": events["done"],
            "segments": events["segments"], "by_10_audio_minutes": per_minute,
            "rss_growth_mb_after_first_10_min": round(rss[-1] - rss[0], 1) if rss else None,
            "engine_s_per_audio_min_first_last": [speed[0], speed[-1]] if speed else None}


async def run_mixed(threads: int) -> dict:
    """The live issue's acceptance run: 4 real_dev files streamed at real time and 4 as fast as
    the server accepts, all at once; DER of each against `streamdiar file` on the same file."""
    from streamdiar import Diarizer, load_config
    from streamdiar.audio import load_audio
    from streamdiar.engine.pipeline import diarize_file
    from streamdiar.evaluate.der import DERScorer, read_rttm, read_uem, to_annotation

    files = sorted(REAL_DEV.glob("*.wav"))[:8]
    reference, uem = read_rttm(REAL_DEV / "reference.rttm"), read_uem(REAL_DEV / "reference.uem")

    def der(uri: str, segments) -> float:
        scorer = DERScorer()
        scorer.add(uri, reference[uri], to_annotation(uri, segments), uem[uri])
        return scorer.total["der"]

    diarizer = Diarizer(load_config(threads=threads))
    file_der = {}
    for path in files:
        _, finals = await diarize_file(diarizer, path)
        file_der[path.stem] = der(path.stem, finals)
    del diarizer
    process, url = start_server("--threads", str(threads))
    try:
        audios = [load_audio(path) for path in files]
        paces = [1.0] * 4 + [0.0] * 4
        results = await asyncio.gather(*[live_session(url, audio, 0, audio.size / SAMPLE_RATE, pace)
                                          for audio, pace in zip(audios, paces)])
    finally:
        process.terminate()
        process.wait(60)
    rows = []
    for path, pace, result in zip(files, paces, results):
        session_der = der(path.stem, result["finals"])
        rows.append({"file": path.stem, "pace": pace, "outcome": result["outcome"],
                     "der_session": round(100 * session_der, 2), "der_file_mode": round(100 * file_der[path.stem], 2),
                     "der_gap_points": round(100 * (session_der - file_der[path.stem]), 2),
                     "first_label_delay_s": None if result["first_label_delay_s"] is None
                     else round(result["first_label_delay_s"], 2)})
    return {"threads": threads, "sessions": rows,
            "all_done": all(r["outcome"] == "done" for r in rows),
            "max_der_gap_points": max(abs(r["der_gap_points"]) for r in rows)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.load_server", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("sessions", help="many concurrent live sessions")
    p.add_argument("--count", type=int, default=64)
    p.add_argument("--seconds", type=float, default=60.0, help="audio per session")
    p.add_argument("--pace", type=float, default=1.0)
    p.add_argument("--stagger", type=float, default=0.05, help="seconds between session starts")
    p.add_argument("--threads", type=int, default=1)
    p = sub.add_parser("mixed", help="4 real-time and 4 flat-out sessions on real_dev: DER against file mode")
    p.add_argument("--threads", type=int, default=1)
    p = sub.add_parser("long", help="one long stream, fed as fast as the server accepts")
    p.add_argument("--hours", type=float, default=2.0)
    p.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    RESULTS.mkdir(parents=True, exist_ok=True)
    if args.what == "sessions":
        result = asyncio.run(run_sessions(args.count, args.seconds, args.pace, args.stagger, args.threads))
    elif args.what == "mixed":
        result = asyncio.run(run_mixed(args.threads))
    else:
        result = asyncio.run(run_long(args.hours, args.threads))
    out = RESULTS / f"server_{args.what}.json"
    Path(out).write_text(json.dumps(result, indent=2) + "\n")
    summary = {k: v for k, v in result.items() if k not in ("by_10_audio_minutes",)}
    if "server_rss_mb" in summary:
        summary["server_rss_mb"] = {k: v for k, v in summary["server_rss_mb"].items() if k != "samples"}
    print(json.dumps(summary, indent=2))
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
