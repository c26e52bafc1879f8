import dataclasses

import pytest

from streamdiar.cli import DEFAULT_CONFIG
from streamdiar.config import Config, ConfigError, load_config


def test_default_yaml_spells_out_the_builtin_defaults():
    assert load_config(DEFAULT_CONFIG) == Config()


@pytest.mark.parametrize("text, key", [
    ("stream:\n  stepp_s: 0.5\n", "stream.stepp_s"),
    ("tracker:\n  confidence_gate: 2\n", "tracker.confidence_gate"),
    ("tracker:\n  final_frame_similarity: -0.1\n", "tracker.final_frame_similarity"),
    ("tracker:\n  final_frame_name_similarity: 1.5\n", "tracker.final_frame_name_similarity"),
    ("tracker:\n  final_context_pieces: -1\n", "tracker.final_context_pieces"),
    ("stream:\n  step_s: fast\n", "stream.step_s"),
    ("stream:\n  step_s: 1.0\n  latency_s: 0.5\n", "stream.latency_s"),
    ("labels: 3\n", "labels"),
    ("labels:\n  fill_speech: 1.5\n", "labels.fill_speech"),
    ("labels:\n  fill_trim_s: -0.1\n", "labels.fill_trim_s"),
    ("labels:\n  count_speakers: 1\n", "labels.count_speakers"),
    ("labels:\n  relink_margin: 2\n", "labels.relink_margin"),
    ("bogus: 1\n", "bogus"),
])
def test_bad_values_name_their_key(tmp_path, text, key):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(path)


def test_configs_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        Config().stream.step_s = 1.0  # type: ignore[misc]


def test_overrides_merge_into_sections(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("stream:\n  latency_s: 2.0\n")
    config = load_config(path, stream={"step_s": 1.0})
    assert config.stream.step_s == 1.0 and config.stream.latency_s == 2.0
