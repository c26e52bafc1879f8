"""Shared fixtures: real audio from ../shared/data and one engine per test session."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
REAL_DEV = SHARED_DATA / "real_dev"
SPEAKERS = SHARED_DATA / "speakers" / "librispeech"
DEMO = REPO / "streamdiar" / "data" / "demo.flac"

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def diarizer():
    from streamdiar import Diarizer, load_config

    return Diarizer(load_config(threads=1))


@pytest.fixture(scope="session")
def featurizer(diarizer):
    return diarizer.featurizer
