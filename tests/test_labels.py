import numpy as np

from streamdiar.config import LabelConfig
from streamdiar.engine.aggregate import Aggregator
from streamdiar.engine.labels import Segmenter

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
