"""`streamdiar file` as a user runs it: one process, several files, some of them bad."""
import subprocess
import sys

import numpy as np
import soundfile as sf

from streamdiar.audio import SAMPLE_RATE, load_audio, resample
from tests.conftest import REAL_DEV


def _streamdiar(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "streamdiar", *args], capture_output=True, text=True, timeout=300,
                          cwd=cwd, env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})


def test_bad_files_get_one_line_errors_and_the_rest_is_processed(tmp_path):
    speech = load_audio(REAL_DEV / "sample.wav")[: 12 * SAMPLE_RATE]
    files = {
        "corrupt.wav": None,
        "zero_bytes.wav": b"",
        "no_samples.wav": np.zeros(0, dtype=np.float32),
        "silent.wav": np.zeros(5 * SAMPLE_RATE, dtype=np.float32),
        "one_sample.wav": np.zeros(1, dtype=np.float32),
        "nan.wav": np.where(np.arange(speech.size) % 7 == 0, np.nan, speech).astype(np.float32),
        "stereo_8k.wav": np.stack([resample(speech, SAMPLE_RATE, 8000)] * 2, axis=1),
    }
    paths = []
    for name, data in files.items():
        path = tmp_path / name
        if data is None:
            path.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt garbage")
        elif isinstance(data, bytes):
            path.write_bytes(data)
        else:
            sf.write(path, data, 8000 if "8k" in name else SAMPLE_RATE, subtype="FLOAT")
        paths.append(str(path))
    out = tmp_path / "out.rttm"
    result = _streamdiar("file", *paths, str(tmp_path / "missing.wav"), "--rttm", str(out), "--threads", "1")
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert len(errors) == 3, result.stderr  # corrupt, zero bytes, missing
    assert all(line.startswith("streamdiar: error: ") for line in errors)
    assert result.returncode == 1
    uris = {line.split()[1] for line in out.read_text().splitlines()}
    assert uris == {"nan", "stereo_8k"}  # speech found in both; silent and tiny files give empty results
    for name in ("silent", "one_sample", "no_samples"):
        assert f"{name}.wav: " in result.stderr


def test_config_errors_name_the_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("tracker:\n  max_speakerz: 3\n")
    result = _streamdiar("file", str(REAL_DEV / "sample.wav"), "--config", str(bad))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "tracker.max_speakerz: unknown key" in result.stderr


def test_tune_option_errors_are_one_line(tmp_path):
    cases = ((["--grid", "tracker.assign_similarity=0.8", "--gains", "loud"], "--gains 'loud'"),
             (["--grid", "tracker.assign_similarity", "--gains=-12,0"], "--grid 'tracker.assign_similarity'"))
    for options, error in cases:
        result = _streamdiar("tune", str(tmp_path), "--reference", str(REAL_DEV / "reference.rttm"), *options)
        assert result.returncode == 2 and "Traceback" not in result.stderr
        assert result.stderr.strip().splitlines()[-1].startswith(f"streamdiar: error: {error}")
