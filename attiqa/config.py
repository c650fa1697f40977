"""Typed configuration for the whole ATTIQA job (label -> pretrain -> finetune), loaded from YAML.

Defaults follow the paper where it is specific (cited per field); fields marked "ours" are additions.
Unknown keys are errors that list the valid names, so a typo never silently falls back to a default.
Every value of every stage is checked when the config is loaded (choices with "did you mean", ranges,
input files), so a bad value in the last stage fails in a second, not after the earlier stages ran.

``model:`` (ours) sets the network once for both stages (backbone, ImageNet initialisation, weights file,
head width); older configs that set these keys in ``pretrain:`` / ``finetune:`` still load.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from attiqa.backbone_info import BACKBONE_INFO
from attiqa.distortions.defaults import DEFAULT_GRADED
from attiqa.errors import ConfigError, did_you_mean, shown
from attiqa.io.cores import MAX_WORKERS
from attiqa.limits import MAX_BATCH, MAX_EPOCHS, MAX_HIDDEN, MAX_SIDE, MIN_SIDE, SEED_MAX, crop_misfit


class SettingError(ConfigError):
    """A setting's error that knows the dotted key it is about (``pretrain.epochs``; a section's own checks:
    ``pretrain``), so :func:`load_config` can tell a ``--set`` from the file by the key, not by the text."""

    def __init__(self, text: str, key: str) -> None:
        super().__init__(text)
        self.key = key

    def __reduce__(self) -> tuple[type[SettingError], tuple[str, str]]:  # type: ignore[override]
        return (type(self), (self.text, self.key))


def _about(key: str, exc: ConfigError) -> SettingError:
    """``exc`` as the error of setting ``key`` (an inner, more exact key is kept)."""
    return exc if isinstance(exc, SettingError) else SettingError(str(exc), key)


def _check(lo: float | None = None, hi: float | None = None, lo_open: bool = False, hi_open: bool = False,
           choices: Any = None, why: str = "", cap: str = "") -> dict[str, Any]:  # fmt: skip
    """Field metadata: the value's allowed range (None and unset bounds are not checked) or choices; ``cap``:
    why ``hi`` bounds a count (a value past it is told alone, "must be <= hi (cap)"; below ``lo`` as if
    unbounded above: a 0 epochs read "must be in [1, 100000]")."""
    return {"lo": lo, "hi": hi, "lo_open": lo_open, "hi_open": hi_open, "choices": choices, "why": why,
            "cap": cap}  # fmt: skip


class Unwritten(str):
    """A setting's default that no config wrote: equal to the value (and stored as it), told apart from the
    same value written (`backbone: resnet50`) by its type alone (:func:`written`); a config keeps no other
    record of which keys it set, and a line about the setting is for a value someone chose."""

    __slots__ = ()


def written(value: object) -> bool:
    """Whether a setting's value was written (in a config, a ``--set``, code), not its :class:`Unwritten`
    default."""
    return not isinstance(value, Unwritten)


DEFAULT_BACKBONE = Unwritten("resnet50")  # paper §4.2; a config that names no backbone gets it


def _backbones() -> list[str]:
    return list(BACKBONE_INFO)


# backbones whose blocks ``checkpoint_activations`` recomputes (EfficientNetLite.checkpoint_blocks); the
# tapped _ms/_dw variants read activations through hooks, which a recomputation would call twice
CHECKPOINTABLE = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")


def _distortions() -> list[str]:
    from attiqa.distortions import DISTORTIONS

    return list(DISTORTIONS)


def _attributes() -> list[str]:
    from attiqa.attributes import ATTRIBUTES

    return list(ATTRIBUTES)


POSITIVE = _check(lo=0, lo_open=True)
AT_LEAST_1 = _check(lo=1)
NON_NEGATIVE = _check(lo=0)
# checked before they size anything (the schedule, a batch's decoded views): the bounds' reasons, limits.py
EPOCHS_CAP = "the paper's: 100; a run past it does not finish"
BATCH_CAP = "a batch's images are decoded and held at once; the paper's: 256, 16"
EPOCHS = _check(lo=1, hi=MAX_EPOCHS, cap=EPOCHS_CAP)
BATCH = _check(lo=1, hi=MAX_BATCH, cap=BATCH_CAP)
WORKERS = _check(lo=0, hi=MAX_WORKERS, why="decode worker processes, each a fork of the run")
VIEW_SIDE = _check(lo=MIN_SIDE, hi=MAX_SIDE, why="what a checkpoint may hold; the paper's views: 340 / 320")
HIDDEN = _check(lo=1, hi=MAX_HIDDEN, why="the widest layer a checkpoint may hold; the shipped ones: 128, 512")
SEED = _check(lo=0, hi=SEED_MAX)  # as every command's --seed (a negative one was numpy's traceback)


@dataclass
class DegradeConfig:
    """Ours: widen an unlabelled photo collection with graded degradations before labelling."""

    sources: list[str] = field(default_factory=list)  # files and folders
    out: str = "graded"  # relative paths are inside the run folder
    distortions: list[str] = field(
        default_factory=lambda: list(DEFAULT_GRADED), metadata=_check(choices=_distortions)
    )
    levels: list[int] = field(default_factory=lambda: [1, 3, 5], metadata=_check(lo=1, hi=5))
    variants_per_source: int | None = field(default=None, metadata=AT_LEAST_1)  # None = every combination
    max_side: int | None = field(default=None, metadata=_check(lo=16))
    fmt: Literal["png", "jpg"] = "png"
    seed: int = field(default=0, metadata=SEED)


@dataclass
class LabelConfig:
    """Pseudo-labelling (paper §3.2)."""

    images: list[str] = field(default_factory=list)  # files and folders (searched recursively)
    teacher: str = "classical"  # ours, weight-free; the paper uses CLIP: "clip:MODEL/PRETRAINED", "clip:PATH"
    prompts: str | None = None  # prompts JSON; None = paper Table 1
    clip_scale: float = field(default=1.0, metadata=POSITIVE)  # multiplier of cos in eq. (2); 1.0 = paper
    batch_size: int = field(default=32, metadata=BATCH)
    num_workers: int | None = field(default=None, metadata=WORKERS)  # None = one per spare core
    out: str = "labels.parquet"  # relative paths are inside the run folder

    def check(self, where: str = "label") -> LabelConfig:
        check_values(self, where)
        kind = self.teacher.strip().partition(":")[0].lower()
        if kind not in ("classical", "clip"):
            hint = did_you_mean(kind, ["classical", "clip"])
            raise SettingError(f"{where}.teacher: {self.teacher!r} is not classical, clip, "
                               f"clip:MODEL/PRETRAINED or clip:PATH{hint}", f"{where}.teacher")  # fmt: skip
        self.check_clip_settings(where)
        return self

    def check_clip_settings(self, where: str = "label", options: bool = False) -> None:
        """No CLIP setting (prompts, clip_scale) beside the classical teacher, which reads neither: they were
        taken without a word, the labels not the ones set up. ``options``: said as `attiqa label`'s options
        (``--prompts``), else as the config's keys (``label.prompts``)."""
        if self.teacher.strip().partition(":")[0].lower() != "classical":
            return
        for key, unset in (("prompts", self.prompts is None), ("clip_scale", self.clip_scale == 1.0)):
            if not unset:
                name = f"--{key.replace('_', '-')}" if options else f"{where}.{key}"
                teacher, fix = ("--teacher ", "--teacher") if options else ("teacher: ", "teacher:")
                raise SettingError(
                    f"{name}: only the clip teacher reads it ({teacher}{self.teacher}) — drop it, or set "
                    f"{fix} clip:MODEL/PRETRAINED (the paper's: clip:ViT-B-16/openai)",
                    name,
                )


@dataclass
class PretrainConfig:
    """Attribute-aware pretraining (paper §3.4, supplement B)."""

    backbone: str = field(default=DEFAULT_BACKBONE, metadata=_check(choices=_backbones))  # paper §4.2
    pretrained_backbone: bool = True  # ImageNet initialisation
    backbone_weights: str | None = None  # local weights file for offline machines
    # ours: hidden width of each two-layer attribute head (paper: "two-layer MLP")
    head_hidden: int = field(default=512, metadata=HIDDEN)
    loss: Literal["ranking", "l2"] = "ranking"  # "ranking" (eq. 3-4) | "l2" (ablation, Table 7)
    margin: float = field(default=0.1, metadata=NON_NEGATIVE)  # paper §4.2
    epochs: int = field(default=100, metadata=EPOCHS)  # supplement B
    # supplement B; a ranking batch needs pairs
    batch_size: int = field(
        default=256, metadata=_check(lo=2, hi=MAX_BATCH, why="a ranking batch needs pairs", cap=BATCH_CAP)
    )
    lr: float = field(default=1e-4, metadata=POSITIVE)  # supplement B (AdamW)
    weight_decay: float = field(default=0.01, metadata=NON_NEGATIVE)  # ours: AdamW's default
    crop_size: int = field(default=224, metadata=VIEW_SIDE)  # supplement B: random 224x224 crops
    # ours: resize shorter edge first (None = crop the image as is)
    resize_shorter: int | None = field(default=None, metadata=VIEW_SIDE)
    hflip: bool = False  # ours: random flip (keeps attributes; off = paper); feature cache: mirrored crops
    max_steps_per_epoch: int | None = field(default=None, metadata=AT_LEAST_1)  # ours: cap for quick runs
    # ours (CPU budget mode, attiqa/training/cached.py): frozen backbone, features of the five crops of
    # each photo computed once and cached; only the heads train (100 epochs take seconds)
    feature_cache: bool = False
    feature_cache_dir: str | None = None  # None = $ATTIQA_CACHE/features (~/.cache/attiqa/features)
    num_workers: int | None = field(default=None, metadata=WORKERS)
    seed: int = field(default=0, metadata=SEED)
    device: str = "auto"  # "auto" | "cpu" | "cuda" | "cuda:N"
    # ours: recompute each backbone block's activations in the backward pass instead of keeping them (the
    # same weights bit for bit; less memory, one more forward pass of the blocks a step); plain
    # efficientnet_lite* backbones
    checkpoint_activations: bool = False

    def check(self, where: str = "pretrain") -> PretrainConfig:
        check_values(self, where)
        check_crop_fits(self.resize_shorter, self.crop_size, where)
        if self.checkpoint_activations and self.backbone not in CHECKPOINTABLE:
            raise SettingError(
                f"{where}.checkpoint_activations: only for the backbones {', '.join(CHECKPOINTABLE)} (not "
                f"{self.backbone}) — set it to false",
                f"{where}.checkpoint_activations",
            )
        if self.checkpoint_activations and self.feature_cache:  # the cached stage trains no backbone block
            raise SettingError(
                f"{where}.checkpoint_activations: a feature_cache run keeps the backbone frozen and has no "
                "block activations to recompute — set one of them to false",
                f"{where}.checkpoint_activations",
            )
        return self


@dataclass
class RidgeExtraConfig:
    """Ours (issue 20): a second MOS table whose images join the ridge head's fit as extra weighted rows,
    their MOS mapped onto the main table's scale (attiqa/training/ridge.py, :func:`fit_ridge_rows`)."""

    csv: str = ""  # CSV with columns image,mos (every row is used; a split column is ignored)
    image_root: str = ""  # "" = the CSV's folder (or its images/ subfolder)
    share: float = field(default=0.1, metadata=_check(lo=0, why="the table's total weight against the main "
                         "table's training rows (0 = ignore the table)"))  # fmt: skip

    def check(self, where: str = "ridge_extra") -> RidgeExtraConfig:
        check_values(self, where)
        if not self.csv:
            raise SettingError(f"{where}.csv: no MOS CSV given (set csv: PATH to a table image,mos)",
                               f"{where}.csv")  # fmt: skip
        return self


@dataclass
class FinetuneConfig:
    """Fine-tuning to MOS (paper §3.5, §4.2)."""

    csv: str = ""  # CSV with columns image,mos[,split]
    image_root: str = ""  # folder the CSV's image paths are relative to ("" = the CSV's folder)
    # ours: instead of csv, a named dataset (`attiqa datasets`) in its official layout under root, split as
    # `attiqa bench` splits it (FLIVE / AVA / BIQ2021: the official split; else val_fraction held out, seeded
    # by split_seed, no group of group_by on both sides: "auto" = the reference image / prompt, "none" =
    # images)
    dataset: str = ""
    root: str = ""
    group_by: str = "auto"
    target: str | None = None  # the dataset's score to fit (`attiqa datasets NAME`; None = its default)
    # Set them in `model:` (shared with pretraining). Used only without a pretrained ATTIQA checkpoint
    # (e.g. ablation "ImageNet backbone, no attribute pretraining", Table 7): the network is then built
    # from these.
    backbone: str = field(default=DEFAULT_BACKBONE, metadata=_check(choices=_backbones))
    pretrained_backbone: bool = True
    backbone_weights: str | None = None
    head_hidden: int = field(default=512, metadata=HIDDEN)
    mos_hidden: int = field(default=512, metadata=HIDDEN)  # ours: hidden width of the regression MLP
    epochs: int = field(default=100, metadata=EPOCHS)  # paper §4.2
    batch_size: int = field(default=16, metadata=BATCH)  # ours (paper follows QPT [46])
    lr: float = field(default=1e-4, metadata=POSITIVE)  # ours
    # ours: separate lr for the new regression MLP (None = lr)
    head_lr: float | None = field(default=None, metadata=POSITIVE)
    weight_decay: float = field(default=0.01, metadata=NON_NEGATIVE)
    resize_shorter: int = field(default=340, metadata=VIEW_SIDE)  # paper §4.2
    # paper §4.2 (train: random crop; test: 4 corners + centre)
    crop_size: int = field(default=320, metadata=VIEW_SIDE)
    hflip: bool = False  # ours: random flip of training crops (off = paper); feature cache: mirrored crops
    # ours: "constant" (the paper states none) | "cosine" (decays to 0)
    lr_schedule: Literal["constant", "cosine"] = "constant"
    # ours: loss = MSE + plcc_weight * (1 - batch PLCC); 0 = MSE only
    plcc_weight: float = field(default=0.0, metadata=_check(lo=0, why="0 = MSE only"))
    # paper §4.1: 80/20 random split when the CSV has no split column
    val_fraction: float = field(default=0.2, metadata=_check(lo=0, hi=1, lo_open=True, hi_open=True))
    split_seed: int = field(default=0, metadata=SEED)
    freeze_backbone: bool = False  # linear probing (Table 6)
    max_steps_per_epoch: int | None = field(default=None, metadata=AT_LEAST_1)
    # ours (CPU budget mode): frozen backbone on cached five-crop features; heads' first layers + MOS MLP
    # train (only the MOS MLP with freeze_backbone)
    feature_cache: bool = False
    feature_cache_dir: str | None = None
    # ours (LP-FT, Kumar et al. 2022): after the cached-feature epochs, train backbone and heads end to end
    # this many epochs at polish_lr with every BatchNorm frozen (0 = off; needs feature_cache)
    polish_epochs: int = field(default=0, metadata=_check(lo=0, hi=MAX_EPOCHS, cap=EPOCHS_CAP))
    polish_lr: float = field(default=1e-5, metadata=POSITIVE)
    # ours (attiqa/models/ridge_head.py): after training, fit a ridge MOS head in closed form on this tap
    # set of the backbone ("depthwise"; None = off) and average it with the MLP: MOS = (1 - w) MLP + w ridge
    ridge_taps: Literal["stages", "depthwise", "depthwise_late"] | None = None
    # None = chosen by 5-fold cross-validation on the training split
    ridge_weight: float | None = field(default=None, metadata=_check(lo=0, hi=1, why="the ridge's share of "
                                       "the MOS (leave it out to cross-validate it)"))  # fmt: skip
    # signed power of the tap statistics before standardisation (0.5 = sqrt)
    ridge_power: float = field(default=0.5, metadata=_check(lo=0, lo_open=True, why="0.5 = square root"))
    # ours (issue 20): ranking pairs "better > worse" (CSV columns better,worse; e.g. a photo and its
    # over-processed edits) added to the ridge fit as a squared hinge (attiqa/training/ridge.py); "" = none
    ridge_pairs: str = ""
    ridge_pair_weight: float = field(default=0.3, metadata=_check(lo=0, why="the pairs' total weight "
                                     "against the MOS rows (0 = ignore the pairs)"))  # fmt: skip
    ridge_pair_margin: float = field(default=0.1, metadata=_check(lo=0, lo_open=True, why="on the unit MOS "
                                     "scale: 0.1 = a tenth of the MOS range"))  # fmt: skip
    # ours (issue 20; per-dataset scales as LIQE/UNIQUE): extra MOS tables in the ridge fit, e.g.
    # [{csv: agiqa3k-dev/mos.csv, share: 0.1}]; each one's MOS affinely mapped to the main targets' mean/sd
    ridge_extra: list[RidgeExtraConfig] = field(default_factory=list)
    # ours (issue 20; not shipped): a gated guard on the ridge MOS, MOS_ridge = r - lambda * max(0, g), g a
    # ridge "edit detector" fitted to -1 on the training photos and ridge_pairs' originals, +1 on its edits
    # (attiqa/training/ridge.py, fit_guard); lambda on the unit MOS scale, 0 = off
    ridge_guard: float = field(default=0.0, metadata=_check(lo=0, why="the guard's lambda on the unit MOS "
                               "scale (0 = off)"))  # fmt: skip
    # ours (supplement Table 10 analogue): regress MOS on this one attribute head's features only (the other
    # heads are dropped from the model); None = all heads (§3.5)
    single_head: str | None = field(default=None, metadata=_check(choices=_attributes))
    num_workers: int | None = field(default=None, metadata=WORKERS)
    seed: int = field(default=0, metadata=SEED)
    device: str = "auto"

    def check(self, where: str = "finetune") -> FinetuneConfig:
        """Values and combinations that cannot work, each a one-line :class:`ConfigError`."""
        check_values(self, where)
        check_crop_fits(self.resize_shorter, self.crop_size, where)
        if self.dataset:
            self.dataset = _dataset_name(self.dataset, self.csv, f"{where}.dataset")
        if self.target is not None:
            _check_target(self.dataset, self.target, f"{where}.target")
        if not self.dataset and self.root:  # was ignored: a CSV's images looked for beside it
            raise SettingError(f"{where}.root: is the folder finetune.dataset is unpacked in — for the "
                               "images of finetune.csv set finetune.image_root, or set finetune.dataset",
                               f"{where}.root")  # fmt: skip
        group_by = read_group_by(self.group_by, f"{where}.group_by")
        self.group_by = "none" if group_by is None else group_by  # the card names it so
        if not self.dataset and self.group_by != "auto":
            raise SettingError(f"{where}.group_by: groups the images of finetune.dataset (a CSV's split is "
                               "random, or its split column) — set finetune.dataset, or drop group_by",
                               f"{where}.group_by")  # fmt: skip
        for i, extra in enumerate(self.ridge_extra):
            extra.check(f"{where}.ridge_extra[{i}]")
        if self.ridge_extra and not self.ridge_taps:
            raise SettingError(f"{where}.ridge_extra: extra MOS tables feed the ridge head only; set "
                               "finetune.ridge_taps (e.g. depthwise_late) or drop ridge_extra",
                               f"{where}.ridge_extra")  # fmt: skip
        if self.ridge_guard and not self.ridge_taps:
            raise SettingError(f"{where}.ridge_guard: the guard is part of the ridge head; set "
                               "finetune.ridge_taps (e.g. depthwise_late) or ridge_guard: 0",
                               f"{where}.ridge_guard")  # fmt: skip
        if self.ridge_guard and not self.ridge_pairs:
            raise SettingError(f"{where}.ridge_guard: the edit detector is fitted on a pair table's "
                               "originals and edits; set finetune.ridge_pairs (CSV better,worse) or "
                               "ridge_guard: 0", f"{where}.ridge_guard")  # fmt: skip
        if self.polish_epochs and not self.feature_cache:
            raise SettingError(f"{where}.polish_epochs: polishes a feature-cache run; set feature_cache: "
                               "true (without the cache, raise finetune.epochs instead)",
                               f"{where}.polish_epochs")  # fmt: skip
        if self.polish_epochs and self.freeze_backbone:
            raise SettingError(f"{where}.polish_epochs: trains the backbone, linear probing "
                               "(freeze_backbone) keeps it frozen; set one of them",
                               f"{where}.polish_epochs")  # fmt: skip
        return self


def _dataset_name(name: str, csv: str, key: str) -> str:
    """``finetune.dataset``'s registry name (an alias read, a typo's "did you mean"); one source of data."""
    from attiqa.datasets import resolve_name
    from attiqa.errors import AttiqaError

    try:
        name = resolve_name(name)
    except AttiqaError as exc:
        raise SettingError(f"{key}: {exc}", key) from None
    if name == "folder":
        raise SettingError(f"{key}: folder is a score CSV of your own — set finetune.csv to it instead", key)
    if csv:
        raise SettingError(f"{key}: {name} and finetune.csv ({csv}) both given — keep one of them", key)
    return name


def _check_target(dataset: str, target: str, key: str) -> None:
    """``finetune.target`` is one of the dataset's scores (any case, as ``--target``)."""
    if not dataset:
        raise SettingError(f"{key}: chooses a score of finetune.dataset (a CSV's is its mos column) — set "
                           "finetune.dataset, or drop target", key)  # fmt: skip
    from attiqa.datasets import DATASETS

    names = list(DATASETS[dataset].info.targets)
    if target.lower() not in (n.lower() for n in names):
        hint = did_you_mean(target, names)
        raise SettingError(f"{key}: {target!r} is not a score of {dataset} ({', '.join(names)}){hint}", key)


def read_group_by(value: str, option: str) -> str | None:
    """`attiqa bench`'s ``--group-by`` and a run config's ``finetune.group_by``, read by one rule: ``auto``
    (each dataset's natural groups) and ``none`` (``None``: image-wise splits) in any case, else a metadata
    key as written (keys are case-sensitive: ``prompt``, ``ref``). Bench read ``NONE`` and train did not; an
    empty value is one line naming ``option``, the setting."""
    word = value.strip()
    if word.lower() in ("auto", "none"):
        return None if word.lower() == "none" else "auto"
    if not word:
        raise ConfigError(
            f"{option}: an empty value — give auto (each dataset's reference image or prompt), none "
            "(image-wise splits) or a metadata key of the images, e.g. prompt"
        )
    return word


# finetune's settings that name a dataset and its split (`attiqa bench` takes its data from --data)
DATASET_KEYS = ("dataset", "root", "group_by", "target")


@dataclass
class ModelConfig:
    """Ours: the network, shared by pretraining and fine-tuning (fine-tuning from a pretrained checkpoint
    takes the network from it; these then matter only for pretraining and the no-pretraining ablation)."""

    backbone: str = field(default=DEFAULT_BACKBONE, metadata=_check(choices=_backbones))  # paper §4.2
    pretrained_backbone: bool = True  # ImageNet initialisation
    backbone_weights: str | None = None  # local weights file for offline machines
    head_hidden: int = field(default=512, metadata=HIDDEN)  # ours: attribute heads' hidden width


MODEL_KEYS = tuple(f.name for f in dataclasses.fields(ModelConfig))


@dataclass
class TrainConfig:
    """A whole run: any of the three stages; stages left out are skipped."""

    out_dir: str = "runs/attiqa"
    model: ModelConfig | None = None  # shared by pretrain and finetune (older configs: in each stage)
    degrade: DegradeConfig | None = None  # its output is added to label.images
    label: LabelConfig | None = None
    pretrain: PretrainConfig | None = None
    finetune: FinetuneConfig | None = None
    labels: str | None = None  # an existing label file to pretrain on (instead of running the label stage)
    pretrained_checkpoint: str | None = None  # start finetune from this instead of running pretrain


if typing.TYPE_CHECKING:
    from _typeshed import DataclassInstance

DC = typing.TypeVar("DC", bound="DataclassInstance")


def _field_types(cls: type[DataclassInstance]) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _dataclass_in(tp: Any) -> type[DataclassInstance] | None:
    """The dataclass inside ``X | None``, or None."""
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return tp
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            if isinstance(arg, type) and dataclasses.is_dataclass(arg):
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
        raise ConfigError(errors[0] if errors else f"{where}: invalid value {shown(value)}")
    if origin is Literal:
        if value not in args:
            hint = did_you_mean(value, [str(a) for a in args]) if isinstance(value, str) else ""
            raise ConfigError(f"{where}: {shown(value)} is not one of {', '.join(map(str, args))}{hint}")
        return value
    if origin is list:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {shown(value)}")
        return [_coerce(v, args[0], f"{where}[{i}]") for i, v in enumerate(value)]
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true/false, got {shown(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {shown(value)}")
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads `1e-4` (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {shown(value)}")
        return float(value)
    if tp is str:
        if isinstance(value, str):  # as it is: an Unwritten default that model: shares stays one
            return value
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise ConfigError(f"{where}: expected a string, got {shown(value)}")
        return str(value)
    return value


def _key(where: str, name: str) -> str:
    """The dotted name of setting ``name`` under ``where`` ("" = the top of the file)."""
    return f"{where}.{name}" if where else name


def from_dict(cls: type[DC], data: Any, where: str = "config") -> DC:
    """Build dataclass ``cls`` from a mapping; unknown keys raise :class:`ConfigError` listing valid ones.

    ``where`` prefixes the keys named in errors; "" names them from the top (the caller adds the file)."""
    if not isinstance(data, dict):
        hint = ""
        if cls is ModelConfig and isinstance(data, str):  # `model: attiqa-default`, `model: my.safetensors`
            hint = (f" — model: sets the network ({', '.join(MODEL_KEYS)}); to fine-tune a trained model, "
                    "drop the pretrain: section and set pretrained_checkpoint: FILE.safetensors")  # fmt: skip
        raise ConfigError(f"expected a mapping of settings, got {type(data).__name__}{hint}", where or None)
    types_ = _field_types(cls)
    if cls is TrainConfig:
        data = _share_model(data, where)
    unknown = [k for k in data if k not in types_]
    if unknown:
        k = unknown[0]
        hint = did_you_mean(str(k), types_)
        text = f"unknown key {k!r}{hint}; valid keys: {', '.join(types_)}"
        raise SettingError(f"{where}: {text}" if where else text, _key(where, str(k)))
    kwargs = {}
    for k, v in data.items():
        try:
            kwargs[k] = _coerce(v, types_[k], _key(where, k))
        except ConfigError as exc:
            raise _about(_key(where, k), exc) from None
    obj = cls(**kwargs)
    try:
        check = getattr(obj, "check", None)
        check(where) if check is not None else check_values(obj, where)
    except ConfigError as exc:  # a check across a section's settings is about the section
        raise _about(where, exc) from None
    return obj


def _literal_choices(tp: Any) -> tuple[Any, ...] | None:
    if typing.get_origin(tp) is Literal:
        return typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            if typing.get_origin(arg) is Literal:
                return typing.get_args(arg)
    return None


def _bounds_text(m: Mapping[str, Any]) -> str:
    lo, hi = m["lo"], m["hi"]
    if hi is None:
        return f"must be {'>' if m['lo_open'] else '>='} {lo}"
    return f"must be in {'(' if m['lo_open'] else '['}{lo}, {hi}{')' if m['hi_open'] else ']'}"


def check_values(cfg: Any, where: str) -> None:
    """Every field of dataclass ``cfg`` against its type's choices and its metadata's range / choices
    (also for configs built in code, which skip :func:`from_dict`); one-line :class:`ConfigError`."""
    hints = _field_types(type(cfg))
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if value is None:
            continue
        name = _key(where, f.name)
        choices = _literal_choices(hints[f.name])
        if choices is not None:
            try:
                _coerce(value, Literal[choices], name)  # type: ignore[valid-type]
            except ConfigError as exc:
                raise _about(name, exc) from None
        m = f.metadata
        if not m:
            continue
        for v in value if isinstance(value, list) else [value]:
            if m["choices"] is not None:
                valid = m["choices"]() if callable(m["choices"]) else m["choices"]
                if v not in valid:
                    hint = did_you_mean(str(v), valid)
                    raise SettingError(f"{name}: {v!r} is not one of {', '.join(valid)}{hint}", name)
            lo, hi = m["lo"], m["hi"]
            if (lo is not None or hi is not None) and isinstance(v, float) and not math.isfinite(v):
                raise SettingError(f"{name}: must be a finite number, got {v}", name)  # NaN passes every test
            low = lo is not None and (v <= lo if m["lo_open"] else v < lo)
            high = hi is not None and (v >= hi if m["hi_open"] else v > hi)
            if m.get("cap") and (low or high):
                text = f"must be <= {hi} ({m['cap']})" if high else _bounds_text({**m, "hi": None})
                why = f" ({m['why']})" if m["why"] and low else ""
                raise SettingError(f"{name}: {text}{why}, got {v}", name)
            if low or high:
                why = f" ({m['why']})" if m["why"] else ""
                raise SettingError(f"{name}: {_bounds_text(m)}{why}, got {v}", name)


def check_crop_fits(resize_shorter: int | None, crop_size: int, where: str) -> None:
    """A stage's crop must fit in its resize (the rule: :func:`attiqa.limits.crop_misfit`)."""
    why = crop_misfit(resize_shorter, crop_size, "resize_shorter", "crop_size")
    if why:
        raise SettingError(
            f"{where}.crop_size: {why} (the paper's fine-tuning: 340 / 320)", f"{where}.crop_size"
        )


def _share_model(data: dict[str, Any], where: str) -> dict[str, Any]:
    """``data`` with ``model:`` copied into the stages' settings before they are built, so each stage is
    checked with the network it will train (``pretrain.checkpoint_activations`` was refused for ``model:
    backbone: efficientnet_lite0``: the stage was checked with the default resnet50); a stage that sets one
    of its keys to something else is refused. A default ``model:`` does not write (a key its mapping does
    not hold) neither overrides nor refuses a stage's written value (was: its ``backbone: resnet50`` taken
    for unwritten, a stage's ``efficientnet_lite0``, ``head_hidden: 8`` or ``pretrained_backbone: false``
    refused as differing from a default nobody wrote)."""
    if data.get("model") is None:
        return data
    try:
        model = _coerce(data["model"], ModelConfig, _key(where, "model"))
    except ConfigError as exc:
        raise _about(_key(where, "model"), exc) from None
    shared = {key: getattr(model, key) for key in MODEL_KEYS}
    wrote = set(data["model"]) if isinstance(data["model"], dict) else set(MODEL_KEYS)
    out = dict(data)
    for stage in ("pretrain", "finetune"):
        raw = data.get(stage)
        if not isinstance(raw, dict):  # left out (or not a mapping: its own error, when it is built)
            continue
        given = {key: value for key, value in shared.items() if key in wrote or key not in raw}
        for key, value in given.items():
            if key in raw and raw[key] != value:
                name = f"{_key(where, stage)}.{key}"
                raise SettingError(f"{name}: {shown(raw[key])} differs from model.{key} ({shown(value)}); "
                                   "set it once, in model:", name)  # fmt: skip
        out[stage] = {**raw, **given}
    return out


def check_out_dir(out_dir: str, name: str) -> None:
    """A run's folder is named (``name``: the config's key or the command's option): an empty one was the
    working folder, every run below it taken for this one's stages."""
    if not out_dir.strip():
        raise SettingError(f"{name}: empty — name the run's folder, e.g. runs/mine", name)


def unread_stages(cfg: TrainConfig) -> list[str]:
    """The degrade and label stages of ``cfg`` that feed nothing, so are not run: their labels are read by
    pretraining only, and the run fine-tunes without it. Said and dropped by
    :func:`attiqa.runner.without_unread_stages`; their inputs are not checked (:func:`check_inputs`)."""
    if cfg.pretrain is not None or cfg.finetune is None:
        return []
    return [name for name in ("degrade", "label") if getattr(cfg, name) is not None]


def check_inputs(cfg: TrainConfig, where: str) -> None:
    """The files a run reads must exist before any stage starts (paths relative to the working folder);
    a stage that is not run (:func:`unread_stages`) reads none (`paper_resnet50.yaml --set pretrain=null`
    was refused for the ImageNet folder of the label stage it skips)."""
    skipped = unread_stages(cfg)
    # `labels` / `pretrained_checkpoint` stand in for a stage (``makes``) for the one after it (``reader``):
    # beside that stage, or without its reader, they were never read (the run went on without a word)
    stand_ins = (
        ("labels", cfg.labels, "label", "makes", "pretrain", "the label table pretraining reads"),
        ("pretrained_checkpoint", cfg.pretrained_checkpoint, "pretrain", "trains", "finetune",
         "the network fine-tuning starts from"),
    )  # fmt: skip
    for key, given, stage, verb, reader, what in stand_ins:
        if given and getattr(cfg, stage) is not None:
            raise SettingError(
                f"{_key(where, key)}: {given} would not be read — the {stage}: section {verb} {what}; drop "
                f"one of them (--set {stage}=null to use {given})",
                key,
            )
        if given and getattr(cfg, reader) is None:
            raise SettingError(
                f"{_key(where, key)}: {given} would not be read — it is {what}, and the run has no {reader}: "
                f"section; add one, or drop {key} (--set {key}=null)",
                key,
            )
    check_out_dir(cfg.out_dir, _key(where, "out_dir"))
    outputs = (
        ("degrade.out", cfg.degrade.out if cfg.degrade else None, "a folder, e.g. graded"),
        ("label.out", cfg.label.out if cfg.label else None, "a file, e.g. labels.parquet"),
    )
    for key, out, named in outputs:
        if (
            out is not None and not out.strip() and key.partition(".")[0] not in skipped
        ):  # was the run folder itself: graded images among its files
            raise SettingError(f"{_key(where, key)}: empty — name {named} (inside the run folder)", key)
    if cfg.degrade is not None and not cfg.degrade.sources and "degrade" not in skipped:  # was run on nothing
        raise SettingError(
            f"{_key(where, 'degrade')}.sources: empty — list the photo files or folders to degrade, or drop "
            "the degrade: section (--set degrade=null)",
            "degrade.sources",
        )
    need: list[tuple[str, str | None]] = []
    if cfg.finetune is not None and cfg.finetune.dataset:
        root = cfg.finetune.root
        if not root or not Path(root).expanduser().is_dir():
            what = f"{root} is not a folder" if root else "no root given"
            raise SettingError(
                f"{_key(where, 'finetune')}.root: {what} — point it at the folder {cfg.finetune.dataset} is "
                f"unpacked in (in the config or with --set finetune.root=PATH; `attiqa datasets "
                f"{cfg.finetune.dataset}` shows its layout)",
                "finetune.root",
            )
    elif cfg.finetune is not None:
        if not cfg.finetune.csv:
            raise SettingError(
                f"{_key(where, 'finetune')}.csv: no MOS CSV given (columns image,mos[,split]; or dataset: "
                "NAME and root: FOLDER for a dataset of `attiqa datasets`)",
                "finetune.csv",
            )
        need.append(("finetune.csv", cfg.finetune.csv))
    if cfg.finetune is not None:
        if cfg.finetune.ridge_pairs:
            need.append(("finetune.ridge_pairs", cfg.finetune.ridge_pairs))
        for i, extra in enumerate(cfg.finetune.ridge_extra):
            need.append((f"finetune.ridge_extra[{i}].csv", extra.csv))
    if cfg.pretrain is not None and cfg.label is None:
        need.append(("labels", cfg.labels))
    # a local weights file: was found when a stage built the network, after the earlier stages had run
    if cfg.model is not None and cfg.model.backbone_weights:
        need.append(("model.backbone_weights", cfg.model.backbone_weights))
    else:
        for stage in ("pretrain", "finetune"):
            sc = getattr(cfg, stage)
            if sc is not None and sc.backbone_weights:
                need.append((f"{stage}.backbone_weights", sc.backbone_weights))
    if cfg.finetune is not None and cfg.pretrain is None:
        need.append(("pretrained_checkpoint", cfg.pretrained_checkpoint))
    if cfg.label is not None and "label" not in skipped:  # was "nope.json: prompts file not found", no key
        need.append(("label.prompts", cfg.label.prompts))
    for key, p in need:
        if not p:
            continue
        if Path(p).expanduser().is_file():
            if key == "labels":
                _check_label_table(Path(p).expanduser(), _key(where, key))
            continue
        hint = f" (in the config or with --set {key}=PATH)" if "[" not in key else " in the config"
        if Path(p).expanduser().is_dir():  # not "not found", nor IsADirectoryError once the stage reads it
            raise SettingError(
                f"{_key(where, key)}: {p} is a folder, not a file — point it at the file in it{hint}", key
            )
        raise SettingError(
            f"{_key(where, key)}: {p} not found (relative paths start in {Path.cwd()}) — point "
            f"it at your file{hint}",
            key,
        )
    for stage, paths in (("degrade.sources", cfg.degrade and cfg.degrade.sources),
                         ("label.images", cfg.label and cfg.label.images)):  # fmt: skip
        for p in [] if stage.partition(".")[0] in skipped else paths or []:
            if not str(p).strip():  # Path('') is the working folder: every image below it was taken
                raise SettingError(
                    f"{_key(where, stage)}: an empty entry (it would be the working folder, every image in "
                    f"it) — name the files or folders (in the config or with --set {stage}=[FOLDER])",
                    stage,
                )
            if not Path(p).expanduser().exists():
                raise SettingError(
                    f"{_key(where, stage)}: {p} not found (relative paths start in {Path.cwd()}) "
                    f"— point it at your images (in the config or with --set {stage}=[FOLDER])",
                    stage,
                )


def _check_label_table(path: Path, key: str) -> None:
    """``labels:`` must be a label table pretraining can read (a MOS CSV given there by mistake was read
    only once the run had started and written its config.json)."""
    from attiqa.io.label_tables import label_table_problem  # pyarrow only when a config names a label file

    why = label_table_problem(path)
    if why is not None:
        raise SettingError(
            f"{key}: {path} is not a label table ({why}) — point it at the Parquet file `attiqa label` "
            "wrote (in the config or with --set labels=PATH), or add a label: section to make one",
            key,
        )


def to_dict(cfg: DataclassInstance) -> dict[str, Any]:
    """``cfg`` as plain data for config.json, cards, saved states and YAML: an :class:`Unwritten` default as
    its plain value (a ``str`` subclass ``yaml.safe_dump`` refused: "cannot represent an object")."""
    plain: dict[str, Any] = _plain(dataclasses.asdict(cfg))
    return plain


def _plain(value: Any) -> Any:
    """``value`` with every :class:`Unwritten` inside it (dicts, lists) as a plain ``str``."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return str(value) if isinstance(value, Unwritten) else value


class Overridden(dict[str, Any]):
    """A raw config mapping with its provenance: ``set_by`` maps each dotted key a ``--set`` gave to that
    ``--set`` (the last one of a key: it is the one in force)."""

    set_by: dict[str, str]


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> Overridden:
    """Apply ``section.key=value`` overrides (values parsed as YAML) to a raw config mapping; the result
    records which keys they set (:class:`Overridden`).

    ``finetune.split_seed=1``, ``pretrain=null`` (drop a stage), ``label.images=[a, b]``. A key under a
    setting that is not a section (``finetune.epochs=1`` where the file says ``finetune: 5``) is refused.
    """
    out = Overridden(data)
    out.set_by = {}
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {item!r}: expected KEY=VALUE, e.g. finetune.epochs=5")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            value = raw
        node: dict[str, Any] = out
        parts = key.strip().split(".")
        for i, part in enumerate(parts[:-1]):
            if node.get(part) is None:
                node[part] = {}
            elif not isinstance(node[part], dict):
                name = ".".join(parts[: i + 1])
                sub, value_text = parts[i + 1], raw.strip()
                raise ConfigError(
                    f"--set {item}: {name} is {shown(node[part])}, not a section of settings, so it has no "
                    f"{sub!r} — write {name}: as a section with its settings indented under it, or set it "
                    f"whole: --set '{name}={{{sub}: {value_text}}}'"
                )
            node = node[part]
        node[parts[-1]] = value
        out.set_by[".".join(parts)] = item
    return out


def _from_override(exc: ConfigError, data: dict[str, Any]) -> str:
    """ " (from --set ITEM)" when the setting ``exc`` is about was given (or replaced whole, as a section)
    by a ``--set``, so the error is not read as a line of the file (which may not hold the key at all)."""
    key = re.sub(r"\[\d+\]", "", exc.key) if isinstance(exc, SettingError) else None  # a list's item: its key
    set_by = data.set_by if isinstance(data, Overridden) else {}
    while key:
        if key in set_by:
            return f" (from --set {set_by[key]})"
        key = key.rpartition(".")[0]
    return ""


class UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key set twice in one mapping: plain YAML keeps the last one
    silently, so ``lr`` written twice in a stage would run with whichever came second."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *base` merges, it is not a key
                continue
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
            except TypeError:  # an unhashable key: SafeLoader's own error says so
                break
            if duplicate:
                line = key_node.start_mark.line + 1
                raise ConfigError(f"line {line}: key {key!r} is set twice in one section — keep one of them")
            seen.add(key)
        mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        return mapping


def _not_yaml_hint(path: Path) -> str:
    """The fix for a config in another format (named by its suffix), "" for any other file."""
    if Path(path).suffix.lower() in (".toml", ".ini", ".cfg"):
        return "configs are YAML (JSON reads too): write it as YAML, as configs/cpu_small.yaml is"
    return ""


def yaml_problem(exc: yaml.YAMLError, hint: str = "") -> str:
    """Where a YAML syntax error is and what the parser found there (was the parser's context alone, "while
    scanning for the next token": no line, nothing on the tab it met), with the fix when it is a known one."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    start = getattr(exc, "context_mark", None)
    if start is not None and getattr(exc, "context", None) and (mark is None or start.line != mark.line):
        problem += f", {exc.context} from line {start.line + 1}"  # type: ignore[attr-defined]  # an open [ or "
    if not hint and "'\\t'" in problem:
        hint = "indent with spaces, not tabs"
    elif not hint and ("<block end>" in problem or "mapping values are not allowed" in problem):
        hint = "check this line's indentation against the line above, and quote a value holding ': '"
    return f"not valid YAML{where} ({problem})" + (f" — {hint}" if hint else "")


def read_yaml(path: Path) -> Any:
    """Parse a YAML file; a syntax error or a key set twice becomes a one-line :class:`ConfigError`
    naming the file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
        return yaml.load(text, Loader=UniqueKeyLoader) or {}  # a SafeLoader
    except ConfigError as exc:
        raise ConfigError(exc.text, path) from None
    except yaml.YAMLError as exc:
        raise ConfigError(yaml_problem(exc, _not_yaml_hint(path)), path) from None
    except UnicodeDecodeError:
        raise ConfigError("not a UTF-8 text file — is it the YAML config? (save as UTF-8)", path) from None


def read_sections(path: Path) -> dict[str, Any]:
    """A config file's top-level mapping; anything else is one line with the fix (a TOML file reads as
    one YAML string, a list as a list)."""
    data = read_yaml(path)
    if not isinstance(data, dict):
        hint = _not_yaml_hint(path) or "start from configs/cpu_small.yaml"
        raise ConfigError(
            f"not a run config: its top level is a {type(data).__name__}, not sections of settings "
            f"(out_dir:, label:, pretrain:, finetune:) — {hint}",
            path,
        )
    return data


def load_config(
    path: str | Path, overrides: list[str] | None = None, out_dir: str | None = None
) -> TrainConfig:
    """Read a YAML run config (plus ``key=value`` overrides); errors name the file and the key.
    ``out_dir`` (`attiqa train --out-dir`) replaces the config's before it is checked: a config's empty or
    bad ``out_dir:`` that the option overrides is not this run's (it was refused all the same)."""
    path = Path(path)
    if not path.exists():
        raise ConfigError("config file not found", path)
    if path.is_dir():  # was the last-resort OSError line, "Is a directory — … (a folder should be?)"
        raise ConfigError(
            "a folder, not a run config — give its YAML file, e.g. configs/cpu_small.yaml", path
        )
    if out_dir is not None:
        check_out_dir(out_dir, "--out-dir")  # its own line: '' would be Path('.'), the working folder
    try:
        data = apply_overrides(read_sections(path), overrides or [])
    except ConfigError as exc:
        raise ConfigError(exc.text, exc.where or path) from None
    if out_dir is not None:
        data["out_dir"] = str(Path(out_dir))
    try:
        cfg = from_dict(TrainConfig, data, where="")  # keys named from the top of the file
        check_inputs(cfg, "")
    except ConfigError as exc:  # a setting's error (its key leads the text), in this file or a --set
        raise ConfigError(str(exc) + _from_override(exc, data), path) from None
    if all(getattr(cfg, s) is None for s in ("degrade", "label", "pretrain", "finetune")):
        raise ConfigError(
            "no stage to run — add a label:, pretrain: and/or finetune: section (e.g. "
            "configs/cpu_small.yaml), or drop fewer stages with --set",
            path,
        )
    return cfg
