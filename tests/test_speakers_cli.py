"""`streamdiar enroll`, `streamdiar profiles` and `file --profiles` from the command line."""
from __future__ import annotations

import numpy as np
import soundfile as sf

from streamdiar.cli import main
from tests.conftest import DEMO, SPEAKERS

VOICE = sorted(SPEAKERS.glob("*.flac"))[0]


def test_enroll_list_use_and_remove(tmp_path, capsys):
    folder = tmp_path / "profiles"
    assert main(["enroll", "Ann", str(VOICE), "--profiles", str(folder), "--threads", "1"]) == 0
    err = capsys.readouterr().err
    assert "enrolled Ann" in err and "more reliably" not in err  # 14 s of audio is enough
    assert (folder / "Ann.json").is_file() and (folder / "Ann.npz").is_file()

    assert main(["profiles", "--profiles", str(folder)]) == 0
    listing = capsys.readouterr().out
    assert "Ann" in listing and VOICE.name in listing

    # Ann is not in the demo: its speakers keep anonymous labels, and the run works end to end
    rttm = tmp_path / "demo.rttm"
    assert main(["file", str(DEMO), "--profiles", str(folder), "--threads", "1", "--rttm", str(rttm)]) == 0
    labels = [line.split()[7] for line in rttm.read_text().splitlines()]
    assert labels and labels.count("Ann") <= 0.1 * len(labels)

    # a short enrolment works, with a note that more speech names the speaker more reliably
    audio, rate = sf.read(VOICE)
    sf.write(tmp_path / "short.wav", audio[: 4 * rate], rate)
    assert main(["enroll", "Bo", str(tmp_path / "short.wav"), "--profiles", str(folder), "--threads", "1"]) == 0
    assert "more reliably" in capsys.readouterr().err
    assert main(["enroll", "Ann", str(VOICE), "--profiles", str(folder)]) == 2  # exists: needs --replace
    assert "--replace" in capsys.readouterr().err
    assert main(["profiles", "remove", "Ann", "--profiles", str(folder)]) == 0
    assert not (folder / "Ann.json").exists()


def test_enroll_errors_are_one_line(tmp_path, capsys):
    folder = str(tmp_path / "p")
    silence = tmp_path / "silence.wav"
    sf.write(silence, np.zeros(16000 * 4, dtype=np.float32), 16000)
    for argv, shown in (
        (["enroll", "two words", str(VOICE), "--profiles", folder], "one word"),
        (["enroll", "Ann", str(tmp_path / "missing.wav"), "--profiles", folder], "no such file"),
        (["enroll", "Ann", str(silence), "--profiles", folder, "--threads", "1"], "speech found"),
        (["profiles", "remove", "Nobody", "--profiles", folder], "no profile named"),
        (["file", str(DEMO), "--profiles", folder, "--threads", "1"], "no such profiles folder"),
        (["file", str(DEMO), "--num-speakers", "0", "--threads", "1"], "num-speakers"),
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert shown in err and err.count("\n") == 0, err
