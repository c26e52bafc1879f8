"""The Weighter: N speaker slots per window, each a weighting track over the window's frames.

frames (B, T, F) -> conv reduction -> FeatureProjection + WavLM encoder -> N sigmoid tracks
-> repeat_interleave back to the frame rate. Slot embeddings pool the frames' GE2E vectors with
the normalised tracks, and each slot's confidence is sum(X^2) / sum(X).
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn
from torchaudio.models.wav2vec2.components import _get_wavlm_encoder

from streamdiar.config import ModelConfig
from streamdiar.features.frames import FEATURE_DIM
from streamdiar.features.speaker_encoder import EMBED_DIM

EPS = 1e-6
# GE2E vectors are L2-normalised over 256 dims (entries ~1/16); this brings them to unit scale.
EMBED_SCALE = EMBED_DIM ** 0.5


class WeighterOutput(NamedTuple):
    activity: torch.Tensor  # X, (B, N, T) in [0, 1]
    embeddings: torch.Tensor  # E, (B, N, EMBED_DIM), L2-normalised
    confidence: torch.Tensor  # C, (B, N)


class Weighter(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        r = config.time_reduction
        self.reduce = nn.Sequential(
            nn.Conv1d(FEATURE_DIM, config.conv_channels, kernel_size=3, padding=1),
            nn.GELU(),
            nn.Conv1d(config.conv_channels, config.conv_channels, kernel_size=r, stride=r),
            nn.GELU(),
        )
        # FeatureProjection (linear + layer norm + dropout) is the encoder's first block.
        self.encoder = _get_wavlm_encoder(
            in_features=config.conv_channels, embed_dim=config.dim, dropout_input=config.dropout,
            pos_conv_kernel=16, pos_conv_groups=16, num_layers=config.layers, num_heads=config.heads,
            num_buckets=32, max_distance=max(64, config.window_frames), attention_dropout=config.dropout,
            ff_interm_features=config.ff_dim, ff_interm_dropout=config.dropout, dropout=config.dropout,
            layer_norm_first=True, layer_drop=0.0,
        )
        self.slots = nn.Linear(config.dim, config.slots)

    def forward(self, frames: torch.Tensor) -> WeighterOutput:
        """frames: (B, window_frames, FEATURE_DIM) -> WeighterOutput."""
        embed = frames[..., :EMBED_DIM]
        x = torch.cat([embed * EMBED_SCALE, frames[..., EMBED_DIM:]], dim=-1)
        x = self.reduce(x.transpose(1, 2)).transpose(1, 2)
        x = self.encoder(x)
        activity = torch.sigmoid(self.slots(x)).transpose(1, 2)
        activity = activity.repeat_interleave(self.config.time_reduction, dim=2)
        return WeighterOutput(activity, *pool_slots(activity, embed))


def pool_slots(activity: torch.Tensor, embed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Slot embeddings E = normalise(sum_t W h_t) with W = X / sum X; confidence sum X^2 / sum X."""
    mass = activity.sum(dim=2)
    weights = activity / (mass.unsqueeze(2) + EPS)
    pooled = torch.bmm(weights, embed)
    pooled = pooled / pooled.norm(dim=2, keepdim=True).clamp_min(EPS)
    confidence = (activity**2).sum(dim=2) / (mass + EPS)
    return pooled, confidence
