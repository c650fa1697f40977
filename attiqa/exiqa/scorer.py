"""``exiqa:PATH`` — a trained ExIQA checkpoint as a scorer: per image, the 25 distortion probabilities
(eq. 7) and the overall ``score``.

``score`` is the eq. (9) regressor's quality prediction (on the MOS scale of the CSV it was trained on) when
``regressor.safetensors`` from ``attiqa train exiqa-regressor`` sits next to the checkpoint; NaN otherwise
(as for an ATTIQA checkpoint without a MOS head). The explanation — which distortions, how strong — is in
the distortion columns.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from attiqa.errors import ModelLoadError
from attiqa.exiqa import REGRESSOR_FILE, run_and_clip
from attiqa.exiqa.model import AttributeTable, ExiqaModel, Regressor
from attiqa.interface import Scorer
from attiqa.io.checkpoints import load_checkpoint_hashed
from attiqa.scorer_info import ScorerInfo
from attiqa.teachers.clip import clip_identity, load_open_clip, parse_clip_spec


class ExiqaScorer(Scorer):
    def __init__(
        self,
        path: str | Path = "",
        device: str | torch.device = "cpu",
        clip: str | None = None,
        regressor: bool = True,
        info: ScorerInfo | None = None,
    ) -> None:
        super().__init__(device)
        base = info or ScorerInfo("exiqa", "trained", (0.0, 1.0))  # the zoo passes its entry's info
        if not path:
            raise ModelLoadError("exiqa needs a checkpoint: -m exiqa:PATH (from `attiqa train exiqa`)")
        run, spec = run_and_clip(str(path))
        clip = clip or spec
        self.path = Path(run)
        if self.path.is_dir():
            self.path = self.path / "exiqa.safetensors"
            if not self.path.is_file():
                raise ModelLoadError(
                    f"{run}: holds no exiqa.safetensors — pass the --out folder of `attiqa train exiqa` or "
                    "the checkpoint in it"
                )
        # its identity (`score -o`, eval, genbench) is of the bytes loaded, not of a later reading
        tensors, card, self.weights_read = load_checkpoint_hashed(self.path)
        if card.get("kind") != "exiqa":
            raise ModelLoadError(f"{self.path}: not an ExIQA checkpoint (card kind {card.get('kind')!r})")
        table = AttributeTable(
            tuple(card["distortions"]),
            tuple(tuple(a) for a in card["attributes"]),
            card["prompt_positive"],
            card["prompt_negative"],
        )
        self.clip_spec = clip or card["clip"]
        flag = f"exiqa:{run}:"  # the CLIP weights of another machine's run: -m exiqa:RUN:CLIP_SPEC
        parsed = parse_clip_spec(self.clip_spec, flag)
        model, self.preprocess, tokenizer, weights = load_open_clip(parsed, self.device, flag=f"-m {flag}")
        # the CLIP weights by their hash, as the other CLIP scorers: `score -o`'s resume record and eval's
        # cache tell weights replaced in place apart (the spec and path alone did not)
        self.clip_identity = clip_identity(parsed, model, weights)
        self.model = ExiqaModel(model, tokenizer, table, int(tensors["prompts"].shape[0])).to(self.device)
        self.model.load_trainable_state(tensors)
        self.model.eval()
        self.card = card
        self.distortions = table.distortions
        self.columns = ("score", *table.distortions)
        self.regressor: Regressor | None = None
        self.regressor_sha256: str | None = None  # its scores' MOS: a regressor retrained in place is noticed
        reg_path = self.path.parent / REGRESSOR_FILE
        if regressor and reg_path.exists():
            reg_tensors, self.reg_card, reg_read = load_checkpoint_hashed(reg_path)
            self.regressor_sha256 = reg_read.sha256
            self.regressor = Regressor(len(table.distortions) * table.k, int(self.reg_card["hidden"]))
            state = {k.removeprefix("regressor."): v for k, v in reg_tensors.items()}
            self.regressor.load_state_dict(state)
            self.regressor.to(self.device).eval()
        visual: Any = model.visual  # open_clip VisionTransformer
        size = visual.image_size
        shorter = int(min(size) if isinstance(size, (tuple, list)) else size)
        self._info = dataclasses.replace(base, min_shorter=shorter)
        if self.regressor is not None:  # its training CSV's MOS range: the scale of its score
            lo, hi = self.reg_card["mos_range"]
            rng = (float(lo), float(hi))
            self._info = dataclasses.replace(
                self._info, score_range=rng, trained_range=rng, scale="", needs=str(self.path.parent)
            )

    @property
    def info(self) -> ScorerInfo:
        """The registry entry; with a regressor, its training CSV's MOS range as ``trained_range`` and —
        that CSV's scale being recorded nowhere — as ``score_range`` (:class:`ScorerInfo`). Made once, in
        :meth:`__init__`, as the other scorers make theirs."""
        return self._info

    def transform(self, img: Image.Image) -> torch.Tensor:
        return self.preprocess(img.convert("RGB"))

    @torch.no_grad()
    def score_tensors(self, batch: torch.Tensor) -> torch.Tensor:
        attr = self.model.attribute_probs(batch.to(self.device))
        dist = self.model.distortion_probs(attr)
        if self.regressor is None:
            score = torch.full((dist.shape[0],), float("nan"), device=dist.device)
        else:
            score = self.regressor(attr) * self.reg_card["mos_std"] + self.reg_card["mos_mean"]
        return torch.cat([score.unsqueeze(1), dist], dim=1)

    def top_distortions(self, row: dict[str, float], k: int = 3) -> list[tuple[str, float]]:
        """The k strongest distortions of one result row, strongest first."""
        return sorted(((d, row[d]) for d in self.distortions), key=lambda t: -t[1])[:k]

    def metadata(self) -> dict[str, Any]:
        return {
            "name": "exiqa",
            "kind": "trained",
            "checkpoint": str(self.path),
            "clip": self.clip_spec,
            **self.clip_identity,
            "regressor_sha256": self.regressor_sha256,
            "score": "eq. (9): the regressor's MOS (regressor.safetensors)"
            if self.regressor is not None
            else "NaN: no regressor.safetensors beside the checkpoint (`attiqa train exiqa-regressor`)",
        }
