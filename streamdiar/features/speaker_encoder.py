"""The GE2E speaker encoder (resemblyzer's pretrained weights) as a plain torch module."""
from __future__ import annotations

import torch
import torchaudio
from torch import nn

from streamdiar.audio import SAMPLE_RATE
from streamdiar.features.weights_files import package_file

MEL_HOP = 160  # 10 ms
MEL_WINDOW = 400  # 25 ms
MEL_BANDS = 40
EMBED_DIM = 256


class MelFrontend(nn.Module):
    """Power (not log) slaney mel spectrogram, as librosa's defaults that GE2E was trained on.

    `center=False`: the caller supplies the context samples, so blocks can be computed
    incrementally and give the same frames as one pass over the whole signal.
    """

    def __init__(self):
        super().__init__()
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=SAMPLE_RATE, n_fft=MEL_WINDOW, win_length=MEL_WINDOW, hop_length=MEL_HOP,
            n_mels=MEL_BANDS, power=2.0, norm="slaney", mel_scale="slaney", center=False,
        )

    def forward(self, samples: torch.Tensor) -> torch.Tensor:
        """(..., samples) -> (..., frames, 40)."""
        return self.mel(samples).transpose(-1, -2)


class SpeakerEncoder(nn.Module):
    """3-layer LSTM over 40 power-mel bands -> 256-d L2-normalised embedding."""

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(MEL_BANDS, 256, 3, batch_first=True)
        self.linear = nn.Linear(256, EMBED_DIM)

    @classmethod
    def pretrained(cls) -> "SpeakerEncoder":
        state = torch.load(package_file("resemblyzer", "pretrained.pt"), map_location="cpu", weights_only=True)
        model = cls()
        # similarity_weight/bias belong to GE2E's training loss, not to the encoder.
        wanted = {k: v for k, v in state["model_state"].items() if not k.startswith("similarity")}
        model.load_state_dict(wanted)
        return model.eval()

    def forward(self, mels: torch.Tensor) -> torch.Tensor:
        """(batch, frames, 40) -> (batch, 256)."""
        _, (hidden, _) = self.lstm(mels)
        raw = torch.relu(self.linear(hidden[-1]))
        return raw / raw.norm(dim=1, keepdim=True).clamp_min(1e-8)
