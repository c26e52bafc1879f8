"""`streamdiar train`: simulate conversations, compute their features, train the Weighter.

Everything is seeded, so the shipped checkpoint can be rebuilt from the same config and data.
Speakers held out of training make a simulated validation set, written as WAV + RTTM so that
`streamdiar eval` can score the whole streaming pipeline on unseen voices.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from streamdiar.audio import SAMPLE_RATE
from streamdiar.config import FeatureConfig, ModelConfig, from_dict, load_yaml
from streamdiar.engine.runner import features_on_device, resolve_device
from streamdiar.features import FrameFeaturizer
from streamdiar.features.frames import ENCODER_BATCH
from streamdiar.model import Weighter, save_weighter
from streamdiar.model.losses import pit_wbce
from streamdiar.train.corpus import speaker_split, voice_cohort, write_conversations
from streamdiar.train.simulate import Conversation, SimulationConfig, Utterance, simulate, speed_perturbed


@dataclass(frozen=True)
class TrainConfig:
    speakers_dir: str = "../shared/data/speakers/librispeech"
    output: str = "streamdiar/weights/weighter.pt"
    validation_dir: str = "data/validation"
    cache_dir: str = "data/cache"
    seed: int = 7
    held_out_speakers: int = 40
    speed_perturbation: tuple[float, ...] = ()  # extra training voices: every training voice at these speeds
    train_conversations: int = 500
    val_conversations: int = 30
    val_min_duration_s: float = 60.0
    val_max_duration_s: float = 120.0
    steps: int = 6000
    batch_size: int = 32
    learning_rate: float = 1.0e-3
    weight_decay: float = 0.01
    start_padding_probability: float = 0.05
    threads: int = 2
    device: str = "cpu"  # cuda trains the same way, faster (features and model on the GPU)
    model: ModelConfig = field(default_factory=ModelConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    simulation: SimulationConfig = field(default_factory=SimulationConfig)


def load_train_config(path: str | Path) -> TrainConfig:
    return from_dict(TrainConfig, load_yaml(path), str(path))


def _log(message: str) -> None:
    print(f"[train {time.strftime('%H:%M:%S')}] {message}", flush=True)


class WindowSampler:
    """Random training windows (features, labels) cut from featurized conversations."""

    def __init__(self, features: list[np.ndarray], labels: list[np.ndarray], window: int, slots: int, pad_p: float):
        self.features, self.labels = features, labels
        self.window, self.slots, self.pad_p = window, slots, pad_p
        lengths = np.array([f.shape[0] for f in features], dtype=np.float64)
        self.p = lengths / lengths.sum()

    def batch(self, rng: np.random.Generator, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = np.zeros((size, self.window, self.features[0].shape[1]), dtype=np.float32)
        y = np.zeros((size, self.slots, self.window), dtype=np.float32)
        for b in range(size):
            c = int(rng.choice(len(self.features), p=self.p))
            feats, labels = self.features[c], self.labels[c]
            end = int(rng.integers(min(self.window, feats.shape[0]), feats.shape[0] + 1))
            if rng.random() < self.pad_p:  # the first windows of a stream are zero-padded on the left
                end = int(rng.integers(1, min(self.window, feats.shape[0]) + 1))
            start = max(0, end - self.window)
            n = end - start
            x[b, self.window - n :] = feats[start:end]
            lab = labels[:, start:end]
            # keep the most active speakers when a window holds more than N
            order = np.argsort(-lab.sum(axis=1))[: self.slots]
            y[b, : order.size, self.window - n :] = lab[order]
        return torch.from_numpy(x), torch.from_numpy(y)


def cached_features(config: TrainConfig, featurizer: FrameFeaturizer, train_convs, val_convs):
    """Frame features of the simulated audio, cached on disk: they depend only on the data settings,
    so re-training with other model or optimiser settings skips the slowest part."""
    key_fields = {k: v for k, v in dataclasses.asdict(config).items()
                  if k in ("speakers_dir", "seed", "held_out_speakers", "speed_perturbation", "train_conversations", "val_conversations",
                           "val_min_duration_s", "val_max_duration_s", "features", "simulation")}
    key = hashlib.sha1(json.dumps(key_fields, sort_keys=True).encode()).hexdigest()[:16]
    path = Path(config.cache_dir) / f"features-{key}.npz"
    if path.is_file():
        blob = np.load(path)
        n = len(train_convs)
        feats = [blob[f"f{i}"] for i in range(n + len(val_convs))]
        return feats[:n], feats[n:]
    train_feats = featurizer.whole_signals([c.audio for c in train_convs])
    val_feats = featurizer.whole_signals([c.audio for c in val_convs])
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **{f"f{i}": f for i, f in enumerate(train_feats + val_feats)})
    return train_feats, val_feats


def validation_conversations(config: TrainConfig, held_out: list[Utterance]) -> list[Conversation]:
    """The held-out set: longer conversations of 2-4 unseen speakers, same room simulation."""
    sim = dataclasses.replace(config.simulation, min_duration_s=config.val_min_duration_s,
                              max_duration_s=config.val_max_duration_s, speaker_counts=(2, 3, 4),
                              speaker_count_weights=(0.4, 0.3, 0.3))
    rng = np.random.default_rng(config.seed + 2)
    return [simulate(rng, held_out, sim) for _ in range(config.val_conversations)]


def train(config: TrainConfig) -> dict:
    torch.manual_seed(config.seed)
    torch.set_num_threads(config.threads)
    rng = np.random.default_rng(config.seed)
    featurizer = FrameFeaturizer(config.features)
    device = resolve_device(config.device)
    if device.type == "cuda":
        features_on_device(featurizer, device, max_batch=ENCODER_BATCH, capture=None)
    t0 = time.time()

    train_utts, val_utts = speaker_split(featurizer, config.speakers_dir, config.held_out_speakers, config.seed)
    cohort = voice_cohort(featurizer, train_utts)
    train_utts = train_utts + speed_perturbed(train_utts, config.speed_perturbation)
    _log(f"{len(train_utts)} training voices and {len(val_utts)} held-out speakers ({time.time() - t0:.0f} s)")

    sim_rng = np.random.default_rng(config.seed + 1)
    train_convs = [simulate(sim_rng, train_utts, config.simulation) for _ in range(config.train_conversations)]
    val_convs = validation_conversations(config, val_utts)
    hours = sum(c.audio.size for c in train_convs) / SAMPLE_RATE / 3600
    _log(f"simulated {len(train_convs)} training conversations ({hours:.1f} h) and {len(val_convs)} validation ({time.time() - t0:.0f} s)")
    write_conversations(config.validation_dir, val_convs, [f"val{i:03d}" for i in range(len(val_convs))])

    train_feats, val_feats = cached_features(config, featurizer, train_convs, val_convs)
    train_labels = [c.frame_labels(featurizer.hop)[:, : f.shape[0]] for c, f in zip(train_convs, train_feats)]
    val_labels = [c.frame_labels(featurizer.hop)[:, : f.shape[0]] for c, f in zip(val_convs, val_feats)]
    _log(f"features ready ({time.time() - t0:.0f} s)")

    mc = config.model
    train_windows = WindowSampler(train_feats, train_labels, mc.window_frames, mc.slots, config.start_padding_probability)
    val_windows = WindowSampler(val_feats, val_labels, mc.window_frames, mc.slots, 0.0)
    val_batches = [tuple(t.to(device) for t in val_windows.batch(np.random.default_rng(config.seed + 3 + i), 64))
                   for i in range(8)]

    model = Weighter(mc).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    warmup = max(1, config.steps // 50)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(s, config.steps) / config.steps)))
    best, best_state, history = float("inf"), None, []
    train_rng = np.random.default_rng(config.seed + 4)
    running, since = 0.0, 0
    for step in range(1, config.steps + 1):
        model.train()
        x, y = (t.to(device) for t in train_windows.batch(train_rng, config.batch_size))
        loss = pit_wbce(model(x).activity, y)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        schedule.step()
        running += loss.item()
        since += 1
        if step % 250 == 0 or step == config.steps:
            model.eval()
            with torch.inference_mode():
                val = float(np.mean([pit_wbce(model(vx).activity, vy).item() for vx, vy in val_batches]))
            history.append({"step": step, "train_loss": running / since, "val_loss": val})
            _log(f"step {step}/{config.steps} train {running / since:.4f} val {val:.4f} ({time.time() - t0:.0f} s)")
            running, since = 0.0, 0
            if val < best:
                best, best_state = val, {k: v.detach().clone() for k, v in model.state_dict().items()}
                save_weighter(config.output, model, config.features, {"step": step, "val_loss": val, "partial": True}, cohort)
    model.load_state_dict(best_state)
    meta = {
        "trained_with": dataclasses.asdict(config),
        "train_speakers": sorted({u.speaker for u in train_utts}),
        "validation_speakers": sorted({u.speaker for u in val_utts}),
        "train_hours": round(hours, 2),
        "best_val_loss": best,
        "history": history,
        "seconds": round(time.time() - t0),
        "torch": str(torch.__version__),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
    }
    save_weighter(config.output, model, config.features, meta, cohort)
    _log(f"saved {config.output} (best validation loss {best:.4f}, {time.time() - t0:.0f} s)")
    Path(config.output).with_suffix(".json").write_text(json.dumps({k: v for k, v in meta.items() if k != "history"}, indent=1))
    return meta
