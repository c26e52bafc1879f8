"""Is TorchScript or torch.compile worth it for the Weighter on CPU?

Times the Weighter alone at batch 1 and 8: eager under inference mode (what the engine runs),
TorchScript (trace + freeze) and, unless skipped, torch.compile (whose first call compiles for
a minute or more on a small machine). The answer is read against a whole step's time: the
Weighter is a small part of it, so a gain here must be large to matter.
"""
from __future__ import annotations

import time
import warnings

import numpy as np
import torch

from streamdiar.model import load_weighter

BATCHES = (1, 8)
CALLS = 50


def _median_ms(fn, x: torch.Tensor) -> float:
    for _ in range(5):
        fn(x)
    times = []
    for _ in range(CALLS):
        started = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - started)
    return float(np.median(times) * 1000)


@torch.inference_mode()
def weighter_variants(weights: str = "default", compile_too: bool = True) -> dict:
    model, _, _ = load_weighter(weights)
    config = model.config
    rows = {}
    for batch in BATCHES:
        x = torch.randn(batch, config.window_frames, model.reduce[0].in_channels, generator=torch.Generator().manual_seed(0))
        reference = model(x).activity
        row = {"eager_ms": round(_median_ms(model, x), 3)}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TorchScript deprecation notice
            traced = torch.jit.freeze(torch.jit.trace(model, x, check_trace=False))
        row["torchscript_ms"] = round(_median_ms(traced, x), 3)
        row["torchscript_max_abs_diff"] = float((traced(x)[0] - reference).abs().max())
        if compile_too:
            compiled = torch.compile(model)
            started = time.perf_counter()
            compiled(x)
            row["compile_first_call_s"] = round(time.perf_counter() - started, 1)
            row["compile_ms"] = round(_median_ms(compiled, x), 3)
        rows[str(batch)] = row
    return rows
