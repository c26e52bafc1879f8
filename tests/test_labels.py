import numpy as np

from streamdiar.config import LabelConfig
from streamdiar.engine.aggregate import Aggregator
from streamdiar.engine.labels import Segment, Segmenter, keep_counted

HOP = 0.1


def test_short_gaps_are_bridged_and_short_segments_dropped():
    seg = Segmenter(LabelConfig(onset=0.5, min_gap_s=0.3, min_segment_s=0.2), HOP)
    act = np.zeros((1, 40))
    act[0, 0:10] = 0.9
    act[0, 12:20] = 0.8  # 0.2 s gap: bridged
    act[0, 30:31] = 0.9  # 0.1 s blip: dropped
    out = seg.finalize(0, act[:, :25], ["A"]) + seg.finalize(25, act[:, 25:], ["A"]) + seg.close_all(["A"])
    assert [(s.start, s.end) for s in out] == [(0.0, 2.0)]
    assert all(s.final for s in out) and 0.8 <= out[0].confidence <= 0.9


def test_provisional_segments_join_the_open_final_one():
    seg = Segmenter(LabelConfig(), HOP)
    act = np.zeros((2, 10))
    act[0, 5:] = 0.9
    assert seg.finalize(0, act, ["A", "B"]) == []
    newest = np.zeros((2, 5))
    newest[0, :3] = 0.9
    newest[1, 2:] = 0.7
    prov = seg.provisional(10, newest, ["A", "B"])
    assert {(p.speaker, p.start, p.end, p.final) for p in prov} == {("A", 0.5, 1.3, False), ("B", 1.2, 1.5, False)}


def test_aggregator_averages_overlapping_windows_and_forgets():
    agg = Aggregator(window_frames=4)
    agg.add(0, {0: np.array([1.0, 1.0, 0.0, 0.0])}, speakers=1)
    agg.add(2, {0: np.array([1.0, 1.0, 1.0, 1.0])}, speakers=2)
    mean, counts = agg.mean(0, 6, speakers=2)
    np.testing.assert_allclose(mean[0], [1, 1, 0.5, 0.5, 1, 1])
    np.testing.assert_allclose(counts, [1, 1, 2, 2, 1, 1])
    agg.forget_before(3)
    mean, counts = agg.mean(0, 6, speakers=2)
    np.testing.assert_allclose(counts, [0, 0, 0, 2, 1, 1])
    assert agg.sums.shape[1] == 3


def _fill_config(**kw):
    return LabelConfig(onset=0.5, min_gap_s=0.0, min_segment_s=0.0, fill_speech=0.5, fill_trim_s=0.2, **kw)


def test_speech_no_speaker_reaches_goes_to_the_speaker_with_a_claim_and_stops_before_the_tail():
    seg = Segmenter(_fill_config(), HOP)
    act = np.zeros((2, 20))
    act[0, 0:5] = 0.9  # A speaks ...
    act[1, 5:12] = 0.3  # ... then B, too faintly for the onset
    speech = np.zeros(22)
    speech[0:15] = 0.9  # speech until frame 15; its last 0.2 s is hangover
    out = seg.finalize(0, act, ["A", "B"], speech) + seg.close_all(["A", "B"])
    spans = {(s.speaker, s.start, s.end) for s in out}
    # B's frames are filled; frame 12 (speech, nobody's claim) goes to B, heard last; 13-14 are the trimmed tail
    assert spans == {("A", 0.0, 0.5), ("B", 0.5, 1.3)}


def test_speech_fill_off_and_without_speech_leaves_activity_as_it_is():
    act = np.zeros((1, 10))
    act[0, :4] = 0.3
    speech = np.ones(12)
    assert Segmenter(_fill_config(), HOP).finalize(0, act, ["A"], np.zeros(12)) == []
    off = Segmenter(LabelConfig(min_gap_s=0.0, min_segment_s=0.0, fill_speech=0.0), HOP)
    assert off.finalize(0, act, ["A"], speech) + off.close_all(["A"]) == []
    # nobody heard yet and no claim: no one to give the speech to
    seg = Segmenter(_fill_config(), HOP)
    assert seg.finalize(0, np.zeros((1, 10)), ["A"], speech) + seg.close_all(["A"]) == []


def test_aggregator_keeps_each_frames_speech_probability():
    agg = Aggregator(window_frames=4)
    agg.add(-2, {}, speakers=0, speech=np.array([0.0, 0.0, 0.8, 0.9], dtype=np.float32))
    agg.add(0, {}, speakers=0, speech=np.array([0.8, 0.9, 0.2, 0.1], dtype=np.float32))
    np.testing.assert_allclose(agg.speech_between(0, 6), [0.8, 0.9, 0.2, 0.1, 0, 0], atol=1e-6)
    agg.forget_before(2)
    np.testing.assert_allclose(agg.speech_between(0, 4), [0, 0, 0.2, 0.1], atol=1e-6)


def test_a_frame_keeps_only_as_many_speakers_as_its_windows_counted():
    act = np.array([[0.9, 0.6, 0.6, 0.7, 0.2],
                    [0.7, 0.8, 0.6, 0.1, 0.1],
                    [0.0, 0.0, 0.6, 0.0, 0.0]], dtype=np.float32)
    count = np.array([1.0, 1.4, 2.5, 0.0, 1.0])  # rounded: 1, 1, 3 (half up), 0, 1
    kept = keep_counted(act, count)
    np.testing.assert_allclose(kept, [[0.9, 0.0, 0.6, 0.0, 0.2],
                                      [0.0, 0.8, 0.6, 0.0, 0.0],
                                      [0.0, 0.0, 0.6, 0.0, 0.0]])
    assert kept.dtype == act.dtype
    one = np.array([[0.9, 0.9]], dtype=np.float32)  # a lone speaker is never counted away
    np.testing.assert_array_equal(keep_counted(one, np.zeros(2)), one)


def test_aggregator_counts_active_slots_per_frame_over_windows():
    agg = Aggregator(window_frames=4)
    agg.add(0, {}, speakers=0, active_slots=np.array([1, 2, 0, 1]))
    agg.add(2, {}, speakers=0, active_slots=np.array([1, 1, 1, 3]))
    np.testing.assert_allclose(agg.speaker_count(0, 7), [1, 2, 0.5, 1, 1, 3, 0])
    agg.forget_before(3)
    np.testing.assert_allclose(agg.speaker_count(0, 6), [0, 0, 0, 1, 1, 3])


class _RecordingNamer:
    """Keeps what the segmenter hands a namer; scores each frame by its first component."""

    def __init__(self):
        self.seen = []

    def frame_scores(self, voices):
        return voices[:, :1] * 2

    def __call__(self, segment, pieces):
        self.seen.append((segment, pieces))
        return [segment]


def test_segments_collect_the_voices_of_their_solo_speech_frames_in_pieces():
    namer = _RecordingNamer()
    seen = namer.seen
    seg = Segmenter(LabelConfig(onset=0.5, min_gap_s=0.0, min_segment_s=0.0, fill_speech=0.0), HOP, namer=namer)
    act = np.zeros((2, 30))
    act[0, 0:25] = 0.9  # A speaks for 2.5 s ...
    act[1, 5:8] = 0.9  # ... B overlaps at frames 5-7: not solo
    voices = np.ones((30, 4))
    voices[10] = np.nan  # no speech by Silero there
    out = seg.finalize(0, act, ["A", "B"], voices=voices) + seg.close_all(["A", "B"])
    pieces = {s.speaker: p for s, p in seen}
    # 25 frames - 3 overlapped - 1 silent, in 1-s pieces that start on a solo speech frame; each
    # voice is all ones, so a piece's total counts its solo speech frames
    assert [(p.start, p.total.tolist()) for p in pieces["A"]] == [(0, [7.0] * 4), (11, [10.0] * 4), (21, [4.0] * 4)]
    # every speech frame of a segment is scored, overlapped ones too (the namer checks each frame)
    assert pieces["A"][0].frames == list(range(10)) and pieces["B"][0].frames == [5, 6, 7]
    assert np.concatenate(pieces["A"][0].scores).tolist() == [2.0] * 10
    assert [(p.start, p.total) for p in pieces["B"]] == [(5, None)]
    assert {s.speaker for s in out} == {"A", "B"}


def test_two_speakers_named_after_one_person_never_overlap_in_the_output():
    """The namer may give pieces of two tracker speakers the same enrolled name: the person is
    said to speak once, each later final segment keeping only the time not already covered."""

    class AllAnn(_RecordingNamer):
        def __call__(self, segment, pieces):
            return [Segment("Ann", segment.start, segment.end, segment.confidence, True)]

    seg = Segmenter(LabelConfig(onset=0.5, min_gap_s=0.0, min_segment_s=0.0, fill_speech=0.0), HOP, namer=AllAnn())
    act = np.zeros((2, 40))
    act[0, 0:30] = 0.9
    act[1, 10:20] = 0.9  # inside the first speaker's turn
    act[1, 25:35] = 0.9  # overlapping its end
    voices = np.ones((40, 4))
    out = []
    for start in range(0, 40, 10):  # final frames arrive a step at a time, as in a stream
        out += seg.finalize(start, act[:, start : start + 10], ["A", "B"], voices=voices[start : start + 10])
    out += seg.close_all(["A", "B"])
    spans = sorted((s.start, s.end) for s in out)
    assert all(s.speaker == "Ann" for s in out)
    # B's first turn closes first; A's turn then keeps only what B's did not cover, B's second the rest
    assert spans == [(0.0, 1.0), (1.0, 2.0), (2.0, 3.0), (3.0, 3.5)]
