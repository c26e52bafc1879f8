"""Tuning by replay must reproduce the live engine exactly."""
import shutil

import numpy as np

from streamdiar.config import replace
from streamdiar.evaluate.der import read_rttm
from streamdiar.evaluate.run import evaluate
from streamdiar.evaluate.tune import grid_search, record, replay
from streamdiar.features.frames import LEVEL_COLUMN
from tests.conftest import REAL_DEV


def test_replay_equals_the_live_run_and_eval_scores_all_systems(diarizer, tmp_path):
    for uri in ("sample", "trn03"):
        shutil.copy(REAL_DEV / f"{uri}.wav", tmp_path / f"{uri}.wav")
    reference = REAL_DEV / "reference.rttm"
    live = evaluate(diarizer, tmp_path, reference, log=lambda *_: None)
    recordings = record(diarizer, tmp_path, reference)
    config = diarizer.config
    try:
        replayed = replay(diarizer, recordings, config.tracker, config.labels, reference)
        # relinking final pieces reads their voices from the replayed frames: on trn03 it moves some
        unlinked = replay(diarizer, recordings, config.tracker, replace(config.labels, relink=False), reference)
    finally:
        diarizer.config = config
    assert abs(replayed["der"] - live["total"]["streamdiar"]["der"]) < 1e-9
    assert abs(unlinked["der"] - replayed["der"]) > 1e-3
    assert set(live["total"]) == {"streamdiar", "online", "offline"}
    for system in live["total"].values():
        assert 0 <= system["der"] <= 2 and system["speech_s"] > 20
    assert set(read_rttm(reference)) >= set(live["files"])


def test_tune_judges_each_setting_over_recordings_at_several_gains(diarizer, tmp_path):
    shutil.copy(REAL_DEV / "sample.wav", tmp_path / "sample.wav")
    reference = REAL_DEV / "reference.rttm"
    plain = record(diarizer, tmp_path, reference)
    variants = [record(diarizer, tmp_path, reference, gain_db=gain) for gain in (0.0, -12.0)]
    as_recorded = np.concatenate([frames for frames, *_ in plain[0][2]])
    at_zero_db = np.concatenate([frames for frames, *_ in variants[0][0][2]])
    quieter = np.concatenate([frames for frames, *_ in variants[1][0][2]])
    assert np.array_equal(as_recorded, at_zero_db)  # gain 0 is the file as it is
    heard = as_recorded[:, LEVEL_COLUMN] > 0.3  # above the level floor either way
    shift = (as_recorded[heard, LEVEL_COLUMN] - quieter[heard, LEVEL_COLUMN]).mean()
    assert abs(shift - 12 / 80) < 0.01  # the level input reads 12 dB less

    config = diarizer.config
    log = []
    grid = {"tracker.new_speaker_similarity": [config.tracker.new_speaker_similarity, 0.5]}
    best, result = grid_search(diarizer, variants, reference, grid, log.append)
    assert diarizer.config is config
    # at 0.5 the second voice of the recording never opens a speaker: worse at both gains
    assert best.tracker == config.tracker
    assert log[0].startswith("as configured") and log[-1].endswith("worse on 2 of 2")
    expected = [replay(diarizer, recordings, config.tracker, config.labels, reference)["der"]
                for recordings in variants]
    assert result["ders"] == expected and result["der"] == sum(expected) / 2
    assert result["better"] == result["worse"] == 0
