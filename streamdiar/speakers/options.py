"""Command-line options for known speakers and count hints, shared by file, mic and serve."""
from __future__ import annotations

import argparse

from streamdiar.speakers import apply_to_stream
from streamdiar.speakers.profiles import ENV_VAR, ProfileStore, default_profiles_dir

DEFAULT_FOLDER = "default"  # `--profiles` without a folder: the default profiles folder


def speaker_options() -> argparse.ArgumentParser:
    """Parent parser: --profiles [DIR], --num-speakers, --min-speakers, --max-speakers."""
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("speakers")
    group.add_argument("--profiles", nargs="?", const=DEFAULT_FOLDER, metavar="DIR",
                       help=f"label enrolled voices by name: every profile in DIR (without DIR: ${ENV_VAR} "
                            f"or {default_profiles_dir()})")
    group.add_argument("--num-speakers", type=int, metavar="N", help="exactly N people speak (enrolled ones included)")
    group.add_argument("--min-speakers", type=int, metavar="N", help="at least N people speak")
    group.add_argument("--max-speakers", type=int, metavar="N", help="at most N people speak")
    return parent


def profiles_folder(value: str | None) -> ProfileStore:
    """The store named by a --profiles value (the default folder when none is given)."""
    return ProfileStore(None if value in (None, DEFAULT_FOLDER) else value)


def apply_speaker_args(stream, args: argparse.Namespace) -> list[str]:
    """apply_to_stream with the options of `speaker_options()`."""
    profiles = profiles_folder(args.profiles).folder if args.profiles is not None else None
    return apply_to_stream(stream, profiles, args.num_speakers, args.min_speakers, args.max_speakers)
