"""Extra MOS tables in the ridge fit (ours, issue 20): rows of a second dataset, their MOS mapped affinely
onto the main targets' scale, weighted to a share of the main rows. The fit is the optimum of its objective
(with ranking pairs too), is blind to the extra table's own MOS scale, helps when the main table is small,
and runs through fine-tuning from the feature cache."""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import ft_cfg, write_mos_set

from attiqa.config import RidgeExtraConfig, TrainConfig, check_inputs, from_dict
from attiqa.errors import ConfigError
from attiqa.evaluation.metrics import srocc
from attiqa.models import load_model
from attiqa.training.finetune import finetune
from attiqa.training.ridge import ExtraRows, affine_to, fit_ridge, fit_ridge_rows


def _data(n: int, f: int, seed: int, beta: torch.Tensor, noise: float = 0.3):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, f, generator=gen, dtype=torch.float64)
    return x, x @ beta + noise * torch.randn(n, generator=gen, dtype=torch.float64)


def _beta(f: int) -> torch.Tensor:
    return torch.linspace(1.0, -1.0, f, dtype=torch.float64) ** 3


def test_the_fit_with_extra_rows_and_pairs_is_the_optimum_of_its_objective():
    f = 12
    x, y = _data(40, f, 0, _beta(f))
    xe, ye = _data(90, f, 1, _beta(f))
    better, worse = _data(25, f, 2, _beta(f))[0], None
    worse = better.clone()
    worse[:, 1] += 1.0
    share, pw, m = 0.5, 1.0, 0.2
    fit = fit_ridge_rows(x, y, [ExtraRows(xe, 7 * ye - 3, share)], better, worse, pw, m)
    assert fit.alpha == fit_ridge(x, y).alpha and fit.intercept == pytest.approx(float(y.mean()))
    c, sc = fit.center.double(), fit.scale.double()
    z, ze, d = (x - c) / sc, (xe - c) / sc, (better - worse) / sc
    w = fit.coef.double()
    ce2 = share * len(x) / len(xe)
    s2 = pw * len(x) / len(better)
    ya = affine_to(7 * ye - 3, y)
    grad = (2 * z.T @ (z @ w + fit.intercept - y) + 2 * ce2 * ze.T @ (ze @ w + fit.intercept - ya)
            - 2 * s2 * d.T @ torch.clamp(m - d @ w, min=0) + 2 * fit.alpha * w)  # fmt: skip
    assert grad.abs().max() < 1e-3 * (1 + w.abs().max())


def test_the_affine_map_makes_the_fit_blind_to_the_extra_tables_scale_and_share_zero_is_no_table():
    f = 30
    x, y = _data(20, f, 0, _beta(f))
    xe, ye = _data(200, f, 1, _beta(f))
    mapped = affine_to(ye * 10 + 50, y)
    assert float(mapped.mean()) == pytest.approx(float(y.mean())) and float(mapped.std()) == pytest.approx(
        float(y.std())
    )
    a = fit_ridge_rows(x, y, [ExtraRows(xe, ye, 0.3)])
    b = fit_ridge_rows(x, y, [ExtraRows(xe, ye * 10 + 50, 0.3)])
    torch.testing.assert_close(a.coef, b.coef, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(a.coef, fit_ridge(x, y).coef, atol=1e-3)  # the table did change the fit
    plain = fit_ridge(x, y)
    zero = fit_ridge_rows(x, y, [ExtraRows(xe, ye, 0.0)])
    assert torch.equal(zero.coef, plain.coef) and zero.intercept == plain.intercept
    with pytest.raises(ValueError, match="two different MOS values"):
        fit_ridge_rows(x, y, [ExtraRows(xe, torch.full_like(ye, 3.0), 0.3)])


def test_an_extra_table_on_another_scale_helps_a_small_main_table_on_held_out_rows():
    """20 main rows, 30 features: the ridge alone is starved. 200 rows of another 'dataset' with the same
    underlying quality (MOS x10 + 50, and its own offset) recover the ranking on held-out main rows."""
    f = 30
    beta = _beta(f)
    gains = []
    for seed in range(5):
        x, y = _data(20, f, 10 * seed, beta)
        xe, ye = _data(200, f, 10 * seed + 1, beta)
        xt, yt = _data(300, f, 10 * seed + 2, beta)
        alone = srocc(fit_ridge(x, y).predict(xt).numpy(), yt.numpy())
        both = srocc(fit_ridge_rows(x, y, [ExtraRows(xe, ye * 10 + 50, 0.5)]).predict(xt).numpy(), yt.numpy())
        gains.append(both - alone)
    assert min(gains) > 0.05, gains


def test_ridge_extra_config_errors_name_the_key_and_the_fix(tmp_path):
    mos = tmp_path / "mos.csv"
    mos.write_text("image,mos\na.png,1\n")
    base = {"pretrained_checkpoint": "", "finetune": {"csv": str(mos), "ridge_taps": "depthwise_late"}}

    def load(extra):
        return from_dict(TrainConfig, {**base, "finetune": {**base["finetune"], "ridge_extra": extra}}, "cfg")

    with pytest.raises(ConfigError, match=r"cfg\.finetune\.ridge_extra\[0\]\.share: must be >= 0") as err:
        load([{"csv": str(mos), "share": -0.1}])
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match=r"ridge_extra\[1\]\.csv: no MOS CSV given"):
        load([{"csv": str(mos)}, {"share": 0.1}])
    with pytest.raises(ConfigError, match=r"ridge_extra\[0\]: unknown key 'shar' \(did you mean 'share'\?\)"):
        load([{"csv": str(mos), "shar": 0.1}])
    cfg = load([{"csv": str(tmp_path / "nope.csv"), "share": 0.1}])
    assert cfg.finetune.ridge_extra == [RidgeExtraConfig(csv=str(tmp_path / "nope.csv"), share=0.1)]
    with pytest.raises(ConfigError, match=r"cfg\.finetune\.ridge_extra\[0\]\.csv: .*nope\.csv not found"):
        check_inputs(cfg, "cfg")
    with pytest.raises(ConfigError, match="ridge_extra: extra MOS tables feed the ridge head only; set "):
        no_taps = {"csv": str(mos), "ridge_extra": [{"csv": str(mos)}]}
        from_dict(TrainConfig, {**base, "finetune": no_taps}, "cfg")
    check_inputs(load([{"csv": str(mos), "share": 0.1}]), "cfg")  # a good one passes


def _rescaled_table(src: Path, dst: Path, scale: float, offset: float) -> Path:
    with open(src) as fh:
        rows = list(csv.DictReader(fh))
    with open(dst, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["image", "mos"])
        w.writeheader()
        w.writerows({"image": str(src.parent / "images" / r["image"]),
                     "mos": f"{scale * float(r['mos']) + offset:.4f}"} for r in rows)  # fmt: skip
    return dst


@pytest.mark.slow
def test_finetuning_with_an_extra_table_reads_it_from_the_feature_cache_blind_to_its_scale(tmp_path, photos):
    """The product path: the extra table's images get the main rows' five-crop tap statistics from the same
    cache; the same table on a x10 + 50 scale gives the same head, share 0 the head without it."""
    main = write_mos_set(tmp_path / "main", dict(list(photos.items())[:3]), split_column=True)
    other = write_mos_set(tmp_path / "other", dict(list(photos.items())[3:]), split_column=False, shorter=96)
    tables = {"unit": _rescaled_table(other, tmp_path / "unit.csv", 1.0, 0.0),
              "x10": _rescaled_table(other, tmp_path / "x10.csv", 10.0, 50.0)}  # fmt: skip

    def head(name: str, extra):
        cfg = ft_cfg(main, feature_cache=True, feature_cache_dir=str(tmp_path / "cache"), epochs=1,
                     ridge_taps="depthwise_late", ridge_weight=1.0, ridge_extra=extra)  # fmt: skip
        cfg = replace(cfg, backbone="efficientnet_lite0_ms", pretrained_backbone=False)
        finetune(cfg, None, tmp_path / name, progress=False)
        model, card = load_model(tmp_path / name / "finetune" / "last.safetensors")
        return model.ridge.coef.detach().clone(), card["ridge"]

    none, card_none = head("none", [])
    unit, card = head("unit", [RidgeExtraConfig(csv=str(tables["unit"]), share=0.5)])
    x10, _ = head("x10", [RidgeExtraConfig(csv=str(tables["x10"]), share=0.5)])
    zero, card_zero = head("zero", [RidgeExtraConfig(csv=str(tables["x10"]), share=0.0)])
    assert card["extra"] == [{"csv": "unit.csv", "n": 20, "skipped": 0, "share": 0.5,
                              "map": "affine, matched mean and sd"}]  # fmt: skip
    assert "extra" not in card_none and "extra" not in card_zero
    torch.testing.assert_close(unit, x10, rtol=1e-3, atol=1e-6)
    assert torch.equal(zero, none)
    assert not np.allclose(unit.numpy(), none.numpy(), atol=1e-6)
