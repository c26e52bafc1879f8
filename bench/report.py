"""The results as a markdown table and PNG plots beside the JSON."""
from __future__ import annotations

from pathlib import Path

TARGETS_NOTE = "targets from issue 4; benchmarks, not timed tests"


def _ms(value) -> str:
    return "–" if value is None else f"{value:.1f}"


def _met(ok) -> str:
    return "–" if ok is None else ("yes" if ok else "**no**")


def targets(result: dict) -> list[tuple[str, str, bool | None]]:
    cpu, memory, gpu, file_mode = result.get("cpu"), result.get("memory"), result.get("gpu"), result.get("file_mode")
    rows = []
    if cpu and "step_compute_ms" in cpu:
        p99 = cpu["step_compute_ms"]["p99"]
        rows.append(("CPU p99 step compute, 1 stream <= 30 ms", f"{p99:.1f} ms", p99 <= 30))
        most = cpu["max_realtime_streams"]
        rows.append(("CPU concurrent real-time streams >= 16", str(most), most >= 16))
    if memory and memory.get("growth_5_to_60_pct") is not None:
        growth = memory["growth_5_to_60_pct"]
        rows.append(("RSS after 60 min within 10% of after 5 min", f"{growth:+.1f}%", abs(growth) <= 10))
    if file_mode:
        rows.append(("`streamdiar file`, 8 min recording, wall <= 0.1 x duration", f"{file_mode['ratio']:.3f} x",
                     file_mode["meets_target"]))
    if gpu:
        rows.append(("GPU: CUDA graph >= 3x eager at batch 1", f"{gpu['graph_speedup_b1']:.1f} x", gpu["graph_speedup_b1"] >= 3))
        most, p99 = gpu["max_realtime_streams"], gpu["p99_step_ms_at_max"]
        rows.append(("GPU: >= 1000 real-time streams with p99 step <= 50 ms",
                     f"{most} streams, p99 {_ms(p99)} ms; {gpu['max_streams_p99_within_50ms']} within 50 ms",
                     most >= 1000 and p99 is not None and p99 <= 50))
    return rows


def markdown(result: dict) -> str:
    m = result["machine"]
    lines = [
        f"# streamdiar benchmarks ({'quick' if result['quick'] else 'full'} run, {m['date']})",
        "",
        f"Machine: {m['cpu']}, {m['usable_cpus']} usable of {m['logical_cpus']} logical CPUs, {m['memory_gb']} GB RAM, "
        f"GPU: {m['gpu']['name'] if m['gpu'] else 'none'}; load average {m['load_average_at_start']} at start, "
        f"{result.get('load_average_at_end')} at end. Python {m['python']}, torch {m['torch']} "
        f"({result['threads']} threads), commit {m['commit']}. Suite ran {result['duration_s']:.0f} s.",
        "",
        f"Engine: step {result['step_s']} s, latency {result['latency_s']} s, device {result['device']}.",
        "",
        f"## Targets ({TARGETS_NOTE})",
        "",
        "| target | measured | met |",
        "|---|---|---|",
        *[f"| {name} | {value} | {_met(ok)} |" for name, value, ok in targets(result)],
    ]
    for section in ("cpu", "gpu"):
        data = result.get(section)
        if data and "step_compute_ms_by_streams" in data:
            lines += ["", f"## {section.upper()}: step compute latency (one `process` round of N streams)", "",
                      "| streams | p50 ms | p95 ms | p99 ms | mean ms |", "|---:|---:|---:|---:|---:|"]
            for n, p in data["step_compute_ms_by_streams"].items():
                lines.append(f"| {n} | {p['p50']:.1f} | {p['p95']:.1f} | {p['p99']:.1f} | {p['mean']:.1f} |")
            lines += ["", f"Real-time factor (1 stream): {data['rtf']:.4f}. Most concurrent real-time streams "
                      f"(p99 round <= step): {data['max_realtime_streams']}"
                      f"{' (the largest count tried)' if data['max_realtime_streams_capped'] else ''}."]
    cpu = result.get("cpu") or {}
    if "label_latency" in cpu:
        lines += ["", "## End-to-end label latency (sample arrival -> label emitted; 20 ms blocks, real-time clock)", "",
                  "| config | step s | latency s (effective) | final p50 ms | final p99 ms | provisional p50 ms | provisional p99 ms |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        for name, row in cpu["label_latency"].items():
            lines.append(f"| {name} | {row['step_s']} | {row['latency_s']} ({row['effective_latency_s']}) | "
                         f"{row['final_ms']['p50']:.0f} | {row['final_ms']['p99']:.0f} | "
                         f"{row['provisional_ms']['p50']:.0f} | {row['provisional_ms']['p99']:.0f} |")
    if "hotspots" in cpu:
        lines += ["", "## Where a step's time goes (CPU)", ""]
        for row in cpu["hotspots"]:
            parts = ", ".join(f"{k} {v:.1f} ms ({100 * row['share'][k]:.0f}%)" for k, v in row["ms_per_step"].items())
            lines.append(f"- {row['streams']} stream(s), {row['step_ms']:.1f} ms per step: {parts}")
            tops = "; ".join(f"`{f['function']}` {f['own_ms_per_step']:.1f} ms" for f in row["top_functions"][:6])
            lines.append(f"  - most own time per step: {tops}")
    if "weighter_variants" in cpu:
        lines += ["", "## Weighter alone: eager vs TorchScript vs torch.compile (CPU)", "",
                  "| batch | eager ms | TorchScript ms | torch.compile ms (first call s) |", "|---:|---:|---:|---:|"]
        for batch, row in cpu["weighter_variants"].items():
            compiled = f"{row['compile_ms']:.2f} ({row['compile_first_call_s']:.0f})" if "compile_ms" in row else "not run"
            lines.append(f"| {batch} | {row['eager_ms']:.2f} | {row['torchscript_ms']:.2f} | {compiled} |")
    memory = result.get("memory")
    if memory:
        lines += ["", "## Resident memory, one stream fed faster than real time", "",
                  f"After 5 min: {_ms(memory['rss_mb_5min'])} MB; after 60 min: {_ms(memory['rss_mb_60min'])} MB "
                  f"({memory['minutes_fed']} min fed; growth 5->60 min: {memory['growth_5_to_60_pct']}%)."]
    if result.get("der_vs_latency"):
        lines += ["", "## DER on real_dev vs step/latency (collar 0, overlap scored)", "",
                  "| step s | latency s (effective) | DER % | miss | false alarm | confusion | files |",
                  "|---:|---:|---:|---:|---:|---:|---:|"]
        for row in result["der_vs_latency"]:
            lines.append(f"| {row['step_s']} | {row['latency_s']} ({row['effective_latency_s']}) | {100 * row['der']:.1f} | "
                         f"{100 * row['miss']:.1f} | {100 * row['false_alarm']:.1f} | {100 * row['confusion']:.1f} | {row['files']} |")
    if result.get("file_mode"):
        f = result["file_mode"]
        lines += ["", "## `streamdiar file` on an 8-minute recording (whole process, wall clock)", "",
                  f"{f['audio_s']:.0f} s of audio in {f['wall_s']:.1f} s: {f['ratio']:.3f} x duration (target <= {f['target_ratio']})."]
    gpu = result.get("gpu")
    if gpu:
        lines += ["", f"## GPU ({gpu['device']}): CUDA graphs vs eager, same buckets", "",
                  f"Captured: {gpu['captured']}{'; errors: ' + str(gpu['capture_errors']) if gpu['capture_errors'] else ''}. "
                  f"Max abs difference graph vs eager: {gpu['graph_vs_eager_max_abs_diff']}. "
                  f"GPU memory: {gpu['gpu_memory_mb']} MB.", "",
                  "| batch | model step eager ms | graph ms | speed-up | Weighter eager ms | graph ms | speed-up |",
                  "|---:|---:|---:|---:|---:|---:|---:|"]
        for batch, row in gpu["model_step_ms_by_batch"].items():
            lines.append(f"| {batch} | {row['eager_ms']:.2f} | {row['graph_ms']:.2f} | {row['speedup']:.1f} | "
                         f"{row['weighter_eager_ms']:.2f} | {row['weighter_graph_ms']:.2f} | {row['weighter_speedup']:.1f} |")
    lines += ["", "Definitions: bench/README.md. Re-run: " + f"`{result['command']}`.", ""]
    return "\n".join(lines)


def plots(result: dict, stem: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []

    def save(fig, name: str) -> None:
        path = stem.with_name(f"{stem.name}_{name}.png")
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)

    for section in ("cpu", "gpu"):
        data = result.get(section)
        if data and "step_compute_ms_by_streams" in data:
            fig, ax = plt.subplots(figsize=(6, 4))
            counts = [int(n) for n in data["step_compute_ms_by_streams"]]
            for key in ("p50", "p95", "p99"):
                ax.plot(counts, [p[key] for p in data["step_compute_ms_by_streams"].values()], marker="o", label=key)
            ax.axhline(1000 * result["step_s"], color="grey", linestyle="--", label="step (real-time limit)")
            ax.set(xscale="log", yscale="log", xlabel="concurrent streams", ylabel="round compute (ms)",
                   title=f"{section.upper()} step compute latency")
            ax.legend()
            save(fig, f"{section}_steps")
    if result.get("der_vs_latency"):
        fig, ax = plt.subplots(figsize=(6, 4))
        rows = result["der_vs_latency"]
        ax.plot([r["step_s"] for r in rows], [100 * r["der"] for r in rows], marker="o")
        ax.set(xscale="log", xlabel="step = latency (s)", ylabel="DER (%)", title="DER on real_dev vs latency")
        save(fig, "der_latency")
    memory = result.get("memory")
    if memory and memory.get("rss_mb_by_minute"):
        fig, ax = plt.subplots(figsize=(6, 4))
        series = memory["rss_mb_by_minute"]
        ax.plot([int(k) for k in series], list(series.values()), marker=".")
        ax.set(xlabel="minutes of audio fed", ylabel="RSS (MB)", title="Resident memory, one stream")
        save(fig, "memory")
    gpu = result.get("gpu")
    if gpu:
        fig, ax = plt.subplots(figsize=(6, 4))
        batches = list(gpu["model_step_ms_by_batch"])
        rows = gpu["model_step_ms_by_batch"].values()
        ax.plot(batches, [r["eager_ms"] for r in rows], marker="o", label="eager")
        ax.plot(batches, [r["graph_ms"] for r in rows], marker="o", label="CUDA graphs")
        ax.set(yscale="log", xlabel="batch (streams)", ylabel="model step (ms)", title="One step's model calls on the GPU")
        ax.legend()
        save(fig, "gpu_graphs")
    return written
