"""Runs the Weighter on a batch of windows from many streams (eager on CPU)."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from streamdiar.model import Weighter


class SlotBatch(NamedTuple):
    activity: np.ndarray  # (B, N, T)
    embeddings: np.ndarray  # (B, N, D)
    confidence: np.ndarray  # (B, N)


class EagerRunner:
    """One call per step for all streams due: windows are stacked into one batch."""

    def __init__(self, model: Weighter, device: str = "cpu"):
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()

    @torch.inference_mode()
    def __call__(self, windows: np.ndarray) -> SlotBatch:
        out = self.model(torch.from_numpy(windows).to(self.device))
        return SlotBatch(*(t.float().cpu().numpy() for t in out))
