"""ExIQA (paper 004, §IV): distortions identified through their visual attributes, on a prompt-tuned CLIP.

- Attributes as data (§IV-B1): ``attiqa/data/exiqa_attributes.json``, K = 5 attributes for each of the 25
  KADID-10k distortions; prompts "There is <a> in the photo." / "There is not <a> in the photo." (§IV-C1).
- eq. (6): ``P(a|I) = softmax(E_t(a)·E_I(I), E_t(ã)·E_I(I))[0]``. We use L2-normalised embeddings scaled by
  CLIP's ``logit_scale`` (CLIP's own zero-shot logits; the paper writes the plain dot product).
- eq. (7): ``P(d|I) = Σ_a w_{a,d} P(a|I)`` with ``w_{·,d} = softmax(v_d)`` — a parametrisation (ours) that
  keeps the paper's constraints w ≥ 0, Σ_a w = 1 exactly.
- eq. (8): cross-entropy between the strength labels P(I, d) ∈ [0, 1] and P(d|I), averaged over images and
  distortions (binary cross-entropy with soft targets).
- Training of the CLIP side (§V-B2): shallow visual prompt tuning (VPT, Jia et al. 2022): ``P`` learnable
  tokens inserted after the [cls] token at the input of the first ViT block; everything of CLIP frozen. The
  text side is frozen, so the text embeddings are computed once.
- eq. (9): regressor, an MLP with two hidden layers, SELU, dropout 0.2 (§V-B2), on all 125 attribute
  probabilities of the frozen tuned CLIP, MSE loss. Hidden width 256 is ours (not given).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from attiqa.distortions.kadid import KADID_NAMES
from attiqa.errors import ConfigError


@dataclass(frozen=True)
class AttributeTable:
    """Distortion names and their K attribute phrases (the ``<a>`` of the prompts)."""

    distortions: tuple[str, ...]
    attributes: tuple[tuple[str, ...], ...]
    positive: str = "There is {} in the photo."
    negative: str = "There is not {} in the photo."

    @property
    def k(self) -> int:
        return len(self.attributes[0])

    def prompts(self) -> list[str]:
        """Positive and negative prompt of every attribute, distortion-major: [d0a0+, d0a0-, d0a1+, ...]."""
        return [
            t.format(a) for attrs in self.attributes for a in attrs for t in (self.positive, self.negative)
        ]


def load_attribute_table(path: str | Path | None = None) -> AttributeTable:
    """Read an attribute file (default: the bundled one); a one-line error for a malformed file."""
    where = str(path) if path else "attiqa/data/exiqa_attributes.json"
    try:
        if path is None:
            text = resources.files("attiqa").joinpath("data/exiqa_attributes.json").read_text("utf-8")
        else:
            text = Path(path).read_text(encoding="utf-8")
        doc = json.loads(text)
        table = doc["distortions"]
        names = tuple(table)
        attrs = tuple(tuple(str(a) for a in table[n]) for n in names)
    except (OSError, json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(
            f"{where}: not an ExIQA attribute file ({exc}) — see {where} for the format"
        ) from None
    if not names or len({len(a) for a in attrs}) != 1 or not attrs[0]:
        raise ConfigError(f"{where}: every distortion needs the same number (K > 0) of attributes")
    unknown = [n for n in names if n not in KADID_NAMES]
    if unknown:
        raise ConfigError(
            f"{where}: unknown distortion(s) {', '.join(unknown)} — use names from `attiqa distortions`"
        )
    pos = doc.get("prompt_positive", AttributeTable.positive)
    neg = doc.get("prompt_negative", AttributeTable.negative)
    return AttributeTable(names, attrs, pos, neg)


def distortion_loss(p_hat: torch.Tensor, target: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Eq. (8): mean over images and distortions of -[P log P̂ + (1-P) log(1-P̂)]."""
    p = p_hat.clamp(eps, 1 - eps)
    return -(target * p.log() + (1 - target) * (1 - p).log()).mean()


def interval_accuracy(p_hat: torch.Tensor, target: torch.Tensor, levels: int = 5) -> float:
    """Eq. (10): share of (image, distortion) whose prediction lies in the interval of its true level.

    With ``levels`` = 5 the true strengths are 0, 0.2, ..., 1 and the intervals [0, 0.1), [0.1, 0.3), ...,
    [0.9, 1] (§V-B3): the prediction's interval index is ``floor(p·levels + 0.5)``.
    """
    pred = torch.floor(p_hat.double() * levels + 0.5).clamp(0, levels)
    true = torch.round(target.double() * levels)
    return float((pred == true).double().mean())


def strength_rmse(p_hat: torch.Tensor, target: torch.Tensor) -> float:
    """Eq. (11): RMSE between predicted and true distortion strengths."""
    return float(torch.sqrt(((p_hat.double() - target.double()) ** 2).mean()))


class Regressor(nn.Module):
    """Eq. (9) regressor: attribute probabilities -> quality, two hidden layers, SELU, dropout 0.2."""

    def __init__(self, n_in: int, hidden: int = 256, dropout: float = 0.2) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(n_in, hidden),
            nn.SELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.SELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, 1),
        )

    def forward(self, attr_probs: torch.Tensor) -> torch.Tensor:
        return self.net(attr_probs).squeeze(-1)


class ExiqaModel(nn.Module):
    """A frozen open_clip ViT with shallow visual prompts, the attribute prompts, and eq. (6)-(7)."""

    def __init__(
        self,
        clip: nn.Module,
        tokenizer: Callable[[list[str]], torch.Tensor],
        table: AttributeTable,
        n_prompts: int = 100,
    ) -> None:
        super().__init__()
        oc: Any = clip  # open_clip's CLIP (nn.Module.__getattr__ is typed Tensor | Module)
        visual = oc.visual
        if not hasattr(visual, "_embeds") or getattr(visual, "attn_pool", None) is not None:
            raise ConfigError(f"ExIQA's visual prompt tuning needs a CLIP ViT, got {type(visual).__name__}")
        self.clip = clip.eval()
        for p in self.clip.parameters():
            p.requires_grad_(False)
        self.table = table
        width = visual.class_embedding.shape[-1]
        self.prompts = nn.Parameter(torch.empty(n_prompts, width))
        nn.init.normal_(
            self.prompts, std=0.02
        )  # VPT initialises prompts like the patch embeddings (ours: N(0, .02))
        self.w_logits = nn.Parameter(torch.zeros(len(table.distortions), table.k))  # uniform w at the start
        device = visual.class_embedding.device
        with torch.no_grad():
            txt = F.normalize(oc.encode_text(tokenizer(table.prompts()).to(device)).float(), dim=-1)
        self.register_buffer("text_features", txt.view(len(table.distortions) * table.k, 2, -1))
        self.scale = float(oc.logit_scale.exp().item())

    def encode_image(self, x: torch.Tensor) -> torch.Tensor:
        """CLIP image embedding with the visual prompts inserted after [cls] (shallow VPT)."""
        visual: Any = self.clip.visual
        tokens = visual._embeds(x)
        p = self.prompts.to(tokens.dtype).unsqueeze(0).expand(tokens.shape[0], -1, -1)
        tokens = torch.cat([tokens[:, :1], p, tokens[:, 1:]], dim=1)
        tokens = visual.transformer(tokens)
        pooled, _ = visual._pool(tokens)
        return pooled @ visual.proj if visual.proj is not None else pooled

    def attribute_probs(self, x: torch.Tensor) -> torch.Tensor:
        """Eq. (6) for every attribute of every distortion: (N, D·K), distortion-major."""
        img = F.normalize(self.encode_image(x).float(), dim=-1)
        cos = torch.einsum("ne,ake->nak", img, self.text_features)
        return torch.softmax(self.scale * cos, dim=-1)[..., 0]

    def weights(self) -> torch.Tensor:
        """w_{a,d} of eq. (7), shape (D, K): ≥ 0, each row sums to 1."""
        return torch.softmax(self.w_logits, dim=-1)

    def distortion_probs(self, attr_probs: torch.Tensor) -> torch.Tensor:
        """Eq. (7): (N, D·K) attribute probabilities -> (N, D) distortion probabilities."""
        a = attr_probs.view(attr_probs.shape[0], len(self.table.distortions), self.table.k)
        return (a * self.weights()).sum(dim=-1)

    def trainable_state(self) -> dict[str, torch.Tensor]:
        return {"prompts": self.prompts.detach(), "w_logits": self.w_logits.detach()}

    def load_trainable_state(self, tensors: dict[str, torch.Tensor]) -> None:
        with torch.no_grad():
            for key in ("prompts", "w_logits"):
                if key not in tensors or tensors[key].shape != getattr(self, key).shape:
                    raise ConfigError(f"ExIQA checkpoint: {key} missing or of another shape")
                getattr(self, key).copy_(tensors[key])
