"""GPU: CUDA graphs against eager at batch 1/8/64/max, GPU memory, most real-time streams.

Two engines share the GPU: one with every batch bucket captured as a CUDA graph (the default)
and one running the very same buckets and buffers eagerly (`runner.cuda_graphs: false`), so the
difference is the graphs alone. "Model step" = the model calls one step of `batch` streams
makes: the GE2E encoder on 5 new frames per stream, 16 VAD rounds over `batch` chunks, the
Weighter on `batch` windows. Whole-step numbers then go through `Diarizer.process` as on CPU.
"""
from __future__ import annotations

import dataclasses
import math
import time

import numpy as np
import torch

from bench.steps import scaling
from streamdiar import Config, Diarizer
from streamdiar.features import FEATURE_DIM
from streamdiar.features.speaker_encoder import MEL_BANDS
from streamdiar.features.vad import CHUNK, CONTEXT, SileroVAD

MODEL_BATCHES = (1, 8, 64)  # and the largest bucket
CALLS = 50
P99_TARGET_MS = 50.0


def _median_ms(fn, calls: int = CALLS) -> float:
    for _ in range(3):
        fn()
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        fn()  # every bucketed call ends with a device synchronise
        times.append(time.perf_counter() - started)
    return float(np.median(times) * 1000)


def _step_inputs(diarizer: Diarizer, batch: int, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    config = diarizer.model_config
    frames_per_step = round(diarizer.config.stream.step_s / diarizer.hop_s)
    windows = torch.rand(batch, config.window_frames, FEATURE_DIM, generator=g)
    return {
        "windows": windows.numpy(),
        "mels": torch.rand(batch * frames_per_step, diarizer.featurizer.embed_mels, MEL_BANDS, generator=g) * 1e-2,
        "chunks": torch.randn(batch, CONTEXT + CHUNK, generator=g) * 0.1,
        "state": SileroVAD.initial_state(batch),
        "vad_rounds": math.ceil(diarizer.step_samples / CHUNK),
    }


def model_step(diarizer: Diarizer, inputs: dict) -> None:
    featurizer = diarizer.featurizer
    featurizer.encoder(inputs["mels"])
    for _ in range(inputs["vad_rounds"]):
        featurizer.vad(inputs["chunks"], inputs["state"])
    diarizer.runner(inputs["windows"])


@torch.inference_mode()
def _max_abs_diff(graph: Diarizer, eager: Diarizer, inputs: dict) -> dict:
    slots_g, slots_e = graph.runner(inputs["windows"]), eager.runner(inputs["windows"])
    vad_g, vad_e = graph.featurizer.vad(inputs["chunks"], inputs["state"]), eager.featurizer.vad(inputs["chunks"], inputs["state"])
    return {
        "weighter_activity": float(np.abs(slots_g.activity - slots_e.activity).max()),
        "weighter_confidence": float(np.abs(slots_g.confidence - slots_e.confidence).max()),
        "encoder": float((graph.featurizer.encoder(inputs["mels"]) - eager.featurizer.encoder(inputs["mels"])).abs().max()),
        "vad_prob": float((vad_g[0] - vad_e[0]).abs().max()),
    }


def graphs_vs_eager(config: Config, graph: Diarizer, log=print) -> dict:
    """Model-step times per batch on the graph engine and on an eager twin built here."""
    eager = Diarizer(dataclasses.replace(config, runner=dataclasses.replace(config.runner, cuda_graphs=False)))
    by_batch = {}
    for batch in (*MODEL_BATCHES, config.runner.max_batch):
        inputs = _step_inputs(graph, batch)
        row = {
            "eager_ms": round(_median_ms(lambda: model_step(eager, inputs)), 3),
            "graph_ms": round(_median_ms(lambda: model_step(graph, inputs)), 3),
            "weighter_eager_ms": round(_median_ms(lambda: eager.runner(inputs["windows"])), 3),
            "weighter_graph_ms": round(_median_ms(lambda: graph.runner(inputs["windows"])), 3),
        }
        row["speedup"] = round(row["eager_ms"] / row["graph_ms"], 2)
        row["weighter_speedup"] = round(row["weighter_eager_ms"] / row["weighter_graph_ms"], 2)
        by_batch[str(batch)] = row
        log(f"  batch {batch:5d}: model step eager {row['eager_ms']:8.2f} ms, graph {row['graph_ms']:8.2f} ms "
            f"(x{row['speedup']}); Weighter alone x{row['weighter_speedup']}")
    return {"by_batch": by_batch, "max_abs_diff": _max_abs_diff(graph, eager, _step_inputs(graph, 8, seed=1))}


def gpu_section(config: Config, audio: np.ndarray, rounds: int, max_streams: int, log=print) -> dict:
    device = torch.device(config.device)
    graph = Diarizer(config)
    reserved_after_capture = torch.cuda.memory_reserved(device)
    calls = {"weighter": graph.runner.call, "encoder": graph.featurizer.encoder, "vad": graph.featurizer.vad}
    captured = {name: call.captured for name, call in calls.items()}
    errors = {name: call.capture_error for name, call in calls.items() if call.capture_error}
    log(f"  captured: {captured} {errors or ''}")
    compared = graphs_vs_eager(config, graph, log)
    by_batch = compared["by_batch"]
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(device)
    steps = scaling(graph, audio, rounds, max_streams, refine=True, log=log)
    by_streams = steps["step_compute_ms_by_streams"]
    within_target = [int(n) for n, p in by_streams.items() if p["p99"] <= P99_TARGET_MS]
    most = steps["max_realtime_streams"]
    properties = torch.cuda.get_device_properties(device)
    return {
        "device": properties.name,
        "memory_total_gb": round(properties.total_memory / 2**30, 1),
        "captured": captured,
        "capture_errors": errors,
        "model_step_ms_by_batch": by_batch,
        "graph_speedup_b1": by_batch["1"]["speedup"],
        "weighter_graph_speedup_b1": by_batch["1"]["weighter_speedup"],
        "graph_vs_eager_max_abs_diff": compared["max_abs_diff"],
        "step_compute_ms": steps["step_compute_ms"],
        "step_compute_ms_by_streams": by_streams,
        "rtf": steps["rtf"],
        "max_realtime_streams": most,
        "max_realtime_streams_capped": steps["max_realtime_streams_capped"],
        "p99_step_ms_at_max": by_streams[str(most)]["p99"] if most else None,
        "max_streams_p99_within_50ms": max(within_target, default=0),
        "gpu_memory_mb": {
            "reserved_after_capture": round(reserved_after_capture / 2**20, 1),
            "allocated": round(torch.cuda.memory_allocated(device) / 2**20, 1),
            "reserved": round(torch.cuda.memory_reserved(device) / 2**20, 1),
            "peak_allocated": round(torch.cuda.max_memory_allocated(device) / 2**20, 1),
        },
    }
