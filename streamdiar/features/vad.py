"""Silero VAD as a plain torch module with explicit recurrent state.

The weights are those of `silero_vad.jit` in the silero-vad wheel (its 16 kHz branch), copied
into this module. Explicit state, instead of the TorchScript model's hidden one, lets many
streams share one batched call and makes the module capturable in a CUDA graph.
"""
from __future__ import annotations

import torch
import warnings

from torch import nn

from streamdiar.features.weights_files import package_file

CHUNK = 512  # samples per VAD decision at 16 kHz (32 ms)
CONTEXT = 64  # samples of the previous chunk the model sees


_JIT_NAMES = {
    "stft_conv.weight": "stft.forward_basis_buffer",
    **{f"conv{i + 1}.{p}": f"encoder.{i}.reparam_conv.{p}" for i in range(4) for p in ("weight", "bias")},
    **{f"lstm_cell.{p}": f"decoder.rnn.{p}" for p in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")},
    "final_conv.weight": "decoder.decoder.2.weight",
    "final_conv.bias": "decoder.decoder.2.bias",
}


class SileroVAD(nn.Module):
    def __init__(self):
        super().__init__()
        self.stft_conv = nn.Conv1d(1, 258, kernel_size=256, stride=128, bias=False)
        self.conv1 = nn.Conv1d(129, 128, 3, padding=1)
        self.conv2 = nn.Conv1d(128, 64, 3, stride=2, padding=1)
        self.conv3 = nn.Conv1d(64, 64, 3, stride=2, padding=1)
        self.conv4 = nn.Conv1d(64, 128, 3, padding=1)
        self.lstm_cell = nn.LSTMCell(128, 128)
        self.final_conv = nn.Conv1d(128, 1, 1)

    @classmethod
    def pretrained(cls) -> "SileroVAD":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.jit deprecation notice
            scripted = torch.jit.load(str(package_file("silero_vad", "data", "silero_vad.jit")), map_location="cpu")
        source = scripted._model.state_dict()
        model = cls()
        model.load_state_dict({new: source[old] for new, old in _JIT_NAMES.items()})
        return model.eval()

    @staticmethod
    def initial_state(batch: int = 1) -> torch.Tensor:
        return torch.zeros(2, batch, 128)

    def forward(self, chunks: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """chunks: (batch, CONTEXT + CHUNK) samples; state: (2, batch, 128) -> (prob (batch,), state)."""
        x = nn.functional.pad(chunks, (0, 64), mode="reflect").unsqueeze(1)
        x = self.stft_conv(x)
        x = torch.sqrt(x[:, :129] ** 2 + x[:, 129:] ** 2)
        x = torch.relu(self.conv1(x))
        x = torch.relu(self.conv2(x))
        x = torch.relu(self.conv3(x))
        x = torch.relu(self.conv4(x)).squeeze(-1)
        h, c = self.lstm_cell(x, (state[0], state[1]))
        prob = torch.sigmoid(self.final_conv(torch.relu(h).unsqueeze(-1))).squeeze(-1).mean(dim=1)
        return prob, torch.stack([h, c])
