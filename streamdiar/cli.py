"""One argparse tree for every command. Engine options are declared once and shared."""
from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

from streamdiar.audio import AudioError
from streamdiar.config import ConfigError, load_config

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "default.yaml"


def engine_options() -> argparse.ArgumentParser:
    """Options every command that runs the engine accepts."""
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("engine")
    group.add_argument("--config", help="runtime config YAML (default: built-in defaults)")
    group.add_argument("--step", type=float, help="seconds of audio between model steps (config stream.step_s)")
    group.add_argument("--latency", type=float, help="seconds until a label is final (config stream.latency_s)")
    group.add_argument("--weights", help="Weighter checkpoint (default: the one shipped in the package)")
    group.add_argument("--threads", type=int, help="torch CPU threads (0 = torch's default)")
    return parent


def config_from_args(args: argparse.Namespace):
    overrides: dict = {}
    stream = {}
    if args.step is not None:
        stream["step_s"] = args.step
        if args.latency is None:
            stream["latency_s"] = max(args.step, load_config(args.config).stream.latency_s if args.config else 0.5)
    if args.latency is not None:
        stream["latency_s"] = args.latency
    if stream:
        overrides["stream"] = stream
    if args.weights:
        overrides["weights"] = args.weights
    if args.threads is not None:
        overrides["threads"] = args.threads
    return load_config(args.config, **overrides)


def make_diarizer(args: argparse.Namespace):
    from streamdiar.engine import Diarizer

    return Diarizer(config_from_args(args))


# -- file ----------------------------------------------------------------------------------------
def cmd_file(args: argparse.Namespace) -> int:
    from streamdiar.engine.pipeline import diarize_file
    from streamdiar.io.sinks import ConsoleSink, JSONLSink, RTTMSink

    diarizer = make_diarizer(args)
    rttm = RTTMSink(args.rttm) if args.rttm else None
    jsonl = JSONLSink(args.jsonl) if args.jsonl else None
    console = ConsoleSink() if args.verbose else None
    failures = 0
    for path in args.files:
        uri = Path(path).stem
        started = time.perf_counter()

        def on_update(update, uri=uri):
            if jsonl:
                jsonl.write(uri, update.final + update.provisional, update.audio_s)
            if console:
                console.write(uri, update.final, update.provisional, update.audio_s)

        try:
            stream, finals = asyncio.run(diarize_file(diarizer, path, pace=args.pace, on_update=on_update))
        except AudioError as exc:
            print(f"streamdiar: error: {exc}", file=sys.stderr)
            failures += 1
            continue
        if rttm:
            rttm.write(uri, finals)
        seconds = stream.state.received / 16000
        speakers = len({s.speaker for s in finals})
        print(f"{path}: {seconds:.1f} s of audio, {speakers} speaker(s), {len(finals)} segment(s) "
              f"in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    if rttm:
        rttm.close()
    if jsonl:
        jsonl.close()
    return 1 if failures else 0


# -- eval ----------------------------------------------------------------------------------------
def cmd_eval(args: argparse.Namespace) -> int:
    from streamdiar.evaluate.run import evaluate, write_json

    result = evaluate(make_diarizer(args), args.folder, args.reference, args.uem,
                      offline_threshold=args.offline_threshold, online_delta=args.online_delta)
    if args.json:
        write_json(result, args.json)
    return 0


# -- train ---------------------------------------------------------------------------------------
def cmd_train(args: argparse.Namespace) -> int:
    from streamdiar.train.train import load_train_config, train

    train(load_train_config(args.config))
    return 0


# -- simulate ------------------------------------------------------------------------------------
def cmd_simulate(args: argparse.Namespace) -> int:
    import dataclasses

    import numpy as np

    from streamdiar.features import FrameFeaturizer
    from streamdiar.train.corpus import speaker_split, write_conversations
    from streamdiar.train.simulate import simulate
    from streamdiar.train.train import load_train_config

    cfg = load_train_config(args.train_config)
    train_utts, held_out = speaker_split(FrameFeaturizer(cfg.features), cfg.speakers_dir, cfg.held_out_speakers, cfg.seed)
    pool = {"held-out": held_out, "train": train_utts, "all": train_utts + held_out}[args.speakers]
    counts = tuple(int(c) for c in args.speaker_counts.split(","))
    sim = dataclasses.replace(cfg.simulation, min_duration_s=args.min_duration, max_duration_s=args.max_duration,
                              speaker_counts=counts, speaker_count_weights=tuple(1.0 for _ in counts))
    rng = np.random.default_rng(args.seed)
    convs = [simulate(rng, pool, sim) for _ in range(args.count)]
    names = [f"{args.prefix}{i:03d}" if args.count > 1 else args.prefix for i in range(args.count)]
    write_conversations(args.out, convs, names, fmt=args.format)
    print(f"wrote {len(convs)} conversation(s) to {args.out}", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="streamdiar", description="Streaming real-time speaker diarization.")
    sub = parser.add_subparsers(dest="command", required=True)
    engine = engine_options()

    p = sub.add_parser("file", parents=[engine], help="diarize audio files through the live code path")
    p.add_argument("files", nargs="+", help="WAV/FLAC files of any rate, channels and sample format")
    p.add_argument("--rttm", help="write final segments of all files to this RTTM file")
    p.add_argument("--jsonl", help="write every event (provisional and final) as JSON lines")
    p.add_argument("--pace", type=float, default=0.0, help="feed at this multiple of real time (0 = as fast as possible)")
    p.add_argument("-v", "--verbose", action="store_true", help="print live labels")
    p.set_defaults(func=cmd_file)

    p = sub.add_parser("eval", parents=[engine], help="DER of streamdiar and the baselines on a folder of WAVs")
    p.add_argument("folder")
    p.add_argument("--reference", required=True, help="reference RTTM (uri = file stem)")
    p.add_argument("--uem", help="scored regions (default: whole files)")
    p.add_argument("--json", help="write per-file and total results as JSON")
    p.add_argument("--offline-threshold", type=float, default=0.3, help="offline baseline: AHC cosine distance threshold")
    p.add_argument("--online-delta", type=float, default=0.3, help="online baseline: new-speaker cosine distance")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("train", help="simulate conversations and train the Weighter")
    p.add_argument("--config", default="configs/train.yaml")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("simulate", help="write simulated conversations (audio + RTTM) from the shared speakers")
    p.add_argument("out", help="output folder")
    p.add_argument("--count", type=int, default=10)
    p.add_argument("--seed", type=int, default=100)
    p.add_argument("--speakers", choices=("held-out", "train", "all"), default="held-out",
                   help="which side of the training split to draw voices from")
    p.add_argument("--speaker-counts", default="2,3,4", help="comma-separated speaker counts to draw from")
    p.add_argument("--min-duration", type=float, default=60.0)
    p.add_argument("--max-duration", type=float, default=120.0)
    p.add_argument("--prefix", default="sim")
    p.add_argument("--format", choices=("wav", "flac"), default="wav")
    p.add_argument("--train-config", default="configs/train.yaml", help="the split and simulation settings")
    p.set_defaults(func=cmd_simulate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ConfigError, AudioError, FileNotFoundError) as exc:
        print(f"streamdiar: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
