"""One argparse tree for every command. Engine options are declared once and shared."""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

from streamdiar.audio import AudioError
from streamdiar.config import ConfigError, load_config
from streamdiar.server.options import DEFAULT_HOST, DEFAULT_PORT, Limits
from streamdiar.speakers.options import speaker_options

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
        if args.latency is None:  # keep the configured latency unless the step no longer fits in it
            stream["latency_s"] = max(args.step, load_config(args.config).stream.latency_s)
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
    from streamdiar.speakers.options import apply_speaker_args

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
            stream, finals = asyncio.run(diarize_file(diarizer, path, pace=args.pace, on_update=on_update,
                                                      prepare=lambda stream: apply_speaker_args(stream, args)))
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


# -- tune ----------------------------------------------------------------------------------------
def cmd_tune(args: argparse.Namespace) -> int:
    import dataclasses

    import yaml

    from streamdiar.evaluate.tune import grid_search, record

    grid = {}
    for item in args.grid:
        key, _, values = item.partition("=")
        if key.split(".")[0] not in ("tracker", "labels") or not values:
            raise ConfigError(f"--grid {item!r}: expected tracker.NAME=V1,V2 or labels.NAME=V1,V2")
        grid[key] = [yaml.safe_load(v) for v in values.split(",")]
    try:
        gains = [float(g) for g in args.gains.split(",")]
    except ValueError:
        raise ConfigError(f"--gains {args.gains!r}: expected decibels, e.g. -12,0,8") from None
    diarizer = make_diarizer(args)
    variants = [record(diarizer, args.folder, args.reference, gain_db=gain) for gain in gains]
    best, total = grid_search(diarizer, variants, args.reference, grid)
    print(f"best: DER {100 * total['der']:.2f} with tracker={best.tracker} labels={best.labels}")
    if args.out:
        sections = {"tracker": dataclasses.asdict(best.tracker), "labels": dataclasses.asdict(best.labels)}
        Path(args.out).write_text(yaml.safe_dump(sections, sort_keys=False))
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
    if args.dry:
        sim = sim.dry()
    rng = np.random.default_rng(args.seed)
    convs = [simulate(rng, pool, sim) for _ in range(args.count)]
    names = [f"{args.prefix}{i:03d}" if args.count > 1 else args.prefix for i in range(args.count)]
    # a single conversation (the bundled demo) gets its own RTTM beside it
    rttm_name = f"{names[0]}.rttm" if args.count == 1 else "reference.rttm"
    write_conversations(args.out, convs, names, fmt=args.format, rttm_name=rttm_name)
    print(f"wrote {len(convs)} conversation(s) to {args.out}", file=sys.stderr)
    return 0


# -- known speakers (enroll, profiles) and the microphone view --------------------------------------
def cmd_enroll(args: argparse.Namespace) -> int:
    from streamdiar.audio import load_audio
    from streamdiar.speakers import enroll, make_profile
    from streamdiar.speakers.enroll import RECOMMENDED_SPEECH_S
    from streamdiar.speakers.options import profiles_folder
    from streamdiar.speakers.profiles import check_name

    store = profiles_folder(args.profiles)
    if check_name(args.name) in store.names() and not args.replace:
        print(f"streamdiar: error: {args.name!r} is already enrolled in {store.folder} (--replace to overwrite)",
              file=sys.stderr)
        return 2
    signals = [load_audio(path) for path in args.audio]
    diarizer = make_diarizer(args)
    enrollment = enroll(diarizer.featurizer, signals)
    profile = make_profile(args.name, enrollment.embeddings, enrollment.speech_s, [Path(p).name for p in args.audio],
                           diarizer.featurizer.config)
    path = store.save(profile)
    print(f"enrolled {args.name}: {enrollment.speech_s:.1f} s of speech, {len(enrollment.embeddings)} embedding(s) "
          f"-> {path}", file=sys.stderr)
    if enrollment.speech_s < RECOMMENDED_SPEECH_S:
        print(f"note: {RECOMMENDED_SPEECH_S:.0f} s of speech or more names {args.name} more reliably "
              f"(add recordings with --replace)", file=sys.stderr)
    return 0


def cmd_profiles(args: argparse.Namespace) -> int:
    from streamdiar.speakers.options import profiles_folder

    store = profiles_folder(args.profiles)
    if args.action == "remove":
        if not args.name:
            print("streamdiar: error: profiles remove: give the NAME to remove", file=sys.stderr)
            return 2
        store.remove(args.name)
        print(f"removed {args.name} from {store.folder}", file=sys.stderr)
        return 0
    profiles = store.load_all()
    if not profiles:
        print(f"no profiles in {store.folder} (create one with `streamdiar enroll NAME AUDIO...`)", file=sys.stderr)
        return 0
    print(f"{len(profiles)} profile(s) in {store.folder}")
    for p in profiles:
        print(f"  {p.name:<20} {p.speech_s:6.1f} s speech  {len(p.embeddings):2d} embedding(s)  {p.created}  "
              f"from {', '.join(p.sources)}")
    return 0


def cmd_mic(args: argparse.Namespace) -> int:
    from streamdiar.io.microphone import MicOptions, Microphone, MicrophoneError, list_devices
    from streamdiar.io.sinks import RTTMSink
    from streamdiar.io.view import live_microphone
    from streamdiar.speakers.options import apply_speaker_args

    try:
        if args.list_devices:
            print(list_devices())
            return 0
        diarizer = make_diarizer(args)
        stream = diarizer.open_stream("mic")
        apply_speaker_args(stream, args)
        device = int(args.device) if args.device is not None and args.device.isdigit() else args.device
        finals = asyncio.run(live_microphone(stream, Microphone(MicOptions(device))))
    except MicrophoneError as exc:
        print(f"streamdiar: error: {exc}", file=sys.stderr)
        return 2
    if args.rttm:
        sink = RTTMSink(args.rttm)
        sink.write("mic", finals)
        sink.close()
        print(f"wrote {len(finals)} segment(s) to {args.rttm}", file=sys.stderr)
    return 0


# -- serve and client (protocol v1) -----------------------------------------------------------------
def cmd_serve(args: argparse.Namespace) -> int:
    import logging

    from streamdiar.server.access import AccessError
    from streamdiar.server.options import DEFAULT_ALLOWED_CONFIG, Access, Limits, ServerOptions
    from streamdiar.server.server import DiarizationServer, profile_hook, serve_until_signalled

    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(asctime)s %(message)s")
    logging.getLogger("websockets").setLevel(logging.WARNING if args.verbose else logging.CRITICAL)
    if args.token == "":
        raise ConfigError("--token: must not be empty")
    if (args.certfile is None) != (args.keyfile is None):
        raise ConfigError("--certfile and --keyfile go together")
    allowed = DEFAULT_ALLOWED_CONFIG if args.allow_config is None else \
        frozenset(k.strip() for k in args.allow_config.split(",") if k.strip() and k.strip() != "none")
    unknown = allowed - DEFAULT_ALLOWED_CONFIG
    if unknown:
        raise ConfigError(f"--allow-config: unknown key {sorted(unknown)[0]!r} "
                          f"(known: {', '.join(sorted(DEFAULT_ALLOWED_CONFIG))})")
    limits = Limits(max_sessions=args.max_sessions, max_frame_bytes=args.max_frame_bytes,
                    handshake_timeout_s=args.handshake_timeout, idle_timeout_s=args.idle_timeout,
                    max_session_s=args.max_session_length, max_backlog_s=args.max_backlog,
                    max_pending_events=args.max_pending_events, max_lag_s=args.max_lag)
    try:
        limits.check()
    except ValueError as exc:
        raise ConfigError(f"--{exc}") from None
    options = ServerOptions(host=args.host, port=args.port, limits=limits, allowed_config=allowed,
                            access=Access(args.token, tuple(args.allow_origin), args.certfile, args.keyfile))
    diarizer = make_diarizer(args)
    try:
        server = DiarizationServer(diarizer, options, profile_hook(args.profiles) if args.profiles else None)
        asyncio.run(serve_until_signalled(server))
    except (AccessError, OSError) as exc:
        print(f"streamdiar: error: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_client(args: argparse.Namespace) -> int:
    import ssl

    from websockets.exceptions import WebSocketException

    from streamdiar.io.microphone import MicrophoneError
    from streamdiar.io.sinks import ConsoleSink, RTTMSink
    from streamdiar.server.client import ServerError, run_client

    context = ssl.create_default_context(cafile=args.cafile) if args.cafile else None
    try:
        uri, result = asyncio.run(run_client(args.source, args.url, pace=args.pace, token=args.token,
                                             device=args.device, sink=None if args.quiet else ConsoleSink(),
                                             ssl=context))
    except (ServerError, MicrophoneError, OSError, TimeoutError, WebSocketException) as exc:
        print(f"streamdiar: error: {exc or type(exc).__name__}", file=sys.stderr)
        return 1
    if args.rttm:
        sink = RTTMSink(args.rttm)
        sink.write(uri, result.segments)
        sink.close()
    speakers = len({s.speaker for s in result.segments})
    print(f"{uri}: {result.done.get('seconds', 0):.1f} s of audio, {speakers} speaker(s), "
          f"{len(result.segments)} segment(s)", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="streamdiar", description="Streaming real-time speaker diarization.")
    sub = parser.add_subparsers(dest="command", required=True)
    engine = engine_options()
    speakers = speaker_options()

    p = sub.add_parser("file", parents=[engine, speakers], help="diarize audio files through the live code path")
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

    p = sub.add_parser("tune", parents=[engine], help="grid-search tracker/label settings on a labelled folder")
    p.add_argument("folder")
    p.add_argument("--reference", required=True)
    p.add_argument("--grid", nargs="+", required=True, metavar="SECTION.NAME=V1,V2",
                   help="values to try, e.g. tracker.assign_similarity=0.8,0.85 labels.onset=0.4,0.5")
    p.add_argument("--gains", default="0", metavar="DB,DB...",
                   help="record the folder once per input gain, e.g. -12,0,8, and judge each setting by its mean "
                        "DER over them (one recording's linking moves by chance; see docs/accuracy.md)")
    p.add_argument("--out", help="write the best tracker/labels sections to this YAML file")
    p.set_defaults(func=cmd_tune)

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
    p.add_argument("--dry", action="store_true", help="no simulated room or noise: the voices as recorded")
    p.add_argument("--train-config", default="configs/train.yaml", help="the split and simulation settings")
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("enroll", parents=[engine], help="store a voice profile so live labels carry NAME")
    p.add_argument("name", help="the label to show (one word: letters, digits, . _ ' -)")
    p.add_argument("audio", nargs="+", help="recordings of this speaker alone (any format load_audio reads)")
    p.add_argument("--profiles", metavar="DIR", help="profiles folder (default: $STREAMDIAR_PROFILES or "
                                                     "~/.local/share/streamdiar/profiles)")
    p.add_argument("--replace", action="store_true", help="overwrite an existing profile of that name")
    p.set_defaults(func=cmd_enroll)

    p = sub.add_parser("profiles", help="list or remove enrolled voice profiles")
    p.add_argument("action", nargs="?", choices=("list", "remove"), default="list")
    p.add_argument("name", nargs="?", help="the profile to remove")
    p.add_argument("--profiles", metavar="DIR", help="profiles folder (default as for enroll)")
    p.set_defaults(func=cmd_profiles)

    p = sub.add_parser("mic", parents=[engine, speakers], help="live view of the microphone (Ctrl-C to stop)")
    p.add_argument("--device", help="input device index or part of its name (default: the system's default input)")
    p.add_argument("--list-devices", action="store_true", help="list audio devices and exit")
    p.add_argument("--rttm", help="on exit, write the final segments to this RTTM file")
    p.set_defaults(func=cmd_mic)

    defaults = Limits()
    p = sub.add_parser("serve", parents=[engine], help="WebSocket server (protocol v1) with a browser page at /")
    p.add_argument("--host", default=DEFAULT_HOST, help="address to listen on (default: this machine only)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help="TCP port (0 = any free port)")
    p.add_argument("--token", default=os.environ.get("STREAMDIAR_TOKEN"),
                   help="require this token (start.token or Authorization: Bearer); default $STREAMDIAR_TOKEN")
    p.add_argument("--allow-origin", action="append", default=[], metavar="ORIGIN",
                   help="browser origin allowed besides this server's own page (repeatable; * = any)")
    p.add_argument("--certfile", help="TLS certificate (PEM) for wss:// and https://")
    p.add_argument("--keyfile", help="TLS private key (PEM)")
    p.add_argument("--profiles", nargs="?", const="default", metavar="DIR",
                   help="enrolled voice profiles clients may name in start.profiles (without DIR: the default folder)")
    p.add_argument("--allow-config", metavar="KEYS",
                   help="start.config keys clients may set, comma-separated, or none "
                        "(default: tracker,labels,num_speakers,min_speakers,max_speakers)")
    limits = p.add_argument_group("limits")
    limits.add_argument("--max-sessions", type=int, default=defaults.max_sessions)
    limits.add_argument("--max-frame-bytes", type=int, default=defaults.max_frame_bytes, help="largest binary frame")
    limits.add_argument("--handshake-timeout", type=float, default=defaults.handshake_timeout_s,
                        help="seconds from connect to start")
    limits.add_argument("--idle-timeout", type=float, default=defaults.idle_timeout_s,
                        help="seconds a client may send nothing")
    limits.add_argument("--max-session-length", type=float, default=defaults.max_session_s,
                        help="seconds one session may last")
    limits.add_argument("--max-backlog", type=float, default=defaults.max_backlog_s,
                        help="seconds of audio buffered per session before the server stops reading it")
    limits.add_argument("--max-pending-events", type=int, default=defaults.max_pending_events,
                        help="events queued for a client before it counts as not reading")
    limits.add_argument("--max-lag", type=float, default=defaults.max_lag_s,
                        help="seconds a stream may fall behind real time before sessions are shed")
    p.add_argument("-v", "--verbose", action="store_true", help="log every connection")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("client", help="stream a file or the microphone to a server and print live labels")
    p.add_argument("source", help="an audio file, or mic")
    p.add_argument("--url", default=f"ws://{DEFAULT_HOST}:{DEFAULT_PORT}/v1/stream")
    p.add_argument("--pace", type=float, default=1.0, help="file: multiple of real time (0 = as fast as possible)")
    p.add_argument("--token", default=os.environ.get("STREAMDIAR_TOKEN"), help="default $STREAMDIAR_TOKEN")
    p.add_argument("--rttm", help="write the final segments to this RTTM file")
    p.add_argument("--device", help="mic: input device index or part of its name")
    p.add_argument("--cafile", help="wss://: trust this CA or self-signed certificate")
    p.add_argument("-q", "--quiet", action="store_true", help="do not print labels")
    p.set_defaults(func=cmd_client)
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
