"""Run a whole ATTIQA job from one config: label -> pretrain -> finetune (any subset).

Under ``torchrun`` every stage runs on all ranks: labelling is sharded (rank 0 merges the parts),
pretraining and fine-tuning use DDP; only rank 0 writes files.
"""

from __future__ import annotations

import dataclasses
import os
from contextlib import AbstractContextManager, ExitStack, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from attiqa.config import LabelConfig, TrainConfig, to_dict, unread_stages
from attiqa.errors import AttiqaError, ConfigError, EveryProcessError
from attiqa.io.atomic import (
    LET_IT_FINISH,
    folder_held,
    output_folder,
    output_held,
    resumable_folder,
    write_json_atomic,
)
from attiqa.io.commands import Command

if TYPE_CHECKING:
    from attiqa.teachers import Teacher
    from attiqa.teachers.prompts import PromptSet


@dataclass
class RunResult:
    labels: Path | None = None
    pretrained: Path | None = None
    finetuned: Path | None = None
    metrics: dict | None = None


def resolve_in(out_dir: Path, p: str) -> Path:
    q = Path(p)
    return q if q.is_absolute() else out_dir / q


DEGRADE_OUT_FIX = "set degrade.out to a new folder"
"""How a train's degrade stage is pointed at a new folder: its config's option (`attiqa degrade`'s: --out)."""


def run_degrade_stage(cfg: TrainConfig, out_dir: Path, progress: bool = True) -> Path:
    """Write the graded set (rank 0; the others wait) and return its folder."""
    from attiqa.distortions.graded import say_damaged, without_graded_sets, write_graded_set
    from attiqa.distortions.versions import say_versions
    from attiqa.io.images import discover_images
    from attiqa.progress import console, plain, progress_later
    from attiqa.sharding import alike_on_every_process, barrier, is_main

    dc = cfg.degrade
    assert dc is not None
    out = resolve_in(out_dir, dc.out)
    files: list[Path] = []
    with alike_on_every_process(main_only=True):  # rank 0's refusal is the job's: the others left the barrier
        if is_main():  # waiting for it (a hang under torchrun)
            files = without_graded_sets(discover_images(dc.sources), dc.sources)
            if not files:  # was an empty graded set, then "no images found in RUN/graded" (no setting named)
                where = ", ".join(map(str, dc.sources))
                raise ConfigError(
                    f"degrade.sources: no photos in {where} besides graded or distorted sets (an earlier "
                    "degrade's or make-distorted's output, left out) — list folders of photos in "
                    "degrade.sources (a set's own folder named there is read)"
                )
    if is_main():
        with progress_later("degrading", total=len(files), disable=not progress) as adv:
            res = write_graded_set(
                files,
                out,
                dc.distortions,
                dc.levels,
                fmt=dc.fmt,
                max_side=dc.max_side,
                variants_per_source=dc.variants_per_source,
                seed=dc.seed,
                on_item=adv,
                on_start=adv.start,
                new_out=DEGRADE_OUT_FIX,
            )
        for e in res.failed:
            console.print(f"[yellow]skipped: {plain(e)}")
        say_damaged(res.damaged)
        say_versions(res.versions, out, DEGRADE_OUT_FIX)
    barrier()
    return out


CONFIG_TEACHER_FLAG = "--set label.teacher=clip:"
"""How a run config's CLIP teacher is named on `attiqa train`'s command line, in the hints of its errors
(`attiqa label`'s ``--teacher clip:`` is an option `train` does not take)."""


def label_teacher(
    lc: LabelConfig, device: str = "auto", hint_flag: str | None = None, prompts: PromptSet | None = None
) -> Teacher:
    """The label stage's teacher, loaded: its name, CLIP model and prompts file are only known good once it
    has, so a command loads it before it makes its output folder (a typo leaves no folder behind).
    ``hint_flag``: how the command takes a CLIP spec (None: `attiqa label`'s ``--teacher clip:``);
    ``prompts``: ``lc.prompts`` as the command's check read it (else the teacher reads the file)."""
    from attiqa.device import resolve_device
    from attiqa.teachers import TEACHER_FLAG, create_teacher

    return create_teacher(
        lc.teacher,
        device=resolve_device(device),
        prompts=lc.prompts if prompts is None else prompts,
        clip_scale=lc.clip_scale,
        hint_flag=hint_flag or TEACHER_FLAG,
    )


def label_inputs(lc: LabelConfig) -> list[Path]:
    """The label stage's images, found: none (an empty list, folders without images) is one line. Found
    before the teacher loads (a CLIP model takes seconds) and before a command makes its output folder."""
    from attiqa.io.images import require_images

    if not lc.images:
        raise ConfigError("label.images is empty: list the image files or folders to pseudo-label")
    return require_images(lc.images)


ADDED_PROBED = 32
"""At most this many images the label table lacks are decoded by :func:`check_label_stage_resumable` to
find a readable one: a folder of thousands of unreadable files was decoded whole before the teacher loaded."""


def check_label_stage_resumable(
    cfg: TrainConfig, out_dir: Path, paths: list[Path], graded: Path | None = None
) -> None:
    """On ``--resume`` of a run whose pretraining has a resume point, the label stage must leave the table
    that pretraining trained on as it is: an image added to ``label.images`` (a readable one: an unreadable
    file is skipped again) or left out of it changes the table, and pretraining refuses a changed table —
    after the label stage had labelled the new images (minutes to hours with CLIP) or dropped the rows
    (labelled again to set it back). Said here, before the teacher loads and before anything is written.
    ``graded``: a degrade stage's folder (one of the label stage's folders; its rows there are made again
    when missing, so they are not taken as left out)."""
    lc = cfg.label
    if (
        lc is None
        or cfg.pretrain is None
        or not any(s.startswith("pretrain") for s in earlier_training(out_dir))
    ):
        return
    from attiqa.io.names import path_text, text_path
    from attiqa.labeling import done_images, moved_rows, replaced_images
    from attiqa.progress import shown_name
    from attiqa.sharding import is_main

    table = resolve_in(out_dir, lc.out)
    if not table.is_file():  # another label.out: a new table, compared by pretraining's own check
        return
    done = done_images(table)
    wanted = {path_text(Path(os.path.abspath(p))): p for p in paths}
    roots = [*lc.images, *([str(graded)] if graded is not None else [])]
    try:  # a moved images folder: the label stage follows it (the one rule, labeling's)
        moved = moved_rows(sorted(done), list(wanted), roots)
    except AttiqaError as exc:
        raise EveryProcessError(f"label.images: {exc}") from None
    done = {moved.get(d, d) for d in done}
    dropped = sorted(done - wanted.keys())
    if graded is not None:
        dropped = [d for d in dropped if not text_path(d).is_relative_to(graded.absolute())]
    replaced = sorted(replaced_images(table, [Path(os.path.abspath(p)) for p in paths]))
    if replaced:  # labelled again, the table then another: said before the label stage drops their rows
        raise EveryProcessError(
            f"label.images: {len(replaced)} image(s) replaced since they were labelled into {table.name}, "
            f"e.g. {shown_name(text_path(replaced[0]))} (labelled again: another table than the run in "
            f"{out_dir / 'pretrain'} was pretrained on) — --resume continues that run: put them back, or "
            "train over it with --no-resume (or choose another out_dir)"
        )
    added = [p for text, p in wanted.items() if text not in done]
    readable = first_readable(added)  # the first one the label stage would label: a valid image
    if readable is None and len(added) > ADDED_PROBED and not dropped and is_main():
        from attiqa.progress import console

        console.print(
            f"[yellow]label.images: {len(added)} images not in {table.name}, the first {ADDED_PROBED} "
            "unreadable (not decoded further here); the label stage tries the others — a readable one "
            "makes the pretraining refuse the table",
            highlight=False,
        )
    if readable is None and not dropped:
        return
    said = []
    if readable is not None:
        said.append(f"{table.name} lacks {len(added)} of them, e.g. {shown_name(readable)}")
    if dropped:
        said.append(f"it holds {len(dropped)} not listed, e.g. {shown_name(dropped[0])}")
    fix = "set label.images" + (" and degrade.sources" if cfg.degrade else "") + " back"
    raise EveryProcessError(
        f"label.images: other images than the run in {out_dir / 'pretrain'} was pretrained on "
        f"({'; '.join(said)}) — --resume continues that run: {fix}, or train over it with --no-resume (or "
        "choose another out_dir)"
    )


DEGRADE_FILES = ("distortions", "levels", "variants_per_source", "seed")
"""The degrade settings that choose which graded files a source gets: other values add files to the set
(the order of ``distortions`` and ``levels`` and the ``seed`` only when ``variants_per_source`` draws)."""


def check_degrade_stage_resumable(cfg: TrainConfig, out_dir: Path) -> None:
    """:func:`check_label_stage_resumable` for a run with a degrade stage, whose images are all found only
    once it ran (was: not checked — the graded copies of an added source made and labelled, minutes, then
    pretraining refused the table): a readable source the graded set was not made from, or settings that
    give its sources other files, are refused here before anything is written; then ``label.images`` and
    the graded set as it is are checked as without a degrade stage."""
    dc, lc = cfg.degrade, cfg.label
    if (
        dc is None
        or lc is None
        or cfg.pretrain is None
        or not any(s.startswith("pretrain") for s in earlier_training(out_dir))
    ):
        return
    import json

    from attiqa.distortions.graded import new_sources, replaced_sources, without_graded_sets
    from attiqa.io.images import discover_images, require_images
    from attiqa.progress import shown_name

    graded = resolve_in(out_dir, dc.out)
    try:
        before = json.loads((out_dir / "config.json").read_text()).get("degrade") or {}
    except (OSError, ValueError, AttributeError):
        before = {}
    drawn = dc.variants_per_source is not None
    for key in DEGRADE_FILES:
        was, now = before.get(key, getattr(dc, key)), getattr(dc, key)
        if not drawn and key in ("distortions", "levels"):
            was, now = sorted(was), sorted(now)
        if was != now and (drawn or key != "seed"):
            raise EveryProcessError(
                f"degrade.{key}: {getattr(dc, key)!r} differs from the {before[key]!r} the run in {out_dir} "
                f"was made with (other graded images than the run in {out_dir / 'pretrain'} was pretrained "
                f"on) — --resume continues that run: set it back, or train over it with --no-resume (or "
                "choose another out_dir)"
            )
    sources = without_graded_sets(require_images(dc.sources), dc.sources, say=False)
    added = new_sources(sources, graded, DEGRADE_OUT_FIX)
    readable = first_readable(added)
    if readable is not None:
        raise EveryProcessError(
            f"degrade.sources: {len(added)} image(s) the graded set in {graded} was not made from, e.g. "
            f"{shown_name(readable)} (their graded copies: other images than the run in "
            f"{out_dir / 'pretrain'} was pretrained on) — --resume continues that run: set degrade.sources "
            "back, or train over it with --no-resume (or choose another out_dir)"
        )
    replaced = replaced_sources(sources, graded)
    if replaced:
        raise EveryProcessError(
            f"degrade.sources: {len(replaced)} image(s) replaced since the graded set in {graded} was "
            f"made from them, e.g. {shown_name(replaced[0])} (their graded copies made again: other images "
            f"than the run in {out_dir / 'pretrain'} was pretrained on) — --resume continues that run: put "
            "them back, or train over it with --no-resume (or choose another out_dir)"
        )
    paths = label_inputs(lc) if lc.images else []
    paths += discover_images([graded]) if graded.is_dir() else []
    check_label_stage_resumable(cfg, out_dir, paths, graded)


def first_readable(paths: list[Path]) -> Path | None:
    """The first of ``paths`` (at most :data:`ADDED_PROBED` tried) that decodes: unreadable files are
    skipped by the label stage, so they change no table."""
    from attiqa.io.images import load_image

    for p in paths[:ADDED_PROBED]:
        try:
            load_image(p)
        except (AttiqaError, OSError, ValueError):
            continue
        return p
    return None


def run_label_stage(
    cfg: TrainConfig,
    out_dir: Path,
    progress: bool = True,
    device: str = "auto",
    teacher: Teacher | None = None,
    paths: list[Path] | None = None,
    prompts: PromptSet | None = None,
) -> Path:
    """Pseudo-label ``cfg.label.images`` into its Parquet table (``paths``: already found by
    :func:`label_inputs`, ``teacher``: already loaded by :func:`label_teacher`; else found and loaded here,
    in that order; ``prompts``: the label config's prompts file, read already)."""
    from attiqa.labeling import (
        check_label_output,
        env_rank_world,
        keep_only,
        kept_words,
        label_images,
        merge_parts,
    )
    from attiqa.progress import plain, plain_name, progress_later
    from attiqa.sharding import PeerLost, alike_on_every_process, barrier, gather_objects

    lc = cfg.label
    assert lc is not None
    out = resolve_in(out_dir, lc.out)
    with alike_on_every_process():  # under torchrun: said once (each process said it)
        if paths is None:
            paths = label_inputs(lc)
        check_label_output(out)
        if teacher is None:
            teacher = label_teacher(lc, device, prompts=prompts)
    rank, world = env_rank_world()
    if rank == 0:  # the log says which teacher made the labels (the paper's is CLIP; docs/method.md)
        from attiqa.progress import console

        console.print(f"teacher: {lc.teacher}" + ("" if lc.teacher.startswith("clip") else " (not CLIP)"))
    try:
        # the bar, once this process's share is known (the kept images counted from its first frame): under
        # torchrun rank 0's bar counted its share against every image ("10/19" at its end read as 9 lost)
        what = lc.teacher if world == 1 else f"{lc.teacher}; rank 0 of {world}: its share"
        with progress_later(f"labelling ({what})", disable=not progress or rank != 0) as bar:
            res = label_images(
                paths,
                teacher,
                out,
                lc.batch_size,
                lc.num_workers,
                rank,
                world,
                on_batch=lambda n, f: bar(n + f),
                on_start=lambda kept, share: bar.start(kept, kept + share),
                roots=lc.images,
            )
        failed = [plain(e) for e in res.failed]
        left_out: list[str] = []
        if world > 1:
            barrier()
            if rank == 0:  # before the gather, which the others wait at: they read the table after
                merge_parts(out, roots=lc.images)
                left_out = keep_only(out, paths)
            failed = [e for part in gather_objects(failed) for e in part]  # every rank's, said once (rank 0)
        else:
            left_out = keep_only(out, paths)
    except PeerLost as exc:  # was gloo's traceback at the barrier; what is kept is read from the disk
        raise AttiqaError(f"label: {exc.what} — {kept_words(out, paths)}") from None
    if left_out:
        from attiqa.progress import console

        names = ", ".join(plain_name(n) for n in left_out[:3]) + (", …" if len(left_out) > 3 else "")
        console.print(
            f"[yellow]label: {len(left_out)} labelled image(s) not in label.images left out of "
            f"{plain_name(out)} (an earlier run's: {names})",
            highlight=False,
        )
    if failed and rank == 0:
        from attiqa.progress import console

        console.print(f"[yellow]skipped {len(failed)} unreadable image(s):", highlight=False)
        for e in failed[:20]:
            console.print(f"  {e}", highlight=False)
    return out


def earlier_training(out_dir: Path) -> list[str]:
    """The stages of an earlier run in ``out_dir`` that left a resume point (``pretrain``, ``finetune``,
    ``finetune/heads``, ...), so a rerun of the same command can ask before training over them."""
    found = [*out_dir.glob("*/last.state.safetensors"), *out_dir.glob("*/*/last.state.safetensors")]
    return sorted(str(p.parent.relative_to(out_dir)) for p in found)


def label_table_held(table: Path) -> AbstractContextManager[None]:
    """The label stage's table held by its writer (rank 0), as `attiqa label -o` holds it: a train and a
    `label -o` of one table, or two trains sharing a ``label.out``, labelled into it together. Held to the
    run's end: its pretraining reads the table."""
    return output_held(
        table, "training from", f"{LET_IT_FINISH}, or choose another label.out", command=Command.TRAIN
    )


def degrade_folder_held(out_dir: Path, graded: Path) -> AbstractContextManager[None]:
    """The degrade stage's folder ``graded`` held by this run as `attiqa degrade -o` holds its --out: a user's
    `attiqa degrade -o RUN/graded` while the stage wrote it went ahead (each made the images the other had
    not, and wrote the record over the other's, to exit 0). Held to the run's end: the label stage reads it.
    Nothing of its own when it is ``out_dir`` itself (held already)."""
    if os.path.realpath(graded) == os.path.realpath(out_dir):
        return nullcontext()
    fix = f"{LET_IT_FINISH}, or {DEGRADE_OUT_FIX}"
    return folder_held(graded, "degrading into", fix, command=Command.TRAIN, make="degrade.out")


def out_dir_held(out_dir: Path) -> AbstractContextManager[None]:
    """An existing ``out_dir`` held by this run (:func:`attiqa.io.atomic.folder_held`): two `attiqa train`
    into it at once (or a ``--resume`` of a run still training) each trained over the other's files. The
    second is one line naming it."""
    fix = "let it finish (a stopped run continues with --resume), or choose another --out-dir"
    return folder_held(out_dir, "training in", fix, command=Command.TRAIN)


def interrupted_words(cfg: TrainConfig, since: float | None = None) -> str:
    """What an interrupted ``attiqa train`` kept and how to continue (was a bare "interrupted");
    ``since``: when the command started — a stage saved before (an earlier run a ``--no-resume`` had not
    yet trained over) is not this run's to continue."""
    import json

    from attiqa.training.finetune import parts_trained_again

    out_dir = Path(cfg.out_dir)
    init = finetune_init(cfg, out_dir)
    changing = cfg.pretrain is not None and pretraining_goes_on(out_dir / "pretrain", cfg.pretrain.epochs)
    again = parts_trained_again(out_dir / "finetune", init, changing) if cfg.finetune is not None else []
    kept = []
    for stage in earlier_training(out_dir):
        last = out_dir / stage / "last.json"
        try:
            if since is not None and last.stat().st_mtime < since or stage in again:
                continue
            epoch = json.loads(last.read_text())["epoch"]
            kept.append(f"{stage} after epoch {epoch}")
        except (OSError, ValueError, KeyError, TypeError):
            kept.append(stage)
    # a fine-tuning saved from earlier weights of its start (pretraining trained on) is not continued: was
    # listed as kept, for the resume to continue
    over = (f" — it fine-tunes {', '.join(again)} again (saved from earlier weights of {init}), over their "
            "files") if again else ""  # fmt: skip
    if kept:
        where = f"{', '.join(kept)} kept in {out_dir}"
        return f"interrupted: {where}; rerun the same command with --resume to continue{over}"
    made = [
        *(["graded copies"] if cfg.degrade is not None else []),
        *(["labels"] if cfg.label is not None else []),
    ]
    kept_now = f" (the {' and '.join(made)} made so far are kept)" if made else ""
    return f"interrupted before an epoch finished{kept_now}; rerun the same command to continue{over}"


def pretraining_goes_on(stage_dir: Path, epochs: int) -> bool:
    """Whether a resume rewrites the pretrained model in ``stage_dir`` from other weights than it holds, as
    the files on disk say at this instant: its saved state has fewer than ``epochs`` epochs done (it trains
    on), or one more recent than the model (a run stopped after its last epoch was saved, before the model
    was rewritten: was read as done from ``last.json``, the fine-tuning said kept). No or an unreadable
    state: false."""
    from safetensors import SafetensorError

    from attiqa.io.checkpoints import TrainingStateFile, read_card
    from attiqa.training.trainer import state_path_for

    try:
        with TrainingStateFile(state_path_for(stage_dir / "last.safetensors")) as state:
            saved = (state.extra["epoch"], state.extra.get("global_step"))
    except (OSError, ValueError, KeyError, TypeError, SafetensorError):
        return False
    if not isinstance(saved[0], int) or isinstance(saved[0], bool):  # unreadable too (was: true)
        return False
    if saved[0] < epochs:
        return True
    try:
        card = read_card(stage_dir / "model.safetensors")
    except (AttiqaError, OSError, ValueError):
        return True  # none yet (or unreadable): the resume writes it from the trained weights
    # a card without its step — the cached-features loop's (attiqa.training.cached writes none), an older
    # version's: compared by its epochs alone
    step = card.get("global_step", saved[1])
    return (card.get("epoch"), step) != saved


def finetune_init(cfg: TrainConfig, out_dir: Path) -> Path | None:
    """The checkpoint a run's fine-tuning starts from: its pretrain stage's model, or
    ``pretrained_checkpoint``; None: a fresh network (the config's backbone)."""
    if cfg.pretrain is not None:
        return out_dir / "pretrain" / "model.safetensors"  # what pretrain() returns
    return Path(cfg.pretrained_checkpoint) if cfg.pretrained_checkpoint else None


def check_devices(cfg: TrainConfig) -> None:
    """Every training stage's ``device:`` exists on this machine, so a ``cuda:3`` in the last stage is
    one line before the first stage runs (:func:`attiqa.device.resolve_device` says why)."""
    from attiqa.device import resolve_device

    for stage in ("pretrain", "finetune"):
        sc = getattr(cfg, stage)
        if sc is not None:
            try:
                resolve_device(sc.device)
            except ConfigError as exc:
                raise ConfigError(
                    f"{stage}.device: {exc} (in the config or with --set {stage}.device=cpu)"
                ) from None


def check_outputs(cfg: TrainConfig, out_dir: Path) -> None:
    """The folders the stages write besides ``out_dir`` — the graded set, the label table's folder, a
    stage's feature cache — can be made and written, before any stage runs: a file in the way was found when
    its stage first wrote there (a feature cache's after the labelling and the pretraining had run)."""
    folders: list[tuple[str, Path, str]] = []
    if cfg.degrade is not None:
        folders.append(("degrade.out", resolve_in(out_dir, cfg.degrade.out), "point degrade.out at a folder"))
    if cfg.label is not None:
        table = resolve_in(out_dir, cfg.label.out)
        folders.append(("label.out", table.parent, "point label.out at a file in a writable folder"))
    for stage in ("pretrain", "finetune"):
        sc = getattr(cfg, stage)
        if sc is None or not (sc.feature_cache or getattr(sc, "ridge_taps", None)):
            continue
        key = f"{stage}.feature_cache_dir"
        if sc.feature_cache_dir:
            folders.append(
                (key, Path(sc.feature_cache_dir).expanduser(), f"point {key} at a writable folder")
            )
        else:
            from attiqa.io.cache_home import cache_dir

            folders.append(
                (key, cache_dir() / "features", f"set ATTIQA_CACHE, or {key}, to a writable folder")
            )
    for key, folder, fix in folders:
        try:
            output_folder(folder, fix=fix, create=False)
        except AttiqaError as exc:
            raise ConfigError(f"{key}: {exc}") from None


def without_unread_stages(cfg: TrainConfig) -> TrainConfig:
    """``cfg`` without its degrade and label stages when they feed nothing: their labels are read by
    pretraining only, and a fine-tuning run without it (`--set pretrain=null` on configs/paper_resnet50.yaml)
    labelled every image first — with CLIP, days of the paper's ImageNet — and made the graded copies, for a
    table no stage read. Said in one line (rank 0); a label-only run (no finetune:) keeps them. Which ones:
    :func:`attiqa.config.unread_stages` (their inputs are not checked either). `attiqa train` takes its config
    from here before :func:`run` (its Ctrl-C words named the labels of a skipped stage as kept); a second
    call has nothing to skip and says nothing."""
    unread = unread_stages(cfg)
    if not unread:
        return cfg
    from attiqa.launch import launched_rank

    if launched_rank() == 0:
        from attiqa.progress import console

        console.print(
            f"[yellow]{', '.join(unread)}: skipped — {'their' if len(unread) > 1 else 'its'} labels are read "
            "by pretraining only, and the run has no pretrain: section (to make the labels alone: --set "
            "finetune=null)",
            highlight=False,
        )
    return dataclasses.replace(cfg, degrade=None, label=None)


def run(cfg: TrainConfig, resume: bool = False, progress: bool = True) -> RunResult:
    from attiqa.sharding import alike_on_every_process, is_main, process_group

    cfg = without_unread_stages(cfg)
    out_dir = Path(cfg.out_dir)
    with ExitStack() as held, process_group():  # out_dir held by rank 0, the writer, to the run's end
        with alike_on_every_process(main_only=True):  # rank 0, the writer, holds it: its line is the job's
            held_before = is_main() and out_dir.is_dir()  # before its checks read it: another run may be
            if held_before:  # training in it
                held.enter_context(out_dir_held(out_dir))
        with alike_on_every_process():  # the checks before any work: under torchrun said once (each said it)
            check_devices(cfg)
            resumed = resume and bool(earlier_training(out_dir))
            if resumed:  # was "choose another out_dir", or a failed save later
                resumable_folder(out_dir, "out_dir (--out-dir)", "the run in it")
            else:
                output_folder(out_dir, "out_dir (--out-dir)", create=False)
            check_outputs(cfg, out_dir)  # after out_dir: label.out is in it by default
        with alike_on_every_process():
            # the label stage's images, then its teacher, before out_dir is made: a folder without images, a
            # CLIP model or prompts file that is not there is one line and no folder, and no model is loaded
            # for the images' line (a config's other settings were checked when it was read). A degrade stage
            # adds its output to the images: they are found once it has run.
            lc = cfg.label
            paths = label_inputs(lc) if lc is not None and cfg.degrade is None else None
            if paths is not None and len(paths) < 2 and cfg.pretrain is not None:  # was found only after
                raise ConfigError(  # the labelling, as "labels.parquet: 1 rows", the run folder made
                    f"label.images: only one image found ({paths[0]}) — pretraining ranks pairs of "
                    "images: list at least 2 (the more photos, the better the attribute heads)"
                )
            if lc is not None:
                from attiqa.labeling import check_label_output

                check_label_output(resolve_in(out_dir, lc.out))
            if resume and paths is not None:
                check_label_stage_resumable(cfg, out_dir, paths)
            elif resume:  # with a degrade stage its images are only all known once it ran
                check_degrade_stage_resumable(cfg, out_dir)
            saved_starts = None  # what the check read of the fine-tuning's states: handed to finetune()
            if resume and cfg.finetune is not None:  # was refused only once the stages before it had run
                from attiqa.training.finetune import check_resumed_start

                fc = cfg.finetune
                saved_starts = check_resumed_start(
                    out_dir / "finetune", fc.backbone, fc.pretrained_backbone, finetune_init(cfg, out_dir)
                )
            # a run config's teacher is label.teacher (was advised as --teacher, which train does not take)
            teacher = None
            if lc is not None:
                from attiqa.teachers.prompts import PromptFileError

                try:
                    teacher = label_teacher(lc, hint_flag=CONFIG_TEACHER_FLAG)
                except PromptFileError as exc:  # was the file's line alone: which setting named it?
                    raise ConfigError(f"label.prompts: {exc}") from None
            # the fine-tuning table too: a CSV naming images that are not there (or no CSV) was its line
            # only after the labelling and the pretraining had run
            ft_data = None
            if cfg.finetune is not None:
                from attiqa.training.data import read_mos_split

                fc = cfg.finetune
                if fc.dataset:
                    from attiqa.protocols import dataset_split

                    ft_data = dataset_split(fc)
                else:
                    ft_data = read_mos_split(fc.csv, fc.image_root, fc.val_fraction, fc.split_seed)
        with alike_on_every_process(main_only=True):
            if is_main():
                output_folder(out_dir, "out_dir (--out-dir)")
                if not held_before:  # made now (two fresh runs both found none: one holds it)
                    held.enter_context(out_dir_held(out_dir))
                if cfg.label is not None:  # the table `attiqa label -o` holds too: both labelled into it
                    held.enter_context(label_table_held(resolve_in(out_dir, cfg.label.out)))
                if cfg.degrade is not None:  # the folder `attiqa degrade -o` holds too: both wrote into it
                    held.enter_context(degrade_folder_held(out_dir, resolve_in(out_dir, cfg.degrade.out)))
        record = to_dict(cfg)  # a resumed run's once its stages took it: a resume a stage refuses (another
        if is_main() and not resumed:  # batch size, ...) left config.json saying what no run trained with
            write_json_atomic(out_dir / "config.json", record)
        result = RunResult()
        if cfg.degrade is not None:
            graded = run_degrade_stage(cfg, out_dir, progress)
            if cfg.label is not None and str(graded) not in cfg.label.images:
                cfg.label.images = [*cfg.label.images, str(graded)]
        if cfg.label is not None:
            result.labels = run_label_stage(cfg, out_dir, progress, teacher=teacher, paths=paths)
        if cfg.pretrain is not None:
            from attiqa.training.pretrain import pretrain

            fix, roots = "", []
            if result.labels is not None:  # the label stage's table: made from the config's images
                labels = result.labels
                fix = "set label.images" + (" and degrade.sources" if cfg.degrade else "") + " back"
                if cfg.label is not None:  # the images (then a graded set) in that order wherever the
                    roots = cfg.label.images  # folders are, named under them: one of them may move
            elif cfg.labels:
                labels = Path(cfg.labels)
            else:
                labels = resolve_in(out_dir, cfg.label.out) if cfg.label else out_dir / "labels.parquet"
            result.pretrained = pretrain(
                cfg.pretrain, labels, out_dir, resume=resume, progress=progress, labels_fix=fix, roots=roots
            )
        if cfg.finetune is not None:
            from attiqa.training.finetune import finetune

            init = result.pretrained or finetune_init(cfg, out_dir)
            ft = finetune(
                cfg.finetune, init, out_dir, resume=resume, progress=progress, data=ft_data,
                start_checked=saved_starts,  # check_resumed_start, above
            )  # fmt: skip
            # The last epoch's model, not `best`: the best epoch is picked on the same held-out split the
            # metrics are measured on, so its numbers are optimistic (issue 18).
            result.finetuned, result.metrics = ft.last_checkpoint, ft.last_metrics
        if is_main() and resumed:
            write_json_atomic(out_dir / "config.json", record)
        return result
