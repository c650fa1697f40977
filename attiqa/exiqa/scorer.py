"""``exiqa:PATH`` — a trained ExIQA checkpoint as a scorer: per image, the 25 distortion probabilities
(eq. 7) and the overall ``score``.

Stage 2 of the paper (the eq. (9) regressor on the attribute probabilities, trained on MOS) is not trained
by this version, so ``score`` is NaN (as for an ATTIQA checkpoint without a MOS head); the explanation —
which distortions, how strong — is in the distortion columns.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from PIL import Image

from attiqa.errors import ModelLoadError
from attiqa.exiqa.model import AttributeTable, ExiqaModel
from attiqa.io.checkpoints import load_checkpoint
from attiqa.scorers.base import Scorer, ScorerInfo
from attiqa.teachers.clip import load_open_clip, parse_clip_spec

INFO = ScorerInfo(
    name="exiqa",
    kind="trained",
    score_range=(0.0, 1.0),
    higher_is_better=False,
    needs="a checkpoint from `attiqa train-exiqa`: --model exiqa:PATH (+ its CLIP weights)",
    description="ExIQA (paper 004): distortion probabilities via attribute prompts (higher = more distorted)",
)


class ExiqaScorer(Scorer):
    def __init__(
        self, path: str | Path = "", device: str | torch.device = "cpu", clip: str | None = None
    ) -> None:
        super().__init__(device)
        if not path:
            raise ModelLoadError("exiqa needs a checkpoint: --model exiqa:PATH (from `attiqa train-exiqa`)")
        self.path = Path(path)
        if self.path.is_dir():
            self.path = self.path / "exiqa.safetensors"
        tensors, card = load_checkpoint(self.path)
        if card.get("kind") != "exiqa":
            raise ModelLoadError(f"{self.path}: not an ExIQA checkpoint (card kind {card.get('kind')!r})")
        table = AttributeTable(
            tuple(card["distortions"]),
            tuple(tuple(a) for a in card["attributes"]),
            card["prompt_positive"],
            card["prompt_negative"],
        )
        self.clip_spec = clip or card["clip"]
        model, self.preprocess, tokenizer, _ = load_open_clip(
            parse_clip_spec(self.clip_spec), self.device, flag="--model exiqa:PATH --clip "
        )
        self.model = ExiqaModel(model, tokenizer, table, int(tensors["prompts"].shape[0])).to(self.device)
        self.model.load_trainable_state(tensors)
        self.model.eval()
        self.card = card
        self.distortions = table.distortions
        self.columns = ("score", *table.distortions)
        size = model.visual.image_size
        self.min_shorter = int(min(size) if isinstance(size, (tuple, list)) else size)

    @property
    def info(self) -> ScorerInfo:
        return INFO

    def transform(self, img: Image.Image) -> torch.Tensor:
        return self.preprocess(img.convert("RGB"))

    @torch.no_grad()
    def score_tensors(self, batch: torch.Tensor) -> torch.Tensor:
        dist = self.model.distortion_probs(self.model.attribute_probs(batch.to(self.device)))
        nan = torch.full((dist.shape[0], 1), float("nan"), device=dist.device)
        return torch.cat([nan, dist], dim=1)

    def top_distortions(self, row: dict[str, float], k: int = 3) -> list[tuple[str, float]]:
        """The k strongest distortions of one result row, strongest first."""
        return sorted(((d, row[d]) for d in self.distortions), key=lambda t: -t[1])[:k]

    def metadata(self) -> dict[str, Any]:
        return {
            "name": "exiqa",
            "kind": "trained",
            "checkpoint": str(self.path),
            "clip": self.clip_spec,
            "score": "NaN: the eq. (9) regressor is not trained by this version",
        }
