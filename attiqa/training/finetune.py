"""Fine-tuning to MOS (paper §3.5, §4.2).

The pretrained model gets a regression MLP on the concatenated head features (before each head's last
layer); MOS targets are normalised to [0, 1] with the TRAIN split's min/max (ours: the range is stored
in the checkpoint, and predictions are mapped back with ``mos_to_dataset_scale``). Training: resize
shorter edge to 340, random 320×320 crops; validation every epoch with the five-crop mean (§4.2);
SROCC/PLCC/KRCC/RMSE.

Outputs in ``out_dir/finetune/``: ``last.safetensors`` (the model to use: the last epoch, as the paper trains
a fixed number of epochs) + ``last.state.safetensors`` (resume), and ``best.safetensors``, the epoch with the
best SROCC on the held-out split. That split is the one the run's metrics are measured on (the CSV's test
rows, or the random 20 %), so choosing on it is optimistic: ``best`` is kept for ablations only (ours; issue
18). To choose an epoch without touching the test rows, hold out a validation part of the training rows
(split column ``val``) and keep the test rows out of the CSV.

- ``freeze_backbone`` = linear probing (Table 6: "training only a single regression MLPs ... with a
  frozen ATTIQA backbone"). The MLP's inputs are the heads' hidden features, so the heads' first layers
  are part of the frozen feature extractor too; backbone and heads stay in eval mode (BN statistics
  frozen).
- The heads' LAST layers are never trained here: they are not on the MOS path (§3.5), so the attribute
  outputs keep their pretraining meaning as far as the shared features allow.
- ``init_checkpoint=None`` is ablation (a), "no attribute pretraining": an ImageNet backbone with
  freshly initialised heads, trained end to end the same way.
"""

from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass, field, replace
from itertools import takewhile
from pathlib import Path
from typing import Any, NamedTuple

import torch
from safetensors import SafetensorError
from torch.utils.data import Subset

from attiqa.attributes import ATTRIBUTES
from attiqa.config import FinetuneConfig, to_dict, written
from attiqa.device import resolve_device
from attiqa.errors import AttiqaError, EveryProcessError
from attiqa.evaluation.metrics import correlations
from attiqa.io.batching import data_loader, default_num_workers
from attiqa.io.checkpoints import TrainingStateFile, read_card
from attiqa.models import AttiqaModel, create_backbone, load_model
from attiqa.models.transforms import FinetuneTrain, FiveCropTest
from attiqa.progress import console
from attiqa.training import distributed as D
from attiqa.training.cached import finetune_cached
from attiqa.training.data import (
    DATA_SETTING,
    ImageTableDataset,
    MosSplit,
    collate_skip_none,
    read_mos_split,
    training_mos_range,
    unreadable_report,
)
from attiqa.training.losses import mos_loss
from attiqa.training.mos import (
    INIT_HASH,
    FinetuneResult,
    card_config,
    image_train_mode,
    keep_one_head,
    make_optimizer,
    set_trainable,
)
from attiqa.training.ridge import add_ridge_head
from attiqa.training.sources import ImageBatches
from attiqa.training.trainer import (
    Trainer,
    WriteLog,
    state_path_for,
    weights_hash,
)

__all__ = [
    "InitialModel",
    "SavedStarts",
    "check_resumed_start",
    "finetune",
    "initial_model",
    "parts_trained_again",
    "predict_five_crop",
]


def finetune(
    cfg: FinetuneConfig,
    init_checkpoint: Path | None,
    out_dir: Path,
    resume: bool = False,
    progress: bool = True,
    data: MosSplit | None = None,
    start: InitialModel | None = None,
    start_checked: SavedStarts | None = None,
) -> FinetuneResult:
    """Fine-tune on ``data`` (a split in memory, e.g. from a protocol) or else ``cfg.csv``. Without
    ``init_checkpoint`` (ablation (a): ImageNet-only initialisation) the network is built from the config's
    model fields (``model:`` section). ``start``: that network already built by :func:`initial_model` with
    this ``cfg`` and ``init_checkpoint`` (a copy is trained), so runs of many splits read it once.
    ``start_checked``: what :func:`check_resumed_start` (the runner's early checks) read of this run's saved
    states, its kind of start checked: the states are not read and checked again, their recorded weights'
    hashes are compared from it; a caller that made no such check leaves it None (read and checked here)."""
    if start_checked is False:  # session 62's default, spelled out: not checked, as None
        start_checked = None
    if start_checked is not None and not isinstance(start_checked, SavedStarts):  # session 62's True
        raise TypeError(
            "finetune(start_checked=...): expected what check_resumed_start() returned (SavedStarts) or "
            f"None, got {start_checked!r}"
        )
    with D.process_group(), unreadable_report("finetune"):  # the report's count: once, with the group's total
        return _finetune(cfg, init_checkpoint, Path(out_dir), resume, progress, data, start, start_checked)


@dataclass(frozen=True)
class InitialModel:
    """The network fine-tuning starts from (the init checkpoint, or the backbone with its ImageNet weights and
    fresh heads), built once; ``rng_state`` is the global RNG just after building it from ``cfg.seed``, so a
    run on a copy draws its fresh layers (MOS MLP) exactly as a run that built the network itself."""

    model: AttiqaModel
    info: dict[str, Any]
    rng_state: torch.Tensor
    # whether the network's backbone began from ImageNet weights: a checkpoint's as its card's config records
    # it (its pretraining's), None where it records none (unknown: was False); a fresh one: the config's
    imagenet: bool | None = True


def initial_model(cfg: FinetuneConfig, init_checkpoint: Path | None) -> InitialModel:
    """Build (load) the starting network as :func:`finetune` does, seeded by ``cfg.seed``; started from a
    checkpoint, its info records the weights' hash (``INIT_HASH``), which a resume compares: a checkpoint
    can change since (pretraining trained on). A fresh network is the config's, which the trainer's own
    resume check compares (another ``model.head_hidden``: "saved by a run of another network"). A checkpoint
    of another backbone than ``cfg.backbone`` is trained as it is (`attiqa train`'s ``pretrained_checkpoint``,
    `bench --init`), said in one line when the config names one (resnet50 too; the default, never chosen, is
    not said: :func:`attiqa.config.written`). ``imagenet``: see :class:`InitialModel`."""
    torch.manual_seed(cfg.seed)  # seeded, identical fresh layers on every rank (and across runs)
    model, info, card = _build_model(
        init_checkpoint, cfg.backbone, cfg.pretrained_backbone, cfg.backbone_weights, cfg.head_hidden
    )
    imagenet: bool | None = cfg.pretrained_backbone
    if init_checkpoint is not None:
        info = {**info, INIT_HASH: weights_hash(model)}
        config = card.get("config")
        recorded = config.get("pretrained_backbone") if isinstance(config, dict) else None
        imagenet = recorded if isinstance(recorded, bool) else None  # was the config's, not used
        # a backbone: the config wrote, resnet50 too (the default nobody chose is not said)
        if model.backbone.name != cfg.backbone and written(cfg.backbone) and D.is_main():
            console.print(
                f"[yellow]finetune: the network of {init_checkpoint} (backbone {model.backbone.name}, its "
                f"card) is fine-tuned as it is; the config's backbone {cfg.backbone} is used only without a "
                "pretrained checkpoint",
                highlight=False,
            )
    return InitialModel(model, info, torch.get_rng_state(), imagenet)


def _build_model(
    init_checkpoint: Path | None,
    backbone: str,
    pretrained_backbone: bool,
    backbone_weights: str | None,
    head_hidden: int,
) -> tuple[AttiqaModel, dict[str, Any], dict[str, Any]]:
    """The starting network, its ``init`` record and the init checkpoint's card ({} for a fresh one)."""
    if init_checkpoint is not None:
        model, card = load_model(init_checkpoint)
        name = start_name(backbone, pretrained_backbone, init_checkpoint)
        return model, {"init": name, "init_stage": card.get("stage")}, card
    bb = create_backbone(backbone, pretrained=pretrained_backbone, weights=backbone_weights)
    model = AttiqaModel(bb, ATTRIBUTES, head_hidden)
    return model, {"init": start_name(backbone, pretrained_backbone, None)}, {}


def start_name(backbone: str, pretrained_backbone: bool, init_checkpoint: Path | None) -> str:
    """How a fine-tuning's card names its start (``init``): the checkpoint, else the fresh network."""
    if init_checkpoint is not None:
        return str(init_checkpoint)
    return f"imagenet:{backbone}" if pretrained_backbone else f"random:{backbone}"


@torch.no_grad()
def predict_five_crop(
    model: AttiqaModel,
    val_ds: ImageTableDataset | Subset,
    device: torch.device,
    batch_size: int,
    workers: int,
) -> torch.Tensor:
    """MOS on the dataset scale for every item of ``val_ds`` (NaN where the image failed to decode):
    mean over the five crops (§4.2); items are sharded over ranks and gathered."""
    n = len(val_ds)
    shard = Subset(val_ds, list(range(D.rank(), n, D.world_size())))
    # Items report their index in the innermost dataset; map it back to a position in val_ds.
    inner = val_ds.indices if isinstance(val_ds, Subset) else range(n)
    pos_of = {int(j): p for p, j in enumerate(inner)}
    loader = data_loader(
        shard,
        batch_size=batch_size,
        num_workers=workers,
        collate_fn=collate_skip_none,
    )
    was_training = model.training
    model.eval()
    rows = []
    for batch in loader:
        if batch is None:  # every image of this batch failed to decode
            continue
        x, _, idx = batch
        b, k = x.shape[:2]
        mos = model(x.to(device).flatten(0, 1)).mos.view(b, k).mean(1)
        pos = torch.tensor([pos_of[int(i)] for i in idx], device=device, dtype=torch.float64)
        rows.append(torch.stack([pos, model.mos_to_dataset_scale(mos).double()], 1))
    model.train(was_training)
    local = torch.cat(rows) if rows else torch.zeros((0, 2), device=device, dtype=torch.float64)
    allr = D.all_gather_cat(local).cpu()
    out = torch.full((n,), float("nan"), dtype=torch.float64)
    out[allr[:, 0].long()] = allr[:, 1]
    return out


def _finetune(
    cfg: FinetuneConfig,
    init_checkpoint: Path | None,
    out_dir: Path,
    resume: bool,
    progress: bool,
    data: MosSplit | None,
    start: InitialModel | None,
    start_checked: SavedStarts | None,
) -> FinetuneResult:
    _check_settings(cfg)
    split = data or read_mos_split(cfg.csv, cfg.image_root, cfg.val_fraction, cfg.split_seed)
    stage_dir = out_dir / "finetune"
    if start is None:  # built here: trained in place
        start = initial_model(cfg, init_checkpoint)
        model = start.model
    else:  # shared by many runs: each trains its own copy, drawing from the RNG where a build would leave it
        model = copy.deepcopy(start.model)
        torch.set_rng_state(start.rng_state)
    init_info = start.info
    if INIT_HASH in init_info:  # a checkpoint's network: the card's config says what trained (was the
        # config's unused network settings: its backbone, head width and backbone weights)
        cfg = replace(cfg, backbone=model.backbone.name, head_hidden=model.head_hidden, backbone_weights=None)
    imagenet = start.imagenet  # the cards' ImageNet start (card_config): the trained network's
    continued, states = Continued(False, False), {}
    if resume:  # the states as the check opened them: each trainer continues from that opening
        saved = start_checked if start_checked is not None and start_checked.stage_dir == stage_dir else None
        saved = saved or checked_here(stage_dir, init_info)
        continued, states = same_start(stage_dir, init_info, saved), saved.states
    if cfg.single_head is not None:
        model = keep_one_head(model, cfg.single_head)
        init_info = {**init_info, "single_head": cfg.single_head}
    model.add_mos_head(cfg.mos_hidden)
    model.input_sizes.update(test_resize_shorter=cfg.resize_shorter, test_crop=cfg.crop_size)
    cfg = _ridge_or_not(cfg, model)
    cv_ridge = cfg.ridge_taps is not None and cfg.ridge_weight is None
    init_model = copy.deepcopy(model) if cv_ridge else None  # the CV retrains the MLP from here
    log = WriteLog()  # the files this rank writes (only rank 0 may)
    # The MOS MLP (and whatever else trains) is trained in place: end to end, on cached features, or
    # cached then polished.
    if not cfg.feature_cache:
        result = _end_to_end(cfg, model, split, init_info, imagenet, stage_dir, continued.stage, progress,
                             log, polish=False, saved=states.get(""))  # fmt: skip
    elif not cfg.polish_epochs:
        result = finetune_cached(cfg, model, split, init_info, stage_dir, continued.stage, progress, log,
                                 imagenet, states.get(""))  # fmt: skip
    else:
        heads_dir = stage_dir / "heads"
        heads = finetune_cached(cfg, model, split, init_info, heads_dir, continued.heads, progress, log,
                                imagenet, states.get("heads"))  # fmt: skip
        info = {**init_info, "heads_checkpoint": str(heads_dir / "last.safetensors"),
                "heads_last_epoch": heads.history[-1]}  # fmt: skip
        result = _end_to_end(cfg, model, split, info, imagenet, stage_dir, continued.stage, progress, log,
                             polish=True, saved=states.get(""))  # fmt: skip
    if cfg.ridge_taps:
        best, history = add_ridge_head(cfg, model, init_model, split, stage_dir, result.history, progress)
        result = replace(result, best_metrics=best, history=history)
    log.debug_dump(model)
    return result


class Continued(NamedTuple):
    """Which parts of a saved fine-tuning a resume continues (:func:`same_start`); a part not continued trains
    afresh over its files."""

    heads: bool  # the cached heads before a polish (``finetune/heads``)
    stage: bool  # the stage itself (``finetune``: the polish, or the whole fine-tuning)


def same_start(stage_dir: Path, init_info: dict[str, Any], checked: SavedStarts | None = None) -> Continued:
    """Which parts of the fine-tuning saved in ``stage_dir`` (:data:`STAGE_PARTS`) a resume may continue
    (:class:`Continued`, read by name): in the order they train, up to the first whose state started from
    other weights than ``init_info``'s (its init checkpoint rewritten since: pretraining trained on), said
    in a line — that part and those after it train again from them over their files (a polish stopped
    before its first save, after its cached heads were fine-tuned from the new weights: the heads
    continued, the polish again; was both again), and so does an earlier part whose state did not record
    these weights. Otherwise a state of an older version (no hash recorded) is continued, said once. No or
    an unreadable state: the trainer's. Another kind of start is refused (:func:`other_start`) unless
    ``checked``: what the early check of it read of ``stage_dir`` (:func:`check_resumed_start`), whose
    hashes are compared (not read again)."""
    init, now = init_info.get("init"), init_info.get(INIT_HASH)
    if checked is None or checked.stage_dir != stage_dir:
        checked = checked_here(stage_dir, init_info)
    recorded = checked.hashes
    if now is None:  # a start built without one (nothing to compare with)
        return Continued(heads=True, stage=True)
    kept = parts_continued(recorded, now)
    if kept != STAGE_PARTS and D.is_main():
        heads = [p for p in kept if p in recorded]  # the cached heads of a polish, fine-tuned from them
        again = ("its cached heads (fine-tuned from it) continued, the polish trained again" if heads
                 else "fine-tuning again from it")  # fmt: skip
        console.print(
            f"[yellow]finetune: {init} is not the model the fine-tuning in {stage_dir} started from (its "
            f"weights changed since) — {again}, over that run's files",
            highlight=False,
        )
    if None in [recorded.get(p, now) for p in kept] and D.is_main():
        console.print(
            f"[yellow]finetune: the fine-tuning in {stage_dir} was saved by an older version, which did not "
            f"record the weights it started from — resumed without checking them against {init} (to "
            f"fine-tune from it again, delete {stage_dir} and resume)",
            highlight=False,
        )
    return Continued(heads="heads" in kept, stage="" in kept)


STAGE_PARTS = ("heads", "")
"""The parts of a fine-tuning stage that save a resume point, in the order they train: the cached heads
(``finetune/heads``, before a polish) and the stage itself (``finetune``)."""


def parts_continued(recorded: dict[str, str | None], now: str) -> tuple[str, ...]:
    """The parts (:data:`STAGE_PARTS`) a resume from weights of hash ``now`` continues, given the hash each
    saved state recorded (:func:`recorded_starts`): all, unless one started from other weights; then those
    before it that recorded ``now`` — one with no state, an unreadable one or an older version's (no hash)
    trains again too (was continued, under weights it did not start from, or refused as "training state
    missing")."""
    if all(recorded.get(p, now) in (None, now) for p in STAGE_PARTS):
        return STAGE_PARTS
    return tuple(takewhile(lambda p: recorded.get(p) == now, STAGE_PARTS))


def parts_trained_again(stage_dir: Path, init_checkpoint: Path | None, changing: bool = False) -> list[str]:
    """The saved parts of the fine-tuning in ``stage_dir`` that a ``--resume`` from ``init_checkpoint`` as it
    is now trains again (their states started from earlier weights of it: pretraining trained on), as
    folders (``finetune/heads``); [] when none, or when that cannot be told (no checkpoint, unreadable).
    ``changing``: the checkpoint is rewritten before the fine-tuning starts (pretraining trains on), its
    weights then none a state recorded (was compared as it is now: those parts said kept)."""
    recorded = recorded_starts(stage_dir)
    if init_checkpoint is None or not any(recorded.values()):
        return []
    try:
        now = "" if changing else weights_hash(load_model(init_checkpoint)[0])
    except (AttiqaError, OSError, ValueError, SafetensorError):
        return []
    kept = parts_continued(recorded, now)
    return [str(Path(stage_dir.name) / p) for p in reversed(STAGE_PARTS) if p in recorded and p not in kept]


def recorded_starts(stage_dir: Path) -> dict[str, str | None]:
    """The init weights' hash each saved resume state in ``stage_dir`` (and its cached heads') recorded, by
    part (:data:`STAGE_PARTS`); None for a state of an older version or one started from a fresh network;
    no or an unreadable state: not there."""
    return read_starts(stage_dir).hashes


def read_starts(stage_dir: Path) -> SavedStarts:
    """The saved resume states of ``stage_dir``'s parts, each opened once (its header read), and the hashes
    they recorded (:func:`recorded_starts`); no or an unreadable state: not there (its trainer says so)."""
    states = {}
    for part in STAGE_PARTS:
        try:
            states[part] = TrainingStateFile(state_path_for(stage_dir / part / "last.safetensors"))
        except (OSError, ValueError, KeyError, SafetensorError):  # none, or unreadable: resume() says so
            continue
    return SavedStarts(stage_dir, {p: s.extra.get(INIT_HASH) for p, s in states.items()}, states)


def checked_here(stage_dir: Path, init_info: dict[str, Any]) -> SavedStarts:
    """:func:`read_starts` with :func:`other_start`'s check, for a resume no early check read
    (:func:`check_resumed_start`: a library caller's)."""
    saved = read_starts(stage_dir)
    other_start(stage_dir, init_info.get("init"), INIT_HASH in init_info, list(saved.hashes.values()))
    return saved


def saved_start(stage_dir: Path) -> str | None:
    """The ``init`` the latest saved model of ``stage_dir`` names in its card — the stage's own, else its
    cached heads' (a polished run stopped before its first save of the stage); None when none is readable."""
    for part in reversed(STAGE_PARTS):
        with contextlib.suppress(AttiqaError, OSError, ValueError, SafetensorError):
            init = read_card(stage_dir / part / "last.safetensors").get("init")
            if isinstance(init, str):
                return init
    return None


@dataclass(frozen=True)
class SavedStarts:
    """What :func:`check_resumed_start` read of the fine-tuning saved in ``stage_dir``: the init weights'
    hash each resume state recorded (:func:`recorded_starts`), handed to :func:`finetune` so that it compares
    them without reading the states again (nothing else writes them in between: the run holds its out_dir),
    and ``states``, the openings the trainers continue from (``TrainingStateFile``: each state's header read
    once in all)."""

    stage_dir: Path
    hashes: dict[str, str | None]
    states: dict[str, TrainingStateFile] = field(default_factory=dict)


def check_resumed_start(
    stage_dir: Path, backbone: str, pretrained_backbone: bool, init_checkpoint: Path | None
) -> SavedStarts:
    """:func:`other_start` for a run's ``--resume`` before any of its stages runs (the runner's early
    checks): a resume that adds a pretrain stage to a fine-tune-only run was refused only after labelling
    and pretraining. Returns what it read, for :func:`finetune`'s ``start_checked``."""
    name = start_name(backbone, pretrained_backbone, init_checkpoint)
    saved = read_starts(stage_dir)
    other_start(stage_dir, name, init_checkpoint is not None, list(saved.hashes.values()))
    return saved


def other_start(stage_dir: Path, init: str | None, from_checkpoint: bool, recorded: list[str | None]) -> None:
    """Refuse a resume of the fine-tuning in ``stage_dir`` from another kind of start than it had: a
    checkpoint (a pretrain stage, ``pretrained_checkpoint``) then, ImageNet weights now, or the reverse
    (was: `--resume --set pretrain=null` continued a run fine-tuned from the pretrained model and its card
    then said ImageNet; the reverse was said as "saved by an older version"). ``recorded``:
    :func:`recorded_starts` (none: nothing to resume). A state of an older version records no hash either:
    its card's ``init`` (the stage's, else its cached heads') tells the two apart."""
    if not recorded:
        return
    was_checkpoint = any(h is not None for h in recorded)
    was = saved_start(stage_dir)
    if from_checkpoint and not was_checkpoint:
        if not (isinstance(was, str) and was.startswith(("imagenet:", "random:"))):
            return  # an older version's state from a checkpoint (same_start says so), or unreadable
    elif was_checkpoint and not from_checkpoint:
        if was is None or was.startswith(("imagenet:", "random:")):
            was = "a pretrained checkpoint"
    else:
        return
    raise EveryProcessError(
        f"finetune: the run in {stage_dir} was fine-tuned from {was}, not {init} — --resume continues "
        "that run: give it the start it had (its pretrain: stage or pretrained_checkpoint), or train over it "
        "with --no-resume (or choose another out_dir)"
    )


def _check_settings(cfg: FinetuneConfig) -> None:
    """One-line errors for settings that cannot work (configs built in code skip the load-time checks)."""
    cfg.check("finetune")


def _ridge_or_not(cfg: FinetuneConfig, model: AttiqaModel) -> FinetuneConfig:
    """The ridge head belongs to the CPU-budget recipe (frozen backbone with tap sets, cached features). So
    that the same recipe still runs with ``backbone: resnet50`` or end-to-end training (one changed line), a
    ridge it cannot fit is left out with a one-line warning saying what to set, instead of an error."""
    why = None
    if cfg.ridge_taps and not model.backbone.has_tap_sets:
        why = f"backbone {model.backbone.name!r} has no named tap sets (efficientnet_lite0_ms has)"
    elif cfg.ridge_taps and cfg.ridge_weight is None and (not cfg.feature_cache or cfg.polish_epochs):
        why = ("cross-validating ridge_weight retrains the MOS MLP on cached features; for end-to-end or "
               "polished runs set finetune.ridge_weight (e.g. 0.5) to fit it anyway")  # fmt: skip
    if why is None:
        return cfg
    if D.is_main():
        console.print(f"[yellow]finetune.ridge_taps: no ridge head — {why}")
    return replace(cfg, ridge_taps=None)


def _end_to_end(
    cfg: FinetuneConfig,
    model: AttiqaModel,
    split: MosSplit,
    init_info: dict[str, Any],
    imagenet: bool | None,
    stage_dir: Path,
    resume: bool,
    progress: bool,
    log: WriteLog,
    polish: bool,
    saved: TrainingStateFile | None = None,
) -> FinetuneResult:
    """The end-to-end loop on images (random crops; five-crop validation). ``polish`` (ours, LP-FT): the
    model arrives with heads trained on cached frozen features; train everything ``cfg.polish_epochs`` more
    epochs at ``cfg.polish_lr`` with every BatchNorm frozen, so small batches do not move the statistics."""
    device = resolve_device(cfg.device)
    card_cfg, settings = card_config(cfg, imagenet), to_dict(cfg)  # the stage's, before a polish's rates
    if polish:
        cfg = replace(cfg, epochs=cfg.polish_epochs, lr=cfg.polish_lr, head_lr=cfg.polish_lr)
    mean, std = model.backbone.mean, model.backbone.std
    train_tf = FinetuneTrain(mean, std, cfg.resize_shorter, cfg.crop_size, cfg.hflip)
    test_tf = FiveCropTest(mean, std, cfg.resize_shorter, cfg.crop_size)
    train_ds = ImageTableDataset([split.paths[i] for i in split.train], split.mos[split.train], train_tf,
                                 on_error="substitute")  # fmt: skip
    val_ds = ImageTableDataset([split.paths[i] for i in split.val], split.mos[split.val], test_tf, "skip")
    if polish:  # the cached heads set it from the same training split
        lo, hi = (float(v) for v in model.mos_range)
    else:
        lo, hi = training_mos_range(train_ds.mos, split.source)
        model.set_mos_range(lo, hi)
    model.to(device)
    set_trainable(model, cfg.freeze_backbone)
    optimizer, base_lrs = make_optimizer(model, cfg)
    workers = default_num_workers() if cfg.num_workers is None else cfg.num_workers
    source = ImageBatches(
        train_ds, cfg.batch_size, cfg.seed, workers, cfg.max_steps_per_epoch, "finetune.batch_size"
    )
    base_card = {
        "stage": "finetune",
        "config": card_cfg,
        **init_info,
        "dataset": {
            **split.card(),
            "n_train": len(split.train),
            "n_val": len(split.val),
        },  # fmt: skip
        "mos_range": [lo, hi],
        "linear_probe": cfg.freeze_backbone,
        "world_size": D.world_size(),
        "per_process_batch": source.batch_size,
    }
    if polish:
        base_card["polish"] = {"epochs": cfg.epochs, "lr": cfg.lr, "frozen_batchnorm": True}
    if not cfg.freeze_backbone:
        base_card["attribute_note"] = "backbone fine-tuned: attribute scores use the pretraining calibration"

    def validate() -> dict[str, float]:
        pred = predict_five_crop(model, val_ds, device, max(1, source.batch_size), workers)
        return correlations(pred.numpy(), val_ds.mos.numpy())

    def step_loss(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return mos_loss(net(x).mos, model.mos_to_unit_scale(y), cfg.plcc_weight)

    trainer = Trainer(
        "finetune", model, source, step_loss, optimizer, cfg.epochs, stage_dir=stage_dir,
        wrap=lambda m: D.wrap_ddp(m, device),
        train_mode=lambda: image_train_mode(model, cfg.freeze_backbone, freeze_bn=polish),
        validate=validate, lr_schedule=cfg.lr_schedule, base_lrs=base_lrs, device=device, card=base_card,
        progress=progress, log=log,
        lr_key="finetune.polish_lr" if polish else "finetune.lr or finetune.head_lr",
        settings={**settings, DATA_SETTING: split.fingerprint()},
        state_extra={k: init_info[k] for k in (INIT_HASH,) if k in init_info},
        epochs_key="finetune.polish_epochs" if polish else "finetune.epochs", saved=saved,
    )  # fmt: skip
    history = trainer.fit(resume)
    return FinetuneResult.of(trainer, history)
