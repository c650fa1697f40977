"""The one training loop: epochs, learning-rate schedule, best-metric tracking, rank-0 checkpoints, resume.

Pretraining, fine-tuning and the LP-FT polish are configurations of :class:`Trainer`; what changes between
them is the :class:`~attiqa.training.sources.BatchSource` (images through a DataLoader, or cached backbone
features), the ``step_loss`` (forward + loss of one batch), the optimizer and the optional ``validate``.

Resume (ours): after an epoch the loop writes ONE file, ``last.state.safetensors``, holding the weights,
the optimizer state and the bookkeeping (epoch, global step, history, best so far), atomically; only then
the ordinary checkpoint ``last.safetensors`` (+ card) that users score. A kill at any moment leaves a
complete state file (of this epoch or the one before), so ``resume=True`` always continues; state files of
older versions (no weights inside) are still read, with the weights taken from ``last.safetensors``.

Only rank 0 writes files (:class:`WriteLog` refuses writes elsewhere); every rank reads the same state.

Adding a batch source: any object with ``epoch(e) -> (batches, n_steps)``, ``batches`` yielding ``(inputs,
targets)`` — tensors, or tuples / lists / dicts of tensors (moved to the device by the loop) — and depending
only on (seed, e), so that a resumed epoch replays exactly; see :mod:`attiqa.training.sources`. Adding a
loss: ``step_loss(net, inputs, targets) -> scalar tensor`` does the forward pass through ``net`` (the model,
or what ``wrap=`` made of it once: DDP) and the loss (e.g. a margin ranking loss over (image, degraded copy)
pairs, or a per-dataset MOS scale looked up from a dataset id in ``targets``). On cached features,
:func:`attiqa.training.mos.cached_mos_trainer` takes ``source=`` and ``loss=`` and keeps everything else
(trainable parameters, optimizer, schedule, files, resume); its ``net`` takes features
(:class:`~attiqa.training.mos.OnFeatures`).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import torch
from safetensors import SafetensorError

from attiqa.config import MODEL_KEYS
from attiqa.errors import AttiqaError, EveryProcessError
from attiqa.io.checkpoints import (
    TrainingStateFile,
    card_copy_current,
    load_checkpoint,
    read_card,
    save_training_state,
)
from attiqa.io.run_meta import same_setting
from attiqa.models import AttiqaModel, save_model
from attiqa.progress import console
from attiqa.sharding import alike_on_every_process
from attiqa.training import distributed as D
from attiqa.training.data import DATA_SETTING, data_key, flush_unreadable, same_data, short_key

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

DEBUG_HASH_ENV = "ATTIQA_DEBUG_HASH_DIR"  # tests: each rank writes its final weight hash + files it wrote
LR_SCHEDULES = ("constant", "cosine")
# ``--resume`` continues the saved run (as pyiqa's resume does). Of a stage's settings, these may differ
# from the ones it started with: where it runs and the ridge head (fitted after training, again on a resume)
# without a word; the epoch count (train longer) and the optimizer's rates (the fix of a diverged run) with
# a line saying so. Any other change (data, split, views, network, loss, batch, seed) would continue the
# saved weights as another run: refused, naming the setting. The network's settings (``model:``) are left to
# the saved weights, which must fit it (a fine-tuning from a checkpoint does not read them at all).
RESUME_FREE = frozenset({"device", "num_workers", "feature_cache_dir", "ridge_taps", "ridge_weight",
                         "ridge_power", "ridge_pairs", "ridge_pair_weight", "ridge_pair_margin",
                         "ridge_extra", "ridge_guard", "checkpoint_activations",
                         *MODEL_KEYS})  # fmt: skip
RESUME_SAID = frozenset({"epochs", "polish_epochs", "lr", "head_lr", "polish_lr", "weight_decay"})
# Where the data is read from: another place holding the same rows (the data setting's ``rows``) resumes
RESUME_MOVED = ("csv", "image_root", "root")


# ----------------------------------------------------------------------------------------------------------
# Small pieces every stage uses


def lr_factor(schedule: str, step: int, total: int) -> float:
    """Learning-rate multiplier at optimizer step ``step`` of ``total``; a pure function of the step, so a
    resumed run continues on the same curve. "cosine" (ours): half a cosine from 1 down to 0."""
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * min(step, total) / max(total, 1)))
    return 1.0


def set_scheduled_lr(
    optimizer: torch.optim.Optimizer, base_lrs: list[float], schedule: str, step: int, total: int
) -> None:
    factor = lr_factor(schedule, step, total)
    for group, base in zip(optimizer.param_groups, base_lrs, strict=True):
        group["lr"] = base * factor


def better(new: float, old: float | None) -> bool:
    """NaN is never better; anything beats a NaN best."""
    if new != new:  # nan
        return False
    return old is None or old != old or new > old


def state_path_for(weights: Path) -> Path:
    return weights.with_name(weights.name.replace(".safetensors", ".state.safetensors"))


def weights_hash(model: torch.nn.Module) -> str:
    """SHA-256 over the state dict (names, dtypes, bytes): equal hashes = bit-identical weights."""
    h = hashlib.sha256()
    for k, v in sorted(D.unwrap(model).state_dict().items()):
        t = v.detach().cpu().contiguous()
        h.update(k.encode())
        h.update(str(t.dtype).encode())
        h.update(t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


class WriteLog:
    """Records files written by this process; refuses writes on ranks other than 0 (only rank 0 writes)."""

    def __init__(self) -> None:
        self.files: list[str] = []

    def __call__(self, path: Path) -> Path:
        if not D.is_main():
            raise RuntimeError(f"rank {D.rank()} tried to write {path}; only rank 0 writes files")
        self.files.append(str(path))
        return path

    def debug_dump(self, model: torch.nn.Module) -> None:
        """If ``ATTIQA_DEBUG_HASH_DIR`` is set, each rank writes ``rank{r}.json`` (weight hash, its files)."""
        d = os.environ.get(DEBUG_HASH_ENV)
        if d:
            Path(d).mkdir(parents=True, exist_ok=True)
            doc = {"rank": D.rank(), "world_size": D.world_size(), "hash": weights_hash(model),
                   "files": self.files}  # fmt: skip
            (Path(d) / f"rank{D.rank()}.json").write_text(json.dumps(doc))


@contextmanager
def one_thread() -> Iterator[None]:
    """Heads on cached features are small matrices: one thread is fastest, and far faster than several
    on a busy CPU (measurement: docs/default_model.md, "Implementation speed notes")."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextmanager
def maybe_progress(enabled: bool) -> Iterator[Progress | None]:
    """A rich progress bar (rank 0 only) showing loss and images/s; None when disabled."""
    if not enabled or not D.is_main():
        yield None
        return
    from attiqa.progress import make_training_progress

    with make_training_progress() as prog:
        yield prog


def to_device(obj: Any, device: torch.device) -> Any:
    """Tensors, and tuples / lists / dicts of them (a source may yield image pairs or dataset ids)."""
    if torch.is_tensor(obj):
        return obj.to(device, non_blocking=True)
    if isinstance(obj, (tuple, list)):
        return type(obj)(to_device(o, device) for o in obj)
    if isinstance(obj, dict):
        return {k: to_device(v, device) for k, v in obj.items()}
    return obj


def batch_len(obj: Any) -> int:
    """Items in a batch: the first dimension of its first tensor."""
    if torch.is_tensor(obj):
        return int(obj.shape[0])
    if isinstance(obj, (tuple, list)) and obj:
        return batch_len(obj[0])
    if isinstance(obj, dict) and obj:
        return batch_len(next(iter(obj.values())))
    return 0


def moved_folders(was: dict[str, Any] | None, now: dict[str, Any]) -> str:
    """ "OLD -> NEW" of a stage's data that moved: the folders given that differ (one of several moved: the
    folder holding them all may be the same), else the folder holding them all (older records: none)."""
    before, after = recorded_folders(was or {}), recorded_folders(now)
    if before and len(before) == len(after) and before != after:
        return ", ".join(f"{a} -> {b}" for a, b in zip(before, after, strict=True) if a != b)
    return f"{', '.join(before) or 'its earlier folder'} -> {', '.join(after)}"


def recorded_folders(record: dict[str, Any]) -> list[str]:
    """Where a data record's rows are: its ``roots``, else its ``root`` (records before session 53 hold
    both; older ones ``root`` only; none: [])."""
    roots = record.get("roots")
    if roots:
        return [str(r) for r in roots]
    return [str(record["root"])] if record.get("root") else []


def start_points_words(points: list[tuple[int, int, str | None]]) -> str:
    """ "rank 0 after epoch 3; rank 1 from the start" for each process's (epoch, step, weights hash or None:
    not resumed); the weights named where processes resume the same epoch with others."""
    groups: dict[tuple[int, int, str | None], list[int]] = {}
    for r, p in enumerate(points):
        groups.setdefault(p, []).append(r)
    epochs = [p[0] for p in points]
    said = []
    for (epoch, _, digest), ranks in groups.items():
        where = "from the start" if digest is None else f"after epoch {epoch}"
        if digest is not None and epochs.count(epoch) > len(ranks):
            where += f" (weights {digest[:8]})"
        said.append(f"rank{'s' if len(ranks) > 1 else ''} {', '.join(map(str, ranks))} {where}")
    return "; ".join(said)


# ----------------------------------------------------------------------------------------------------------
# The loop


class BatchSource(Protocol):
    """What the loop trains on. ``epoch(e)`` returns the epoch's batches ``(inputs, targets)`` and how many
    steps to take from them; it must depend only on (seed, e) so that a resumed epoch replays exactly."""

    def epoch(self, epoch: int) -> tuple[Iterable[tuple[Any, torch.Tensor]], int]: ...


@dataclass
class Trainer:
    """One stage's training loop. Files (when ``stage_dir`` is set): ``last.safetensors`` + card and
    ``last.state.safetensors`` every ``checkpoint_every`` epochs and after the last; ``best.safetensors``
    whenever ``validate``'s ``best_key`` improves (only with ``keep_best``)."""

    name: str  # "pretrain" | "finetune"; card stages are NAME / NAME-partial
    model: AttiqaModel  # the unwrapped model (what is saved)
    source: BatchSource
    step_loss: Callable[[torch.nn.Module, Any, torch.Tensor], torch.Tensor]  # forward through net + loss
    optimizer: torch.optim.Optimizer
    epochs: int
    stage_dir: Path | None = None  # None: no files (e.g. the ridge weight's cross-validation)
    train_mode: Callable[[], object] | None = None  # None: model.train()
    validate: Callable[[], dict[str, float]] | None = None  # metrics of the validation split, per epoch
    best_key: str = "srocc"
    keep_best: bool = True
    lr_schedule: str = "constant"
    base_lrs: list[float] | None = None  # None: each group's lr at construction
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    checkpoint_every: int = 1
    card: dict[str, Any] = field(default_factory=dict)  # the checkpoints' card (epoch/history are added)
    state_extra: dict[str, Any] = field(default_factory=dict)  # stored with the state (head names, ...)
    label: str = ""  # progress text (default: name)
    log_every: int = 1
    progress: bool = True
    history: list[dict[str, Any]] = field(default_factory=list)
    global_step: int = 0
    best: dict[str, Any] = field(default_factory=lambda: {"srocc": None, "metrics": {}, "epoch": None})
    start_epoch: int = 0
    log: WriteLog = field(default_factory=WriteLog)
    lr_key: str = ""  # the config setting of the learning rate, named when the loss diverges (NAME.lr)
    settings: dict[str, Any] | None = None  # the stage's config (``to_dict``), checked on a resume
    epochs_key: str = ""  # the config setting of ``epochs`` (default NAME.epochs)
    data_fix: str = ""  # how to set the data back when a resume finds it changed (default: restore the file)
    start_checked: bool = False  # resume() ran (fit() runs it otherwise, on every process)
    # the state file a check before the stage opened (its header read: the fine-tuning's start, pretraining's
    # row order): resume() continues from that opening, not reading the file again (None: it opens it)
    saved: TrainingStateFile | None = None
    # what the steps run through (:attr:`net`): ``wrap(model)`` (DDP; the cached-feature loops: the model's
    # forward on features), made once by fit() after resume(), once every process is known to start alike —
    # a table with other heads on one node made the models differ, and DDP's own check of them a traceback
    wrap: Callable[[torch.nn.Module], torch.nn.Module] | None = None
    wrapped: torch.nn.Module | None = field(default=None, init=False, repr=False)  # set by fit(), once

    def __post_init__(self) -> None:
        if self.lr_schedule not in LR_SCHEDULES:
            raise AttiqaError(f"lr_schedule {self.lr_schedule!r} is not one of {', '.join(LR_SCHEDULES)}")
        if self.base_lrs is None:
            self.base_lrs = [g["lr"] for g in self.optimizer.param_groups]
        self.label = self.label or self.name

    @property
    def net(self) -> torch.nn.Module:
        """What ``step_loss`` computes through: the model as ``wrap`` made it when fit() started."""
        if self.wrapped is None:
            raise RuntimeError(f"{self.label}: Trainer.net is made by fit(), after resume()")
        return self.wrapped

    # -- paths --------------------------------------------------------------------------------------------
    @property
    def last_path(self) -> Path:
        assert self.stage_dir is not None
        return self.stage_dir / "last.safetensors"

    @property
    def best_path(self) -> Path:
        assert self.stage_dir is not None
        return self.stage_dir / "best.safetensors"

    # -- resume -------------------------------------------------------------------------------------------
    def resume(self, wanted: bool = True) -> dict[str, Any] | None:
        """Continue from the state file in ``stage_dir`` if ``wanted`` and there is one; returns its
        bookkeeping. Under torchrun every process calls it, with its own ``wanted``: an error met reading the
        state is said by the processes that met it (one, on a node whose copy lacked the file, stopped alone
        and unsaid), and processes that would start from different points stop, saying where each would
        (they met in mismatched collectives: a hang)."""
        self.start_checked = True
        if self.stage_dir is None:
            return None
        try:
            with alike_on_every_process():
                extra = self.read_state() if wanted else None
        finally:  # read (or not wanted): let the opening go before a save replaces the file
            if self.saved is not None:
                self.saved.close()
        self.check_same_start(extra is not None)
        return extra

    def check_same_start(self, resumed: bool) -> None:
        """Every process starts from the same epoch and weights and, starting afresh, trains on the same data
        and heads (gathered); else one line, alike on each for the start, each process's own for the data (a
        fresh run on label tables that differ was a DDP traceback, or training on without a word, each
        process on its own targets)."""
        point = (self.start_epoch, self.global_step, weights_hash(self.model) if resumed else None)
        data = self.settings.get(DATA_SETTING) if self.settings else None
        heads = self.state_extra.get("head_names")  # the columns trained: the same rows in another order
        gathered = D.gather_objects((point, (data_key(data), heads)))
        points, keys = [p for p, _ in gathered], [k for _, k in gathered]
        with alike_on_every_process():
            if len(set(points)) > 1:
                raise EveryProcessError(
                    f"{self.label}: the processes of this job do not continue {self.stage_dir} alike "
                    f"({start_points_words(points)}) — every process must read the same out_dir: one folder "
                    "all of them share (on several machines a shared filesystem), left alone while the job "
                    "starts; then rerun"
                )
            mine = keys[D.rank()]
            others = [r for r, k in enumerate(keys) if k != mine]
            if others and data and not resumed:  # a resume: each compares its own with the saved record
                ranks = f"rank{'s' if len(others) > 1 else ''} {', '.join(map(str, others))}"
                (rows, cols), (their_rows, their_cols) = mine, keys[others[0]]
                what = f"rows {short_key(rows)} here, {short_key(their_rows)} there"
                if rows == their_rows:
                    what = f"columns {', '.join(cols or [])} here, {', '.join(their_cols or [])} there"
                raise AttiqaError(
                    f"{data.get('file')}: this process read another table than {ranks} ({what}) — every "
                    "process must train on the same table: one file all of them share (on several machines a "
                    "shared filesystem, or the same copy on each); then rerun"
                )

    def read_state(self) -> dict[str, Any] | None:
        """This process's part of :meth:`resume`: the state file read into the model and optimizer."""
        assert self.stage_dir is not None
        state_file = state_path_for(self.last_path)
        saved = self.saved
        opened = saved if saved is not None and not saved.closed and saved.path == state_file else None
        if opened is None and not state_file.exists():
            if self.last_path.exists():
                raise EveryProcessError(f"{state_file}: training state missing next to {self.last_path.name} "
                                        "— cannot resume exactly")  # fmt: skip
            return None
        try:
            with opened or TrainingStateFile(state_file) as state:
                opt_state, extra, weights = state.load(with_model=True)
        except (OSError, ValueError, KeyError, SafetensorError) as exc:
            raise EveryProcessError(
                f"{state_file}: not a readable training state ({type(exc).__name__}) — delete it (and "
                f"{self.last_path.name}) to restart the stage, or start over with --no-resume"
            ) from None
        # `last`'s card, read once: it dates an older state file's weights and shows a save cut short below
        last_card = read_card(self.last_path) if self.last_path.exists() else None
        last_epoch = last_card.get("epoch") if last_card is not None else None
        saved = extra.get("config") or (last_card or {}).get("config")
        self.check_resumed_settings(saved, int(extra["epoch"]))
        processes = extra.get("world_size") or (last_card or {}).get("world_size")
        if processes and processes != D.world_size():
            self.warn(
                f"{self.label}: resuming {self.stage_dir}, trained with {processes} process(es), with "
                f"{D.world_size()}: the remaining epochs draw their batches differently from an "
                "uninterrupted run's"
            )
        if weights is None:  # a state file of an older version: the weights are in `last`
            if last_epoch != extra.get("epoch"):
                raise EveryProcessError(
                    f"{self.last_path}: weights are from epoch {last_epoch} but the optimizer state from "
                    f"epoch {extra.get('epoch')} (written by an older version, interrupted while saving) — "
                    "delete both files to restart the stage"
                )
            weights, _ = load_checkpoint(self.last_path)
        if getattr(self.model, "ridge", None) is None:  # a finished fine-tuning run: its ridge is refitted
            weights = {k: v for k, v in weights.items() if not k.startswith("ridge.")}
        try:  # a config changed since the run started (backbone, head widths) fits another network
            self.model.load_state_dict(weights, strict=True)
            decay = [g.get("weight_decay") for g in self.optimizer.param_groups]
            self.optimizer.load_state_dict(opt_state)
            for group, base, wd in zip(self.optimizer.param_groups, self.base_lrs or [], decay, strict=False):
                group["lr"] = base  # the config's rate, not the saved one: a lowered lr counts on resume
                group["weight_decay"] = wd  # and its weight decay (said by check_resumed_settings)
        except (RuntimeError, ValueError, KeyError) as exc:
            raise EveryProcessError(
                f"{state_file}: saved by a run of another network ({type(exc).__name__}: the backbone or "
                "head sizes differ from this config) — resume with the config the run started with, or start "
                "over with --no-resume or another out_dir"
            ) from None
        self.start_epoch = int(extra["epoch"])
        self.global_step = int(extra["global_step"])
        self.history = list(extra["history"])
        if "best" in extra:
            self.best = extra["best"]
        # killed between the state and `last`, or between `last` and its .json card (the final epoch's: no
        # later epoch writes them again)
        stale = (
            last_card is None
            or last_epoch != self.start_epoch
            or not card_copy_current(self.last_path, last_card)
        )
        if stale and D.is_main():
            card = {**self.card, "epoch": self.start_epoch, "history": self.history}
            if self.validate is not None and self.history:
                drop = ("epoch", "seconds", "train_loss")
                card["metrics"] = {k: v for k, v in self.history[-1].items() if k not in drop}
            self._write_last(self.start_epoch - 1, card)
        return extra

    def warn(self, text: str) -> None:
        """A line the user should read (rank 0 only: every process would print it)."""
        if D.is_main():
            console.print(f"[yellow]{text}", highlight=False)

    def check_resumed_settings(self, saved: dict[str, Any] | None, finished: int) -> None:
        """A resume continues the saved run: refuse a changed setting that would make it another run, and
        say which allowed ones changed (see :data:`RESUME_SAID`); ``finished``: the saved epochs."""
        where = self.stage_dir
        epochs_key = self.epochs_key or f"{self.name}.epochs"
        if finished > self.epochs:
            raise EveryProcessError(
                f"{epochs_key}: {self.epochs} is fewer than the {finished} epochs the run in {where} has "
                f"finished — set it to {finished} or more to continue it, or train over it with --no-resume "
                "(or choose another out_dir)"
            )
        if not saved or self.settings is None:  # a run of an older version, or a loop without a config
            return
        now = json.loads(json.dumps(self.settings, default=str))  # as the saved one was stored: JSON
        now.pop(DATA_SETTING, None)  # compared by same_data (runs of older versions: none)
        same, same_rows = same_data(self.settings.get(DATA_SETTING), saved.get(DATA_SETTING))
        changed = [
            k for k in now if k in saved and not same_setting(now[k], saved[k]) and k not in RESUME_FREE
        ]
        moved = [k for k in changed if k in RESUME_MOVED] if same_rows else []
        changed = [k for k in changed if k not in moved]
        refused = [k for k in changed if k not in RESUME_SAID]
        if refused:
            k, others = refused[0], refused[1:]
            more = f" (and {', '.join(f'{self.name}.{o}' for o in others)})" if others else ""
            raise EveryProcessError(
                f"{self.name}.{k}: {now[k]!r} differs from the {saved[k]!r} the run in {where} was trained "
                f"with{more} — --resume continues that run: set it back, or train over it with --no-resume "
                "(or choose another out_dir)"
            )
        if not same and not same_rows:
            fix, file = self.data_fix or "restore the file", self.settings[DATA_SETTING].get("file")
            raise EveryProcessError(
                f"{file}: changed since the run in {where} started (other images, scores or "
                f"split than it trained on) — --resume continues that run: {fix}, or train over it with "
                "--no-resume (or choose another out_dir)"
            )
        if moved:
            said = ", ".join(f"{saved[k]} -> {now[k]}" for k in moved)
            self.warn(f"{self.label}: the dataset moved: {said}, same rows")
        elif same_rows and not same:  # moved with no setting of this stage naming it: label.images' folder
            said = moved_folders(saved.get(DATA_SETTING), self.settings[DATA_SETTING])
            self.warn(f"{self.label}: the dataset moved: {said}, same rows")
        if changed:
            said = ", ".join(f"{self.name}.{k} {saved[k]} -> {now[k]}" for k in changed)
            before = saved.get(epochs_key.rpartition(".")[2])
            longer = " (training longer)" if isinstance(before, int) and self.epochs > before else ""
            self.warn(
                f"{self.label}: resuming {where} after epoch {finished} with changed settings: {said}{longer}"
            )

    # -- one epoch ----------------------------------------------------------------------------------------
    def run_epoch(
        self,
        epoch: int,
        batches: Iterable,
        n_steps: int,
        on_step: Callable[[float, float], None] | None = None,
    ) -> dict[str, Any]:
        """Train one epoch on ``batches`` (``source.epoch(epoch)``); returns its loss (mean over steps and
        ranks), steps, images and start time."""
        (self.train_mode or self.net.train)()
        total = n_steps * self.epochs
        t0, loss_sum, n_img, steps = time.perf_counter(), torch.zeros((), device=self.device), 0, 0
        assert self.base_lrs is not None  # set in __post_init__
        for step, (x, y) in enumerate(batches):
            if step >= n_steps:
                break
            if self.lr_schedule != "constant":
                set_scheduled_lr(
                    self.optimizer, self.base_lrs, self.lr_schedule, self.global_step + step, total
                )
            x, y = to_device(x, self.device), to_device(y, self.device)
            loss = self.step_loss(self.net, x, y)
            self.check_finite(loss, epoch, step)
            self.optimizer.zero_grad(set_to_none=True)
            with D.collective():  # under DDP the gradients' all-reduce runs inside backward()
                loss.backward()
            self.optimizer.step()
            loss_sum += loss.detach()
            n_img += batch_len(x)
            steps += 1
            if on_step is not None:
                on_step(float(loss.detach()), n_img * D.world_size() / max(time.perf_counter() - t0, 1e-9))
        D.average_buffers(self.model)
        mean_loss = float(D.all_reduce_mean(loss_sum / max(steps, 1)))
        self.global_step += steps
        return {"loss": mean_loss, "steps": steps, "images": n_img, "t0": t0}

    def check_finite(self, loss: torch.Tensor, epoch: int, step: int) -> None:
        """Stop on a NaN / inf loss before it reaches the weights (a diverging learning rate would
        otherwise train on and save NaN weights as the best). Under DDP the flag is all-reduced, so every
        rank stops at the same step; the files of the last finished epoch stay as they were."""
        bad = D.all_reduce_sum((~torch.isfinite(loss.detach())).to(torch.float32))
        if float(bad) == 0:
            return
        mine = loss.detach()
        what = (
            "NaN" if torch.isnan(mine) else "infinite" if torch.isinf(mine) else "NaN/inf on another process"
        )
        raise self.diverged(f"loss became {what} at epoch {epoch + 1} step {step + 1}")

    def diverged(self, what: str) -> AttiqaError:
        """The one-line error of a diverged stage: what happened, the learning rate to lower, what is kept."""
        assert self.base_lrs is not None
        lrs = ", ".join(f"{lr:g}" for lr in sorted(set(self.base_lrs), reverse=True))
        kept = self.kept()
        return AttiqaError(
            f"{self.label}: {what} — lower the learning rate ({self.lr_key or self.name + '.lr'} in the "
            f"config; now {lrs}){'; ' + kept if kept else ''}"
        )

    def kept(self) -> str:
        """What a stage stopped by an error leaves to resume from ("" = nothing yet)."""
        if self.stage_dir is None or not self.last_path.exists():
            return ""
        return f"{self.last_path} (epoch {read_card(self.last_path).get('epoch')}) is kept"

    # -- checkpoints --------------------------------------------------------------------------------------
    def save_checkpoint(self, epoch: int, metrics: dict[str, float] | None, improved: bool) -> None:
        """Rank 0: ``best`` if improved; then, when due, the state file and after it ``last``."""
        if self.stage_dir is None or not D.is_main():
            return
        card = {**self.card, "epoch": epoch + 1, "history": self.history}
        if metrics is not None:
            card["metrics"] = metrics
        if improved and self.keep_best:
            save_model(self.model, self.log(self.best_path), {**card, "best_epoch": epoch + 1})
        if (epoch + 1) % max(1, self.checkpoint_every) == 0 or epoch + 1 == self.epochs:
            extra = {"epoch": epoch + 1, "global_step": self.global_step, "history": self.history,
                     "world_size": D.world_size(),
                     **({"config": self.settings} if self.settings is not None else {}),
                     **self.state_extra}  # fmt: skip
            if self.validate is not None:
                extra["best"] = self.best
            state = {k: v.detach().cpu() for k, v in self.model.state_dict().items()}
            save_training_state(self.log(state_path_for(self.last_path)), self.optimizer.state_dict(), extra,
                                model_state=state)  # fmt: skip
            self._write_last(epoch, card)

    def _write_last(self, epoch: int, card: dict[str, Any]) -> None:
        stage = self.name if epoch + 1 == self.epochs else f"{self.name}-partial"
        save_model(self.model, self.log(self.last_path), {**card, "stage": stage})

    # -- the loop -----------------------------------------------------------------------------------------
    def fit(self, resume: bool = False) -> list[dict[str, Any]]:
        """Train epochs ``start_epoch .. epochs - 1`` (after :meth:`resume`, asked or not, unless called
        before); returns the history."""
        if not self.start_checked:  # every process, resuming or not: where each starts is compared
            self.resume(resume)
        if self.wrapped is None:  # once: a re-entered or resumed fit() runs through the same net
            self.wrapped = self.model if self.wrap is None else self.wrap(self.model)
        try:
            with maybe_progress(self.progress) as prog:
                for epoch in range(self.start_epoch, self.epochs):
                    self._one(epoch, prog)
                    with D.collective():
                        D.barrier()
        except D.PeerLost as exc:
            kept = self.kept() or "no epoch had finished"
            raise AttiqaError(
                f"{self.label}: {exc.what} — {kept}; rerun the same command with --resume to continue"
            ) from None
        return self.history

    def _one(self, epoch: int, prog: Progress | None) -> None:
        batches, n_steps = self.source.epoch(epoch)
        task: TaskID | None = None
        on_step: Callable[[float, float], None] | None = None
        if prog is not None:
            task = prog.add_task(f"{self.label} {epoch + 1}/{self.epochs}", total=n_steps, loss=0.0, ips=0.0)

            def advance(lv: float, ips: float, t: TaskID = task) -> None:
                prog.update(t, advance=1, loss=lv, ips=ips)

            on_step = advance

        stats = self.run_epoch(epoch, batches, n_steps, on_step)
        metrics = self.validate() if self.validate is not None else None
        if metrics is not None and metrics[self.best_key] != metrics[self.best_key]:  # NaN: not saved
            raise self.diverged(
                f"held-out {self.best_key.upper()} is NaN after epoch {epoch + 1} (the predictions are all "
                "equal or not finite: the training diverged)"
            )
        flush_unreadable()  # the files this epoch could not read: one line each, the first time
        seconds = round(time.perf_counter() - stats["t0"], 3)
        if metrics is None:
            entry = {"epoch": epoch + 1, "loss": stats["loss"], "steps": stats["steps"], "seconds": seconds}
        else:
            entry = {"epoch": epoch + 1, "train_loss": stats["loss"], **metrics, "seconds": seconds}
        self.history.append(entry)
        improved = False
        if metrics is not None:
            improved = self.best["srocc"] is None or better(metrics[self.best_key], self.best["srocc"])
            if improved:
                self.best = {"srocc": metrics[self.best_key], "metrics": metrics, "epoch": epoch + 1}
        if prog is not None and task is not None:
            prog.remove_task(task)
        if self.progress and D.is_main() and ((epoch + 1) % self.log_every == 0 or epoch + 1 == self.epochs):
            text = f"{self.label} epoch {epoch + 1}/{self.epochs}: loss {stats['loss']:.4f}"
            if metrics is not None:
                text += (
                    f" SROCC {metrics['srocc']:.4f} PLCC {metrics['plcc']:.4f}{' (best)' if improved else ''}"
                )
            (prog.console if prog is not None else console).log(text)
        self.save_checkpoint(epoch, metrics, improved)

    def finish(self) -> None:
        """Tests: each rank records its final weights and the files it wrote (``ATTIQA_DEBUG_HASH_DIR``)."""
        self.log.debug_dump(self.model)
