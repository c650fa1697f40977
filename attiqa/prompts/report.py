"""Outputs of prompt selection: best / median / worst pair per attribute and task (rows for a table and a
CSV), every pair's values (CSV), and the chosen prompts as a prompts JSON the ``clip`` teacher reads."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from attiqa.io.atomic import write_text_atomic
from attiqa.prompts.selection import AttributeSelection, SelectionResult
from attiqa.teachers.prompts import PromptPair, PromptSet, load_prompts

SUMMARY_COLUMNS = ("attribute", "task", "rank", "positive", "negative", "distortion", "human", "joint")


def _value(sel: AttributeSelection, task: str, ab: tuple[int, int]) -> float:
    return float(sel.values[task][ab]) if task in sel.values else float("nan")


def summary_rows(result: SelectionResult) -> list[dict]:
    """Per attribute and task that ran: the best, median and worst pair with all its task values."""
    rows = []
    for a, sel in result.attributes.items():
        for task in result.tasks:
            if task not in sel.values:
                continue
            for rank, ab in sel.pick(task).items():
                pos, neg = sel.pair(ab)
                rows.append(
                    {
                        "attribute": a,
                        "task": task,
                        "rank": rank,
                        "positive": pos,
                        "negative": neg,
                        **{t: _value(sel, t, ab) for t in ("distortion", "human", "joint")},
                    }
                )
    return rows


def _csv_text(columns: Sequence[str], rows: Iterable[Mapping[str, object]]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow(
            {
                k: (
                    f"{v:.6f}"
                    if isinstance(v, float) and np.isfinite(v)
                    else ("" if isinstance(v, float) else v)
                )
                for k, v in r.items()
            }
        )
    return buf.getvalue()


def write_summary_csv(result: SelectionResult, path: str | Path) -> Path:
    path = Path(path)
    write_text_atomic(path, _csv_text(SUMMARY_COLUMNS, summary_rows(result)))
    return path


def write_all_pairs_csv(result: SelectionResult, path: str | Path) -> Path:
    """Every attribute x positive x negative pair with its value in each task (best joint first)."""
    rows = []
    for a, sel in result.attributes.items():
        joint = sel.values["joint"]
        for flat in np.argsort(-np.nan_to_num(joint, nan=-np.inf), axis=None, kind="stable"):
            ab = np.unravel_index(flat, joint.shape)
            pos, neg = sel.pair(ab)
            rows.append(
                {
                    "attribute": a,
                    "positive": pos,
                    "negative": neg,
                    **{t: _value(sel, t, ab) for t in ("distortion", "human", "joint")},
                }
            )
    path = Path(path)
    write_text_atomic(
        path, _csv_text(("attribute", "positive", "negative", "distortion", "human", "joint"), rows)
    )
    return path


def selection_notes(result: SelectionResult, by: str = "joint") -> list[str]:
    """What a user must know about the chosen pairs (§3.3 takes the pair of highest SROCC, nothing more):
    an attribute whose best pair does not rise with it (SROCC <= 0: its labels would run backwards or at
    random), and a best value several pairs share (the first in the candidates' order is taken)."""
    notes = []
    for a, sel in result.attributes.items():
        if by not in sel.values:
            continue
        values = sel.values[by]
        ab = sel.pick(by)["best"]
        best = float(values[ab])
        pos, neg = sel.pair(ab)
        if not best > 0:
            way = "backwards" if best < 0 else "at random"
            notes.append(
                f"{a}: no candidate pair's score rises with {a} (best {by} SROCC {best:+.3f}, "
                f"{pos} / {neg}): its labels would rank photos {way} — select on more or other photos "
                "(--images, --max-images) or with --spaq, or check the model and the candidates"
            )
        tied = int(np.count_nonzero(values == values[ab]))
        if tied > 1:
            notes.append(
                f"{a}: {tied} pairs tie at the best {by} SROCC ({best:+.3f}); the first in the candidates' "
                f"order is taken ({pos} / {neg}) — more photos (--images, --max-images) or --spaq tell them "
                "apart"
            )
    return notes


def chosen_prompts(result: SelectionResult, by: str = "joint") -> PromptSet:
    """The best pair of every selected attribute by ``by`` (joint | distortion | human), as a PromptSet.

    Attributes that were not selected keep paper Table 1's pair (said in ``notes``).
    """
    base = load_prompts()
    pairs = dict(base.pairs)
    scores = {}
    for a, sel in result.attributes.items():
        if by not in sel.values:
            continue
        ab = sel.pick(by)["best"]
        pos, neg = sel.pair(ab)
        cand = sel.candidates
        pairs[a] = PromptPair(cand.prompts("positive")[ab[0]], cand.prompts("negative")[ab[1]])
        scores[a] = {"positive": pos, "negative": neg, **{t: _value(sel, t, ab) for t in sel.values}}
    kept = [a for a in pairs if a not in scores]
    notes = (
        f"Selected by the {by} SROCC of the proxy tasks ({', '.join(result.tasks)}) with {result.encoder}."
    )
    if kept:
        notes += f" Not selected here, kept from paper Table 1: {', '.join(kept)}."
    return PromptSet(
        pairs=pairs,
        name=f"selected_{by}",
        source="attiqa select-prompts (ATTIQA §3.3 selection by proxy tasks, supplement §A / Table 14)",
        template=next(iter(result.attributes.values())).candidates.template if result.attributes else None,
        notes=notes,
        extra={
            "selection": {
                "by": by,
                "encoder": result.encoder,
                "photos": result.n_photos,
                "rated_images": result.n_rated,
                "pairs": scores,
            }
        },
    )
