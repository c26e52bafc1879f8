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

And what it is given to hear them by, its input: over pairs of frames within one window (1 s
apart or more) whose GE2E sub-windows each hold one reference speaker alone, the mean cosine of
the two frames' GE2E vectors for the same speaker (`same_voice_cosine`) and for two different
ones (`other_voice_cosine`), and how well the cosine tells the two kinds of pairs apart
(`voice_auc`). A simulator whose voices lie farther apart than a real room's trains a Weighter
to expect speaker changes to stand out.

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
from streamdiar.features.speaker_encoder import EMBED_DIM  # noqa: E402


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


def voice_pairs(embeddings: np.ndarray, speakers: np.ndarray, window: int, half_span: int
                ) -> tuple[np.ndarray, np.ndarray]:
    """Cosines of (same-speaker, other-speaker) pairs of frames at least 2 * half_span and under
    `window` frames apart, among frames whose sub-window (half_span frames either side) holds one
    reference speaker alone. embeddings: (frames, D) L2-normalised; speakers: (K, frames) bool."""
    frames = min(len(embeddings), speakers.shape[1])
    alone = speakers[:, :frames].sum(axis=0) == 1
    who = speakers[:, :frames].argmax(axis=0)
    pure = np.array([alone[max(0, f - half_span) : f + half_span].all()
                     and (who[max(0, f - half_span) : f + half_span] == who[f]).all() for f in range(frames)], dtype=bool)
    same, other = [], []
    for apart in range(2 * half_span, min(window, frames)):  # a band of pairs, not a frames x frames matrix
        both = pure[:-apart] & pure[apart:]
        cosine = np.einsum("fd,fd->f", embeddings[:frames - apart][both], embeddings[apart:frames][both])
        one = who[:-apart][both] == who[apart:][both]
        same.append(cosine[one])
        other.append(cosine[~one])
    return np.concatenate(same or [np.zeros(0)]), np.concatenate(other or [np.zeros(0)])


def mean_or_none(values: np.ndarray) -> float | None:
    """The mean (of a boolean mask: the share that is true); None where there is nothing to average."""
    return float(values.mean()) if values.size else None


def coverage(diarizer: Diarizer, folder: Path) -> dict:
    hop = diarizer.featurizer.hop / SAMPLE_RATE
    window = diarizer.model_config.window_frames
    onset = diarizer.config.labels.onset
    half_span = round(diarizer.featurizer.config.embed_window_s / hop / 2)
    refs = read_rttm(folder / "reference.rttm")
    recordings = record(diarizer, folder, folder / "reference.rttm")
    if not recordings:
        raise ValueError(f"{folder}: no WAV file named in its reference.rttm")
    top, second, speakers, same_voice, other_voice = [], [], [], [], []
    for uri, duration, steps in recordings:
        frames = int(round(duration / hop))
        ranked = ranked_activity(steps, window, frames)
        top.append(ranked[0])
        second.append(ranked[1])
        activity = speaker_activity(refs[uri], frames, hop)[1]
        speakers.append(activity.sum(axis=0))
        embeddings = np.concatenate([new_frames for new_frames, *_ in steps])[:, :EMBED_DIM]
        same, other = voice_pairs(embeddings, activity, window, half_span)
        same_voice.append(same)
        other_voice.append(other)
    top, second, speakers = np.concatenate(top), np.concatenate(second), np.concatenate(speakers)
    same_voice, other_voice = np.concatenate(same_voice), np.concatenate(other_voice)
    solo, overlap, silence = speakers == 1, speakers >= 2, speakers == 0
    return {
        "files": len(recordings), "frames": int(speakers.size), "onset": onset,
        "solo_share": mean_or_none(solo), "overlap_share": mean_or_none(overlap),
        "solo_recall": mean_or_none(top[solo] >= onset),
        "overlap_recall": mean_or_none(second[overlap] >= onset),
        "second_on_solo": mean_or_none(second[solo] >= onset),
        "overlap_auc": auc(second[overlap], second[solo]),
        "top_on_silence": mean_or_none(top[silence] >= onset),
        "same_voice_cosine": mean_or_none(same_voice),
        "other_voice_cosine": mean_or_none(other_voice),
        "voice_auc": auc(same_voice, other_voice),
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
