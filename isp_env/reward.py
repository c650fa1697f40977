"""The agent's reward: the scorer's MOS of a render at the scorer's own scale, minus an over-processing guard.

Why (issue 19, ours): a preview upscaled to the scorer's view grades interpolated pixels, and the five-crop
protocol costs five forward passes. Here a render is made at the scale the scorer looks at (ATTIQA: shorter
side ``test_resize_shorter``, 500 for the default model; raws smaller than that render at full resolution
and are resized like the scorer's own transform would) and scored whole, in one pass (``one_pass`` of
:func:`isp_env.mos_function.from_scorer`). ``benchmarks/isp_reward_agreement.py`` measures how this ranks
parameter sets against the paper's five-crop scoring of full-resolution renders.

The guard (ours): the default model pays for over-processing (saturation 1.8, contrast 1.5, maximal
sharpening -> higher MOS with 98 % clipped pixels). Until the scorer itself is robust, the reward subtracts
hinge penalties, in percent of the scorer's range, measured against the raw's *sane* renders (our neutral
pipeline and ``rawpy.postprocess()``):

* clipping: fraction of pixels with a channel at 0 or 255 above ``min(neutral, rawpy) + CLIP_TOL``;
* saturation: mean HSV saturation above ``SAT_TOL`` x ``max(neutral, rawpy)``;
* halos / over-sharpening: mean luma gradient above ``GRAD_TOL`` x the neutral render's;
* hue shift: the chroma-weighted mean rotation of the colours against the neutral render beyond ``HUE_TOL``;
* sharpening halos and amplified noise: the luma overshoot (how far pixels go beyond the local range of a
  3x3-smoothed copy, 7x7 window), relative to the luma's standard deviation, above ``OVERSHOOT_TOL`` x the
  neutral render's (the mean gradient alone missed rims around the patches of a colour chart).

and, since a reward with upper bounds only was gamed the other way (a near-grey, flat, dark rendering that
the default model scores above neutral), lower bounds against the *less* processed of the two sane renders:

* desaturation: mean HSV saturation below ``SAT_LO`` x ``min(neutral, rawpy)``;
* darkening: mean luma below ``BRIGHT_LO`` x ``min(neutral, rawpy)``;
* flattening: luma standard deviation (global contrast) below ``CONTRAST_LO`` x ``min(neutral, rawpy)``.

Session 23 (per-image CMA-ES on the 30 *training* raws, looked at render by render): the searches still
found harsh, near-monochrome portraits — the luma standard deviation up to 1.86 x the *more* contrasted
sane render, the saturation down to 0.56 x the less saturated one. So:

* harshness (an upper bound on global contrast): luma standard deviation above ``CONTRAST_HI`` x
  ``max(neutral, rawpy)``;
* the desaturation floor was raised from 0.5 to ``SAT_LO`` = 0.75 x ``min(neutral, rawpy)`` (still far below
  the cast-ridden neutral renders of the QuickTake 150, so weakening a cast stays free).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from isp_env.isp import Developed, develop, finish
from isp_env.params import neutral
from isp_env.raw import RawImage, open_raw

if TYPE_CHECKING:
    from isp_env.mos_function import MOSFunction

DEFAULT_VIEW_SHORTER = 384  # scorers without a native scale (classical, plain callables); ours
CLIP_TOL, SAT_TOL, GRAD_TOL, HUE_TOL = 0.03, 1.2, 1.6, 10.0
# penalty slopes, in percent of the scorer's range per unit of excess (ours, set so that the over-processed
# renders of issue 19 lose far more than the MOS they gain: 98 % clipped pixels cost ~190 points)
CLIP_W, SAT_W, GRAD_W, HUE_W = 200.0, 100.0, 40.0, 1.0
# lower bounds (ours): free down to these fractions of the lower of the two sane renders' values. Wide,
# because the 16 parameters have no white balance: on colour-cast sensors (QuickTake 150) lowering the
# saturation is the only way to weaken the cast, and a darker or softer rendering than the camera's is a
# normal edit; a grey (saturation 0.14 vs 0.5-0.7), flat or murky render is not. Slope: 100 per unit of
# relative shortfall (a render at half the floor loses 50 points of the scorer's range).
SAT_LO, BRIGHT_LO, CONTRAST_LO = 0.75, 0.7, 0.6  # SAT_LO 0.5 until session 23 (module docstring)
# upper bound on global contrast (ours, session 23): free up to 1.3 x the more contrasted sane render; the
# harsh training-raw optima measured 1.44-1.86 x, the pleasant ones <= 1.25 x
CONTRAST_HI = 1.3
# slope of the relative bounds: 100 per unit of relative shortfall below a floor (desaturation, dark, flat)
# or of relative excess above CONTRAST_HI (harsh). The harsh term shares it on purpose: it is the mirror of
# the flat term on the same measure (the luma sd), and the same slope as the saturation ceiling (SAT_W per
# unit of ratio); it charged the harsh optima of session 23 11-43 points
REL_W = 100.0
# overshoot (ours): a moderate unsharp mask (amount 1) measured 1.3-1.4 x neutral on four training raws,
# visible halos 3 x; free up to 1.5 x, then 20 points per unit of ratio
OVERSHOOT_TOL, OVERSHOOT_W = 1.5, 20.0


@dataclass
class RenderStats:
    """What the guard and the report measure on an 8-bit render."""

    clipped: float  # fraction of pixels with a channel at 0 or 255
    saturation: float  # mean HSV saturation
    gradient: float  # mean |d luma| (x and y), 8-bit units
    brightness: float = 0.0  # mean luma, 8-bit units
    contrast: float = 0.0  # standard deviation of the luma, 8-bit units
    overshoot: float = 0.0  # mean luma beyond the local range of a smoothed copy / luma sd (halos, noise)

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def _luma(rgb: np.ndarray) -> np.ndarray:
    return rgb[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)


def clipped_and_saturation(rgb: np.ndarray) -> tuple[float, float]:
    """:class:`RenderStats`' ``clipped`` and ``saturation`` alone: what the report gives of each
    full-resolution render (one per method and held-out raw). :func:`render_stats` computes the guard's
    gradient, contrast and overshoot too, and a maximum over a last axis of 3, slow in numpy; this, channel
    by channel, is an order of magnitude faster with the same values (figures: docs/isp.md, "At FiveK scale";
    ``benchmarks/isp_scale.py stats``)."""
    rgb = np.asarray(rgb)
    hi, lo = rgb[..., 0], rgb[..., 0]
    for c in range(1, rgb.shape[-1]):
        hi, lo = np.maximum(hi, rgb[..., c]), np.minimum(lo, rgb[..., c])
    clipped = float(((lo == 0) | (hi == 255)).mean())  # a channel at 0 or 255
    mx, mn = hi.astype(np.float32), lo.astype(np.float32)
    sat = float(np.mean(np.where(mx > 0, (mx - mn) / np.maximum(mx, 1.0), 0.0)))
    return clipped, sat


def render_stats(rgb: np.ndarray) -> RenderStats:
    rgb = np.asarray(rgb)
    clipped, sat = clipped_and_saturation(rgb)
    y = _luma(rgb)
    grad = (
        float(np.abs(np.diff(y, axis=0)).mean() + np.abs(np.diff(y, axis=1)).mean())
        if min(y.shape) > 1
        else 0.0
    )
    sd = float(y.std())
    return RenderStats(clipped, sat, grad, float(y.mean()), sd, _overshoot(y) / max(sd, 1.0))


def _overshoot(y: np.ndarray) -> float:
    """Mean distance of the luma beyond the 7x7 local max/min of its 3x3 box-smoothed copy: a step edge
    without halos stays inside that range; an unsharp-mask halo (or amplified noise) overshoots it."""
    if min(y.shape) < 8:
        return 0.0
    from scipy import ndimage

    yb = ndimage.uniform_filter(y, 3)
    hi, lo = ndimage.maximum_filter(yb, 7), ndimage.minimum_filter(yb, 7)
    return float(np.maximum(y - hi, 0.0).mean() + np.maximum(lo - y, 0.0).mean())


def _chroma(rgb: np.ndarray) -> np.ndarray:
    x = rgb[..., :3].astype(np.float32) / 255.0
    u = x @ np.array([-0.14713, -0.28886, 0.436], dtype=np.float32)
    v = x @ np.array([0.615, -0.51499, -0.10001], dtype=np.float32)
    return u + 1j * v


def hue_shift_degrees(rgb: np.ndarray, ref: np.ndarray) -> float:
    """Chroma-weighted mean rotation of ``rgb``'s colours against ``ref`` (same size), in degrees."""
    z = np.sum(_chroma(rgb) * np.conj(_chroma(ref)))
    return float(abs(np.degrees(np.angle(z)))) if abs(z) > 0 else 0.0


def _shortfall(value: float, floor: float) -> float:
    """``REL_W`` x the relative shortfall of ``value`` below ``floor`` (0 when at or above it)."""
    return REL_W * max(0.0, 1.0 - value / floor) if floor > 1e-6 else 0.0


@dataclass
class Guard:
    """Penalties against one raw's sane renders (see the module docstring); ``penalty`` in % of the range."""

    neutral: RenderStats
    rawpy: RenderStats | None
    neutral_img: np.ndarray

    def terms(self, rgb: np.ndarray, stats: RenderStats | None = None) -> dict[str, float]:
        s = stats or render_stats(rgb)
        refs = [self.neutral] + ([self.rawpy] if self.rawpy is not None else [])
        clip_ref = min(r.clipped for r in refs) + CLIP_TOL
        sat_ref = max(r.saturation for r in refs) * SAT_TOL
        grad_ref = max(self.neutral.gradient, 1e-3) * GRAD_TOL
        ref = self.neutral_img[::2, ::2] if rgb.shape != self.neutral_img.shape else self.neutral_img
        hue = hue_shift_degrees(rgb, ref) if rgb.shape == ref.shape else 0.0
        return {
            "clip": CLIP_W * max(0.0, s.clipped - clip_ref),
            "saturation": SAT_W * max(0.0, s.saturation / max(sat_ref, 1e-3) - 1.0),
            "halo": GRAD_W * max(0.0, s.gradient / grad_ref - 1.0),
            "overshoot": OVERSHOOT_W
            * max(0.0, s.overshoot / max(self.neutral.overshoot, 1e-4) - OVERSHOOT_TOL),
            "hue": HUE_W * max(0.0, hue - HUE_TOL),
            "desaturation": _shortfall(s.saturation, SAT_LO * min(r.saturation for r in refs)),
            "dark": _shortfall(s.brightness, BRIGHT_LO * min(r.brightness for r in refs)),
            "flat": _shortfall(s.contrast, CONTRAST_LO * min(r.contrast for r in refs)),
            "harsh": REL_W
            * max(0.0, s.contrast / max(CONTRAST_HI * max(r.contrast for r in refs), 1e-3) - 1.0),
        }

    def penalty(self, rgb: np.ndarray) -> float:
        """The sum of :meth:`terms` (measured on every second pixel and row: 4x cheaper, same statistics)."""
        return float(sum(self.terms(rgb[::2, ::2]).values()))


def view_long_side(shape: tuple[int, int], shorter: int) -> int | None:
    """Long side to develop a raw of ``shape`` at so that its shorter side is ``shorter``; None (= full
    resolution) when the raw is smaller than that (the 8-bit render is then resized like the scorer would)."""
    h, w = shape
    if min(h, w) <= shorter:
        return None
    return int(round(max(h, w) * shorter / min(h, w)))


def to_view(rgb: np.ndarray, shorter: int) -> np.ndarray:
    """Resize an 8-bit render so its shorter side is ``shorter`` (bicubic, as the ATTIQA transform does)."""
    h, w = rgb.shape[:2]
    if min(h, w) == shorter:
        return rgb
    s = shorter / min(h, w)
    size = (max(shorter, round(w * s)), max(shorter, round(h * s)))
    return np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BICUBIC))


def develop_view(raw: RawImage, shorter: int) -> Developed:
    """The front end at the scorer's scale (or full resolution for small raws)."""
    return develop(raw, view_long_side(raw.shape, shorter))


def finish_view(dev: Developed, values: dict[str, float], shorter: int) -> np.ndarray:
    return to_view(finish(dev, values), shorter)


def rawpy_render(path: str | Path, size: tuple[int, int] | None = None) -> np.ndarray:
    """``rawpy.postprocess()`` with the camera white balance, optionally resized (Lanczos) to (h, w). An
    X-Trans raw LibRaw will not demosaic (its X-Trans interpolation refuses frames under 512 px with an I/O
    error) is rendered with LibRaw's linear demosaic instead: the run's evaluation stopped on a traceback."""
    import rawpy

    with open_raw(path) as raw:
        xtrans = np.asarray(raw.raw_pattern).shape == (6, 6)  # (read first: processing changes it)
        try:
            return resized(raw.postprocess(use_camera_wb=True), size)
        except rawpy.LibRawError:
            if not xtrans:
                raise
    with open_raw(path) as raw:
        linear = rawpy.DemosaicAlgorithm.LINEAR
        return resized(raw.postprocess(use_camera_wb=True, demosaic_algorithm=linear), size)


def resized(rgb: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    """An 8-bit render resized (Lanczos) to (h, w) as :func:`rawpy_render` does; unchanged when it has that
    size or ``size`` is None — so one rawpy render serves at several sizes."""
    if size is not None and rgb.shape[:2] != tuple(size):
        rgb = np.asarray(Image.fromarray(rgb).resize((size[1], size[0]), Image.Resampling.LANCZOS))
    return rgb


def rawpy_or_none(path: str | Path) -> np.ndarray | None:
    """:func:`rawpy_render` at full size, or None for a raw rawpy cannot post-process (the guard's reference
    is then the neutral render alone)."""
    try:
        return rawpy_render(path)
    except Exception:  # noqa: BLE001  (any failure of LibRaw's post-processing: no rawpy reference)
        return None


def make_guard(
    dev: Developed, path: str | Path | None, view: int | None, rawpy_rgb: np.ndarray | None = None
) -> Guard:
    """The guard of one raw: its neutral render (at the view scale) and, when readable, rawpy's.
    ``rawpy_rgb``: the raw's full-size rawpy render when made already (not rendered again)."""
    img = finish(dev, neutral()) if view is None else finish_view(dev, neutral(), view)
    if rawpy_rgb is None and path is not None:
        rawpy_rgb = rawpy_or_none(path)
    rp = None if rawpy_rgb is None else render_stats(resized(rawpy_rgb, img.shape[:2])[::2, ::2])
    return Guard(render_stats(img[::2, ::2]), rp, img)


def scorer_view(mos: MOSFunction) -> int:
    """The shorter side renders are scored at: the scorer's own scale, else :data:`DEFAULT_VIEW_SHORTER`."""
    return mos.view_shorter or DEFAULT_VIEW_SHORTER


def guarded_item(
    path: str | Path,
    view: int | None,
    preview: int | None = None,
    dev: Developed | None = None,
    raw: RawImage | None = None,
    rawpy_rgb: np.ndarray | None = None,
) -> tuple[Developed, Guard, int | None]:
    """What :func:`isp_env.baselines.guarded_objective` scores for one raw — its front end at the scorer's
    scale (``view``; or a ``preview`` of that long side when ``view`` is None), its guard and the view —
    the one recipe for the baselines, the teacher's targets and its cross-validation. ``dev``: a front end
    already developed that way (the environment's); ``raw``: the raw already read (not read again);
    ``rawpy_rgb``: its full-size rawpy render (:func:`make_guard`)."""
    from isp_env.raw import read_raw

    if dev is None:
        raw = read_raw(path) if raw is None else raw
        dev = develop_view(raw, view) if view else develop(raw, preview)
    return dev, make_guard(dev, path, view, rawpy_rgb), view
