"""The benchmark suite, shrunk: each measurement runs the real engine on real speech for a few
seconds and must report sane numbers under the JSON keys issue 4 names."""
import json
import shutil

import numpy as np
import pytest
import soundfile as sf

from bench.__main__ import parse_args, write
from bench.audio import looped, speech, stream_offsets
from bench.der import der_vs_latency
from bench.file_mode import file_mode
from bench.known_speakers import score
from bench.label_latency import label_latency
from bench.memory import measure, rss_mb
from bench.slot_coverage import auc, coverage, voice_pairs
from bench.steps import scaling
from streamdiar import load_config
from streamdiar.engine.labels import Segment
from tests.conftest import DEMO, REAL_DEV


@pytest.fixture(scope="module")
def audio():
    return speech(REAL_DEV)


@pytest.fixture(scope="module")
def steps(diarizer, audio):
    return scaling(diarizer, audio, rounds=4, max_streams=2, refine=False, log=lambda *_: None)


@pytest.fixture(scope="module")
def latency(diarizer, audio):
    return label_latency(diarizer, audio, seconds=6.0)


def test_real_speech_loops_and_streams_start_apart(audio):
    assert audio.size > 5 * 60 * 16000  # every real_dev recording, end to end
    assert looped(audio, audio.size - 10, 30).tolist() == audio[-10:].tolist() + audio[:20].tolist()
    offsets = stream_offsets(audio, 4)
    assert len(set(offsets)) == 4 and offsets[0] == 0


def test_step_latency_percentiles_and_realtime_streams(steps):
    one = steps["step_compute_ms"]
    assert 0 < one["p50"] <= one["p95"] <= one["p99"]
    assert set(steps["step_compute_ms_by_streams"]) >= {"1"}
    assert 0 < steps["rtf"] < 1  # one stream runs faster than real time even on a loaded machine
    assert steps["max_realtime_streams"] >= 1


def test_label_latency_is_at_least_the_configured_latency(diarizer, latency):
    final, provisional = latency["final_ms"], latency["provisional_ms"]
    floor_ms = 1000 * diarizer.latency_s - 20  # a frame is final only `latency` after its end (20 ms blocks)
    step_ms = 1000 * diarizer.config.stream.step_s
    assert floor_ms <= final["p50"] <= final["p99"]
    assert final["p50"] <= floor_ms + step_ms + 1000  # plus compute, generous on a shared machine
    assert provisional["p50"] <= final["p50"]
    assert final["n"] >= 40  # 6 s of audio at 10 frames per second, minus the last latency


def test_der_of_one_real_recording(tmp_path):
    (row,) = der_vs_latency(load_config(threads=1), REAL_DEV, settings=(1.0,), max_files=1, log=lambda *_: None)
    assert row["files"] == 1 and row["step_s"] == row["latency_s"] == 1.0
    assert 0 <= row["der"] <= 2 and abs(row["der"] - row["miss"] - row["false_alarm"] - row["confusion"]) < 1e-3


def test_memory_of_a_fresh_process_after_each_minute():
    assert rss_mb() > 50  # this test process holds torch and a model
    result = measure(minutes=1, threads=1, timeout_s=300)
    assert set(result["rss_mb_by_minute"]) == {"1"}
    assert 100 < result["rss_mb_by_minute"]["1"] < 4000
    assert result["rss_mb_5min"] is None and result["growth_5_to_60_pct"] is None


def test_file_mode_times_the_whole_command():
    result = file_mode(minutes=0.5, threads=1, timeout_s=300)
    assert result["audio_s"] == 30.0 and result["segments"] >= 1
    assert result["wall_s"] > 0 and result["ratio"] == pytest.approx(result["wall_s"] / 30.0, abs=1e-3)


def test_results_are_written_as_json_markdown_and_plots(tmp_path, steps, latency):
    gpu_row = {"eager_ms": 3.0, "graph_ms": 0.5, "speedup": 6.0, "weighter_eager_ms": 2.0,
               "weighter_graph_ms": 0.2, "weighter_speedup": 10.0}
    result = {
        "machine": {"date": "now", "cpu": "cpu", "usable_cpus": 2, "logical_cpus": 2, "memory_gb": 8, "gpu": None,
                    "load_average_at_start": [1.0], "python": "3.11", "torch": "2", "commit": "abc"},
        "quick": True, "device": "cpu", "threads": 1, "step_s": 0.5, "latency_s": 0.5, "command": "python -m bench",
        "duration_s": 1.0, "load_average_at_end": [1.0],
        "cpu": {**steps, "label_latency": {"default": latency},
                "label_latency_ms": {k: latency["final_ms"][k] for k in ("p50", "p99")}},
        # a GPU section as a GPU run writes it, to render its table and plot
        "gpu": {"device": "GPU", "captured": {"weighter": True}, "capture_errors": {}, "graph_speedup_b1": 6.0,
                "graph_vs_eager_max_abs_diff": {}, "gpu_memory_mb": {}, "model_step_ms_by_batch": {"1": gpu_row, "8": gpu_row},
                "max_realtime_streams": 1200, "p99_step_ms_at_max": 40.0, "max_streams_p99_within_50ms": 1200,
                "step_compute_ms_by_streams": steps["step_compute_ms_by_streams"], "rtf": 0.001,
                "max_realtime_streams_capped": False},
        "memory": {"rss_mb_5min": 600.0, "rss_mb_60min": 610.0, "growth_5_to_60_pct": 1.67, "minutes_fed": 60,
                   "rss_mb_by_minute": {"5": 600.0, "60": 610.0}},
        "der_vs_latency": [{"step_s": s, "latency_s": s, "effective_latency_s": s, "der": 0.5, "miss": 0.3,
                            "false_alarm": 0.1, "confusion": 0.1, "files": 11} for s in (0.5, 1.0)],
        "file_mode": {"audio_s": 480.0, "wall_s": 24.0, "ratio": 0.05, "target_ratio": 0.1, "meets_target": True},
    }
    paths = write(result, tmp_path / "run.json")
    assert {p.name for p in paths} >= {"run.json", "run.md", "run_cpu_steps.png", "run_der_latency.png", "run_memory.png",
                                       "run_gpu_graphs.png"}
    saved = json.loads((tmp_path / "run.json").read_text())
    for key in ("p50", "p95", "p99"):
        assert key in saved["cpu"]["step_compute_ms"]
    assert set(saved["cpu"]["label_latency_ms"]) == {"p50", "p99"}
    assert {"rtf", "max_realtime_streams"} <= set(saved["cpu"])
    assert {"graph_speedup_b1", "max_realtime_streams", "p99_step_ms_at_max"} <= set(saved["gpu"])
    assert {"rss_mb_5min", "rss_mb_60min"} <= set(saved["memory"])
    assert {"step_s", "latency_s", "der"} <= set(saved["der_vs_latency"][0])
    table = (tmp_path / "run.md").read_text()
    assert "| CPU p99 step compute, 1 stream <= 30 ms |" in table and "GPU: CUDA graph >= 3x eager" in table


def test_command_line_rejects_what_it_cannot_run(capsys):
    assert str(parse_args(["--quick"]).json) == "bench/results/cpu_quick.json"
    assert parse_args(["--device", "cuda"]).sections == ("gpu",)
    for argv in (["--only", "nonsense"], ["--device", "cuda", "--only", "steps"], ["--only", "gpu"]):
        with pytest.raises(SystemExit):
            parse_args(argv)
    assert "error" in capsys.readouterr().err


def test_known_speaker_scoring_splits_solo_and_overlapped_speech():
    activity = np.zeros((2, 300), dtype=bool)  # 10-ms blocks: alice (enrolled) 0-2 s, an unenrolled voice 1-3 s
    activity[0, :200] = True
    activity[1, 100:] = True
    finals = [Segment("alice", 0.0, 1.5, 0.9, True), Segment("SPEAKER_00", 1.0, 3.0, 0.9, True)]
    alice, other = score(activity, ["alice", None], finals, {"alice"})
    assert alice["solo"] == {"right": 1.0, "other_name": 0.0, "anonymous": 0.0, "missed": 0.0}
    assert alice["overlap"] == {"right": 0.5, "other_name": 0.0, "anonymous": 0.5, "missed": 0.0}
    assert alice["all"]["right"] == 1.5
    # alice's name on the overlap is hers while she talks: not a name given to the other voice
    assert other["overlap"] == {"right": 0.0, "other_name": 0.0, "anonymous": 1.0, "missed": 0.0}
    assert other["solo"]["anonymous"] == 1.0


def test_slot_coverage_of_the_shipped_weighter_on_the_bundled_demo(diarizer, tmp_path):
    """The demo is real speech (three LibriSpeech voices with overlaps): the Weighter's top slot must
    cover nearly all solo speech and little silence, and its second slot must tell overlapped
    frames from solo ones; a broken model or misaligned frames fail all three."""
    audio, rate = sf.read(DEMO)
    sf.write(tmp_path / "demo.wav", audio, rate)
    shutil.copy(DEMO.with_suffix(".rttm"), tmp_path / "reference.rttm")
    figures = coverage(diarizer, tmp_path)
    assert figures["files"] == 1 and figures["overlap_share"] > 0.05
    assert figures["solo_recall"] > 0.9
    assert figures["top_on_silence"] < 0.3
    assert figures["overlap_auc"] > 0.8
    assert figures["overlap_recall"] > 5 * figures["second_on_solo"]
    # three LibriSpeech voices, each from its own recording: far apart in GE2E
    assert figures["same_voice_cosine"] > figures["other_voice_cosine"] + 0.1 and figures["voice_auc"] > 0.9


def test_slot_coverage_auc_counts_ties_half():
    positive, negative = np.array([0.2, 0.5, 0.5, 0.9]), np.array([0.1, 0.5, 0.7])
    pairs = [1.0 if p > n else 0.5 if p == n else 0.0 for p in positive for n in negative]
    assert auc(positive, negative) == pytest.approx(np.mean(pairs))
    assert auc(positive, np.array([])) is None


def test_voice_pairs_take_only_solo_sub_windows_within_one_window():
    """Speaker A on frames 0-39, nobody on 40-44, B on 45-84; each frame's vector is its speaker's
    (silence its own): pairs come only from frames whose +-5-frame sub-window is one speaker's."""
    a, b, silence = np.eye(3)[0], np.array([0.6, 0.8, 0.0]), np.eye(3)[2]
    embeddings = np.stack([a] * 40 + [silence] * 5 + [b] * 40)
    speakers = np.zeros((2, 85), dtype=bool)
    speakers[0, :40] = speakers[1, 45:] = True
    same, other = voice_pairs(embeddings, speakers, window=80, half_span=5)
    pure = list(range(0, 36)) + list(range(50, 85))  # sub-windows are cut at the ends of the file
    pairs = [(i, j) for i in pure for j in pure if 10 <= j - i < 80]
    assert same.size + other.size == len(pairs)
    assert other.size == sum((i < 40) != (j < 40) for i, j in pairs)
    assert np.allclose(same, 1.0) and np.allclose(other, 0.6)
    same, other = voice_pairs(embeddings[:9], speakers[:, :9], window=80, half_span=5)
    assert same.size == other.size == 0  # frames 0-8: no two 10 frames apart
