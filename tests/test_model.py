"""AttiqaModel: shapes, calibration, MOS scale, save/load round trip, fp16."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from attiqa.attributes import ATTRIBUTES
from attiqa.errors import ModelLoadError
from attiqa.models import NUM_QUANTILES, AttiqaModel, create_backbone, load_model, save_model


def _model(**kw) -> AttiqaModel:
    torch.manual_seed(0)
    return AttiqaModel(create_backbone("tiny"), head_hidden=16, **kw)


def test_shapes_with_and_without_mos_head():
    m = _model().eval()
    x = torch.randn(4, 3, 48, 48)
    out = m(x)
    assert out.attributes.shape == (4, len(ATTRIBUTES)) and out.mos is None
    m.add_mos_head(8)
    out = m(x)
    assert out.mos.shape == (4,)
    assert m.mos_head[0].in_features == len(ATTRIBUTES) * 16  # concatenated head features (§3.5)


def test_single_overall_head_ablation():
    m = AttiqaModel(create_backbone("tiny"), head_names=["overall"], head_hidden=8, mos_hidden=4)
    out = m(torch.randn(2, 3, 32, 32))
    assert out.attributes.shape == (2, 1) and out.mos.shape == (2,)
    with pytest.raises(ValueError):
        AttiqaModel(create_backbone("tiny"), head_names=["a.b"])


def test_attribute_heads_are_two_layer_mlps_on_shared_features():
    m = _model().eval()
    x = torch.randn(3, 3, 32, 32)
    feats = m.backbone(x)
    h = m.heads["contrast"]
    manual = h.fc2(torch.relu(h.fc1(feats))).squeeze(-1)
    torch.testing.assert_close(m(x).attributes[:, ATTRIBUTES.index("contrast")], manual)


def test_calibration_maps_to_empirical_cdf():
    m = _model()
    raw = torch.tensor([[0.0, 5.0]])
    torch.testing.assert_close(m.attribute_scores(raw), torch.sigmoid(raw))  # fallback before calibration
    g = torch.Generator().manual_seed(0)
    outputs = torch.randn(5000, len(ATTRIBUTES), generator=g) * torch.arange(1, 6) + torch.arange(5)
    m.calibrate(outputs)
    assert bool(m.calibrated)
    scores = m.attribute_scores(outputs)
    assert scores.min() >= 0 and scores.max() <= 1
    # The score of a training output is (about) its rank fraction among the training outputs.
    ranks = outputs.argsort(0).argsort(0).float() / (len(outputs) - 1)
    assert (scores - ranks).abs().max() < 0.02
    # Piecewise-linear between the stored quantiles, like np.interp.
    q = m.calib_quantiles.numpy()
    v = torch.linspace(-6, 14, 50)[:, None].repeat(1, 5)
    ref = np.stack([np.interp(v[:, k].numpy(), q[k], np.linspace(0, 1, NUM_QUANTILES)) for k in range(5)], 1)
    np.testing.assert_allclose(m.attribute_scores(v).numpy(), ref, atol=1e-5)
    # Far outside the training range: 0 and 1; monotone in the raw score.
    assert m.attribute_scores(torch.full((1, 5), -1e6)).max() == 0
    assert m.attribute_scores(torch.full((1, 5), 1e6)).min() == 1
    assert (m.attribute_scores(v).diff(dim=0) >= 0).all()


def test_calibration_with_tied_outputs():
    m = _model()
    outputs = torch.zeros(100, 5)
    outputs[50:] = 1.0
    m.calibrate(outputs)
    s = m.attribute_scores(torch.tensor([[-1.0] * 5, [0.0] * 5, [0.5] * 5, [1.0] * 5]))
    assert s[0].eq(0).all() and s[3].eq(1).all()
    assert (s[1] - 0.5).abs().max() < 0.02  # P(X <= 0) = 0.5
    assert ((s[2] >= s[1]) & (s[2] <= s[3])).all()


def test_mos_scale():
    m = _model(mos_hidden=8)
    m.set_mos_range(1.0, 5.0)
    torch.testing.assert_close(
        m.mos_to_dataset_scale(torch.tensor([0.0, 0.5, 1.0])), torch.tensor([1.0, 3.0, 5.0])
    )
    torch.testing.assert_close(m.mos_to_unit_scale(torch.tensor([3.0])), torch.tensor([0.5]))
    with pytest.raises(ValueError):
        m.set_mos_range(2.0, 2.0)


def test_save_load_round_trip_gives_equal_outputs_and_a_complete_card(tmp_path):
    m = _model(mos_hidden=8, input_sizes={"test_crop": 96})
    m.calibrate(torch.randn(50, 5))
    m.set_mos_range(0.0, 100.0)
    m.eval()
    x = torch.randn(3, 3, 48, 48)
    ref = m(x)
    path = save_model(m, tmp_path / "m.safetensors", {"stage": "test", "name": "unit"})
    assert (tmp_path / "m.json").exists()
    m2, card = load_model(path)
    out = m2(x)
    torch.testing.assert_close(out.attributes, ref.attributes, rtol=0, atol=0)
    torch.testing.assert_close(out.mos, ref.mos, rtol=0, atol=0)
    torch.testing.assert_close(m2.attribute_scores(out.attributes), m.attribute_scores(ref.attributes))
    assert not m2.training
    mc = card["model"]
    assert mc["backbone"] == "tiny" and mc["head_names"] == list(ATTRIBUTES) and mc["head_hidden"] == 16
    assert mc["mos_hidden"] == 8 and mc["mean"] == [0.5] * 3 and mc["std"] == [0.5] * 3
    assert mc["test_crop"] == 96 and mc["test_resize_shorter"] == 340 and mc["calibrated"] is True
    assert card["mos_range"] == [0.0, 100.0] and card["stage"] == "test" and card["name"] == "unit"


def test_fp16_save_is_smaller_and_close(tmp_path):
    m = _model(mos_hidden=8).eval()
    x = torch.randn(2, 3, 48, 48)
    p32 = save_model(m, tmp_path / "f32.safetensors", {})
    p16 = save_model(m, tmp_path / "f16.safetensors", {}, half=True)
    assert p16.stat().st_size < 0.6 * p32.stat().st_size
    m16, _ = load_model(p16)
    assert m16.heads["sharpness"].fc1.weight.dtype == torch.float32  # loaded back as fp32
    torch.testing.assert_close(m16(x).attributes, m(x).attributes, atol=2e-2, rtol=2e-2)


def test_load_rejects_foreign_checkpoints(tmp_path):
    p = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(2)}, str(p))
    with pytest.raises(ModelLoadError, match="no ATTIQA model card"):
        load_model(p)
