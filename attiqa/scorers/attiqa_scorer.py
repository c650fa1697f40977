"""The ATTIQA scorer: a trained checkpoint -> MOS + five attribute scores (paper §3.5, §4.2).

Test-time protocol (paper §4.2): resize the shorter edge to 340, take five 320×320 crops (four corners
and the centre) and average the predictions. ``crops="center"`` is our faster single-pass option.

The network is loaded for inference only: its BatchNorm layers are folded into the convolutions before
them (:func:`attiqa.models.fold.fold_batchnorm`; same scores to float rounding, faster on CPU — figures in
docs/default_model.md, "Implementation speed notes"). ``fold=False`` keeps the checkpoint's layers.

On CPU the crops of a batch go through the network :data:`CPU_CHUNK` at a time: a five-crop batch of 16
photos is 80 crops, whose widest activation maps alone take about a GB, and a CPU gains nothing from
running them at once — the same scores to float rounding, a fraction of the peak memory (figures:
docs/default_model.md, "Implementation speed notes"). Other devices run the whole batch (a GPU wants
large batches). ``chunk`` sets it; ``ATTIQA_CHUNK`` sets the default (0: the whole batch, as before).

Columns: ``mos`` (in the fine-tuning dataset's MOS scale; NaN for a pretrain-only checkpoint, which has
no MOS head) and the attribute scores in [0, 1] (empirical CDF over the pretraining photos, so 0.8 reads
"sharper than 80% of the training photos").
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from attiqa.errors import AttiqaError, ConfigError, did_you_mean
from attiqa.interface import Scorer
from attiqa.io.checkpoints import load_checkpoint_hashed
from attiqa.models import model_from_checkpoint
from attiqa.models.fold import fold_batchnorm
from attiqa.models.transforms import CenterCropTest, ChannelsLastFiveCropTest
from attiqa.scorer_info import ScorerInfo
from attiqa.scorers.zoo import registry_entry_at

# Crops per forward pass on CPU (the default of ``AttiqaScorer(chunk=...)``; see the module docstring).
CPU_CHUNK = 20


def default_chunk(device: torch.device) -> int:
    """Crops per forward pass when the caller sets none: ``ATTIQA_CHUNK``, else :data:`CPU_CHUNK` on CPU and
    0 (the whole batch) on other devices."""
    env = os.environ.get("ATTIQA_CHUNK", "").strip()
    if env:
        if not env.isdigit():
            raise AttiqaError(f"ATTIQA_CHUNK={env!r}: give a whole number of crops >= 0 (0: the whole batch)")
        return int(env)
    return CPU_CHUNK if device.type == "cpu" else 0


def check_chunk(chunk: int) -> int:
    """``chunk`` itself when it is a valid crop count (0 = the whole batch)."""
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 0:
        raise ValueError(f"chunk must be a whole number of crops >= 0 (0: the whole batch), got {chunk!r}")
    return chunk


def pair(value: Any) -> tuple[float, float] | None:
    """A card's ``[lo, hi]`` as a pair of floats (None: not recorded; the card was validated on load)."""
    return (float(value[0]), float(value[1])) if value else None


CROP_MODES = ("five", "center")


def check_crops(crops: str) -> None:
    """A crop mode as one user-facing line (``--crops centre``, the spelling of the docs' prose, ended in
    a traceback)."""
    if crops not in CROP_MODES:
        hint = did_you_mean(crops, CROP_MODES, cutoff=0.5)
        raise ConfigError(f"crops {crops!r}: use five (paper §4.2: 4 corners + centre) or center{hint}")


class AttiqaScorer(Scorer):
    def __init__(
        self,
        checkpoint: str | Path,
        device: str | torch.device = "cpu",
        crops: str = "five",
        fold: bool = True,
        chunk: int | None = None,
    ) -> None:
        super().__init__(device)
        check_crops(crops)
        self.chunk = default_chunk(self.device) if chunk is None else check_chunk(chunk)
        self.checkpoint = Path(checkpoint)
        # the identity `score -o` / eval / genbench record is of the bytes loaded, not of a later reading
        tensors, self.card, self.weights_read = load_checkpoint_hashed(self.checkpoint)
        self.model = model_from_checkpoint(self.checkpoint, tensors, self.card).to(self.device).eval()
        del tensors
        if fold:
            fold_batchnorm(self.model)
        self.folded = bool(fold)
        self.crops = crops
        cfg = self.model.card_config()
        mean, std = cfg["mean"], cfg["std"]
        resize, crop = cfg.get("test_resize_shorter"), cfg.get("test_crop") or 320
        # five crops in the backbone's channels-last order: batches keep it, the network reorders nothing
        view = ChannelsLastFiveCropTest if crops == "five" else CenterCropTest
        self._transform = view(mean, std, resize, crop)
        self.columns = ("mos", *self.model.head_names)
        self.has_mos = self.model.mos_head is not None
        trained = pair(self.card.get("mos_range"))
        data = self.card.get("dataset")
        data = data if isinstance(data, dict) else {}  # what it was fine-tuned on (eval's training-fit note)
        from attiqa.datasets.base import ROWS_KEYS  # here: `import attiqa.scorers` reads no adapter

        rows_key = next((k for k in ROWS_KEYS if data.get(k)), "")  # the newest hash the card holds
        self._info = ScorerInfo(
            name=self.card.get("name", self.checkpoint.stem),
            kind="trained",
            score_range=self._scale(trained),
            trained_range=trained,
            higher_is_better=True,
            needs=str(self.checkpoint),
            description=self.card.get("description", "ATTIQA checkpoint"),
            # decode big JPEGs at a reduced scale when the transform downsizes anyway (None: native scale)
            min_shorter=resize,
            view_pixels=(5 if crops == "five" else 1) * crop * crop,  # the card's crop: the batch's size
            fitted_on=str(data.get("csv") or ""),
            fitted_split=str(data.get("split") or ""),
            fitted_rows=str(data.get(rows_key) or ""),
            fitted_rows_version=ROWS_KEYS.get(rows_key, 0),
        )

    def _scale(self, trained: tuple[float, float] | None) -> tuple[float, float]:
        """The scale the MOS is on (:class:`ScorerInfo`): the card's ``score_range`` (`attiqa export` of a
        named model writes it), else the registry row of the named model whose file this is, else — a
        checkpoint of one's own records no scale — the MOS range it was trained on ([0, 1] without one)."""
        entry = registry_entry_at(self.checkpoint)
        return (
            pair(self.card.get("score_range"))
            or (entry.info.score_range if entry is not None else None)
            or trained
            or (0.0, 1.0)
        )

    @property
    def info(self) -> ScorerInfo:
        return self._info

    def transform(self, img: Image.Image) -> torch.Tensor:
        return self._transform(img)

    @torch.inference_mode()
    def score_tensors(self, batch: torch.Tensor) -> torch.Tensor:
        batch = batch.to(self.device, non_blocking=True)
        multi = batch.dim() == 5
        n = batch.shape[0]
        x = batch.flatten(0, 1) if multi else batch
        step = self.chunk or len(x)
        parts = [x[i : i + step] for i in range(0, len(x), step)] if len(x) > step else [x]
        res = torch.cat([self._score_crops(part) for part in parts])
        if multi:
            res = res.view(n, batch.shape[1], -1).mean(dim=1)
        return res

    def _score_crops(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(x)
        attrs = self.model.attribute_scores(out.attributes)
        if self.has_mos:
            mos = self.model.mos_to_dataset_scale(out.mos).reshape(-1, 1)
        else:
            mos = torch.full((x.shape[0], 1), float("nan"), device=x.device)
        return torch.cat([mos, attrs], dim=1)

    def metadata(self) -> dict[str, Any]:
        return {
            "name": self._info.name,
            "kind": "trained",
            "checkpoint": str(self.checkpoint),
            "crops": self.crops,
        }
