"""DER on longer real recordings: real_dev excerpts that share speakers, joined end to end.

real_dev's AMI excerpts are 30 s each, too short for what happens over minutes: a speaker
recognised again after a pause, running voices that form from many final pieces. Excerpts whose
references share a speaker (the same person under the same AMI name, so the same meeting or
participant) are joined in file order into one recording with one reference: with the shared
data, trn00-trn03 (2 min), trn06+trn09 and trn07+trn08 (1 min each). The joins are hard cuts,
as when a meeting's recording pauses. `streamdiar eval` then scores streamdiar and both baselines.

    .venv/bin/python bench/joined_meetings.py [--config CFG] [--json OUT]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from streamdiar import Diarizer, load_audio, load_config  # noqa: E402
from streamdiar.audio import SAMPLE_RATE  # noqa: E402
from streamdiar.evaluate.run import evaluate, write_json  # noqa: E402

REAL_DEV = REPO.parent / "shared" / "data" / "real_dev"


def reference_turns(path: Path) -> dict[str, list[tuple[float, float, str]]]:
    turns: dict[str, list[tuple[float, float, str]]] = {}
    for line in path.read_text().splitlines():
        parts = line.split()
        if parts and parts[0] == "SPEAKER":
            turns.setdefault(parts[1], []).append((float(parts[3]), float(parts[4]), parts[7]))
    return turns


def meetings(turns: dict[str, list[tuple[float, float, str]]]) -> list[list[str]]:
    """Groups of two or more files linked by shared speaker names, each in file order."""
    speakers = {uri: {who for _, _, who in file_turns} for uri, file_turns in turns.items()}
    groups: list[set[str]] = []
    for uri in sorted(turns):
        linked = [g for g in groups if any(speakers[uri] & speakers[other] for other in g)]
        groups = [g for g in groups if g not in linked] + [set().union({uri}, *linked)]
    return [sorted(g) for g in groups if len(g) > 1]


def join(folder: Path, out: Path) -> list[list[str]]:
    """Writes the joined WAVs, reference.rttm and reference.uem to `out`; returns the groups."""
    turns = reference_turns(folder / "reference.rttm")
    groups = meetings(turns)
    rttm, uem = [], []
    for group in groups:
        name = "+".join(group)
        audio, offset = [], 0.0
        for uri in group:
            signal = load_audio(folder / f"{uri}.wav")
            audio.append(signal)
            rttm += [f"SPEAKER {name} 1 {start + offset:.3f} {duration:.3f} <NA> <NA> {who} <NA> <NA>"
                     for start, duration, who in turns[uri]]
            offset += signal.size / SAMPLE_RATE
        sf.write(out / f"{name}.wav", np.concatenate(audio), SAMPLE_RATE, subtype="FLOAT")
        uem.append(f"{name} NA 0.000 {offset:.3f}")
    (out / "reference.rttm").write_text("\n".join(rttm) + "\n")
    (out / "reference.uem").write_text("\n".join(uem) + "\n")
    return groups


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="engine config YAML (default: configs/default.yaml)")
    parser.add_argument("--real-dev", type=Path, default=REAL_DEV, help="folder with WAVs and reference.rttm")
    parser.add_argument("--json", help="write the per-file and total DER here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        groups = join(args.real_dev, Path(tmp))
        if not groups:
            parser.error(f"{args.real_dev}: no two recordings share a speaker")
        print("joined: " + ", ".join("+".join(g) for g in groups))
        diarizer = Diarizer(load_config(args.config))
        result = evaluate(diarizer, tmp, Path(tmp) / "reference.rttm", Path(tmp) / "reference.uem")
    if args.json:
        write_json(result, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
