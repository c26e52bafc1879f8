"""Configuration: frozen dataclasses loaded from YAML, with errors that name the bad key.

Two kinds of settings live here. `ModelConfig` and `FeatureConfig` describe a trained network
and travel inside its checkpoint; the runtime sections (`StreamConfig`, `TrackerConfig`,
`LabelConfig`) can change freely between runs of the same weights.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"


class ConfigError(ValueError):
    """A configuration value that is missing, unknown or out of range; the message names it."""


@dataclass(frozen=True)
class FeatureConfig:
    """Per-frame features: a GE2E speaker embedding of a short centred sub-window plus VAD/level."""

    frame_hop_s: float = 0.1
    embed_window_s: float = 1.0
    target_dbfs: float = -30.0
    max_gain_db: float = 40.0

    def check(self, at: str) -> None:
        _positive(at, "frame_hop_s", self.frame_hop_s)
        _positive(at, "embed_window_s", self.embed_window_s)
        if self.frame_hop_s * 16000 % 160 or self.embed_window_s * 16000 % 320:
            raise ConfigError(f"{at}: frame_hop_s must be a multiple of 0.01 s and embed_window_s of 0.02 s")


@dataclass(frozen=True)
class ModelConfig:
    """Shape of the Weighter. Fixed shapes are what make CUDA-graph capture possible."""

    window_frames: int = 80
    slots: int = 4
    conv_channels: int = 64
    time_reduction: int = 2
    dim: int = 128
    layers: int = 4
    heads: int = 4
    ff_dim: int = 256
    dropout: float = 0.1

    def check(self, at: str) -> None:
        for name in ("window_frames", "slots", "conv_channels", "time_reduction", "dim", "layers", "heads", "ff_dim"):
            _positive(at, name, getattr(self, name))
        if self.window_frames % self.time_reduction:
            raise ConfigError(f"{at}.window_frames: must be a multiple of time_reduction ({self.time_reduction})")
        if self.dim % self.heads:
            raise ConfigError(f"{at}.dim: must be a multiple of heads ({self.heads})")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"{at}.dropout: must be in [0, 1)")


@dataclass(frozen=True)
class StreamConfig:
    """Pacing: a window every `step_s`; a frame's label is final `latency_s` after its audio."""

    step_s: float = 0.5
    latency_s: float = 2.0

    def check(self, at: str) -> None:
        _positive(at, "step_s", self.step_s)
        _positive(at, "latency_s", self.latency_s)
        if self.latency_s < self.step_s:
            raise ConfigError(f"{at}.latency_s: must be at least step_s ({self.step_s})")


@dataclass(frozen=True)
class TrackerConfig:
    """Linking window slots to global speakers."""

    confidence_gate: float = 0.6
    min_slot_s: float = 0.3
    new_speaker_min_s: float = 1.0
    new_speaker_similarity: float = 0.88
    hinted_new_speaker_similarity: float = 0.92  # ...this instead while fewer people than a minimum-count hint have spoken
    assign_similarity: float = 0.85
    continuity_weight: float = 0.0
    continuity_accept: float = 0.5
    known_similarity: float = 0.87  # an enrolled name needs this (cohort-normalised) voice score to the enrolment (else: anonymous)
    final_naming: bool = True  # final segments are named again, piece by piece, from their own solo speech
    final_name_similarity: float = 0.835  # ...a piece scoring this against an enrolment gets that name
    final_unname_similarity: float = 0.82  # ...a piece the tracker named that scores below this against it loses the name
    final_frame_similarity: float = 0.72  # ...and a speech frame of a named piece scoring below this against it does too (0 = never)
    final_frame_name_similarity: float = 0.86  # a speech frame of an anonymous piece scoring this against an enrolment gets that name (1 = never)
    final_context_similarity: float = 0.86  # a piece's voice also pools recent pieces this alike (raw cosine)...
    final_context_pieces: int = 50  # ...out of the session's last this-many judged pieces (0 = none)
    max_speakers: int = 20
    cohort_top_k: int = 50  # scores are normalised against this many nearest training voices (0 = raw cosine)
    held_apart_windows: int = 8  # windows in a row a slot is kept from its look-alike speaker before it opens its own (shorter runs are mostly one voice over two slots)
    slot_split_score: float = 0.2  # a slot whose solo frames' voices form two groups scoring this (gain x sqrt(smaller group's frames)) is split in two before linking (not where both parts match one known speaker); 0 = never
    memory_size: int = 64
    top_k: int = 64

    def check(self, at: str) -> None:
        for name in ("confidence_gate", "new_speaker_similarity", "hinted_new_speaker_similarity", "assign_similarity",
                     "continuity_weight", "continuity_accept", "known_similarity", "final_name_similarity",
                     "final_unname_similarity", "final_frame_similarity", "final_frame_name_similarity",
                     "final_context_similarity"):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise ConfigError(f"{at}.{name}: must be in [0, 1], got {value}")
        for name in ("max_speakers", "memory_size", "top_k", "held_apart_windows"):
            _positive(at, name, getattr(self, name))
        if self.final_context_pieces < 0:
            raise ConfigError(f"{at}.final_context_pieces: must be >= 0, got {self.final_context_pieces}")
        if self.slot_split_score < 0:
            raise ConfigError(f"{at}.slot_split_score: must be >= 0 (0 = never), got {self.slot_split_score}")
        if self.min_slot_s < 0 or self.new_speaker_min_s < 0:
            raise ConfigError(f"{at}: min_slot_s and new_speaker_min_s must be >= 0")


@dataclass(frozen=True)
class LabelConfig:
    """Turning aggregated speaker activity into segments."""

    onset: float = 0.5
    min_gap_s: float = 0.3
    min_segment_s: float = 0.2
    unlinked_weight: float = 0.0
    vad_floor: float = 0.1  # frames whose Silero speech probability stays below this get no speaker
    fill_speech: float = 0.5  # speech no speaker reaches the onset on (Silero at or above this) goes to the likeliest speaker; 0 = off
    fill_trim_s: float = 0.2  # ...except the last this-much of each speech stretch (VAD hangover and reverberation tails)
    count_speakers: bool = True  # a frame keeps at most as many speakers as the windows' slots are active on it
    relink: bool = True  # a final 1-s piece goes to another speaker whose running voice it matches clearly better...
    relink_margin: float = 0.08  # ...by at least this much cosine...
    relink_similarity: float = 0.75  # ...and at least this close to it
    relink_split_gain: float = 0.03  # a speaker whose final pieces form two groups this much better fitted (mean cosine) than one splits in two; 0 = never
    relink_merge_similarity: float = 0.97  # two speakers whose running voices are this alike (cosine) merge; 0 = never

    def check(self, at: str) -> None:
        if not 0 < self.onset < 1:
            raise ConfigError(f"{at}.onset: must be in (0, 1)")
        if not 0 <= self.unlinked_weight <= 1:
            raise ConfigError(f"{at}.unlinked_weight: must be in [0, 1]")
        if not 0 <= self.vad_floor < 1:
            raise ConfigError(f"{at}.vad_floor: must be in [0, 1)")
        if not 0 <= self.fill_speech <= 1:
            raise ConfigError(f"{at}.fill_speech: must be in [0, 1] (0 = off)")
        for name in ("relink_margin", "relink_similarity", "relink_split_gain", "relink_merge_similarity"):
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(f"{at}.{name}: must be in [0, 1], got {getattr(self, name)}")
        if self.fill_trim_s < 0:
            raise ConfigError(f"{at}.fill_trim_s: must be >= 0")
        if self.min_gap_s < 0 or self.min_segment_s < 0:
            raise ConfigError(f"{at}: min_gap_s and min_segment_s must be >= 0")


@dataclass(frozen=True)
class RunnerConfig:
    """How the models run. On CUDA, every batch-size bucket (1, 2, 4, ... max_batch) of the
    Weighter, GE2E encoder and VAD is captured once as a CUDA graph; on CPU they run eagerly."""

    cuda_graphs: bool = True  # false: eager on the GPU (the baseline the graphs are measured against)
    max_batch: int = 1024  # largest bucket; larger rounds run in chunks of this size

    def check(self, at: str) -> None:
        _positive(at, "max_batch", self.max_batch)


@dataclass(frozen=True)
class Config:
    """Everything a streaming run needs. `weights` is a checkpoint path, or "default"."""

    weights: str = "default"
    device: str = "cpu"
    threads: int = 1
    stream: StreamConfig = field(default_factory=StreamConfig)
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    labels: LabelConfig = field(default_factory=LabelConfig)
    runner: RunnerConfig = field(default_factory=RunnerConfig)

    def check(self, at: str = "config") -> None:
        if self.threads < 0:
            raise ConfigError(f"{at}.threads: must be >= 0 (0 = torch's default)")
        self.stream.check(f"{at}.stream")
        self.tracker.check(f"{at}.tracker")
        self.labels.check(f"{at}.labels")
        self.runner.check(f"{at}.runner")


def _positive(at: str, name: str, value: Any) -> None:
    if not value > 0:
        raise ConfigError(f"{at}.{name}: must be > 0, got {value}")


def from_dict(cls: type, data: Any, at: str) -> Any:
    """Build dataclass `cls` from a mapping, recursing into nested dataclasses; unknown keys fail."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{at}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{at}.{unknown[0]}: unknown key (known: {', '.join(sorted(names))})")
    values = {}
    for key, raw in data.items():
        values[key] = _coerce(hints[key], raw, f"{at}.{key}")
    obj = cls(**values)
    if hasattr(obj, "check"):
        obj.check(at)
    return obj


def _coerce(hint: Any, raw: Any, at: str) -> Any:
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, raw, at)
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        if raw is None:
            return None
        return _coerce(options[0], raw, at)
    if hint is float and isinstance(raw, (int, float)) and not isinstance(raw, bool):
        return float(raw)
    if hint in (int, str, bool, float):
        if not isinstance(raw, hint) or (hint is int and isinstance(raw, bool)):
            raise ConfigError(f"{at}: expected {hint.__name__}, got {raw!r}")
        return raw
    if origin in (list, tuple):
        (item,) = typing.get_args(hint)[:1]
        if not isinstance(raw, (list, tuple)):
            raise ConfigError(f"{at}: expected a list, got {raw!r}")
        return tuple(_coerce(item, v, f"{at}[{i}]") for i, v in enumerate(raw))
    return raw


def load_yaml(path: str | Path) -> dict:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping")
    return data


def load_config(path: str | Path | None = None, **overrides: Any) -> Config:
    """Load a runtime config from YAML (default: configs/default.yaml's values) plus overrides.

    Overrides use dotted section names, e.g. `load_config(step_s=0.25)` is not accepted but
    `load_config(stream={"step_s": 0.25})` is.
    """
    data = load_yaml(path) if path is not None else {}
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return from_dict(Config, data, str(path) if path else "config")


def replace(config: Any, **changes: Any) -> Any:
    """dataclasses.replace that re-runs validation."""
    new = dataclasses.replace(config, **changes)
    if hasattr(new, "check"):
        new.check(type(new).__name__)
    return new
