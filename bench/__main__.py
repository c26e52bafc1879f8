"""`python -m bench --json bench/results/cpu.json [--quick] [--device cuda] [--only steps,der]`."""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from bench import audio as bench_audio
from bench.machine import describe, load_average
from streamdiar import Diarizer, load_config
from streamdiar.config import ConfigError, replace

CPU_SECTIONS = ("steps", "latency", "hotspots", "variants", "memory", "der", "file")
ALL_SECTIONS = (*CPU_SECTIONS, "gpu")
LOW_LATENCY = {"step_s": 0.25, "latency_s": 0.5}


@dataclasses.dataclass(frozen=True)
class Plan:
    """How much of each measurement to run: `--quick` fits the whole CPU suite in about 3 minutes."""

    step_rounds: int
    refine_streams: bool
    latency_audio_s: float
    hotspot_streams: tuple[int, ...]
    hotspot_rounds: int
    compile_weighter: bool
    memory_minutes: int
    der_files: int | None
    gpu_rounds: int


FULL = Plan(step_rounds=40, refine_streams=True, latency_audio_s=120.0, hotspot_streams=(1, 16), hotspot_rounds=20,
            compile_weighter=True, memory_minutes=60, der_files=None, gpu_rounds=20)
QUICK = Plan(step_rounds=12, refine_streams=False, latency_audio_s=30.0, hotspot_streams=(1, 8), hotspot_rounds=8,
             compile_weighter=False, memory_minutes=5, der_files=3, gpu_rounds=8)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description="streamdiar benchmarks (issue 4)")
    parser.add_argument("--json", type=Path, help="result file; markdown and PNG plots go beside it "
                        "(default: bench/results/<device>[_quick].json)")
    parser.add_argument("--quick", action="store_true", help="a short run (about 3 minutes on CPU)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="cuda runs the GPU section (graphs vs eager, most streams) unless --only says otherwise")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
                        help="torch CPU threads (default: every usable core)")
    parser.add_argument("--only", help=f"comma-separated sections out of {','.join(ALL_SECTIONS)}")
    parser.add_argument("--max-streams", type=int, help="largest stream count tried (default 256 on CPU, 4096 on GPU)")
    parser.add_argument("--real-dev", type=Path, default=bench_audio.REAL_DEV, help="folder of real recordings + reference.rttm")
    args = parser.parse_args(argv)
    args.sections = tuple(s.strip() for s in args.only.split(",")) if args.only else (
        ("gpu",) if args.device == "cuda" else CPU_SECTIONS)
    unknown = sorted(set(args.sections) - set(ALL_SECTIONS))
    if unknown:
        parser.error(f"unknown section {unknown[0]!r} (known: {', '.join(ALL_SECTIONS)})")
    if ("gpu" in args.sections) != (args.device == "cuda") or (args.device == "cuda" and len(args.sections) > 1):
        parser.error("--device cuda runs the gpu section alone, and the gpu section needs --device cuda")
    if args.json is None:
        args.json = Path("bench/results") / f"{args.device}{'_quick' if args.quick else ''}.json"
    args.max_streams = args.max_streams or (4096 if args.device == "cuda" else 256)
    return args


def run(args: argparse.Namespace, argv: list[str]) -> dict:
    # sections import what they need when they run: a GPU machine lacks what only others use
    plan = QUICK if args.quick else FULL
    started = time.perf_counter()
    config = load_config(threads=args.threads, device=args.device)
    speech = bench_audio.speech(args.real_dev)
    result: dict = {
        "machine": describe(), "quick": args.quick, "device": args.device, "threads": args.threads,
        "step_s": config.stream.step_s, "latency_s": config.stream.latency_s,
        "command": shlex.join([Path(sys.executable).name, "-m", "bench", *argv]),
        "cpu": None, "gpu": None, "memory": None, "der_vs_latency": None, "file_mode": None,
    }

    def section(name: str) -> bool:
        if name in args.sections:
            print(f"[{time.perf_counter() - started:6.0f} s] {name}", flush=True)
            return True
        return False

    cpu: dict = {}
    if set(args.sections) & {"steps", "latency", "hotspots"}:
        diarizer = Diarizer(config)
        if section("steps"):
            from bench.steps import scaling

            cpu.update(scaling(diarizer, speech, plan.step_rounds, args.max_streams, plan.refine_streams))
        if section("latency"):
            from bench.label_latency import label_latency

            low = dataclasses.replace(config, stream=replace(config.stream, **LOW_LATENCY))
            cpu["label_latency"] = {
                "default": label_latency(diarizer, speech, plan.latency_audio_s),
                "low_latency": label_latency(Diarizer(low), speech, plan.latency_audio_s),
            }
            final = cpu["label_latency"]["default"]["final_ms"]
            cpu["label_latency_ms"] = {"p50": final["p50"], "p99": final["p99"]}
            for name, row in cpu["label_latency"].items():
                print(f"  {name}: final label p50 {row['final_ms']['p50']:.0f} ms, p99 {row['final_ms']['p99']:.0f} ms; "
                      f"provisional p50 {row['provisional_ms']['p50']:.0f} ms")
        if section("hotspots"):
            from bench.hotspots import breakdown

            cpu["hotspots"] = [breakdown(diarizer, speech, n, plan.hotspot_rounds) for n in plan.hotspot_streams]
            for row in cpu["hotspots"]:
                print(f"  {row['streams']} stream(s): {row['ms_per_step']}")
    if section("variants"):
        from bench.weighter_variants import weighter_variants

        cpu["weighter_variants"] = weighter_variants(config.weights, compile_too=plan.compile_weighter)
        print(f"  {cpu['weighter_variants']}")
    if cpu:
        result["cpu"] = cpu
    if section("memory"):
        from bench.memory import measure as measure_memory

        result["memory"] = measure_memory(plan.memory_minutes, args.threads, timeout_s=3600)
        print(f"  RSS after 5 min {result['memory']['rss_mb_5min']} MB, after 60 min {result['memory']['rss_mb_60min']} MB")
    if section("der"):
        from bench.der import der_vs_latency

        result["der_vs_latency"] = der_vs_latency(config, args.real_dev, max_files=plan.der_files)
    if section("file"):
        from bench.file_mode import file_mode

        result["file_mode"] = file_mode(threads=args.threads)
        print(f"  8 min recording: {result['file_mode']['wall_s']} s wall, ratio {result['file_mode']['ratio']}")
    if section("gpu"):
        from bench.gpu import gpu_section

        result["gpu"] = gpu_section(config, speech, plan.gpu_rounds, args.max_streams)
    result["duration_s"] = round(time.perf_counter() - started, 1)
    result["load_average_at_end"] = load_average()
    return result


def write(result: dict, path: Path) -> list[Path]:
    from bench.report import markdown, plots

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1, default=_plain) + "\n")
    md = path.with_suffix(".md")
    md.write_text(markdown(result))
    return [path, md, *plots(result, path.with_suffix(""))]


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    try:
        result = run(args, argv)
    except (ConfigError, FileNotFoundError) as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        return 2
    for path in write(result, args.json):
        print(f"wrote {path}")
    if result["gpu"] is not None:
        gpu = result["gpu"]
        print(json.dumps({k: gpu[k] for k in ("device", "captured", "graph_speedup_b1", "max_realtime_streams",
                                              "p99_step_ms_at_max", "max_streams_p99_within_50ms", "gpu_memory_mb")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
