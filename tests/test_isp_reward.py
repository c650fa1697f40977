"""The reward: scoring at the scorer's scale, and the over-processing guard, on real DNGs through rawpy."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import isp_renders, tiny_attiqa_scorer

import attiqa
from isp_env.isp import develop, finish
from isp_env.mos_function import from_scorer
from isp_env.params import neutral
from isp_env.raw import read_raw
from isp_env.reward import develop_view, finish_view, make_guard, render_stats, to_view, view_long_side

OVER = {
    "saturation": 2.0,
    "contrast": 1.5,
    "sharpen_amount": 3.0,
    "sharpen_threshold": 0.0,
    "tone_exposure": 1.0,
    "texture_gain": 2.0,
}


def test_view_scale_matches_the_scorers_resize():
    assert view_long_side((1456, 2224), 500) == round(2224 * 500 / 1456)
    assert view_long_side((480, 640), 500) is None  # small raws: full resolution, resized afterwards
    img = np.zeros((240, 320, 3), np.uint8)
    assert to_view(img, 500).shape == (500, 667, 3)


def test_render_stats_measure_clipping_and_saturation():
    img = np.full((10, 10, 3), 128, np.uint8)
    assert render_stats(img).clipped == 0 and render_stats(img).saturation == 0
    img[:5, :, 0] = 255
    st = render_stats(img)
    assert st.clipped == pytest.approx(0.5) and st.saturation == pytest.approx(0.5 * 127 / 255)


def test_guard_penalises_over_processing_but_not_saneisp_renders(isp_raws):
    """The classical scorer pays for the over-processed render (as the ATTIQA default model does on real raws,
    issue 19); the guarded score must not."""
    mos = from_scorer(attiqa.create_scorer("classical"))
    for path in isp_raws[:2]:
        dev = develop_view(read_raw(path), 384)
        guard = make_guard(dev, path, 384)
        sane = finish_view(dev, neutral(), 384)
        over = finish_view(dev, OVER, 384)
        assert guard.penalty(sane) < 1.0
        assert guard.terms(over[::2, ::2])["clip"] > 0 and guard.penalty(over) > 20
        vivid = finish_view(dev, {"saturation": 2.0}, 384)
        assert guard.penalty(vivid) > 5
        mild = finish_view(dev, {"saturation": 1.1, "contrast": 1.05, "sharpen_amount": 0.3}, 384)
        assert guard.penalty(mild) < 0.1 * guard.penalty(over)  # a sensible edit costs little
        w = mos.width / 100
        assert mos.one(over) - guard.penalty(over) * w < mos.one(sane) - guard.penalty(sane) * w


def test_saturation_term_fires_on_a_dull_raw(tmp_path):
    """On a low-saturation raw (like the old cameras' renders) doubling the chroma is caught as saturation
    inflation, not only through clipping."""
    from isp_env.dng import dng_from_photo

    ramp = np.linspace(60, 180, 96)[None, :, None] + np.linspace(-20, 20, 96)[:, None, None]
    dull = np.clip(ramp + np.array([[[12, 0, -12]]]), 0, 255).astype(np.uint8)
    path = dng_from_photo(tmp_path / "dull.dng", dull, shot_noise=1e-5, read_noise=1e-4)
    dev = develop(read_raw(path), None)
    guard = make_guard(dev, path, None)
    assert guard.terms(finish(dev, {"saturation": 2.0}))["saturation"] > 0
    assert guard.terms(finish(dev, neutral()))["saturation"] == 0


def test_guard_catches_a_hue_rotation(isp_raws):
    dev = develop(read_raw(isp_raws[0]), 128)
    guard = make_guard(dev, isp_raws[0], None)
    assert guard.terms(finish(dev, {"hue": 30.0}))["hue"] > 10
    assert guard.terms(finish(dev, {"hue": 5.0}))["hue"] == 0


def test_guard_lower_bounds_catch_grey_dark_and_flatisp_renders(isp_raws):
    """Issue 19: with upper bounds only, the search found a near-grey, flat rendering the default model pays
    for. Renders far below the sane ones in saturation, brightness or contrast now cost; the sane renders
    and mild edits in those directions do not."""
    for path in isp_raws[:2]:
        dev = develop_view(read_raw(path), 384)
        guard = make_guard(dev, path, 384)
        sane = guard.terms(finish_view(dev, neutral(), 384)[::2, ::2])
        assert sane["desaturation"] == sane["dark"] == sane["flat"] == 0
        grey = guard.terms(finish_view(dev, {"saturation": 0.1}, 384)[::2, ::2])
        assert grey["desaturation"] > 30 and grey["dark"] == 0
        dark = guard.terms(finish_view(dev, {"tone_exposure": -1.5, "brightness": -0.2}, 384)[::2, ::2])
        assert dark["dark"] > 20
        flat = guard.terms(finish_view(dev, {"contrast": 0.5, "tone_curve": -1.0}, 384)[::2, ::2])
        assert flat["flat"] > 10 and flat["flat"] > flat["desaturation"]  # (flatter is also a little duller)
        mild = guard.terms(
            finish_view(dev, {"saturation": 0.9, "tone_exposure": -0.3, "contrast": 0.9}, 384)[::2, ::2]
        )
        assert mild["desaturation"] == mild["dark"] == mild["flat"] == 0
        washed = guard.terms(finish_view(dev, {"saturation": 0.5}, 384)[::2, ::2])  # session 23 floor
        assert washed["desaturation"] > 5


def test_harsh_term_bounds_global_contrast_from_above(isp_raws):
    """Session 23: per-image searches on training raws found harsh renders (luma sd up to 1.86 x the more
    contrasted sane render). A hard S-curve with a contrast gain costs; neutral and a mild boost do not."""
    for path in isp_raws[:2]:
        dev = develop_view(read_raw(path), 384)
        guard = make_guard(dev, path, 384)
        assert guard.terms(finish_view(dev, neutral(), 384)[::2, ::2])["harsh"] == 0
        boost = finish_view(dev, {"contrast": 1.1, "tone_curve": 0.2}, 384)
        assert guard.terms(boost[::2, ::2])["harsh"] == 0
        harsh = guard.terms(finish_view(dev, {"contrast": 1.5, "tone_curve": 1.0}, 384)[::2, ::2])
        assert harsh["harsh"] > 5 and harsh["flat"] == 0


def test_render_stats_measure_brightness_and_contrast():
    img = np.zeros((10, 10, 3), np.uint8)
    img[:5] = 200
    st = render_stats(img)
    assert st.brightness == pytest.approx(100.0, abs=0.1) and st.contrast == pytest.approx(100.0, abs=0.1)


def test_overshoot_term_catches_sharpening_halos(isp_raws):
    for path in isp_raws[:2]:
        dev = develop(read_raw(path), None)
        guard = make_guard(dev, path, None)
        assert guard.terms(finish(dev, neutral())[::2, ::2])["overshoot"] == 0
        assert guard.terms(finish(dev, {"contrast": 1.3})[::2, ::2])["overshoot"] == 0  # not a halo
        halo = finish(dev, {"sharpen_amount": 3.0, "sharpen_sigma": 2.5, "sharpen_threshold": 0.0})
        assert guard.terms(halo[::2, ::2])["overshoot"] > 10


@pytest.mark.parametrize("one_pass", ["center", "whole"])
def test_a_one_pass_reward_scores_a_list_in_batched_passes_as_one_at_a_time(tmp_path, isp_raws, one_pass):
    scorer = tiny_attiqa_scorer(tmp_path)
    passes: list[tuple[int, ...]] = []
    forward = scorer.score_tensors

    def counted(batch):
        passes.append(tuple(batch.shape))
        return forward(batch)

    scorer.score_tensors = counted
    one = from_scorer(scorer, one_pass, batch_size=1)
    many = from_scorer(scorer, one_pass, batch_size=3)
    imgs = isp_renders(isp_raws, one.view_shorter, 2)
    ref = np.array([one.one(im) for im in imgs])
    assert len(passes) == len(imgs) and np.ptp(ref) > 1e-3  # distinct scores: a mixed-up order would show
    passes.clear()
    got = many(imgs)
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-4)  # same scores, same order
    assert many.calls == len(imgs)  # counted per render, as before
    assert all(n <= 3 for n, *_ in passes) and sum(n for n, *_ in passes) == len(imgs)
    shapes = {im.shape for im in imgs}
    if one_pass == "center":  # one crop shape: ceil(8 / 3) passes
        assert len(shapes) > 1 and len(passes) == 3
    else:  # one group per view shape, each in passes of at most 3
        assert len(passes) == sum(-(-sum(im.shape == s for im in imgs) // 3) for s in shapes)


def test_the_bundled_reward_scores_a_list_in_batched_passes_as_one_at_a_time(isp_raws):
    import torch

    torch.set_num_threads(1)  # as the tuner (restored by conftest)
    scorer = attiqa.load_scorer(None)
    for one_pass in ("center", "whole"):
        one = from_scorer(scorer, one_pass, batch_size=1)
        imgs = isp_renders(isp_raws[:2], one.view_shorter, 3)
        ref = np.array([one.one(im) for im in imgs])
        got = from_scorer(scorer, one_pass)(imgs)  # the default batch size (VIEW_BATCH_CPU on the CPU)
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-4)
