"""How the Weighter's slots cover the reference speech, before any linking.

DER mixes what the Weighter hears with what the tracker and the label rules make of it. This
measures the Weighter alone: each folder's files run through the live engine once
(`streamdiar.evaluate.tune.record`), and every 0.1-s frame gets, per slot rank, the mean over the
windows that covered it of the window's most and second-most active slot there (the Weighter's own
output: before Silero's veto, linking and the label rules). Against the
folder's `reference.rttm` (whole files, no UEM):

- `solo_recall`: frames where one person speaks whose most active slot reaches the onset;
- `overlap_recall`: frames where two or more speak whose second slot reaches the onset;
- `second_on_solo`: frames where one person speaks whose second slot reaches it anyway;
- `overlap_auc`: how well the second slot's activity tells two-or-more-speaker frames from
  one-speaker frames (0.5 = not at all, 1 = perfectly);
- `top_on_silence`: frames where nobody speaks whose most active slot reaches the onset.

Comparing a simulated folder with real recordings shows where the Weighter meets audio unlike
its training audio; comparing checkpoints (`--weights`) shows what a retraining changed, without
the tracker's run-to-run cascades.

    .venv/bin/python bench/slot_coverage.py ../shared/data/real_dev data/validation [--weights W] [--json OUT]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from scipy.stats import rankdata

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from streamdiar import Diarizer, load_config  # noqa: E402
from streamdiar.audio import SAMPLE_RATE  # noqa: E402
from streamdiar.evaluate.der import read_rttm, speaker_activity  # noqa: E402
from streamdiar.evaluate.tune import record  # noqa: E402


def ranked_activity(steps: list, window: int, frames: int) -> np.ndarray:
    """(2, frames): per frame, the mean over the windows covering it of their most and
    second-most active slot there (0 where no window covered it)."""
    total, covered, count = np.zeros((2, frames)), np.zeros(frames), 0
    for new_frames, _final_upto, activity, *_ in steps:
        count += len(new_frames)
        start = count - window  # the ring's newest `window` frames
        ranked = -np.sort(-activity, axis=0)[:2]
        lo, hi = max(start, 0), min(count, frames)
        total[:, lo:hi] += ranked[:, lo - start : hi - start]
        covered[lo:hi] += 1
    return total / np.maximum(covered, 1)


def auc(positive: np.ndarray, negative: np.ndarray) -> float | None:
    """Probability that a positive frame scores above a negative one (ties count half)."""
    if not positive.size or not negative.size:
        return None
    ranks = rankdata(np.concatenate([positive, negative]))  # ties share their mean rank
    return float((ranks[: positive.size].sum() - positive.size * (positive.size + 1) / 2) / (positive.size * negative.size))


def share(mask: np.ndarray) -> float | None:
    return float(mask.mean()) if mask.size else None


def coverage(diarizer: Diarizer, folder: Path) -> dict:
    hop = diarizer.featurizer.hop / SAMPLE_RATE
    window = diarizer.model_config.window_frames
    onset = diarizer.config.labels.onset
    refs = read_rttm(folder / "reference.rttm")
    recordings = record(diarizer, folder, folder / "reference.rttm")
    if not recordings:
        raise ValueError(f"{folder}: no WAV file named in its reference.rttm")
    top, second, speakers = [], [], []
    for uri, duration, steps in recordings:
        frames = int(round(duration / hop))
        ranked = ranked_activity(steps, window, frames)
        top.append(ranked[0])
        second.append(ranked[1])
        speakers.append(speaker_activity(refs[uri], frames, hop)[1].sum(axis=0))
    top, second, speakers = np.concatenate(top), np.concatenate(second), np.concatenate(speakers)
    solo, overlap, silence = speakers == 1, speakers >= 2, speakers == 0
    return {
        "files": len(recordings), "frames": int(speakers.size), "onset": onset,
        "solo_share": share(solo), "overlap_share": share(overlap),
        "solo_recall": share(top[solo] >= onset),
        "overlap_recall": share(second[overlap] >= onset),
        "second_on_solo": share(second[solo] >= onset),
        "overlap_auc": auc(second[overlap], second[solo]),
        "top_on_silence": share(top[silence] >= onset),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folders", nargs="+", type=Path, help="folders of WAVs, each with its reference.rttm")
    parser.add_argument("--weights", default="default", help="Weighter checkpoint (default: the shipped one)")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--json", help="write the figures as JSON")
    args = parser.parse_args()
    for folder in args.folders:
        if not (folder / "reference.rttm").is_file():
            parser.error(f"{folder}: no reference.rttm")
    diarizer = Diarizer(load_config(None, weights=args.weights, threads=args.threads))
    results = {}
    for folder in args.folders:
        try:
            results[str(folder)] = figures = coverage(diarizer, folder)
        except ValueError as error:
            parser.error(str(error))
        print(folder, " ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in figures.items()), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"weights": args.weights, "sets": results}, indent=1))


if __name__ == "__main__":
    main()
