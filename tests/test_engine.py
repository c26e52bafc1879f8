"""The streaming engine on real audio through the shipped model."""
import numpy as np

from streamdiar.audio import SAMPLE_RATE, load_audio
from streamdiar.config import replace
from streamdiar.evaluate.der import DERScorer, read_rttm, to_annotation
from streamdiar.engine.windows import FrameRing
from streamdiar.evaluate.tune import replay
from pyannote.core import Segment as Span, Timeline
from tests.conftest import DEMO, REAL_DEV


def _run(diarizer, audio, block, uri="sample"):
    stream = diarizer.open_stream(uri)
    finals, updates = [], []
    for start in range(0, audio.size, block):
        update = stream.push(audio[start : start + block])
        finals.extend(update.final)
        updates.append(update)
    finals.extend(stream.finish().final)
    return finals, updates, stream


def test_results_do_not_depend_on_how_audio_is_chunked(diarizer):
    audio = load_audio(REAL_DEV / "sample.wav")[: 15 * SAMPLE_RATE]
    a, _, _ = _run(diarizer, audio, 8000)
    b, _, _ = _run(diarizer, audio, 1111)
    c, _, _ = _run(diarizer, audio, audio.size)
    assert a == b == c


def _der(reference, uri, finals, duration):
    scorer = DERScorer()
    scorer.add(uri, reference, to_annotation(uri, finals), Timeline([Span(0, duration)]))
    return scorer.total


def test_real_meeting_speech_is_found_and_labels_stay_inside_the_file(diarizer):
    audio = load_audio(REAL_DEV / "sample.wav")
    finals, updates, stream = _run(diarizer, audio, 8000)
    assert all(s.final for s in finals)
    assert all(not s.final for u in updates for s in u.provisional)
    assert 0 <= min(s.start for s in finals) and max(s.end for s in finals) <= 30.0 + 1e-6
    total = _der(read_rttm(REAL_DEV / "reference.rttm")["sample"], "sample", finals, 30.0)
    # speech detection on real far-field audio (a broken model misses everything: miss ~1.0)
    assert total["miss"] < 0.5 and total["false_alarm"] < 0.1, total


def test_conversation_of_unseen_voices_is_diarized(diarizer):
    """The bundled demo: 3 held-out speakers, simulated room (never seen in training)."""
    audio = load_audio(DEMO)
    finals, _, _ = _run(diarizer, audio, 8000, "demo")
    total = _der(read_rttm(DEMO.with_suffix(".rttm"))["demo"], "demo", finals, audio.size / SAMPLE_RATE)
    # online clustering scores 0.3-0.5 on such conversations; a model or tracker that has lost
    # the speakers scores 0.6 and more
    assert total["der"] < 0.5, total
    assert 2 <= len({s.speaker for s in finals}) <= 4


def test_batched_streams_equal_streams_run_alone(diarizer):
    audio = load_audio(REAL_DEV / "sample.wav")[: 12 * SAMPLE_RATE]
    other = load_audio(REAL_DEV / "trn00.wav")[: 9 * SAMPLE_RATE]
    alone_a, _, _ = _run(diarizer, audio, 8000, "a")
    alone_b, _, _ = _run(diarizer, other, 8000, "b")
    sa, sb = diarizer.open_stream("a"), diarizer.open_stream("b")
    got_a, got_b = [], []
    for start in range(0, audio.size, 8000):
        work = [(sa, audio[start : start + 8000])]
        if start < other.size:
            work.append((sb, other[start : start + 8000]))
        updates = diarizer.process(work)
        got_a.extend(updates[0].final)
        if len(updates) > 1:
            got_b.extend(updates[1].final)
    ua, ub = diarizer.finish([sa, sb])
    assert got_a + ua.final == alone_a
    assert got_b + ub.final == alone_b


def test_silence_nan_and_tiny_inputs_give_empty_results(diarizer):
    for audio in (np.zeros(10 * SAMPLE_RATE, dtype=np.float32), np.full(SAMPLE_RATE, np.nan, dtype=np.float32),
                  np.zeros(1, dtype=np.float32), np.zeros(0, dtype=np.float32)):
        finals, _, stream = _run(diarizer, audio, 8000) if audio.size else ([], [], None)
        assert finals == []
    stream = diarizer.open_stream("empty")
    assert stream.finish().final == []


def test_state_stays_bounded_on_a_long_stream(diarizer):
    audio = load_audio(REAL_DEV / "sample.wav")
    stream = diarizer.open_stream("long")
    sizes = []
    for rep in range(6):  # 3 minutes
        for start in range(0, audio.size, 16000):
            stream.push(audio[start : start + 16000])
        s = stream.state
        sizes.append((s.features.pcm.size, s.features.mel.shape[0], s.aggregator.counts.size,
                      max((len(sp.memory) for sp in s.tracker.speakers), default=0)))
    assert sizes[-1][0] <= sizes[1][0] + 8000
    assert all(b[1] <= 400 and b[2] <= 2 * 80 and b[3] <= diarizer.config.tracker.memory_size for b in sizes)


def test_a_push_without_a_step_keeps_the_provisional_picture(diarizer):
    audio = load_audio(DEMO)[: 10 * SAMPLE_RATE]  # speech up to the end of the block
    stream = diarizer.open_stream("p")
    update = stream.push(audio)
    assert update.provisional
    small = stream.push(np.zeros(100, dtype=np.float32))  # completes no step
    assert small.final == [] and small.provisional == update.provisional
    assert stream.finish().provisional == []


def test_speech_fill_labels_far_field_speech_the_model_leaves_below_its_onset(diarizer):
    """AMI far-field audio: much speech stays below the Weighter's onset while Silero hears it; the
    fill gives it to a speaker without labelling the room's silence."""
    seconds = 60
    audio = load_audio(REAL_DEV / "trn00.wav")[: seconds * SAMPLE_RATE]
    stream = diarizer.open_stream("trn00", record_steps=True)
    stream.push(audio)
    stream.finish()
    recording = [("trn00", float(seconds), stream.state.step_log)]
    base = diarizer.config
    try:
        filled = replay(diarizer, recording, base.tracker, base.labels, REAL_DEV / "reference.rttm")
        unfilled = replay(diarizer, recording, base.tracker, replace(base.labels, fill_speech=0.0),
                          REAL_DEV / "reference.rttm")
    finally:
        diarizer.config = base
    assert filled["miss"] < unfilled["miss"] - 0.02, (filled, unfilled)
    assert filled["false_alarm"] < unfilled["false_alarm"] + 0.01, (filled, unfilled)
    assert filled["der"] < unfilled["der"], (filled, unfilled)


def test_speaker_count_removes_a_second_label_where_one_person_speaks(diarizer):
    """pyannote's two-speaker sample: where the tracker splits one voice over two speakers, both
    can pass the onset; the windows' own slot count keeps one of them."""
    stream = diarizer.open_stream("sample", record_steps=True)
    stream.push(load_audio(REAL_DEV / "sample.wav"))
    stream.finish()
    recording = [("sample", stream.state.received / SAMPLE_RATE, stream.state.step_log)]
    base = diarizer.config
    try:
        counted = replay(diarizer, recording, base.tracker, base.labels, REAL_DEV / "reference.rttm")
        uncounted = replay(diarizer, recording, base.tracker, replace(base.labels, count_speakers=False),
                           REAL_DEV / "reference.rttm")
    finally:
        diarizer.config = base
    assert counted["false_alarm"] < uncounted["false_alarm"] - 0.02, (counted, uncounted)
    assert counted["der"] <= uncounted["der"], (counted, uncounted)


def test_the_frame_ring_hands_out_frames_it_still_holds_and_they_never_change():
    ring = FrameRing(window_frames=4, feature_dim=2)
    ring.push(np.arange(10, dtype=np.float32).reshape(5, 2))  # frames 0-4; the window holds 1-4
    held = ring.between(2, 4)
    assert held.tolist() == [[4.0, 5.0], [6.0, 7.0]]
    assert ring.between(0, 2) is None  # frame 0 has left the window
    ring.push(np.full((3, 2), -1.0, dtype=np.float32))
    assert held.tolist() == [[4.0, 5.0], [6.0, 7.0]] and not held.flags.writeable
