"""Picklable image transforms (classes, so DataLoader workers can receive them): PIL RGB -> tensor.

- :class:`PretrainTrain` — supplement B: random 224×224 crops. Ours: optional shorter-edge resize first,
  upscale when the image is smaller than the crop, optional horizontal flip (attribute-preserving).
- :class:`FinetuneTrain` — paper §4.2: resize the shorter edge to 340, random 320×320 crop.
- :class:`FiveCropTest` — paper §4.2: resize to 340, crops at the four corners and the centre -> (5, 3, c, c).
- :class:`CenterCropTest` — ours: one centre crop, 5× faster (also used for calibration).

Randomness uses torch's global RNG, which DataLoader seeds per worker from its generator, so runs are
reproducible when the loader's generator is seeded (see ``attiqa.training.pretrain``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image


def resize_shorter(img: Image.Image, size: int) -> Image.Image:
    """Resize so the shorter edge is ``size`` (aspect kept). PIL's bicubic filter antialiases downscales."""
    w, h = img.size
    if min(w, h) == size:
        return img
    s = size / min(w, h)
    return img.resize((max(size, round(w * s)), max(size, round(h * s))), Image.Resampling.BICUBIC)


def ensure_min_size(img: Image.Image, size: int) -> Image.Image:
    """Upscale (aspect kept) only if the shorter edge is below ``size`` (ours: small images stay usable)."""
    return resize_shorter(img, size) if min(img.size) < size else img


class Normalize:
    """PIL RGB -> float tensor (3, H, W) in [0, 1], then (x - mean) / std for the backbone's weights."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        self.mean = tuple(float(v) for v in mean)
        self.std = tuple(float(v) for v in std)

    def __call__(self, img: Image.Image) -> torch.Tensor:
        return self.pixels(img).permute(2, 0, 1)

    def pixels(self, img: Image.Image) -> torch.Tensor:
        """The normalised image as (H, W, 3), the order PIL stores it: what :meth:`__call__` returns
        before the channels are moved first (the same values, bit for bit).

        In place, with scalars: the float32 arithmetic ``(x / 255 - mean) / std`` as ever, without a fresh
        tensor per step and a (3,) mean broadcast over the last axis, which cost a decode worker several
        times as long (docs/default_model.md, "Implementation speed notes")."""
        arr = np.asarray(img.convert("RGB"), dtype=np.float32)
        arr /= 255.0
        x = torch.from_numpy(arr)
        if len(set(self.mean)) == 1 and len(set(self.std)) == 1:  # the Lite backbones' 0.5 / 0.5
            return x.sub_(self.mean[0]).div_(self.std[0])
        for c, (m, s) in enumerate(zip(self.mean, self.std, strict=True)):
            x[..., c].sub_(m).div_(s)
        return x


def _random_crop(img: Image.Image, size: int) -> Image.Image:
    w, h = img.size
    left = int(torch.randint(0, w - size + 1, ()).item())
    top = int(torch.randint(0, h - size + 1, ()).item())
    return img.crop((left, top, left + size, top + size))


def _center_box(w: int, h: int, size: int) -> tuple[int, int, int, int]:
    left, top = (w - size) // 2, (h - size) // 2
    return left, top, left + size, top + size


@dataclass(eq=False)
class _ResizedView:
    """Shared by the training and test views: optional shorter-edge resize, then crops of ``crop_size``."""

    mean: Sequence[float]
    std: Sequence[float]
    resize_shorter: int | None = 340  # None: crop the image as it is (a pretrain-only model's view)
    crop_size: int = 320
    normalize: Normalize = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.crop_size = int(self.crop_size)
        self.normalize = Normalize(self.mean, self.std)

    def _resized(self, img: Image.Image) -> Image.Image:
        if self.resize_shorter:
            img = resize_shorter(img, self.resize_shorter)
        return ensure_min_size(img, self.crop_size)


@dataclass(eq=False)
class FinetuneTrain(_ResizedView):
    """Paper §4.2: shorter edge -> 340, random 320×320 crop. The paper mentions no flip; ours: optional
    random horizontal flip (``hflip``), which leaves perceived quality unchanged."""

    hflip: bool = False

    def __call__(self, img: Image.Image) -> torch.Tensor:
        img = _random_crop(self._resized(img), self.crop_size)
        if self.hflip and bool(torch.rand(()) < 0.5):
            img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        return self.normalize(img)


class PretrainTrain(FinetuneTrain):
    """Supplement B: a random ``crop_size`` crop (224) of the image as it is. Ours: optional resize first,
    upscale-if-small, hflip — the fine-tuning view with pretraining's defaults and argument order."""

    def __init__(
        self,
        mean: Sequence[float],
        std: Sequence[float],
        crop_size: int = 224,
        resize_shorter: int | None = None,
        hflip: bool = False,
    ) -> None:
        super().__init__(mean, std, resize_shorter, crop_size, hflip)


class FiveCropTest(_ResizedView):
    """Paper §4.2: shorter edge -> 340, five 320×320 crops (TL, TR, BL, BR, centre) -> (5, 3, c, c).

    The resized image is normalised once and the crops are slices of it (the same values as normalising
    each cropped image: the arithmetic is per pixel). A contiguous tensor; :class:`ChannelsLastFiveCropTest`
    gives the same crops in the backbone's memory order."""

    mirrored = False
    channels_last = False

    def __call__(self, img: Image.Image) -> torch.Tensor:
        img = self._resized(img)
        w, h, c = img.width, img.height, self.crop_size
        boxes = [(0, 0, c, c), (w - c, 0, w, c), (0, h - c, c, h), (w - c, h - c, w, h), _center_box(w, h, c)]
        pixels = self.normalize.pixels(img)  # (H, W, 3)
        crops = [pixels[top:bottom, left:right] for left, top, right, bottom in boxes]
        if self.mirrored:
            crops += [crop.flip(1) for crop in crops]
        views = torch.stack(crops).permute(0, 3, 1, 2)
        return views if self.channels_last else views.contiguous()


class ChannelsLastFiveCropTest(FiveCropTest):
    """The five crops in the backbone's channels-last memory order, (5, c, c, 3) stored and seen as
    (5, 3, c, c): what the scorer uses, so neither its batches (:func:`attiqa.io.batching.stack_batch`) nor
    the network's input need a reordering copy. The same values as :class:`FiveCropTest`."""

    channels_last = True


class MirroredFiveCropTest(FiveCropTest):
    """Ours: the five crops, then the same five mirrored left-right -> (10, 3, c, c): the cached-feature
    trainer's stand-in for random flips (the first five stay the paper's test views)."""

    mirrored = True


class CenterCropTest(_ResizedView):
    """Ours: single centre crop after the same resize (one forward pass instead of five)."""

    def __call__(self, img: Image.Image) -> torch.Tensor:
        img = self._resized(img)
        return self.normalize(img.crop(_center_box(img.width, img.height, self.crop_size)))
