"""Runners: bucket padding, packing, the bucketed path against eager, device errors, CUDA graphs.

The bucketed path (pad to a bucket, pack into one buffer, one copy in, run, one copy out) is the
CUDA graph runner minus `replay()`: on CPU it runs eagerly, so its results must equal the plain
eager runner's. The graph capture itself needs a GPU and is tested where one is present.
"""
import copy

import numpy as np
import pytest
import torch

from streamdiar import Diarizer, load_config
from streamdiar.audio import load_audio
from streamdiar.config import ConfigError
from streamdiar.engine.graphs import Port, bucket_for, bucket_sizes, pack, unpack
from streamdiar.engine.runner import (CudaGraphRunner, EagerRunner, cache_position_buckets, features_on_device,
                                      make_runner, resolve_device)
from streamdiar.features import FrameFeaturizer
from streamdiar.model import load_weighter
from tests.conftest import REAL_DEV

CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason="needs a CUDA device: CUDA graph capture and replay cannot run on CPU")
# Graph replay runs the very kernels eager mode runs; differences come only from the kernels a
# bucket's shape selects, so outputs agree to float32 rounding.
GRAPH_TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def real_windows(featurizer):
    """(12, window, F) Weighter windows cut from the features of real speech."""
    audio = load_audio(REAL_DEV / "sample.wav")[: 20 * 16000]
    state = featurizer.new_state()
    state.append(audio)
    (frames,) = featurizer([state])
    model, _, _ = load_weighter()
    window = model.config.window_frames
    starts = np.linspace(0, frames.shape[0] - window, 12).astype(int)
    return np.stack([frames[s : s + window] for s in starts])


@pytest.fixture(scope="module")
def weighter():
    model, _, _ = load_weighter()
    return model


def test_buckets_are_powers_of_two_capped_by_the_largest():
    assert bucket_sizes(1) == (1,)
    assert bucket_sizes(8) == (1, 2, 4, 8)
    assert bucket_sizes(24) == (1, 2, 4, 8, 16, 24)
    buckets = bucket_sizes(24)
    assert [bucket_for(n, buckets) for n in (1, 2, 3, 5, 9, 17, 24)] == [1, 2, 4, 8, 16, 24, 24]
    with pytest.raises(ValueError):
        bucket_for(25, buckets)
    with pytest.raises(ValueError):
        bucket_sizes(0)


def test_pack_and_unpack_round_trip_any_batch_axis():
    ports = (Port((3, 5)), Port((2, 4), batch_axis=1), Port(()))
    tensors = (torch.randn(6, 3, 5), torch.randn(2, 6, 4), torch.randn(6))
    packed = pack(tensors, ports)
    assert packed.shape == (6, 15 + 8 + 1)
    for original, restored in zip(tensors, unpack(packed, ports)):
        assert torch.equal(original, restored)
    # row i of the packed buffer holds item i of every tensor
    assert torch.equal(packed[4, 15:23], tensors[1][:, 4].reshape(-1))
    with pytest.raises(ValueError, match="shape"):
        pack((torch.randn(6, 3, 4),), (Port((3, 5)),))


@pytest.mark.parametrize("batch", [1, 3, 4, 11])
def test_bucketed_weighter_equals_eager(weighter, real_windows, batch):
    """Padding to a bucket (3 -> 4) and chunking past the largest one (11 -> 4+4+4) change nothing."""
    windows = real_windows[:batch]
    eager = EagerRunner(weighter)(windows)
    bucketed = CudaGraphRunner(weighter, torch.device("cpu"), max_batch=4, capture=None)(windows)
    for ours, reference in zip(bucketed, eager):
        assert ours.shape == reference.shape
        np.testing.assert_allclose(ours, reference, atol=1e-6)


def test_cached_position_buckets_change_nothing(weighter, real_windows):
    cached = copy.deepcopy(weighter)
    cache_position_buckets(cached)
    x = torch.from_numpy(real_windows[:2])
    with torch.inference_mode():
        for ours, reference in zip(cached(x), weighter(x)):
            assert torch.equal(ours, reference)


def test_bucketed_encoder_and_vad_give_the_same_features(featurizer):
    """The featurizer with its encoder and VAD behind bucketed calls (as on a GPU) computes the
    same frame features for several streams at once."""
    bucketed = FrameFeaturizer(featurizer.config)
    features_on_device(bucketed, torch.device("cpu"), max_batch=8, capture=None)
    audio = load_audio(REAL_DEV / "trn03.wav")[: 12 * 16000]
    pieces = [audio[: 7 * 16000], audio[5 * 16000 :], audio[2 * 16000 : 9 * 16000]]
    outputs = []
    for f in (featurizer, bucketed):
        states = [f.new_state() for _ in pieces]
        for state, piece in zip(states, pieces):
            state.append(piece)
        outputs.append(f(states))
    for ours, reference in zip(outputs[1], outputs[0]):
        assert ours.shape == reference.shape and ours.shape[0] > 0
        np.testing.assert_allclose(ours, reference, atol=1e-5)


def test_cpu_config_gives_the_eager_runner(weighter, featurizer):
    encoder, vad = featurizer.encoder, featurizer.vad
    runner = make_runner(weighter, load_config(), featurizer)
    assert isinstance(runner, EagerRunner)
    assert featurizer.encoder is encoder and featurizer.vad is vad


def test_bad_devices_are_one_line_config_errors():
    with pytest.raises(ConfigError, match="config.device"):
        resolve_device("tpu")
    with pytest.raises(ConfigError, match="config.device"):
        resolve_device("not a device")
    if not CUDA:
        with pytest.raises(ConfigError, match="no CUDA device"):
            resolve_device("cuda")


def test_runner_section_is_validated():
    assert load_config(runner={"max_batch": 64}).runner.max_batch == 64
    with pytest.raises(ConfigError, match="runner.max_batch"):
        load_config(runner={"max_batch": 0})
    with pytest.raises(ConfigError, match="runner.graphs"):
        load_config(runner={"graphs": True})


# -- CUDA ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def gpu_engines():
    config = load_config(device="cuda", runner={"max_batch": 16})
    graphs = Diarizer(config)
    eager = Diarizer(load_config(device="cuda", runner={"max_batch": 16, "cuda_graphs": False}))
    return graphs, eager


@needs_cuda
def test_weighter_is_captured_and_replays_equal_eager(gpu_engines, real_windows):
    graphs, eager = gpu_engines
    assert graphs.runner.call.captured
    assert not eager.runner.call.captured
    for batch in (1, 5, 12):
        for ours, reference in zip(graphs.runner(real_windows[:batch]), eager.runner(real_windows[:batch])):
            np.testing.assert_allclose(ours, reference, atol=GRAPH_TOLERANCE)
    twenty = np.concatenate([real_windows, real_windows[:8]])  # past the largest bucket: 16 + 4
    for ours, reference in zip(graphs.runner(twenty), eager.runner(twenty)):
        np.testing.assert_allclose(ours, reference, atol=GRAPH_TOLERANCE)


@needs_cuda
def test_encoder_and_vad_graphs_equal_eager(gpu_engines):
    graphs, eager = gpu_engines
    for name in ("encoder", "vad"):
        call = getattr(graphs.featurizer, name)
        assert call.captured, f"{name} did not capture: {call.capture_error}"
    audio = load_audio(REAL_DEV / "sample.wav")[: 10 * 16000]
    outputs = []
    for engine in (graphs, eager):
        states = [engine.featurizer.new_state() for _ in range(3)]
        for i, state in enumerate(states):
            state.append(audio[i * 8000 :])
        outputs.append(engine.featurizer(states))
    for ours, reference in zip(*outputs):
        np.testing.assert_allclose(ours, reference, atol=GRAPH_TOLERANCE)


@needs_cuda
def test_gpu_pipeline_labels_real_speech_like_the_cpu(gpu_engines, diarizer):
    graphs, _ = gpu_engines
    audio = load_audio(REAL_DEV / "sample.wav")
    segments = []
    for engine in (graphs, diarizer):
        stream = engine.open_stream("sample")
        finals = list(stream.push(audio).final) + list(stream.finish().final)
        segments.append(finals)
    gpu, cpu = segments
    speech = lambda segs: sum(s.end - s.start for s in segs)  # noqa: E731
    assert gpu and abs(speech(gpu) - speech(cpu)) < 0.05 * speech(cpu) + 0.5
