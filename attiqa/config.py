"""Typed configuration for the whole ATTIQA job (label -> pretrain -> finetune), loaded from YAML.

Defaults follow the paper where it is specific (cited per field); fields marked "ours" are additions.
Unknown keys are errors that list the valid names, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from attiqa.distortions.graded import DEFAULT_GRADED
from attiqa.errors import ConfigError


@dataclass
class DegradeConfig:
    """Ours: widen an unlabelled photo collection with graded degradations before labelling."""

    sources: list[str] = field(default_factory=list)  # files and folders
    out: str = "graded"  # relative paths are inside the run folder
    distortions: list[str] = field(default_factory=lambda: list(DEFAULT_GRADED))
    levels: list[int] = field(default_factory=lambda: [1, 3, 5])
    variants_per_source: int | None = None  # None = every distortion x level
    max_side: int | None = None
    fmt: str = "png"
    seed: int = 0


@dataclass
class LabelConfig:
    """Pseudo-labelling (paper §3.2)."""

    images: list[str] = field(default_factory=list)  # files and folders (searched recursively)
    teacher: str = "classical"  # ours, weight-free; the paper uses CLIP: "clip:MODEL/PRETRAINED", "clip:PATH"
    prompts: str | None = None  # prompts JSON; None = paper Table 1
    clip_scale: float = 1.0  # multiplier of cosine similarity in eq. (2); 1.0 = the paper as printed
    batch_size: int = 32
    num_workers: int | None = None  # None = one per spare core
    out: str = "labels.parquet"  # relative paths are inside the run folder


@dataclass
class PretrainConfig:
    """Attribute-aware pretraining (paper §3.4, supplement B)."""

    backbone: str = "resnet50"  # paper §4.2
    pretrained_backbone: bool = True  # ImageNet initialisation
    backbone_weights: str | None = None  # local weights file for offline machines
    head_hidden: int = 512  # ours: hidden width of each two-layer attribute head (paper: "two-layer MLP")
    loss: str = "ranking"  # "ranking" (eq. 3-4) | "l2" (ablation, Table 7)
    margin: float = 0.1  # paper §4.2
    epochs: int = 100  # supplement B
    batch_size: int = 256  # supplement B
    lr: float = 1e-4  # supplement B (AdamW)
    weight_decay: float = 0.01  # ours: AdamW's default
    crop_size: int = 224  # supplement B: random 224x224 crops
    resize_shorter: int | None = None  # ours: resize shorter edge first (None = crop the image as is)
    hflip: bool = False  # ours: random flip (keeps attributes; off = paper); feature cache: mirrored crops
    max_steps_per_epoch: int | None = None  # ours: cap for quick runs
    # ours (CPU budget mode, attiqa/training/cached.py): frozen backbone, features of the five crops of
    # each photo computed once and cached; only the heads train (100 epochs take seconds)
    feature_cache: bool = False
    feature_cache_dir: str | None = None  # None = $ATTIQA_CACHE/features (~/.cache/attiqa/features)
    num_workers: int | None = None
    seed: int = 0
    device: str = "auto"  # "auto" | "cpu" | "cuda" | "cuda:N"


@dataclass
class FinetuneConfig:
    """Fine-tuning to MOS (paper §3.5, §4.2)."""

    csv: str = ""  # CSV with columns image,mos[,split]
    image_root: str = ""  # folder the CSV's image paths are relative to ("" = the CSV's folder)
    # Used only without a pretrained ATTIQA checkpoint (e.g. ablation "ImageNet backbone, no attribute
    # pretraining", Table 7): the network is then built from these.
    backbone: str = "resnet50"
    pretrained_backbone: bool = True
    backbone_weights: str | None = None
    head_hidden: int = 512
    mos_hidden: int = 512  # ours: hidden width of the regression MLP
    epochs: int = 100  # paper §4.2
    batch_size: int = 16  # ours (paper follows QPT [46])
    lr: float = 1e-4  # ours
    head_lr: float | None = None  # ours: separate lr for the new regression MLP (None = lr)
    weight_decay: float = 0.01
    resize_shorter: int = 340  # paper §4.2
    crop_size: int = 320  # paper §4.2 (train: random crop; test: 4 corners + centre)
    hflip: bool = False  # ours: random flip of training crops (off = paper); feature cache: mirrored crops
    lr_schedule: str = "constant"  # ours: "constant" (the paper states none) | "cosine" (decays to 0)
    plcc_weight: float = 0.0  # ours: loss = MSE + plcc_weight * (1 - batch PLCC); 0 = MSE only
    val_fraction: float = 0.2  # paper §4.1: 80/20 random split when the CSV has no split column
    split_seed: int = 0
    freeze_backbone: bool = False  # linear probing (Table 6)
    max_steps_per_epoch: int | None = None
    # ours (CPU budget mode): frozen backbone on cached five-crop features; heads' first layers + MOS MLP
    # train (only the MOS MLP with freeze_backbone)
    feature_cache: bool = False
    feature_cache_dir: str | None = None
    # ours (LP-FT, Kumar et al. 2022): after the cached-feature epochs, train backbone and heads end to end
    # this many epochs at polish_lr with every BatchNorm frozen (0 = off; needs feature_cache)
    polish_epochs: int = 0
    polish_lr: float = 1e-5
    # ours (attiqa/models/ridge_head.py): after training, fit a ridge MOS head in closed form on this tap
    # set of the backbone ("depthwise"; None = off) and average it with the MLP: MOS = (1 - w) MLP + w ridge
    ridge_taps: str | None = None
    ridge_weight: float | None = None  # None = chosen by 5-fold cross-validation on the training split
    ridge_power: float = 0.5  # signed power of the tap statistics before standardisation (0.5 = sqrt)
    num_workers: int | None = None
    seed: int = 0
    device: str = "auto"


@dataclass
class TrainConfig:
    """A whole run: any of the three stages; stages left out are skipped."""

    out_dir: str = "runs/attiqa"
    degrade: DegradeConfig | None = None  # its output is added to label.images
    label: LabelConfig | None = None
    pretrain: PretrainConfig | None = None
    finetune: FinetuneConfig | None = None
    labels: str | None = None  # an existing label file to pretrain on (instead of running the label stage)
    pretrained_checkpoint: str | None = None  # start finetune from this instead of running pretrain


def _field_types(cls) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _dataclass_in(tp: Any):
    """The dataclass inside ``X | None``, or None."""
    if dataclasses.is_dataclass(tp):
        return tp
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            if dataclasses.is_dataclass(arg):
                return arg
    return None


def _coerce(value: Any, tp: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if value is None:
        if origin in (typing.Union, types.UnionType) and type(None) in args:
            return None
        raise ConfigError(f"{where}: must not be empty")
    dc = _dataclass_in(tp)
    if dc is not None:
        return from_dict(dc, value, where)
    if origin in (typing.Union, types.UnionType):
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{where}: invalid value {value!r}")
    if origin is list:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return [_coerce(v, args[0], f"{where}[{i}]") for i, v in enumerate(value)]
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true/false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return str(value)
    return value


def from_dict(cls, data: Any, where: str = "config"):
    """Build dataclass ``cls`` from a mapping; unknown keys raise :class:`ConfigError` listing valid ones."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping of settings, got {type(data).__name__}")
    types_ = _field_types(cls)
    unknown = [k for k in data if k not in types_]
    if unknown:
        k = unknown[0]
        close = difflib.get_close_matches(str(k), list(types_), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"{where}: unknown key {k!r}{hint}; valid keys: {', '.join(types_)}")
    kwargs = {k: _coerce(v, types_[k], f"{where}.{k}") for k, v in data.items()}
    return cls(**kwargs)


def to_dict(cfg) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``section.key=value`` overrides (values parsed as YAML) to a raw config mapping.

    ``finetune.split_seed=1``, ``pretrain=null`` (drop a stage), ``label.images=[a, b]``.
    """
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {item!r}: expected KEY=VALUE, e.g. finetune.epochs=5")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            value = raw
        node = data
        parts = key.strip().split(".")
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[parts[-1]] = value
    return data


def read_yaml(path: Path) -> Any:
    """Parse a YAML file; a syntax error becomes a one-line :class:`ConfigError` naming the file."""
    try:
        return yaml.safe_load(Path(path).read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None


def load_config(path: str | Path, overrides: list[str] | None = None) -> TrainConfig:
    """Read a YAML run config (plus ``key=value`` overrides); errors name the file and the key."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: config file not found")
    data = apply_overrides(read_yaml(path), overrides or [])
    try:
        return from_dict(TrainConfig, data, where=path.name)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
