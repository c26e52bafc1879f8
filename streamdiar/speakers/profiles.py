"""Voice profiles on disk: one `<name>.npz` (enrollment embeddings) and one `<name>.json`
(metadata) per speaker in a profiles folder.

The JSON is written last, so a profile exists only once both files are complete. The metadata
records the frame-feature settings the embeddings were computed with: embeddings from other
settings live in a different space and are refused rather than silently mismatched.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from streamdiar.config import ConfigError, FeatureConfig
from streamdiar.features.speaker_encoder import EMBED_DIM

PROFILE_VERSION = 1
ENV_VAR = "STREAMDIAR_PROFILES"
# Names become labels in RTTM (space-separated) and file names: one word, no path characters.
NAME_PATTERN = re.compile(r"[^\W_][\w.'-]{0,63}")
ANONYMOUS_PREFIX = "SPEAKER_"  # the tracker's labels for voices nobody enrolled


class ProfileError(ConfigError):
    """A profile that cannot be stored, found or used; the message says which and why."""


@dataclass(frozen=True)
class Profile:
    name: str
    embeddings: np.ndarray  # (n, EMBED_DIM) float32, L2-normalised
    speech_s: float
    sources: tuple[str, ...]
    features: dict  # FeatureConfig fields the embeddings were computed with
    created: str = ""

    def metadata(self) -> dict:
        return {"version": PROFILE_VERSION, "name": self.name, "created": self.created, "speech_s": self.speech_s,
                "embeddings": int(len(self.embeddings)), "sources": list(self.sources), "features": self.features}


def check_name(name: str) -> str:
    if not NAME_PATTERN.fullmatch(name):
        raise ProfileError(f"{name!r}: a speaker name is one word of letters, digits and . _ ' - "
                           "(up to 64 characters, starting with a letter or digit)")
    if name.upper().startswith(ANONYMOUS_PREFIX):
        raise ProfileError(f"{name!r}: names starting with {ANONYMOUS_PREFIX} are kept for unknown voices")
    return name


def make_profile(name: str, embeddings: np.ndarray, speech_s: float, sources: Iterable[str],
                 features: FeatureConfig) -> Profile:
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return Profile(check_name(name), np.asarray(embeddings, dtype=np.float32), float(speech_s),
                   tuple(str(s) for s in sources), dataclasses.asdict(features), created)


def default_profiles_dir() -> Path:
    """$STREAMDIAR_PROFILES, else $XDG_DATA_HOME/streamdiar/profiles (~/.local/share by default)."""
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser()
    data_home = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(data_home) / "streamdiar" / "profiles"


class ProfileStore:
    """The profiles in one folder (created on first save)."""

    def __init__(self, folder: str | Path | None = None):
        self.folder = Path(folder).expanduser() if folder is not None else default_profiles_dir()

    def names(self) -> list[str]:
        if not self.folder.is_dir():
            return []
        return sorted(p.stem for p in self.folder.glob("*.json") if (self.folder / f"{p.stem}.npz").is_file())

    def load(self, name: str) -> Profile:
        meta_path, emb_path = self._paths(check_name(name))
        if not meta_path.is_file() or not emb_path.is_file():
            known = ", ".join(self.names()) or "none"
            raise ProfileError(f"no profile named {name!r} in {self.folder} (known: {known})")
        try:
            meta = json.loads(meta_path.read_text())
            with np.load(emb_path) as data:
                embeddings = data["embeddings"].astype(np.float32)
        except (OSError, ValueError, KeyError) as exc:
            raise ProfileError(f"{meta_path}: unreadable profile ({exc})") from None
        if meta.get("version") != PROFILE_VERSION or embeddings.ndim != 2 or embeddings.shape[1] != EMBED_DIM \
                or not len(embeddings):
            raise ProfileError(f"{meta_path}: not a version-{PROFILE_VERSION} profile of {EMBED_DIM}-d embeddings")
        return Profile(meta["name"], embeddings, float(meta.get("speech_s", 0.0)), tuple(meta.get("sources", ())),
                       dict(meta.get("features", {})), meta.get("created", ""))

    def load_all(self, names: Iterable[str] | None = None) -> list[Profile]:
        """The named profiles (default: every profile in the folder)."""
        return [self.load(n) for n in (self.names() if names is None else names)]

    def save(self, profile: Profile) -> Path:
        meta_path, emb_path = self._paths(check_name(profile.name))
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = emb_path.with_suffix(".tmp.npz")
        np.savez(tmp, embeddings=profile.embeddings.astype(np.float32))
        os.replace(tmp, emb_path)
        tmp = meta_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(profile.metadata(), indent=2, ensure_ascii=False) + "\n")
        os.replace(tmp, meta_path)
        return meta_path

    def remove(self, name: str) -> None:
        meta_path, emb_path = self._paths(check_name(name))
        if not meta_path.is_file():
            raise ProfileError(f"no profile named {name!r} in {self.folder}")
        meta_path.unlink()
        emb_path.unlink(missing_ok=True)

    def _paths(self, name: str) -> tuple[Path, Path]:
        return self.folder / f"{name}.json", self.folder / f"{name}.npz"


def check_compatible(profile: Profile, features: FeatureConfig) -> None:
    """Refuse embeddings computed with other frame-feature settings than the engine's."""
    expected = dataclasses.asdict(features)
    if profile.features != expected:
        raise ProfileError(f"profile {profile.name!r} was enrolled with other speaker features "
                           f"({profile.features}) than this engine uses ({expected}); enroll it again")
