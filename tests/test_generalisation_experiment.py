"""Issue 20's comparison code (experiments/generalisation): the ranking-pair head fit and the fixed edits.

The head fit is checked on a synthetic problem where MOS alone teaches the wrong direction: one feature
("sharpening") rises with MOS on the rated photos, but pushing it further makes an edited photo worse."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments" / "generalisation"))
compare = pytest.importorskip("compare")
make_variants = pytest.importorskip("make_variants")


def _problem(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    n, f = 200, 20
    x = torch.randn(n, f, generator=g, dtype=torch.float64)
    y = 0.5 + 0.1 * x[:, 0] + 0.05 * x[:, 1] + 0.01 * torch.randn(n, generator=g, dtype=torch.float64)
    # photos "over-processed": feature 1 pushed far up, feature 0 (true quality) down a little
    o = torch.randn(60, f, generator=g, dtype=torch.float64)
    v = o.clone()
    v[:, 1] += 3.0
    v[:, 0] -= 0.5
    return x, y, o, v


def test_ranking_pairs_fix_the_direction_mos_alone_gets_wrong():
    x, y, o, v = _problem()
    tr_o, tr_v, te_o, te_v = o[:40], v[:40], o[40:], v[40:]
    plain = compare.fit_linear(x, y, None, None, compare.Candidate("plain", mu=0.0))
    paired = compare.fit_linear(x, y, tr_o, tr_v, compare.Candidate("pairs", mu=1.0, margin=0.1))
    for h, want in ((plain, 0.0), (paired, 1.0)):
        wins = (compare.apply_head(h, te_o) > compare.apply_head(h, te_v)).double().mean()
        assert float(wins) == want
    # the pairs cost little on the rated photos
    fit = compare.apply_head(paired, x)
    assert np.corrcoef(fit.numpy(), y.numpy())[0, 1] > 0.8


def test_a_correction_to_a_prior_head_is_one_head():
    x, y, o, v = _problem(1)
    prior = compare.fit_linear(x[:100], y[:100], None, None, compare.Candidate("p", mu=0.0))
    cand = compare.Candidate("c", mu=1.0, margin=0.1)
    both = compare.fit_linear(x, y, o, v, cand, prior=prior)
    margins = cand.margin - (compare.apply_head(prior, o) - compare.apply_head(prior, v))
    delta = compare.fit_with_margins(x, y - compare.apply_head(prior, x), o, v, cand, 8, margins)
    q = torch.randn(7, x.shape[1], dtype=torch.float64)
    want = compare.apply_head(prior, q) + compare.apply_head(delta, q)
    torch.testing.assert_close(compare.apply_head(both, q), want)


def test_a_scaled_alpha_is_the_ridge_at_that_alpha():
    """Stop 23's "alpha xK" candidates: the leave-one-out alpha times K, the closed-form ridge at it."""
    x, y, _, _ = _problem(2)
    loo = compare.fit_linear(x, y, None, None, compare.Candidate("loo", mu=0.0))
    same = compare.fit_linear(x, y, None, None, compare.Candidate("x1", mu=0.0, extra={"alpha_mult": 1.0}))
    torch.testing.assert_close(same["coef"].double(), loo["coef"].double())
    two = compare.fit_linear(x, y, None, None, compare.Candidate("x2", mu=0.0, extra={"alpha_mult": 2.0}))
    assert two["alpha"] == 2 * loo["alpha"]
    z = (x - two["center"]) / two["scale"]
    eye = torch.eye(z.shape[1], dtype=z.dtype)
    want = torch.linalg.solve(z.T @ z + two["alpha"] * eye, z.T @ (y - y.mean()))
    torch.testing.assert_close(two["coef"].double(), want)


def test_the_hinge_on_a_combined_mos_ranks_the_mix():
    """Stop 23's "pairs on combined": per-pair margins (m - w gap_other) / (1 - w) on the ridge make
    (1 - w) ridge + w other rank every training pair by at least about the margin."""
    x, y, o, v = _problem(3)
    other = lambda q: 0.2 * q[:, 1]  # noqa: E731  (a second model that pays for "more")
    w, m = 0.3, 0.1
    cand = compare.Candidate("c", mu=3.0, margin=m)
    h = compare.fit_with_margins(x, y, o, v, cand, 30, (m - w * (other(o) - other(v))) / (1 - w))
    plain = compare.fit_with_margins(x, y, o, v, cand, 30, None)  # the hinge on the ridge alone
    for head, want in ((h, 1.0), (plain, 0.0)):
        gap = compare.apply_head(head, o) - compare.apply_head(head, v)
        mix = (1 - w) * gap + w * (other(o) - other(v))
        assert float((mix > 0).double().mean()) == want


def test_the_fixed_edits_change_the_photo_the_way_they_say():
    rng = np.random.default_rng(0)
    base = (rng.uniform(0.25, 0.75, (1, 1, 3)) + 0.1 * rng.standard_normal((64, 64, 3))).clip(0, 1)
    img = Image.fromarray((base * 255).astype(np.uint8))
    a = np.asarray(img, dtype=np.float64)
    for kind in (*make_variants.OVER_TEST, *make_variants.DEGRADE_TEST):
        out = np.asarray(make_variants.test_variant(img, kind), dtype=np.float64)
        assert out.shape == a.shape and np.abs(out - a).mean() > 1.0, kind
    bright = np.asarray(make_variants.test_variant(img, "exposure"), dtype=np.float64)
    dark = np.asarray(make_variants.test_variant(img, "underexposure"), dtype=np.float64)
    assert bright.mean() > a.mean() > dark.mean()
    hsv = lambda im: np.asarray(im.convert("HSV"), dtype=np.float64)  # noqa: E731
    assert hsv(make_variants.test_variant(img, "saturation"))[..., 1].mean() > hsv(img)[..., 1].mean()
    assert hsv(make_variants.test_variant(img, "desaturation"))[..., 1].mean() < hsv(img)[..., 1].mean()


def test_the_natural_split_is_fixed_by_the_file_name():
    names = [f"Kodak24/kodim{i:02d}.png" for i in range(1, 25)]
    first = [make_variants.is_test(n) for n in names]
    assert first == [make_variants.is_test(n) for n in names]
    assert 0 < sum(first) < len(names)


def test_stop_27_edit_statistics_move_with_the_over_processing_they_describe(photos):
    """experiments/generalisation/s27/edit_stats.py: each strong edit of a real photo raises the statistics
    that describe it (the guard built on them was refuted; the statistics are what the screening measured)."""
    from PIL import ImageEnhance, ImageFilter

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments" / "generalisation" / "s27"))
    edit_stats = pytest.importorskip("edit_stats")
    img = photos["coffee"].resize((300, 200), Image.LANCZOS)

    def stats(im: Image.Image) -> dict[str, float]:
        x = torch.from_numpy(np.asarray(im, dtype=np.float32) / 255).permute(2, 0, 1)[None]
        return dict(zip(edit_stats.NAMES, edit_stats.edit_stats(x)[0].tolist(), strict=True))

    base = stats(img)
    bright = Image.fromarray(
        (np.clip(np.asarray(img, dtype=np.float32) / 255 * 2.8, 0, 1) * 255 + 0.5).astype(np.uint8)
    )
    assert stats(bright)["clip_hi"] > base["clip_hi"] + 1 and stats(bright)["y_hi"] > base["y_hi"] + 1
    sat = stats(ImageEnhance.Color(img).enhance(2.0))
    assert sat["sat_hi"] > base["sat_hi"] + 0.5 and sat["chroma_p99"] > base["chroma_p99"] + 0.05
    assert stats(ImageEnhance.Contrast(img).enhance(1.8))["clip_lo"] > base["clip_lo"] + 0.5
    assert stats(img.filter(ImageFilter.UnsharpMask(radius=3, percent=300, threshold=0)))["overshoot"] > (
        base["overshoot"] + 0.5
    )
    assert stats(img.filter(ImageFilter.GaussianBlur(2)))["band_ratio"] < base["band_ratio"] - 0.5
    hist = edit_stats.hue_histogram(
        torch.from_numpy(np.asarray(img, dtype=np.float32) / 255).permute(2, 0, 1)[None]
    )
    assert hist.shape == (1, 36) and 0 < float(hist.sum()) <= 1  # the chromatic share, spread over hue bins
