"""The one rule of a random split and of a fine-tuning split's sides, torch-free: ``attiqa train``'s table
(:mod:`attiqa.training.data`) and every ``attiqa bench`` split (:mod:`attiqa.bench_splits`, checked before
torch loads) use these; and the one sentence for a split of whole groups whose share is far from the one
asked (:func:`say_share`: bench's group-aware splits, ``isp-tune``'s by scene or camera)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from attiqa.errors import AttiqaError
from attiqa.progress import console, plain

MIN_PER_SIDE = 2  # a ranking correlation needs 2 images; so does a MOS range to learn

SHARE_SLACK = 0.05
"""How far (as a share of the items) a split of whole groups may hold out from the share asked before it is
said (:func:`say_share`): groups come whole, so 2 groups hold out half the data where 80/20 was asked."""


def say_share(
    who: str,
    n: int,
    groups: Sequence[str],
    held: Sequence[int],
    share: float,
    asked: float,
    fix: str,
    *,
    items: str = "images",
    kind: str = "groups",
    asked_by: str = "",
    splits: int = 1,
) -> None:
    """One warning line when ``splits`` of whole groups hold out (on average) ``share`` of the ``n`` items,
    over :data:`SHARE_SLACK` from ``asked``: ``groups`` each item's group (``kind`` names them: groups,
    scene groups, cameras), ``held`` how many groups a split held out, ``fix`` what helps, ``asked_by`` the
    option that asked. The one sentence of ``attiqa bench``'s group-aware splits and ``isp-tune``'s splits
    by scene or camera — torch-free, so said before torch loads. Items each their own group are silent: the
    gap is then a whole item's rounding, which no seed changes (7 raws without a manifest said 57/43 at
    every seed)."""
    n_groups = len(set(groups))
    if abs(share - asked) <= SHARE_SLACK or n_groups == n:
        return
    held_words = f"{min(held)}–{max(held)}" if min(held) != max(held) else str(held[0])
    asked_words = f"{round((1 - asked) * 100)}/{round(asked * 100)}"
    got = f"{round((1 - share) * 100)}/{round(share * 100)}"
    avg = " on average" if splits > 1 else ""
    console.print(
        f"[yellow]{plain(who)}: its {n} {items} fall in {n_groups} {kind} and a split holds out whole {kind} "
        f"({held_words} of {n_groups}): train/test is {got}{avg}, not the {asked_words} asked{asked_by} — "
        f"{fix}",
        highlight=False,
    )


def split_indices(n: int, val_fraction: float = 0.2, seed: int = 0) -> tuple[list[int], list[int]]:
    """Paper §4.1: random 80/20 train/test split when the dataset has no official split.

    Deterministic for a seed (numpy PCG64); at least one item on each side when n >= 2.
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    perm = np.random.default_rng(seed).permutation(n)
    n_val = int(round(n * val_fraction))
    n_val = min(max(n_val, 1), n - 1) if n >= 2 else 0
    return sorted(perm[n_val:].tolist()), sorted(perm[:n_val].tolist())


def check_split(
    mos: Any, train: Sequence[int], held_out: Sequence[int], source: str, given: str, fix: str
) -> None:
    """The one rule for a fine-tuning split, checked before any training (``attiqa train``'s table, every
    ``bench`` split): :data:`MIN_PER_SIDE` rows on each side and held-out MOS that differ — else the
    held-out SROCC is NaN, later reported as a diverged training. ``given``: what the split gave;
    ``fix``: what to change. ``mos``: every row's MOS (a tensor, an array or a list), indexed by the sides."""
    if len(train) < MIN_PER_SIDE or len(held_out) < MIN_PER_SIDE:
        raise AttiqaError(
            f"{source}: {given} — fine-tuning needs at least {MIN_PER_SIDE} on each side ({fix})"
        )
    values = [float(mos[i]) for i in held_out]
    if not max(values) > min(values):
        raise AttiqaError(
            f"{source}: all {len(held_out)} held-out MOS values are {values[0]:g} — a ranking "
            "correlation needs different scores (hold out other rows)"
        )
