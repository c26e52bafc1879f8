"""Saving and loading Weighter checkpoints together with the configs they were trained with."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch

from streamdiar.config import FeatureConfig, ModelConfig, from_dict
from streamdiar.model.weighter import Weighter

DEFAULT_WEIGHTS = Path(__file__).resolve().parent.parent / "weights" / "weighter.pt"


class CheckpointError(ValueError):
    pass


def save_weighter(path: str | Path, model: Weighter, features: FeatureConfig, meta: dict,
                  cohort: np.ndarray | None = None) -> None:
    """`cohort`: (voices, EMBED_DIM) GE2E vectors of the training voices, which the tracker scores
    slots against (see engine/tracker.py, CohortNorm)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: (v.half() if v.is_floating_point() else v).cpu() for k, v in model.state_dict().items()}
    torch.save({
        "model": dataclasses.asdict(model.config),
        "features": dataclasses.asdict(features),
        "state": state,
        "meta": meta,
        **({"cohort": torch.from_numpy(np.asarray(cohort, dtype=np.float32)).half()} if cohort is not None else {}),
    }, path)


def load_weighter(path: str | Path = "default") -> tuple[Weighter, FeatureConfig, dict]:
    path = DEFAULT_WEIGHTS if str(path) == "default" else Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint (train one with `streamdiar train`)")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        model = Weighter(from_dict(ModelConfig, blob["model"], f"{path}:model"))
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in blob["state"].items()})
    except (KeyError, RuntimeError, TypeError, EOFError) as exc:
        raise CheckpointError(f"{path}: not a streamdiar checkpoint ({exc})") from None
    features = from_dict(FeatureConfig, blob["features"], f"{path}:features")
    meta = dict(blob.get("meta", {}))
    if "cohort" in blob:
        meta["cohort"] = blob["cohort"].float().numpy()
    return model.eval(), features, meta
