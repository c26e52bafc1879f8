"""The training command end to end on a tiny budget, and the conversation simulator."""
import numpy as np
import pytest
import soundfile as sf
import torch

from streamdiar.audio import SAMPLE_RATE
from streamdiar.cli import main
from streamdiar.evaluate.der import read_rttm
from streamdiar.model import load_weighter
from streamdiar.train.simulate import SimulationConfig, Utterance, simulate
from streamdiar.train.train import load_train_config
from tests.conftest import REPO, SPEAKERS


def test_simulated_labels_match_the_audio():
    rng = np.random.default_rng(0)
    t = np.arange(SAMPLE_RATE * 4) / SAMPLE_RATE
    utts = []
    for i, f in enumerate((180, 320, 500)):
        audio = (0.3 * np.sin(2 * np.pi * f * t) * (np.sin(2 * np.pi * 0.5 * t) > 0)).astype(np.float32)
        utts.append(Utterance(str(i), audio, np.repeat(np.sin(2 * np.pi * 0.5 * t[::160]) > 0, 1)[: audio.size // 160]))
    cfg = SimulationConfig(reverb_probability=0.0, noise_probability=0.0, speaker_counts=(3,), speaker_count_weights=(1.0,))
    conv = simulate(rng, utts, cfg)
    energy = np.abs(conv.audio[: conv.activity.shape[1] * 160]).reshape(-1, 160).max(axis=1)
    active = conv.activity.any(axis=0)
    assert active.mean() > 0.3
    # block edges may straddle a sign change of the on/off envelope
    assert (energy[active] > 0).mean() > 0.97 and (energy[~active] == 0).mean() > 0.97
    labels = conv.frame_labels(1600)
    assert labels.shape[0] == 3 and labels.shape[1] == -(-conv.audio.size // 1600)


def test_train_command_writes_a_loadable_seeded_checkpoint(tmp_path):
    config = tmp_path / "train.yaml"
    config.write_text(f"""
speakers_dir: {SPEAKERS}
output: {tmp_path / 'w.pt'}
validation_dir: {tmp_path / 'val'}
cache_dir: {tmp_path / 'cache'}
held_out_speakers: 20
train_conversations: 3
val_conversations: 1
val_min_duration_s: 20
val_max_duration_s: 20
steps: 250
batch_size: 4
threads: 1
model: {{window_frames: 40, layers: 1, dim: 32, heads: 2, ff_dim: 32, conv_channels: 16}}
simulation: {{min_duration_s: 20, max_duration_s: 20}}
""")
    assert main(["train", "--config", str(config)]) == 0
    model, features, meta = load_weighter(tmp_path / "w.pt")
    assert model.config.window_frames == 40 and meta["train_hours"] > 0
    assert len(meta["validation_speakers"]) == 20
    assert not set(meta["validation_speakers"]) & set(meta["train_speakers"])
    refs = read_rttm(tmp_path / "val" / "reference.rttm")
    assert set(refs) == {"val000"} and (tmp_path / "val" / "val000.wav").is_file()
    assert all(spk in meta["validation_speakers"] for spk in refs["val000"].labels())
    assert load_train_config(REPO / "configs" / "train.yaml").held_out_speakers >= 20


def test_simulate_command_dry_writes_the_voices_without_room_or_noise(tmp_path):
    """`streamdiar simulate --dry`: the pauses between turns are digital silence (no noise floor,
    no reverberation tail), and every reference turn holds sound."""
    assert main(["simulate", str(tmp_path), "--count", "1", "--dry", "--seed", "3", "--speaker-counts", "2",
                 "--min-duration", "20", "--max-duration", "20", "--train-config", str(REPO / "configs" / "train.yaml")]) == 0
    audio, rate = sf.read(tmp_path / "sim.wav", dtype="float32")
    assert rate == SAMPLE_RATE
    turns = read_rttm(tmp_path / "sim.rttm")["sim"]
    assert len(turns.labels()) == 2
    speech = np.zeros(audio.size, dtype=bool)
    for seg in turns.itersegments():
        turn = slice(int(seg.start * rate), int(seg.end * rate))
        assert np.abs(audio[turn]).max() > 0.001
        speech[turn] = True
    silent = audio[~speech] == 0
    assert silent.mean() > 0.3  # speech inside an utterance's pauses is not zero, the gaps between turns are
