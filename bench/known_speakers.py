"""Issue-6 acceptance: are enrolled speakers named, and unknown voices left anonymous?

Conversations are simulated (streamdiar.train.simulate: turn taking, overlap, back-channels,
levels) from the held-out speakers of the training split. In each, two speakers are enrolled
from a part of their recording that the conversation never uses (the conversation uses the
rest), and one or two more speakers are not enrolled. The engine runs with the two profiles
loaded through `streamdiar.speakers.apply_to_stream` (as every front end does), and every 10 ms
of reference speech is checked against the final labels:
- enrolled speaker: share of its speech labelled with its own name (target >= 90%);
- unenrolled speaker: share of its speech labelled with an enrolled name (target < 5%); in
  overlap, the name of an enrolled speaker who is talking at that moment is theirs, not counted.
Figures are over each speaker's solo speech (one reference speaker talking), its overlapped speech
(another reference speaker talking too) and all of it, as a share of the speech and of the part
the engine labelled at all (missed speech is a DER matter, counted separately). Test sets:
- recordings: the recordings as they are, mixed into conversations (the acceptance set);
- rooms: the simulator's synthetic rooms and noise on the conversation while the enrollment
  stays clean, a deliberate channel mismatch (a stress figure);
- sample: real_dev/sample.wav, each of its two speakers enrolled in turn from its first 4 s of
  solo reference turns and scored on the audio after them;
- strangers: the 11 real_dev recordings (real rooms and voices) with 10 held-out LibriSpeech
  voices enrolled, none of whom speaks there: every named second is a false acceptance.

    .venv/bin/python bench/known_speakers.py [--conversations 24] [--sets recordings,rooms,sample,strangers] [--json OUT]
    .venv/bin/python bench/known_speakers.py --sweep 0.7,0.75,0.8,0.85   # tracker.known_similarity values
    .venv/bin/python bench/known_speakers.py --seed 99 --sets recordings --sweep final_name_similarity=0.86,0.865
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from streamdiar import Diarizer, load_config  # noqa: E402
from streamdiar.audio import SAMPLE_RATE, load_audio  # noqa: E402
from streamdiar.config import replace  # noqa: E402
from streamdiar.evaluate.der import read_rttm, speaker_activity  # noqa: E402
from streamdiar.speakers import apply_to_stream, enroll, make_profile  # noqa: E402
from streamdiar.train.corpus import speaker_split  # noqa: E402
from streamdiar.train.simulate import SPEECH_RES, SimulationConfig, Utterance, simulate  # noqa: E402

SHARED = REPO.parent / "shared" / "data"
SPEAKERS_DIR = SHARED / "speakers" / "librispeech"
REAL_DEV = SHARED / "real_dev"
HELD_OUT, SPLIT_SEED = 40, 7  # configs/train.yaml: the speakers training never saw
ENROLL_S = 5.0  # seconds of each enrolled speaker's utterance kept for enrollment only
MIN_CONVERSATION_S = 5.0  # an enrolled speaker's utterance left for the conversation, at least
STRANGERS = 10  # enrolled voices that are in none of the real recordings
SAMPLE_ENROLL_S = 4.0  # seconds of solo turns enrolled from the 30-s real recording
NAMED_TARGET, UNKNOWN_TARGET = 0.90, 0.05
MIN_JUDGED_S = 1.0  # per-speaker figures leave out speakers with less speech than this in a conversation
CATEGORIES = ("right", "other_name", "anonymous", "missed")
SET_TITLES = {
    "recordings": "conversations of the held-out speakers' recordings as recorded (turns, overlap, levels)",
    "rooms": "the same with the simulator's synthetic rooms and noise (enrollment stays clean: a channel mismatch)",
    "sample": "real_dev/sample.wav, each speaker enrolled in turn from its first 4 s of solo turns, scored after them",
    "strangers": "every real_dev recording with 10 held-out LibriSpeech voices enrolled, none of them present",
}


def split_utterance(utt: Utterance, seconds: float, from_start: bool) -> tuple[np.ndarray, Utterance]:
    """(enrollment audio, the rest as an Utterance): the two parts never share a sample."""
    cut = int(seconds * SAMPLE_RATE) // SPEECH_RES * SPEECH_RES
    if not from_start:
        cut = (utt.audio.size - cut) // SPEECH_RES * SPEECH_RES
    blocks = cut // SPEECH_RES
    if from_start:
        return utt.audio[:cut], Utterance(utt.speaker, utt.audio[cut:], utt.speech[blocks:])
    return utt.audio[cut:], Utterance(utt.speaker, utt.audio[:cut], utt.speech[:blocks])


def label_grid(segments, labels: list[str], blocks: int) -> np.ndarray:
    """(len(labels), blocks) bool at 10 ms from final segments."""
    grid = np.zeros((len(labels), blocks), dtype=bool)
    index = {label: i for i, label in enumerate(labels)}
    res = SPEECH_RES / SAMPLE_RATE
    for seg in segments:
        grid[index[seg.speaker], int(round(seg.start / res)) : int(round(seg.end / res))] = True
    return grid


def attribution(ref: np.ndarray, hyp: np.ndarray, hyp_labels: list[str], own: str | None, names: set[str],
                elsewhere: np.ndarray) -> dict:
    """Seconds of one reference speaker's speech (ref: bool per 10 ms) by what the labels say.
    `elsewhere` is `hyp` less each name's frames where its owner speaks: in overlap, another
    speaker's name on a frame is that speaker's label, not a name given to this one."""
    is_name = np.array([label in names for label in hyp_labels], dtype=bool)
    is_own = np.array([label == own for label in hyp_labels], dtype=bool)
    any_label = hyp.any(axis=0) if hyp.size else np.zeros(ref.size, dtype=bool)
    own_on = hyp[is_own].any(axis=0) if is_own.any() else np.zeros(ref.size, dtype=bool)
    others = is_name & ~is_own
    name_on = elsewhere[others].any(axis=0) if others.any() else np.zeros(ref.size, dtype=bool)
    res = SPEECH_RES / SAMPLE_RATE
    return {
        "right": float((ref & own_on).sum() * res),
        "other_name": float((ref & ~own_on & name_on).sum() * res),
        "anonymous": float((ref & ~own_on & ~name_on & any_label).sum() * res),
        "missed": float((ref & ~any_label).sum() * res),
    }


def score(ref_activity: np.ndarray, ref_names: list[str | None], segments, names: set[str]) -> list[dict]:
    """Per reference speaker: seconds by category, on solo, overlapped and all speech."""
    blocks = ref_activity.shape[1]
    labels = sorted({s.speaker for s in segments})
    hyp = label_grid(segments, labels, blocks)
    elsewhere = hyp.copy()
    for row, label in enumerate(labels):
        if label in ref_names:
            elsewhere[row] &= ~ref_activity[ref_names.index(label)]
    solo = ref_activity.sum(axis=0) == 1
    out = []
    for k, own in enumerate(ref_names):
        out.append({"enrolled": own is not None,
                    "solo": attribution(ref_activity[k] & solo, hyp, labels, own, names, elsewhere),
                    "overlap": attribution(ref_activity[k] & ~solo, hyp, labels, own, names, elsewhere),
                    "all": attribution(ref_activity[k], hyp, labels, own, names, elsewhere)})
    return out


def run_stream(diarizer: Diarizer, audio: np.ndarray, profiles, uri: str):
    stream = diarizer.open_stream(uri)
    apply_to_stream(stream, profiles)
    finals = list(stream.push(audio).final)
    finals.extend(stream.finish().final)
    return finals


def build_trials(diarizer: Diarizer, count: int, seed: int, enroll_s: float, rooms: bool = True) -> list[dict]:
    """Simulated conversations with their enrollment profiles (computed once, reused per sweep)."""
    _, held = speaker_split(diarizer.featurizer, SPEAKERS_DIR, HELD_OUT, SPLIT_SEED)
    by_name = {u.speaker: u for u in held}
    # enrolled voices need enrollment audio plus enough left over to talk in the conversation
    long = sorted(n for n, u in by_name.items() if u.audio.size >= (enroll_s + MIN_CONVERSATION_S) * SAMPLE_RATE)
    rng = np.random.default_rng(seed)
    trials = []
    for i in range(count):
        unknown = 1 + i % 2  # 3- and 4-speaker conversations alternate
        enrolled = [long[j] for j in rng.choice(len(long), size=2, replace=False)]
        others = sorted(set(by_name) - set(enrolled))
        chosen = enrolled + [others[j] for j in rng.choice(len(others), size=unknown, replace=False)]
        profiles, pool = [], []
        for spk in chosen[:2]:
            enroll_audio, rest = split_utterance(by_name[spk], enroll_s, from_start=bool(rng.integers(2)))
            e = enroll(diarizer.featurizer, [enroll_audio])
            profiles.append(make_profile(f"N{spk}", e.embeddings, e.speech_s, [spk], diarizer.featurizer.config))
            pool.append(rest)
        pool.extend(by_name[spk] for spk in chosen[2:])
        sim = SimulationConfig(min_duration_s=60, max_duration_s=90, speaker_counts=(len(pool),), speaker_count_weights=(1.0,))
        sim = sim if rooms else sim.dry()
        conv = simulate(rng, pool, sim)
        ref_names = [f"N{spk}" if spk in chosen[:2] else None for spk in conv.speakers]
        trials.append({"uri": f"known{i:03d}", "audio": conv.audio, "activity": conv.activity,
                       "ref_names": ref_names, "profiles": profiles})
    return trials


def reference_activity(uri: str, blocks: int) -> tuple[list[str], np.ndarray]:
    """real_dev reference speakers and their (speakers, blocks) activity at 10 ms."""
    return speaker_activity(read_rttm(REAL_DEV / "reference.rttm")[uri], blocks, SPEECH_RES / SAMPLE_RATE)


def stranger_trials(diarizer: Diarizer, count: int) -> list[dict]:
    """Every real_dev recording with `count` held-out LibriSpeech voices enrolled, none of whom
    speaks in it: any name on its speech is a false acceptance."""
    _, held = speaker_split(diarizer.featurizer, SPEAKERS_DIR, HELD_OUT, SPLIT_SEED)
    profiles = []
    for utt in sorted(held, key=lambda u: -u.audio.size)[:count]:
        e = enroll(diarizer.featurizer, [utt.audio])
        profiles.append(make_profile(f"N{utt.speaker}", e.embeddings, e.speech_s, [utt.speaker], diarizer.featurizer.config))
    trials = []
    for path in sorted(REAL_DEV.glob("*.wav")):
        audio = load_audio(path)
        speakers, activity = reference_activity(path.stem, -(-audio.size // SPEECH_RES))
        trials.append({"uri": path.stem, "audio": audio, "activity": activity, "ref_names": [None] * len(speakers),
                       "profiles": profiles})
    return trials


def sample_trial(diarizer: Diarizer, target_index: int, enroll_turns_s: float) -> dict:
    """real_dev/sample.wav: one of its two speakers enrolled from the first `enroll_turns_s` of
    its solo turns; only the audio after those turns is scored."""
    audio = load_audio(REAL_DEV / "sample.wav")
    speakers, activity = reference_activity("sample", -(-audio.size // SPEECH_RES))
    res = SPEECH_RES / SAMPLE_RATE
    target = speakers[target_index]
    solo_turns = activity[target_index] & (activity.sum(axis=0) == 1)
    idx = np.flatnonzero(solo_turns)[: int(enroll_turns_s / res)]
    enroll_audio = np.concatenate([audio[b * SPEECH_RES : (b + 1) * SPEECH_RES] for b in idx])
    scored_from = (idx[-1] + 1) if idx.size else 0  # enrollment time is left out of the score
    e = enroll(diarizer.featurizer, [enroll_audio])
    profile = make_profile(target, e.embeddings, e.speech_s, ["sample.wav"], diarizer.featurizer.config)
    activity[:, :scored_from] = False
    return {"uri": f"sample-{target}", "audio": audio, "activity": activity,
            "ref_names": [target if s == target else None for s in speakers], "profiles": [profile],
            "scored_from_s": scored_from * res}


def summarise(results: list[list[dict]]) -> dict:
    """Pooled shares and per-(conversation, speaker) worst cases for both roles."""
    out = {}
    for role, key in (("enrolled", "right"), ("unknown", None)):
        for part in ("solo", "overlap", "all"):
            rows = [r[part] for conv in results for r in conv if r["enrolled"] == (role == "enrolled")]
            if not rows:
                continue
            total = {c: sum(r[c] for r in rows) for c in CATEGORIES}
            speech = sum(total.values())
            labelled = speech - total["missed"]
            # a speaker the simulated turns left (almost) no such speech has no share to judge
            judged = [r for r in rows if sum(r.values()) >= MIN_JUDGED_S] or rows
            if role == "enrolled":
                hit = total["right"]
                per = [r["right"] / max(sum(r.values()), 1e-9) for r in judged]
                passing = float(np.mean([p >= NAMED_TARGET for p in per]))
            else:
                hit = total["other_name"]
                per = [r["other_name"] / max(sum(r.values()), 1e-9) for r in judged]
                passing = float(np.mean([p < UNKNOWN_TARGET for p in per]))
            out[f"{role}_{part}"] = {
                "speech_s": round(speech, 1), **{c: round(v, 1) for c, v in total.items()},
                "share_of_speech": round(hit / max(speech, 1e-9), 4),
                "share_of_labelled": round(hit / max(labelled, 1e-9), 4),
                "worst_speaker": round(min(per) if role == "enrolled" else max(per), 4),
                "speakers_meeting_target": round(passing, 3), "speakers": len(judged)}
    return out


def evaluate(diarizer: Diarizer, trials: list[dict]) -> dict:
    results = []
    for t in trials:
        names = {p.name for p in t["profiles"]}
        finals = run_stream(diarizer, t["audio"], t["profiles"], t["uri"])
        results.append(score(t["activity"], t["ref_names"], finals, names))
    return summarise(results)


def print_summary(title: str, summary: dict) -> None:
    print(title)
    for key, s in summary.items():
        role, part = key.split("_")
        what = "own name" if role == "enrolled" else "a name"
        print(f"  {role:<8} {part:<7} {s['speech_s']:6.1f} s: {what} on {100 * s['share_of_labelled']:5.1f}% of labelled, "
              f"{100 * s['share_of_speech']:5.1f}% of speech | worst {100 * s['worst_speaker']:5.1f}%, "
              f"{s['speakers_meeting_target'] * 100:3.0f}% of {s['speakers']} meet target | other name {s['other_name']:.1f} s, "
              f"anonymous {s['anonymous']:.1f} s, missed {s['missed']:.1f} s")


@torch.inference_mode()
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", type=int, default=24)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--enroll-s", type=float, default=ENROLL_S, help="seconds of each utterance kept for enrollment")
    parser.add_argument("--sweep", help="[FIELD=]V1,V2,...: values of a tracker setting to compare (default field: known_similarity)")
    parser.add_argument("--config", help="runtime config YAML (default: built-in defaults)")
    parser.add_argument("--weights", default="default", help="Weighter checkpoint (default: the shipped one)")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--sets", default="recordings,rooms,sample,strangers", help="which test sets to run (comma-separated)")
    parser.add_argument("--json", help="write the figures as JSON")
    args = parser.parse_args()
    diarizer = Diarizer(load_config(args.config, threads=args.threads, weights=args.weights))
    started = time.perf_counter()
    sets = {}
    for name in args.sets.split(","):
        if name == "sample":
            sets[name] = [sample_trial(diarizer, i, SAMPLE_ENROLL_S) for i in range(2)]
        elif name == "strangers":
            sets[name] = stranger_trials(diarizer, STRANGERS)
        elif name in ("recordings", "rooms"):
            sets[name] = build_trials(diarizer, args.conversations, args.seed, args.enroll_s, rooms=name == "rooms")
        else:
            parser.error(f"--sets: unknown set {name!r} (recordings, rooms, sample, strangers)")
    print(f"test sets built in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    base = diarizer.config.tracker
    field, _, listed = (args.sweep or "").rpartition("=")
    field = field or "known_similarity"
    if not hasattr(base, field):
        parser.error(f"--sweep: tracker has no setting {field!r}")
    kind = type(getattr(base, field))  # an int setting (a count) is swept as ints
    values = [kind(float(v)) for v in listed.split(",")] if listed else [getattr(base, field)]
    report = {"conversations": args.conversations, "enroll_s": args.enroll_s, "seed": args.seed, "runs": []}
    for value in values:
        diarizer.config = dataclasses.replace(diarizer.config, tracker=replace(base, **{field: value}))
        run = {field: value}
        for name, trials in sets.items():
            run[name] = evaluate(diarizer, trials)
            minutes = sum(t["audio"].size for t in trials) / SAMPLE_RATE / 60
            print_summary(f"{field} {value:.3f}, {name}: {SET_TITLES[name]} ({len(trials)} files, {minutes:.1f} min)",
                          run[name])
        report["runs"].append(run)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
