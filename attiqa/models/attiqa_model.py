"""The ATTIQA network: a shared backbone, one two-layer MLP head per attribute, an optional MOS MLP.

Paper §3.4: "a shared encoder backbone and five attribute heads ... Each attribute head consists of
two-layer MLPs that output an attribute score". Paper §3.5: for MOS, the features of each head *before
its final layer* are concatenated and fed to regression MLPs.

Ours:
- ``head_names`` is generic (default: the five attributes) so the single-prompt ablation (Table 7,
  one "overall" head) uses the same class.
- Attribute calibration: raw head outputs from a ranking loss have no fixed scale, so after pretraining
  we store per-head quantiles of the outputs over the pretraining photos and report attribute scores as
  their empirical CDF: 0.8 reads "higher than 80% of the pretraining photos". Before calibration
  :meth:`AttiqaModel.attribute_scores` falls back to a sigmoid (monotone, but not interpretable).
- MOS scale: fine-tuning regresses MOS normalised to [0, 1] with the train range; the range is a buffer
  (and in the card) and :meth:`AttiqaModel.mos_to_dataset_scale` maps predictions back.
- Ridge MOS head (optional, :mod:`attiqa.models.ridge_head`): a linear MOS path on a wider tap set of
  the backbone, fitted in closed form after fine-tuning; the model's MOS is then the weighted mean of
  the MLP's and the ridge's predictions. Both tap sets come from the same forward pass.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn

from attiqa.attributes import ATTRIBUTES
from attiqa.errors import ModelLoadError
from attiqa.io.checkpoints import load_checkpoint, save_checkpoint
from attiqa.limits import MAX_HIDDEN, MAX_SIDE, MIN_SIDE, crop_misfit
from attiqa.models.backbones import TAP_SETS, Backbone, create_backbone
from attiqa.models.ridge_head import RidgeHead, valid_guard, valid_weight

NUM_QUANTILES = 101
ARCH = "attiqa"


class AttiqaOutput(NamedTuple):
    attributes: torch.Tensor  # (N, n_heads) raw head outputs
    mos: torch.Tensor | None  # (N,) MOS on the normalised [0, 1] training scale, or None


class AttributeHead(nn.Module):
    """Linear(F, H) -> ReLU -> Linear(H, 1); ``hidden`` is what the MOS MLP consumes (§3.5)."""

    def __init__(self, in_dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_dim, hidden)
        self.fc2 = nn.Linear(hidden, 1)

    def hidden(self, feats: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.fc1(feats))

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.hidden(feats)).squeeze(-1)


class MosHead(nn.Sequential):
    """Regression MLP on the concatenated head features: Linear(nH, M) -> ReLU -> Linear(M, 1) (§3.5)."""

    def __init__(self, in_dim: int, hidden: int) -> None:
        super().__init__(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, 1))


class AttiqaModel(nn.Module):
    # buffers and submodules, declared for the type checker (nn.Module.__getattr__ is untyped)
    calib_quantiles: torch.Tensor
    calibrated: torch.Tensor
    mos_range: torch.Tensor
    backbone: Any

    def __init__(
        self,
        backbone: Backbone,
        head_names: Sequence[str] = ATTRIBUTES,
        head_hidden: int = 512,
        mos_hidden: int | None = None,
        input_sizes: dict[str, int | None] | None = None,
    ) -> None:
        super().__init__()
        head_names = tuple(head_names)
        if not head_names:
            raise ValueError("AttiqaModel needs at least one head")
        if len(set(head_names)) != len(head_names) or any("." in h or not h for h in head_names):
            raise ValueError(f"head names must be unique, non-empty and contain no '.': {head_names}")
        self.backbone = backbone
        self.head_names = head_names
        self.head_hidden = int(head_hidden)
        self.heads = nn.ModuleDict(
            {h: AttributeHead(backbone.feature_dim, self.head_hidden) for h in head_names}
        )
        self.register_buffer("calib_quantiles", torch.zeros(len(head_names), NUM_QUANTILES))
        self.register_buffer("calibrated", torch.zeros((), dtype=torch.bool))
        self.register_buffer("mos_range", torch.tensor([0.0, 1.0]))
        self.mos_hidden: int | None = None
        self.mos_head: MosHead | None = None
        self.ridge: RidgeHead | None = None
        if mos_hidden is not None:
            self.add_mos_head(mos_hidden)
        # Which crops the model was trained with; the scorer reads test_* (paper §4.2 defaults).
        self.input_sizes: dict[str, int | None] = {
            "pretrain_crop": 224,
            "pretrain_resize_shorter": None,
            "test_resize_shorter": 340,
            "test_crop": 320,
            **(input_sizes or {}),
        }

    # ------------------------------------------------------------------------------------------------------
    def add_mos_head(self, hidden: int = 512) -> MosHead:
        """Attach a fresh regression MLP for fine-tuning (§3.5)."""
        self.mos_hidden = int(hidden)
        self.mos_head = MosHead(len(self.head_names) * self.head_hidden, self.mos_hidden)
        self.mos_head.to(self.calib_quantiles.device)
        return self.mos_head

    def attach_ridge(self, head: RidgeHead) -> RidgeHead:
        """Add the ridge MOS path (ours); needs the MOS MLP it is averaged with."""
        if self.mos_head is None:
            raise ValueError("a ridge MOS head is averaged with the MOS MLP: add_mos_head first")
        self.ridge = head.to(self.calib_quantiles.device)
        return self.ridge

    def forward(self, x: torch.Tensor) -> AttiqaOutput:
        if self.ridge is None:
            return self.forward_features(self.backbone(x))
        feats, stats = self.backbone.forward_with_taps(x, self.ridge.taps)
        return self.forward_features(feats, stats)

    def forward_features(self, feats: torch.Tensor, ridge_stats: torch.Tensor | None = None) -> AttiqaOutput:
        """Heads (and MOS MLP) on backbone features — also used on cached features (frozen backbone).
        With ``ridge_stats`` (the ridge head's raw tap statistics) the MOS is the weighted mean of the MLP
        and the ridge; without, the MLP's alone (what fine-tuning trains)."""
        heads: dict[str, Any] = dict(self.heads.items())
        hidden = [heads[h].hidden(feats) for h in self.head_names]
        attrs = torch.stack(
            [heads[h].fc2(z).squeeze(-1) for h, z in zip(self.head_names, hidden, strict=True)], dim=1
        )
        mos = self.mos_head(torch.cat(hidden, dim=1)).squeeze(-1) if self.mos_head is not None else None
        if mos is not None and self.ridge is not None and ridge_stats is not None:
            w = self.ridge.weight
            mos = (1.0 - w) * mos + w * self.ridge(ridge_stats).to(mos.dtype)
        return AttiqaOutput(attrs, mos)

    # ------------------------------------------------------------------------------------------------------
    # Calibration (ours)

    @torch.no_grad()
    def calibrate(self, outputs: torch.Tensor) -> None:
        """Store NUM_QUANTILES per-head quantiles of raw outputs (M, n_heads) over the pretraining photos."""
        outputs = outputs.detach().float().to(self.calib_quantiles.device)
        if outputs.dim() != 2 or outputs.shape[1] != len(self.head_names) or outputs.shape[0] < 2:
            raise ValueError(
                f"calibrate expects (M>=2, {len(self.head_names)}) outputs, got {tuple(outputs.shape)}"
            )
        # torch.quantile has an input-size limit; sort + linear interpolation is the same 'linear' method.
        srt, _ = outputs.sort(dim=0)
        m = srt.shape[0]
        pos = torch.linspace(0, m - 1, NUM_QUANTILES, device=srt.device, dtype=torch.float64)
        lo = pos.floor().long()
        hi = pos.ceil().long()
        frac = (pos - lo).to(srt.dtype).unsqueeze(1)
        q = srt[lo] * (1 - frac) + srt[hi] * frac  # (Q, n_heads)
        self.calib_quantiles.copy_(q.T)
        self.calibrated.fill_(True)

    def attribute_scores(self, raw: torch.Tensor) -> torch.Tensor:
        """Raw head outputs (N, n_heads) -> [0, 1]: the empirical CDF over the pretraining photos
        (piecewise-linear between stored quantiles); sigmoid before :meth:`calibrate` was called."""
        if not bool(self.calibrated):
            return torch.sigmoid(raw)
        q = self.calib_quantiles.to(raw.dtype)  # (H, Q), non-decreasing per row
        v = raw.T.contiguous()  # (H, N)
        nq = q.shape[1]
        idx = torch.searchsorted(q.contiguous(), v, right=True).clamp(1, nq - 1)  # q[idx-1] <= v < q[idx]
        lo_q = q.gather(1, idx - 1)
        hi_q = q.gather(1, idx)
        span = hi_q - lo_q
        t = torch.where(span > 0, (v - lo_q) / span.clamp_min(torch.finfo(q.dtype).tiny), torch.ones_like(v))
        cdf = ((idx - 1).to(raw.dtype) + t.clamp(0, 1)) / (nq - 1)
        cdf = torch.where(v < q[:, :1], torch.zeros_like(cdf), cdf)
        cdf = torch.where(v >= q[:, -1:], torch.ones_like(cdf), cdf)
        return cdf.T

    # ------------------------------------------------------------------------------------------------------
    # MOS scale

    def set_mos_range(self, lo: float, hi: float) -> None:
        if not hi > lo:
            raise ValueError(f"MOS range must have hi > lo, got [{lo}, {hi}]")
        self.mos_range.copy_(torch.tensor([float(lo), float(hi)]))

    def mos_to_dataset_scale(self, mos01: torch.Tensor) -> torch.Tensor:
        """Map a prediction on the normalised training scale back to the dataset's MOS units."""
        lo, hi = self.mos_range[0], self.mos_range[1]
        return lo + mos01 * (hi - lo)

    def mos_to_unit_scale(self, mos: torch.Tensor) -> torch.Tensor:
        lo, hi = self.mos_range[0], self.mos_range[1]
        return (mos - lo) / (hi - lo)

    # ------------------------------------------------------------------------------------------------------
    def card_config(self) -> dict[str, Any]:
        """Everything :func:`load_model` needs to rebuild this network (no weights)."""
        return {
            "arch": ARCH,
            "backbone": self.backbone.name,
            "feature_dim": self.backbone.feature_dim,
            "head_names": list(self.head_names),
            "head_hidden": self.head_hidden,
            "mos_hidden": self.mos_hidden,
            "mean": list(self.backbone.mean),
            "std": list(self.backbone.std),
            **self.input_sizes,
            "calibrated": bool(self.calibrated),
            "calibration_quantiles": NUM_QUANTILES,
            "mos_range": self.mos_range.tolist() if self.mos_head is not None else None,
            "ridge": self.ridge.card() if self.ridge is not None else None,
        }


def build_model_from_config(cfg: dict[str, Any]) -> AttiqaModel:
    """Rebuild an :class:`AttiqaModel` (random weights) from :meth:`AttiqaModel.card_config`."""
    if cfg.get("arch") != ARCH:
        raise ModelLoadError(f"not an ATTIQA model card (arch={cfg.get('arch')!r})")
    backbone = create_backbone(cfg["backbone"], pretrained=False)
    sizes: dict[str, int | None] = {
        k: cfg[k]
        for k in ("pretrain_crop", "pretrain_resize_shorter", "test_resize_shorter", "test_crop")
        if k in cfg
    }
    model = AttiqaModel(backbone, cfg["head_names"], cfg["head_hidden"], cfg.get("mos_hidden"), sizes)
    if cfg.get("ridge"):
        model.attach_ridge(RidgeHead(**cfg["ridge"]))
    return model


def save_model(model: AttiqaModel, path: str | Path, card: dict[str, Any], half: bool = False) -> Path:
    """Write weights + card (``card["model"]`` = :meth:`AttiqaModel.card_config`) via io.checkpoints."""
    model = getattr(model, "module", model)  # unwrap DDP
    full = {**card, "model": model.card_config()}
    if model.mos_head is not None:
        full.setdefault("mos_range", model.mos_range.tolist())
    return save_checkpoint(path, dict(model.state_dict()), full, half=half)


def _finite_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


OTHER_NETWORK = (
    "the card describes another network than the weights: a card from another checkpoint (the .json beside "
    "a file saved without a card of its own) or a file another tool rewrote — pass the .safetensors that "
    "attiqa train or attiqa export wrote, as written (export it again from there: attiqa export SRC OUT)"
)
"""The fix of every mismatch between a checkpoint's card and its tensors."""

RIDGE_KEYS = ("taps", "dim", "power", "weight", "alpha", "guard")
"""A ridge head's card (:meth:`RidgeHead.card`): ``guard`` only with a guard."""


def ridge_problem(ridge: Any) -> str | None:
    """What is wrong with a card's ``ridge`` table, by key and the value it must hold (a string weight was
    "TypeError: '<=' not supported", a NaN power every MOS NaN, an unknown tap set a traceback at scoring)."""
    if not isinstance(ridge, dict):
        return f"ridge must be a table of {', '.join(RIDGE_KEYS)}, got {ridge!r}"
    if unknown := [k for k in ridge if k not in RIDGE_KEYS]:
        return f"ridge.{unknown[0]}: not a ridge head's key (its keys: {', '.join(RIDGE_KEYS)})"
    if not isinstance(ridge.get("taps"), str) or ridge["taps"] not in TAP_SETS:  # a list: unhashable
        return f"ridge.taps must be a tap set's name ({', '.join(TAP_SETS)}), got {ridge.get('taps')!r}"
    dim = ridge.get("dim")
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
        return f"ridge.dim must be an integer >= 1, got {dim!r}"
    checks = (
        ("power", lambda v: v > 0, "a finite number > 0"),
        ("weight", valid_weight, "a number in 0..1"),
        ("alpha", lambda v: v >= 0, "a finite number >= 0"),
    )
    for key, ok, what in checks:
        v = ridge.get(key)
        if key in ridge and not (_finite_number(v) and ok(v)):
            return f"ridge.{key} must be {what}, got {v!r}"
    if not valid_guard(ridge.get("guard", 0.0)):
        return f"ridge.guard must be a finite number >= 0, got {ridge.get('guard')!r}"
    return None


def validate_model_card(path: str | Path, card: Any, tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Check a checkpoint's ATTIQA card against its tensors and sane bounds *before* anything is
    allocated (a card is data from a file: ``head_hidden: 1e8`` must not allocate 512 GB first).
    Returns the ``model`` section; every problem is one :class:`ModelLoadError` naming the file."""

    def bad(why: str) -> ModelLoadError:
        return ModelLoadError(f"{path}: malformed model card — {why}")

    if not isinstance(card, dict) or not isinstance(card.get("model"), dict):
        raise ModelLoadError(f"{path}: checkpoint has no ATTIQA model card — was it written by attiqa?")
    cfg = card["model"]
    if cfg.get("arch") != ARCH:
        raise bad(f"not an ATTIQA model (arch={cfg.get('arch')!r})")
    names = cfg.get("head_names")
    if (
        not isinstance(names, list)
        or not names
        or len(names) > 64
        or not all(isinstance(n, str) and n for n in names)
        or len(set(names)) != len(names)
    ):
        raise bad("head_names must be a list of distinct attribute names")

    def int_in(key: str, lo: int, hi: int, optional: bool = False) -> int | None:
        v = cfg.get(key)
        if v is None and optional:
            return None
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise bad(f"{key} must be an integer in {lo}..{hi}, got {v!r}")
        return v

    def shape(key: str) -> tuple[int, ...]:
        if key not in tensors:
            raise bad(f"tensor {key} is missing — {OTHER_NETWORK}")
        return tuple(tensors[key].shape)

    def misfit(what: str, key: str) -> ModelLoadError:
        return bad(f"{what} does not match tensor {key} {shape(key)} — {OTHER_NETWORK}")

    hidden = int_in("head_hidden", 1, MAX_HIDDEN)
    in_dim = shape(f"heads.{names[0]}.fc1.weight")[1:]
    for n in names:
        got = shape(f"heads.{n}.fc1.weight")
        if got != (hidden, *in_dim):
            raise misfit(f"head_hidden {hidden}", f"heads.{n}.fc1.weight")
    mos_hidden = int_in("mos_hidden", 1, MAX_HIDDEN, optional=True)
    if mos_hidden is not None:
        got = shape("mos_head.0.weight")
        if got != (mos_hidden, len(names) * int(hidden or 0)):
            raise misfit(f"mos_hidden {mos_hidden}", "mos_head.0.weight")
    for view in ("test", "pretrain"):
        resize = int_in(f"{view}_resize_shorter", MIN_SIDE, MAX_SIDE, optional=True)
        crop = int_in(f"{view}_crop", MIN_SIDE, MAX_SIDE, optional=True)
        why = crop_misfit(resize, crop, f"{view}_resize_shorter", f"{view}_crop")
        if why:
            raise bad(f"{view}_crop: {why} in its .json card")
    if not isinstance(cfg.get("backbone"), str):  # a name of the registry, which lists them if unknown
        raise bad(f"backbone must be a backbone's name, got {cfg.get('backbone')!r}")
    for key in ("mean", "std"):
        v = cfg.get(key)
        if not (isinstance(v, list) and len(v) == 3 and all(_finite_number(x) for x in v)):
            raise bad(f"{key} must be three finite numbers, got {v!r}")
    if not all(x > 0 for x in cfg["std"]):
        raise bad(f"std must be positive, got {cfg['std']!r}")
    ridge = cfg.get("ridge")
    if ridge is not None:
        if problem := ridge_problem(ridge):
            raise bad(problem)
        if mos_hidden is None:
            raise bad("ridge: a ridge head is averaged with the MOS MLP, and the card has no mos_hidden")
        for key in ("ridge.coef", "ridge.guard_coef") if ridge.get("guard") else ("ridge.coef",):
            if shape(key) != (ridge["dim"],):
                raise misfit(f"ridge.dim {ridge['dim']}", key)
    for key in ("mos_range", "score_range"):  # the training MOS range; the scale (attiqa export writes it)
        rng = card.get(key)
        if rng is not None and not (
            isinstance(rng, list)
            and len(rng) == 2
            and all(isinstance(x, (int, float)) and math.isfinite(x) for x in rng)
            and rng[0] < rng[1]
        ):
            raise bad(f"{key} must be two finite numbers, low < high, got {rng!r}")
    return cfg


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[AttiqaModel, dict[str, Any]]:
    """Rebuild from the card (no backbone download) and load the weights strictly."""
    tensors, card = load_checkpoint(path, device="cpu")
    return model_from_checkpoint(path, tensors, card).to(device).eval(), card


def model_from_checkpoint(path: str | Path, tensors: dict[str, torch.Tensor], card: Any) -> AttiqaModel:
    """The network ``card`` describes with ``tensors`` loaded strictly (``path`` names the file in the
    errors): :func:`load_model`'s check of "is this an ATTIQA model", for a caller that has read the file
    already (`attiqa export` reads its source once)."""
    cfg = validate_model_card(path, card, tensors)
    try:
        model = build_model_from_config(cfg)
    except ModelLoadError as exc:
        raise ModelLoadError(f"{path}: {exc}") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelLoadError(f"{path}: malformed model card — {type(exc).__name__}: {exc}") from None
    if model.ridge is not None:  # its width is the backbone's, which the card names: known once built
        taps, dim = model.ridge.taps, model.ridge.dim
        width = model.backbone.tap_width(taps) if model.backbone.has_tap_sets else None
        if width != dim:
            has = f"{width} statistics" if width is not None else "no tap sets"
            raise ModelLoadError(
                f"{path}: malformed model card — ridge.dim {dim} does not match the backbone "
                f"{model.backbone.name}, whose tap set {taps!r} has {has} — {OTHER_NETWORK}"
            )
    held = model.state_dict()
    for k, t in tensors.items():  # load_state_dict would cast an int8 copy's integers into the float weights
        if k in held and t.is_floating_point() != held[k].is_floating_point():
            raise ModelLoadError(
                f"{path}: tensor {k} is {str(t.dtype).removeprefix('torch.')} where the network holds "
                f"{str(held[k].dtype).removeprefix('torch.')} (a quantized copy?) — pass the float "
                "checkpoint that attiqa train or attiqa export wrote"
            )
    try:
        missing, unexpected = model.load_state_dict(tensors, strict=False)
    except RuntimeError as exc:  # a tensor of the wrong shape
        first = str(exc).strip().splitlines()[-1].strip()
        raise ModelLoadError(f"{path}: weights do not match the card ({first}) — {OTHER_NETWORK}") from None
    if missing or unexpected:
        what = (missing or unexpected)[:3]
        raise ModelLoadError(
            f"{path}: weights do not match the card ({'missing' if missing else 'unexpected'} {what}) — "
            f"{OTHER_NETWORK}"
        )
    return model
