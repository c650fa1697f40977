"""The scorer protocol every quality metric and every teacher implements (one protocol, not two).

A scorer splits CPU preprocessing (:meth:`Scorer.transform`, runs in decode workers) from the batched
model call (:meth:`Scorer.score_tensors`); :func:`attiqa.scoring.score_batches` is the one loop that
drives them for ``score``, ``eval``, ``label`` and genbench. A teacher (paper §3.2) is a scorer whose
columns are the five attributes. Calling a scorer on paths, PIL images or tensors returns a dict
``column -> np.ndarray`` (or ``column -> float`` for a single input); numpy arrays are images,
tensors the scorer's own transformed view.

This module sits outside :mod:`attiqa.scorers` and :mod:`attiqa.teachers` because both implement it
(scorers build on teachers; neither may import the other's package in a circle). :class:`ScorerInfo` is
plain data in :mod:`attiqa.scorer_info` (the zoo reads it without torch), used here under the same name.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from attiqa.device import resolve_device
from attiqa.errors import AttiqaError
from attiqa.io.images import load_image
from attiqa.scorer_info import ScorerInfo


def prepend_mean(attrs: torch.Tensor) -> torch.Tensor:
    """(N, K) attribute scores -> (N, 1 + K) with their unweighted mean as the first (overall) column."""
    return torch.cat([attrs.mean(dim=1, keepdim=True), attrs], dim=1)


CALL_BATCH = 16  # images per forward pass when a list is scored through Scorer.__call__


class Scorer(ABC):
    """Base class: ``columns[0]`` is the overall score; further columns (e.g. attributes) are optional.
    A subclass calls ``Scorer.__init__`` (its device, its view-size cache), as every scorer here does."""

    columns: tuple[str, ...] = ("score",)

    def __init__(self, device: str | torch.device = "cpu") -> None:
        # one rule with --device: "auto"; a device this machine lacks (or "gpu") is one line, not torch's
        # "Found no NVIDIA driver" or its list of every device type when the first batch moves
        self.device = resolve_device(str(device))
        # transform's output shape and float-ness per image size (:meth:`_view_of_size`)
        self._view_sizes: dict[tuple[int, int], tuple[tuple[int, ...], bool]] = {}

    @property
    @abstractmethod
    def info(self) -> ScorerInfo: ...

    @abstractmethod
    def transform(self, img: Image.Image) -> torch.Tensor:
        """One RGB image -> CPU tensor ((C,H,W), or (K,C,H,W) for multi-crop)."""

    @abstractmethod
    def score_tensors(self, batch: torch.Tensor) -> torch.Tensor:
        """(N, len(columns)) scores for a batch stacked from :meth:`transform` outputs."""

    def metadata(self) -> dict[str, Any]:
        return {"name": self.info.name, "kind": self.info.kind}

    @torch.no_grad()
    def __call__(self, inputs: Any) -> dict[str, np.ndarray] | dict[str, float]:
        """Score a path, a PIL image or a numpy image ((H, W), (H, W, 1 | 3 | 4): uint8, uint16, bool or
        float in [0, 1]); a list of them or an (N, H, W, C) array; or a tensor of :meth:`transform`'s outputs
        (one, or a batch stacked from them: a tensor is taken as it is, not as an image, and one of another
        shape — an image tensor, one or a batch — is refused; views of another size the network takes go
        to :meth:`score_views`). One input gives floats, several arrays."""
        if isinstance(inputs, torch.Tensor):
            single = self._is_one_view(inputs)
            scores = self.score_views(inputs.unsqueeze(0) if single else inputs)
            return {c: float(v[0]) for c, v in scores.items()} if single else scores
        items: Sequence[Any] | np.ndarray
        single = isinstance(inputs, (str, Path, Image.Image)) or (
            isinstance(inputs, np.ndarray) and inputs.ndim in (2, 3)
        )
        if single:
            items = [inputs]
        elif isinstance(inputs, (Sequence, np.ndarray)):
            items = inputs
        else:
            raise TypeError(f"cannot score an object of type {type(inputs).__name__}: {WHAT_SCORES}")
        if len(items) == 0:
            return {c: np.empty(0, dtype=np.float32) for c in self.columns}
        # Decode, transform and score a few images at a time: a long list must not become one
        # batch (a few hundred five-crop images would need tens of GB of activations).
        step = self.info.max_batch or CALL_BATCH
        chunks = (items[i : i + step] for i in range(0, len(items), step))
        parts = (torch.stack([self._tensor_of(x) for x in chunk]) for chunk in chunks)
        out = torch.cat([self.score_tensors(b).float().cpu() for b in parts]).numpy()
        if single:
            return {c: float(out[0, i]) for i, c in enumerate(self.columns)}
        return {c: out[:, i] for i, c in enumerate(self.columns)}

    @torch.no_grad()
    def score_views(self, batch: torch.Tensor) -> dict[str, np.ndarray]:
        """Scores of a batch of the network's own views taken as they are, unchecked: stacked
        :meth:`transform` outputs, or views of another size the network takes — isp_env's reward passes a
        render resized to the model's scale and normalised, whole or centre-cropped, which no image's
        transform output is, so :meth:`__call__` would refuse it."""
        out = self.score_tensors(batch).float().cpu().numpy()
        return {c: out[:, i] for i, c in enumerate(self.columns)}

    def _tensor_of(self, x: Any) -> torch.Tensor:
        if isinstance(x, np.ndarray):
            im = image_of_array(x)
        elif isinstance(x, Image.Image):
            im = x
        elif isinstance(x, (str, Path)):
            im = load_image(x, min_shorter=self.info.min_shorter)
        else:
            raise TypeError(f"cannot score an object of type {type(x).__name__} in a list: {WHAT_SCORES}")
        return self.transform(im.convert("RGB"))

    def _is_one_view(self, t: torch.Tensor) -> bool:
        """Whether ``t`` is one of :meth:`transform`'s outputs (True) or a batch stacked from them (False).
        Anything else is refused: an image tensor (3, H, W) was scored as if it were the ATTIQA view (not
        resized, cropped or normalised) — a plausible, wrong MOS (42 for a photo scored 57 as a PIL image)
        — and so was a float batch of them, (N, 3, H, W); a uint8 tensor for a float view was torch's
        dtype error. (A native-resolution scorer's view is the image's own size: there, shape cannot tell.)"""
        h, w = (int(t.shape[-2]), int(t.shape[-1])) if t.dim() >= 2 else (1, 1)
        view_shape, view_float = self._view_of_size(max(h, 1), max(w, 1))
        if t.is_floating_point() or not view_float:
            if tuple(t.shape) == view_shape:
                return True
            if tuple(t.shape[1:]) == view_shape:
                return False
        got = f"{tuple(t.shape)} ({str(t.dtype).removeprefix('torch.')})"
        want = f"{view_shape} ({'float' if view_float else 'integer'})"
        raise AttiqaError(
            f"a tensor {got} is not this scorer's view: a tensor must be scorer.transform(image)'s output, "
            f"{want}, or a batch of them — pass an image as a PIL image, a path or a numpy array (H, W, 3) "
            "(a (3, H, W) tensor t: t.permute(1, 2, 0).numpy(); a batch: a list of them); views of another "
            "size the network takes: scorer.score_views(batch)"
        )

    def _view_of_size(self, h: int, w: int) -> tuple[tuple[int, ...], bool]:
        """The shape and float-ness of :meth:`transform`'s output for an h x w image, made once per size:
        isp_env's reward calls the scorer with a tensor batch every step, and a five-crop transform of a
        blank image costs tens of ms."""
        if (h, w) not in self._view_sizes:
            view = self.transform(Image.new("RGB", (w, h)))
            self._view_sizes[(h, w)] = (tuple(view.shape), view.is_floating_point())
        return self._view_sizes[(h, w)]


WHAT_SCORES = (
    "pass a path, a PIL image, a numpy image (H, W[, C]), a list of them, or a tensor of scorer.transform "
    "outputs"
)


def image_of_array(a: np.ndarray) -> Image.Image:
    """A numpy image as PIL: (H, W) or (H, W, 1 | 3 | 4), uint8 / uint16 / bool / other integers in 0..255 /
    float in [0, 1] (as skimage and matplotlib hold images); anything else is one line saying what to do."""
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[-1] not in (1, 3, 4)):
        hint = ""
        if a.ndim == 3 and a.shape[0] in (1, 3, 4):
            hint = " (channels first: pass a.transpose(1, 2, 0))"
        raise AttiqaError(f"a numpy array of shape {a.shape} is not an image: expected (H, W) or (H, W, C) "
                          f"with C = 1, 3 or 4{hint}")  # fmt: skip
    if min(a.shape[:2]) < 1:
        raise AttiqaError(f"a numpy array of shape {a.shape} is an empty image")
    if a.dtype == np.bool_:
        a = a.astype(np.uint8) * 255
    elif a.dtype == np.uint16:
        a = (a.astype(np.uint32) * 255 + 32767) // 65535
    elif np.issubdtype(a.dtype, np.floating):
        lo, hi = float(np.min(a)), float(np.max(a))
        if not (np.isfinite(lo) and np.isfinite(hi) and lo >= 0.0 and hi <= 1.0):
            raise AttiqaError(
                f"a float image must hold values in [0, 1], this one {lo:g}..{hi:g} — divide by 255 if it "
                "holds 0..255 values (or pass it as uint8)"
            )
        a = np.round(a * 255.0)
    elif np.issubdtype(a.dtype, np.integer) and a.dtype != np.uint8:
        if a.min() < 0 or a.max() > 255:
            raise AttiqaError(f"an integer image ({a.dtype}) must hold values in 0..255 (or be uint16), this "
                              f"one {a.min()}..{a.max()}")  # fmt: skip
    elif a.dtype != np.uint8:
        raise AttiqaError(f"a numpy array of dtype {a.dtype} is not an image — pass uint8, uint16 or float")
    a = np.ascontiguousarray(a.astype(np.uint8))
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    return Image.fromarray(a)
