import numpy as np
import pytest
import soundfile as sf

from streamdiar.audio import SAMPLE_RATE, AudioError, StreamResampler, decode_pcm, load_audio, resample
from tests.conftest import REAL_DEV


def test_any_format_becomes_16k_mono_float(tmp_path):
    reference = load_audio(REAL_DEV / "sample.wav")[: SAMPLE_RATE * 3]
    stereo_8k = np.stack([resample(reference, SAMPLE_RATE, 8000)] * 2, axis=1)
    for name, subtype, rate, data in [
        ("a.wav", "PCM_16", 8000, stereo_8k),
        ("b.wav", "PCM_24", 44100, resample(reference, SAMPLE_RATE, 44100)),
        ("c.flac", "PCM_16", 48000, resample(reference, SAMPLE_RATE, 48000)),
        ("d.wav", "FLOAT", SAMPLE_RATE, reference),
    ]:
        sf.write(tmp_path / name, data, rate, subtype=subtype)
        audio = load_audio(tmp_path / name)
        assert audio.dtype == np.float32 and audio.ndim == 1
        assert abs(audio.size - reference.size) <= 2
        n = min(audio.size, reference.size)
        # the 8 kHz copy lost everything above 4 kHz; all must still correlate strongly with the original
        assert np.corrcoef(audio[:n], reference[:n])[0, 1] > 0.9, name


def test_unreadable_inputs_raise_one_line_errors(tmp_path):
    (tmp_path / "corrupt.wav").write_bytes(b"RIFF\x00\x00garbage" * 10)
    with pytest.raises(AudioError, match="not a readable audio file"):
        load_audio(tmp_path / "corrupt.wav")
    with pytest.raises(AudioError, match="no such file"):
        load_audio(tmp_path / "missing.wav")


def test_nan_samples_become_silence(tmp_path):
    data = np.full(1600, np.nan, dtype=np.float32)
    data[:800] = 0.5
    sf.write(tmp_path / "nan.wav", data, SAMPLE_RATE, subtype="FLOAT")
    audio = load_audio(tmp_path / "nan.wav")
    assert np.isfinite(audio).all() and audio[900:].max() == 0.0 and audio[:700].min() > 0.4


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_stream_resampler_equals_whole_signal(rate):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(rate * 2).astype(np.float32) * 0.1
    whole = resample(x, rate)
    resampler, parts, i = StreamResampler(rate), [], 0
    while i < x.size:
        n = int(rng.integers(1, 3000))
        parts.append(resampler(x[i : i + n]))
        i += n
    parts.append(resampler(np.zeros(0, dtype=np.float32), final=True))
    streamed = np.concatenate(parts)
    assert streamed.size == whole.size
    np.testing.assert_allclose(streamed, whole, atol=1e-5)


def test_rates_outside_range_are_refused():
    with pytest.raises(AudioError, match="outside"):
        StreamResampler(1000)


def test_decode_pcm():
    ints = np.array([0, 16384, -32768, 32767, 100, -100], dtype="<i2")
    mono = decode_pcm(ints.tobytes(), "pcm_s16le", 1)
    np.testing.assert_allclose(mono[:3], [0.0, 0.5, -1.0])
    stereo = decode_pcm(ints.tobytes(), "pcm_s16le", 2)
    np.testing.assert_allclose(stereo, [0.25, 0.0, 0.0], atol=1e-4)
    floats = np.array([0.25, np.nan, np.inf], dtype="<f4")
    np.testing.assert_allclose(decode_pcm(floats.tobytes(), "pcm_f32le", 1), [0.25, 0.0, 0.0])
    with pytest.raises(AudioError, match="whole number"):
        decode_pcm(b"\x00\x01\x02", "pcm_s16le", 1)
    with pytest.raises(AudioError, match="unsupported"):
        decode_pcm(b"", "mulaw", 1)
