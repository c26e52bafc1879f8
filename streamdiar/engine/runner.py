"""Runs the per-step models for a batch of streams: eager on CPU, CUDA graphs on a GPU.

`make_runner` picks from the config:
- CPU: `EagerRunner`, the Weighter under inference mode on the stacked windows of every stream
  due this round. TorchScript and torch.compile save about 1 ms of a ~20 ms one-stream step at
  batch 1 and nothing at batch 8 (bench `cpu.weighter_variants`), while compile needs a C++
  toolchain and a warm-up at start: neither is used.
- CUDA: `CudaGraphRunner`, the Weighter at fixed batch buckets, each captured once as a CUDA
  graph (graphs.py). The featurizer's GE2E encoder and Silero VAD, most of each step's compute,
  move to the GPU the same way; if one of them fails to capture it runs eagerly on the GPU.
Only one thread may call a runner, or anything else touching CUDA: the Diarizer's.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from torchaudio.models.wav2vec2.wavlm_attention import WavLMSelfAttention

from streamdiar.config import Config, ConfigError, RunnerConfig
from streamdiar.engine.graphs import BucketedCall, CaptureSpace, Port
from streamdiar.features import FEATURE_DIM, FrameFeaturizer
from streamdiar.features.speaker_encoder import EMBED_DIM, MEL_BANDS
from streamdiar.features.vad import CHUNK, CONTEXT, SileroVAD
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


class CudaGraphRunner:
    """The Weighter at batch buckets 1, 2, 4, ... max_batch: each step pads the windows to the
    next bucket, copies them in once from pinned memory, replays that bucket's graph and copies
    the slots back once. Without a CaptureSpace the same buckets run eagerly (the baseline the
    graphs are measured against; on CPU, what the tests exercise)."""

    def __init__(self, model: Weighter, device: torch.device, max_batch: int, capture: CaptureSpace | None):
        config = model.config
        self.device = device
        self.model = model.to(device).eval()
        cache_position_buckets(self.model)
        self.call = BucketedCall(
            self.model,
            inputs=(Port((config.window_frames, FEATURE_DIM)),),
            outputs=(Port((config.slots, config.window_frames)), Port((config.slots, EMBED_DIM)), Port((config.slots,))),
            device=device, max_batch=max_batch, capture=capture,
        )

    def __call__(self, windows: np.ndarray) -> SlotBatch:
        return SlotBatch(*(t.numpy() for t in self.call(torch.from_numpy(windows))))


def features_on_device(featurizer: FrameFeaturizer, device: torch.device, max_batch: int,
                       capture: CaptureSpace | None) -> None:
    """Replace the featurizer's GE2E encoder and VAD by bucketed calls on `device` (CPU tensors
    in and out, so the featurizer's code is unchanged)."""
    state = SileroVAD.initial_state(1)
    state_port = Port((state.shape[0], state.shape[2]), batch_axis=1)
    encoder = BucketedCall(
        featurizer.encoder.to(device).eval(), inputs=(Port((featurizer.embed_mels, MEL_BANDS)),),
        outputs=(Port((EMBED_DIM,)),), device=device, max_batch=max_batch, capture=capture, optional=True,
    )
    vad = BucketedCall(
        featurizer.vad.to(device).eval(), inputs=(Port((CONTEXT + CHUNK,)), state_port),
        outputs=(Port(()), state_port), device=device, max_batch=max_batch, capture=capture, optional=True,
    )
    featurizer.encoder, featurizer.vad = encoder, vad


class _CachedPositionBuckets:
    """Stands in for WavLM attention's `compute_bias` with the same values. torchaudio builds the
    relative-position buckets on the CPU and copies them to the device on every call: a
    synchronising copy that CUDA graph capture forbids. They depend only on the sequence length,
    so they are built once per length (during warm-up, before capture) and kept on the device."""

    def __init__(self, attention: WavLMSelfAttention):
        self.attention = attention
        self.buckets: dict[tuple[int, int], torch.Tensor] = {}

    def __call__(self, query_length: int, key_length: int) -> torch.Tensor:
        key = (query_length, key_length)
        if key not in self.buckets:
            relative = torch.arange(key_length)[None, :] - torch.arange(query_length)[:, None]
            buckets = self.attention._relative_positions_bucket(relative, bidirectional=True)
            self.buckets[key] = buckets.to(self.attention.rel_attn_embed.weight.device)
        return self.attention.rel_attn_embed(self.buckets[key]).permute([2, 0, 1])


def cache_position_buckets(model: torch.nn.Module) -> None:
    for module in model.modules():
        if isinstance(module, WavLMSelfAttention) and module.rel_attn_embed is not None:
            module.compute_bias = _CachedPositionBuckets(module)


def resolve_device(name: str) -> torch.device:
    """config.device -> torch.device; a one-line ConfigError when it cannot be used."""
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"config.device: expected cpu or cuda[:N], got {name!r}") from None
    if device.type not in ("cpu", "cuda"):
        raise ConfigError(f"config.device: expected cpu or cuda[:N], got {name!r}")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("config.device: cuda requested but torch sees no CUDA device")
        if device.index is None:
            device = torch.device("cuda", torch.cuda.current_device())
    return device


def make_runner(model: Weighter, config: Config, featurizer: FrameFeaturizer) -> EagerRunner | CudaGraphRunner:
    """The runner for `config.device`; on CUDA the featurizer's encoder and VAD move there too."""
    device = resolve_device(config.device)
    if device.type == "cpu":
        return EagerRunner(model, "cpu")
    options: RunnerConfig = config.runner
    capture = CaptureSpace(device) if options.cuda_graphs else None
    runner = CudaGraphRunner(model, device, options.max_batch, capture)
    features_on_device(featurizer, device, options.max_batch, capture)
    return runner
