"""ExIQA (paper 004): explainable IQA through distortion attributes."""

from __future__ import annotations

import shlex
import sys
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

from attiqa.io.atomic import folder_held, refuse_if_folder_held
from attiqa.io.commands import Command

# beside the run's exiqa.safetensors (`attiqa train exiqa-regressor`)
REGRESSOR_FILE = "regressor.safetensors"
FITTING = "fitting a regressor in"  # a fit holding its run folder, in a second command's line
REFIT_FIX = "let it finish, then run this fit again"  # a fit's advice: one writer of a run folder at once


def run_and_clip(arg: str) -> tuple[str, str | None]:
    """``exiqa:RUN`` or ``exiqa:RUN:CLIP_SPEC`` (the run's CLIP weights given here, e.g. a local copy on a
    machine that cannot download those its card names): the path and the spec, split at the first colon
    unless the whole argument is a path on disk."""
    if ":" not in arg or Path(arg).exists():
        return arg, None
    run, _, spec = arg.partition(":")
    return run, spec or None


def run_folder(run: str | Path) -> Path | None:
    """The folder an ExIQA run given as its ``--out`` folder or its checkpoint (``RUN[:CLIP_SPEC]``) is in,
    torch-free: both `train exiqa` and `train exiqa-regressor` write there and hold it. None when it is not
    on disk (the scorer's own line says so)."""
    path = Path(run_and_clip(str(run))[0])
    if path.is_dir():
        return path
    return path.parent if path.exists() else None


def regressor_fit_held(run: str | Path) -> AbstractContextManager[None]:
    """A regressor fit's hold of its run folder, the lock `attiqa train exiqa -o RUN` holds too: a fit on a
    run still training read its first epoch's checkpoint, and a training started meanwhile wrote the run
    under the fit. From before the scorer loads to the regressor's card."""
    folder = run_folder(run)
    if folder is None:  # nothing to hold: the scorer refuses it
        return nullcontext()
    return folder_held(folder, FITTING, REFIT_FIX, command=Command.TRAIN_EXIQA_REGRESSOR)


def refuse_if_fit_held(run: str | Path) -> None:
    """:func:`regressor_fit_held`'s one line, now, torch-free, making nothing: a fit on a held run was told
    only once it had loaded its scorer (CLIP and the checkpoint, seconds to minutes)."""
    folder = run_folder(run)
    if folder is not None:
        refuse_if_folder_held(folder, FITTING, REFIT_FIX, command=Command.TRAIN_EXIQA_REGRESSOR)


def missing_regressor(scorer: object) -> str:
    """Why ``scorer`` has no overall score — an ExIQA run without its eq. (9) regressor, NaN for every image,
    which `eval` and `genbench agree` cannot measure — in one line naming the run and the fix; "" for a scorer
    with one (any other scorer). Checked after loading, before any image is scored. Here, not in
    ``scorer.py``: an ExIQA scorer exists only once that module is loaded, so the check of any other scorer
    imports nothing (that module loads scikit-image)."""
    module = sys.modules.get("attiqa.exiqa.scorer")
    if module is None or not isinstance(scorer, module.ExiqaScorer) or scorer.regressor is not None:
        return ""
    run = scorer.path.parent
    fix = f"attiqa train exiqa-regressor {shlex.quote(str(run))} --mos MOS.csv"
    return (
        f"{run}: no {REGRESSOR_FILE} — without it this ExIQA run has no overall score (eq. 9: NaN), "
        f"only its distortion columns; fit it first: `{fix}`"
    )
