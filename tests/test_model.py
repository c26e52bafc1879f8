import torch

from streamdiar.config import ModelConfig
from streamdiar.features import FEATURE_DIM
from streamdiar.model import DEFAULT_WEIGHTS, Weighter, load_weighter, save_weighter
from streamdiar.model.losses import slot_targets, wbce
from streamdiar.model.weighter import pool_slots


def test_wbce_has_bces_minimum_and_bounded_negative_gradient():
    y_hat = torch.linspace(0.01, 0.99, 99, requires_grad=True)
    for y in (0.0, 0.3, 0.7, 1.0):
        loss = wbce(torch.full_like(y_hat, y), y_hat)
        assert abs(y_hat[loss.argmin()].item() - max(y, 0.01)) < 0.011
    wbce(torch.zeros_like(y_hat), y_hat).sum().backward()
    assert y_hat.grad.abs().max() <= 1.0 + 1e-6


def test_confidence_is_contraharmonic_mean_and_embeddings_pool_frames():
    activity = torch.tensor([[[1.0, 1.0, 0.0, 0.0], [0.5, 0.5, 0.5, 0.5], [0.0, 0.0, 0.0, 0.0]]])
    frames = torch.eye(4).unsqueeze(0)
    emb, conf = pool_slots(activity, frames)
    torch.testing.assert_close(conf[0, :2], torch.tensor([1.0, 0.5]))
    assert conf[0, 2] < 1e-3
    torch.testing.assert_close(emb[0, 0], torch.tensor([2**-0.5, 2**-0.5, 0.0, 0.0]))


def test_slot_targets_follow_the_best_permutation():
    reference = torch.tensor([[[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0]]])
    activity = torch.tensor([[[0.1, 0.1, 0.9, 0.9], [0.1, 0.1, 0.1, 0.1], [0.9, 0.8, 0.1, 0.1]]])
    targets = slot_targets(activity, reference)
    torch.testing.assert_close(targets[0], torch.stack([reference[0, 1], torch.zeros(4), reference[0, 0]]))


def test_weighter_shapes_and_ranges():
    config = ModelConfig(window_frames=40, slots=3, layers=1)
    out = Weighter(config).eval()(torch.randn(2, 40, FEATURE_DIM))
    assert out.activity.shape == (2, 3, 40) and out.embeddings.shape == (2, 3, 256) and out.confidence.shape == (2, 3)
    assert 0 <= out.activity.min() and out.activity.max() <= 1
    torch.testing.assert_close(out.embeddings.norm(dim=2), torch.ones(2, 3))


def test_checkpoint_roundtrip(tmp_path):
    model, features, meta = load_weighter("default")
    path = tmp_path / "w.pt"
    save_weighter(path, model, features, {"note": "roundtrip"})
    again, features2, meta2 = load_weighter(path)
    x = torch.randn(1, model.config.window_frames, FEATURE_DIM)
    with torch.no_grad():
        torch.testing.assert_close(model(x).activity, again(x).activity, atol=2e-3, rtol=0)
    assert features2 == features and meta2 == {"note": "roundtrip"}
    assert DEFAULT_WEIGHTS.stat().st_size < 8_000_000
