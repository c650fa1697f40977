"""Synthetic training raws from ordinary photos ("unprocessing", Brooks et al., CVPR 2019, §3).

Each photo is turned into a Bayer DNG by inverting a camera pipeline with *random* camera settings, so the
agent sees many sensors, casts and noise levels besides the few real cameras:

1. inverse tone map: Brooks' smoothstep inverse, ``x = 0.5 - sin(asin(1 - 2y) / 3)`` (§3.2 "tone mapping");
2. inverse sRGB gamma (§3.2 "gamma compression");
3. inverse colour correction with a random camera matrix: a convex mix of ``CAMERA_MATRICES`` (XYZ ->
   camera; Brooks mix four real cameras' matrices the same way), written to the DNG as ColorMatrix1;
4. inverse white balance with random gains: red 1/U(1.9, 2.4), blue 1/U(1.5, 1.9) (Brooks' ranges),
   written as AsShotNeutral; a random exposure U(0.5, 1.0) (ours: leaves headroom and dark scenes);
5. mosaic with a random one of the four 2x2 layouts;
6. shot + read noise at a random ISO: log shot ~ U(log 1e-4, log 1.2e-2), log read = 2.18 log shot + 1.2 +
   N(0, 0.26) (Brooks' fit, §3.3), 12-bit quantisation with a random black level.

The matrices below are ours (plausible sensor-like XYZ -> camera matrices: strong diagonal, negative
cross-talk), not copied from any camera database. ``tests/test_isp_synth.py`` checks that a synthesised raw
rendered neutrally by our pipeline matches its source photo statistically.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from attiqa.errors import ImageLoadError
from attiqa.io.images import load_image
from attiqa.progress import console, plain_failure
from isp_env.dng import BAYER_LAYOUTS, camera_from_srgb, srgb_to_linear, write_dng

CAMERA_MATRICES = (
    np.array([[0.90, -0.30, -0.10], [-0.40, 1.30, 0.10], [-0.05, 0.20, 0.60]]),
    np.array([[0.75, -0.15, -0.05], [-0.45, 1.25, 0.20], [-0.10, 0.25, 0.75]]),
    np.array([[1.05, -0.40, -0.15], [-0.35, 1.20, 0.15], [-0.02, 0.10, 0.55]]),
    np.array([[0.68, -0.12, -0.08], [-0.50, 1.35, 0.15], [-0.08, 0.18, 0.80]]),
)
PHOTO_EXTENSIONS = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"}


def inverse_smoothstep(y: np.ndarray) -> np.ndarray:
    y = np.clip(y, 0.0, 1.0)
    return 0.5 - np.sin(np.arcsin(1.0 - 2.0 * y) / 3.0)


def sample_camera(rng: np.random.Generator) -> dict:
    """Random camera settings for one synthetic raw (see the module docstring for the distributions)."""
    w = rng.dirichlet(np.ones(len(CAMERA_MATRICES)))
    cm = sum(wi * m for wi, m in zip(w, CAMERA_MATRICES, strict=True))
    r_gain, b_gain = rng.uniform(1.9, 2.4), rng.uniform(1.5, 1.9)
    log_shot = rng.uniform(np.log(1e-4), np.log(1.2e-2))
    log_read = 2.18 * log_shot + 1.2 + rng.normal(0.0, 0.26)
    return {
        "color_matrix": cm,
        "as_shot_neutral": (1.0 / r_gain, 1.0, 1.0 / b_gain),
        "layout": str(rng.choice(list(BAYER_LAYOUTS))),
        "exposure": float(rng.uniform(0.5, 1.0)),
        "shot_noise": float(np.exp(log_shot)),
        "read_noise": float(np.exp(log_read)),
        "black_level": int(rng.integers(0, 257)),
        "white_level": 4095,
    }


def synthesize(rgb: np.ndarray, cam: dict, rng: np.random.Generator) -> np.ndarray:
    """8-bit sRGB photo -> uint16 Bayer mosaic for the camera ``cam`` (from :func:`sample_camera`)."""
    x = np.asarray(rgb, dtype=np.float64)[..., :3] / 255.0
    lin = srgb_to_linear(inverse_smoothstep(x)) * cam["exposure"]
    camrgb = lin @ camera_from_srgb(cam["color_matrix"]).T * np.asarray(cam["as_shot_neutral"])
    h, w = (camrgb.shape[0] // 2) * 2, (camrgb.shape[1] // 2) * 2
    camrgb = np.clip(camrgb[:h, :w], 0.0, 1.0)
    pattern = BAYER_LAYOUTS[cam["layout"]]
    mosaic = np.empty((h, w))
    for k, (dy, dx) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
        mosaic[dy::2, dx::2] = camrgb[dy::2, dx::2, pattern[k]]
    var = cam["shot_noise"] * mosaic + cam["read_noise"] ** 2
    mosaic = np.clip(mosaic + rng.standard_normal(mosaic.shape) * np.sqrt(var), 0.0, 1.0)
    black, white = cam["black_level"], cam["white_level"]
    return np.clip(np.round(black + mosaic * (white - black)), 0, white).astype(np.uint16)


def synth_dng(path: str | Path, rgb: np.ndarray, seed: int) -> Path:
    """One synthetic DNG from a photo, with camera settings drawn from ``seed``."""
    rng = np.random.default_rng(seed)
    cam = sample_camera(rng)
    mosaic = synthesize(rgb, cam, rng)
    return write_dng(
        path,
        mosaic,
        cam["layout"],
        cam["black_level"],
        cam["white_level"],
        cam["color_matrix"],
        cam["as_shot_neutral"],
        model="unprocessed",
    )


def find_photos(root: str | Path) -> list[Path]:
    """``--synth-photos``' photos, found as `attiqa` finds images (linked folders followed: rglob skipped
    them); a photo named on its own is itself."""
    from attiqa.io.images import discover_images

    return sorted(discover_images([root], extensions=sorted(PHOTO_EXTENSIONS)))


def synth_raws(
    photos: Iterable[str | Path], out_dir: str | Path, seed: int = 0, skipped: dict[str, str] | None = None
) -> list[Path]:
    """A synthetic DNG per photo into ``out_dir`` (kept when already there, so reruns are cheap). Photos
    are read upright as 8-bit RGB by the package's one loader; an unreadable one is skipped (its reason
    is printed and, with ``skipped``, recorded under its path)."""
    out_dir = Path(out_dir)
    out = []
    for i, p in enumerate(photos):
        p = Path(p)
        dst = out_dir / f"synth_{p.parent.name}_{p.stem}.dng"
        if not dst.exists():
            try:
                rgb = np.asarray(load_image(p))
            except ImageLoadError as exc:
                console.print(f"[yellow]skipped[/] {plain_failure(exc)}")
                if skipped is not None:
                    skipped[str(p)] = str(exc)
                continue
            synth_dng(dst, rgb, seed * 100_003 + i)
        out.append(dst)
    return out
