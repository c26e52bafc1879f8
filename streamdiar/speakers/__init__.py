"""Known speakers: voice profiles (enroll once, recognise by name) and speaker-count hints.

`apply_to_stream` is the one entry point every front end (file, mic, serve, protocol sessions)
uses to put both into a stream before its first audio.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from streamdiar.speakers.enroll import Enrollment, enroll
from streamdiar.speakers.profiles import (ENV_VAR, Profile, ProfileError, ProfileStore, check_compatible,
                                          default_profiles_dir, make_profile)

__all__ = ["ENV_VAR", "Enrollment", "Profile", "ProfileError", "ProfileStore", "SpeakerHints", "apply_to_stream",
           "default_profiles_dir", "enroll", "load_profiles", "make_profile"]


@dataclass(frozen=True)
class SpeakerHints:
    """How many people speak: exactly `num`, or between `minimum` and `maximum` (each optional)."""

    num: int | None = None
    minimum: int | None = None
    maximum: int | None = None

    def __post_init__(self) -> None:
        for flag, value in (("num-speakers", self.num), ("min-speakers", self.minimum), ("max-speakers", self.maximum)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ProfileError(f"{flag}: must be a whole number >= 1, got {value!r}")
        if self.num is not None and (self.minimum is not None or self.maximum is not None):
            raise ProfileError("num-speakers: give either an exact count or min/max bounds, not both")
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise ProfileError(f"min-speakers ({self.minimum}) is above max-speakers ({self.maximum})")

    @property
    def given(self) -> bool:
        return any(v is not None for v in (self.num, self.minimum, self.maximum))


ProfilesArg = ProfileStore | str | Path | Iterable[Profile] | None


def load_profiles(profiles: ProfilesArg) -> list[Profile]:
    """Profiles from a store, a folder path (every profile in it) or an iterable of Profile."""
    if profiles is None:
        return []
    if isinstance(profiles, (str, Path)):
        store = ProfileStore(profiles)
        if not store.folder.is_dir():
            raise ProfileError(f"{store.folder}: no such profiles folder")
        profiles = store
    if isinstance(profiles, ProfileStore):
        loaded = profiles.load_all()
        if not loaded:
            raise ProfileError(f"{profiles.folder}: no profiles here (create one with `streamdiar enroll`)")
        return loaded
    return list(profiles)


def apply_to_stream(stream, profiles: ProfilesArg = None, num_speakers: int | None = None,
                    min_speakers: int | None = None, max_speakers: int | None = None) -> list[str]:
    """Seed `stream` (before its first audio) with enrolled speakers and speaker-count hints.

    Returns the names added. Count hints count everyone who speaks, enrolled or not.
    Raises ProfileError (one line) for a bad hint, a missing folder or an incompatible profile.
    """
    hints = SpeakerHints(num_speakers, min_speakers, max_speakers)
    loaded = load_profiles(profiles)
    features = stream.diarizer.featurizer.config
    names = [p.name for p in loaded]
    if len(set(names)) != len(names):
        raise ProfileError(f"the same speaker name is given twice: {sorted(names)}")
    for profile in loaded:
        check_compatible(profile, features)
    if stream.state.received:
        raise ProfileError("speakers and hints must be set before the stream's first audio")
    for profile in loaded:
        stream.add_known_speaker(profile.name, profile.embeddings)
    if hints.given:
        stream.state.tracker.set_speaker_count(hints.num, hints.minimum, hints.maximum)
    return names
