"""The comparison report: per-image CSV, summary JSON, a markdown table and a PNG grid of full-res crops."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from attiqa.io.atomic import atomic_path, write_json_atomic, write_text_atomic

METHOD_LABELS = {
    "neutral": "neutral defaults",
    "rawpy": "rawpy.postprocess()",
    "cma_global": "global CMA-ES",
    "cma_per_image": "per-image CMA-ES",
    "agent": "RL agent",
    "teacher": "teacher policy",
}
COLUMNS = ("mos", "guarded", "clipped", "saturation")
GRID_ROWS = 8  # held-out raws shown in grid.png (the first ones)


def label(method: str, labels: dict[str, str] | None = None) -> str:
    """A method's name in the report: a policy's from ``labels`` (:func:`policy_label`), else the table's."""
    if labels and method in labels:
        return labels[method]
    return METHOD_LABELS.get(method, method.replace("_", " "))


def policy_label(name: str, card: dict[str, Any]) -> str:
    """What a policy is, read from its card — ``teacher policy (ridge)``, ``RL agent (SAC)`` — not guessed
    from the name it was given (``--run agent=RUN`` may be a teacher); that name leads when it is not the
    kind's own (``agent_real_only: RL agent (SAC)``), so several policies of one kind stay apart."""
    algo = str(card.get("algo", ""))
    if algo == "teacher":
        kind = card.get("teacher", {}).get("kind") or card.get("policy_kwargs", {}).get("kind")
        what, own = (f"teacher policy ({kind})" if kind else "teacher policy"), "teacher"
    else:
        what, own = (f"RL agent ({algo.upper()})" if algo else "RL agent"), "agent"
    return what if name == own else f"{name}: {what}"


def policy_record(card: dict[str, Any]) -> dict[str, Any]:
    """What summary.json records of an evaluated policy, read from its card (``benchmarks/isp_heldout.py``
    evaluates loaded policies, whose algorithm and actions are theirs, not its own configuration's)."""
    env = card.get("env", {})
    return {
        "algo": card.get("algo"),
        "action_mode": env.get("action_mode"),
        "obs_mode": env.get("obs_mode"),
        "max_steps": env.get("max_steps"),
        "timesteps": card.get("timesteps"),
        "train_raws": len(card.get("train_raws", [])),
    }


def methods_in(rows: list[dict[str, Any]]) -> list[str]:
    seen = list(dict.fromkeys(r["method"] for r in rows))
    return [m for m in METHOD_LABELS if m in seen] + [m for m in seen if m not in METHOD_LABELS]


# The candidates of a checked setting (session 44, ours; :func:`isp_env.tuning.checked_setting`), in order of
# preference: the policy's, the base it offsets from, the neutral defaults. A later one replaces an earlier
# one only when the reward says it is better by more than float rounding (:func:`better_than`). Here, not in
# isp_env.tuning: the report counts them, and tuning already uses the report's better_than.
CHECK_CANDIDATES = ("policy", "base", "neutral")


def kept_counts(kept: Iterable[str]) -> dict[str, int]:
    """How often each candidate of a checked setting (:data:`CHECK_CANDIDATES`) was kept:
    the report's and ``isp-tune check``'s counts, from the rows' ``kept``."""
    seen = list(kept)
    return {c: seen.count(c) for c in CHECK_CANDIDATES}


def better_than(mos: float, neutral_mos: float) -> bool:
    """Better than neutral by more than float rounding: a render of neutral's own setting (a search or policy
    that kept it) is scored in another batch and differs in the last float32 digits, which is not a win."""
    return mos > neutral_mos and not np.isclose(mos, neutral_mos, rtol=1e-5, atol=1e-6)


def summarise(
    rows: list[dict[str, Any]], budgets: dict[str, dict[str, int]], labels: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """Per method: means over the test raws, scorer calls, and the issue-19 goal measures against neutral;
    ``labels``: the policies' (:func:`policy_label`)."""
    out = []
    by = {(r["image"], r["method"]): r for r in rows}
    images = sorted({r["image"] for r in rows})
    for method in methods_in(rows):
        mine = [by[(i, method)] for i in images if (i, method) in by]
        n = len(mine)
        b = budgets.get(method, {})
        s = {
            "method": method,
            "label": label(method, labels),
            "n_images": n,
            **{f"mean_{c}": float(np.mean([r[c] for r in mine])) for c in COLUMNS if c in mine[0]},
            "std_mos": float(np.std([r["mos"] for r in mine])),
            "train_scorer_calls": int(b.get("train", 0)),
            "test_scorer_calls": int(b.get("test", 0)),
            "scorer_calls_per_image": round(int(b.get("test", 0)) / max(n, 1), 1),
            **({"scorer_calls_asked": int(b["asked"])} if "asked" in b else {}),
            **({"scorer_calls_searched": int(b["searched"])} if "searched" in b else {}),
        }
        base = [by.get((r["image"], "neutral")) for r in mine]
        if all(x is not None for x in base):
            pairs = [(r, x) for r, x in zip(mine, base, strict=True) if x is not None]
            s["beats_neutral"] = float(np.mean([better_than(r["mos"], x["mos"]) for r, x in pairs]))
            if "guarded" in mine[0]:  # what a checked setting is sure of (isp_env.tuning.checked_setting)
                wins = [better_than(r["guarded"], x["guarded"]) for r, x in pairs]
                s["beats_neutral_guarded"] = float(np.mean(wins))
        out.append(s)
    return out


def beats_cells(s: dict[str, Any]) -> tuple[str, str]:
    """A method's shares of raws above neutral by MOS and by guarded score (``"67 %"``; blank for neutral
    itself and where not measured): the report's and the printed table's."""
    show = "beats_neutral" in s and s["method"] != "neutral"
    beats = f"{100 * s['beats_neutral']:.0f} %" if show else ""
    beats_g = f"{100 * s['beats_neutral_guarded']:.0f} %" if show and "beats_neutral_guarded" in s else ""
    return beats, beats_g


def printed_table(summary: list[dict[str, Any]]) -> tuple[dict[str, str], list[tuple[str, list[str]]], str]:
    """``isp-tune``'s printed table: columns (header -> short header), rows and the legend. With the share of
    raws whose guarded score beats neutral's (``> neutral, guarded``): means alone at two digits showed an
    agent that beat neutral on most raws and one that beat it on none alike (report.md had the share)."""
    columns = {
        "mean MOS": "MOS",
        "guarded": "guarded",
        "> neutral, guarded": "beats",
        "clipped": "clipped",
        "saturation": "satur.",
        "calls (train)": "calls",
        "calls / test raw": "calls/r",
    }
    rows = [
        (
            str(s["label"]),
            [
                f"{s['mean_mos']:.2f}",
                f"{s['mean_guarded']:.2f}",
                beats_cells(s)[1],
                f"{100 * s['mean_clipped']:.1f} %",
                f"{s['mean_saturation']:.3f}",
                str(s["train_scorer_calls"]),
                f"{s['scorer_calls_per_image']:g}",
            ],
        )
        for s in summary
    ]
    legend = (
        "MOS, guarded: means over the held-out raws; beats: share of them on which the guarded score is "
        "above neutral's; satur.: mean saturation; calls: scorer calls in training; calls/r: scorer calls "
        "per test raw (report.md has the whole table)"
    )
    return columns, rows, legend


# what a policy's training calls outside its budgeted CMA-ES searches went to (report.md's calls line)
BESIDES_SEARCHES = {"teacher": "its cross-validation's renders", "agent": "its RL training"}


def used_of_asked(s: dict[str, Any]) -> str:
    """A method's calls used of those asked: a baseline's in all; a policy's in its budgeted searches
    (``scorer_calls_searched``: its base's and a teacher's per-raw targets), the rest said apart."""
    total = s["train_scorer_calls"] + s["test_scorer_calls"]
    searched = s.get("scorer_calls_searched", total)
    text = f"{s['label']} {searched} of the {s['scorer_calls_asked']}"
    if searched == total:
        return text
    besides = BESIDES_SEARCHES.get(s["method"], "its training")
    return f"{text} in its CMA-ES searches (and {total - searched} more for {besides})"


def markdown(summary: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    view = meta.get("view_shorter")
    scale = f"shorter side {view}, one pass" if view else f"previews of long side {meta.get('preview')}"
    held = str(meta.get("n_test"))
    if meta.get("n_held_out"):  # a sample of the held-out raws was evaluated
        held = f"{held} evaluated of {meta['n_held_out']}, spread over the scene groups by `--test-raws`"
    checked = meta.get("checked_policy")  # isp-tune check: a folder's raws, not a run's held-out ones
    split = meta.get("split") or {}
    if split.get("group_by") == "camera":  # --group-by camera: which cameras the policy never saw
        sides = split.get("cameras", {})
        held += (
            f" (whole cameras held out, `--group-by camera`: {', '.join(sides.get('test', []))}; trained on "
            f"{', '.join(sides.get('train', []))})"
        )
    elif split:
        held += " (whole scene groups held out, `--group-by scene`)"
    what = (
        f"Raws of `{checked['raw_dir']}` checked with the policy `{checked['policy']}`: {held}"
        if checked
        else f"Held-out raws: {held}"
    )
    lines = [
        f"{what} (scorer `{meta.get('scorer', '?')}`, renders scored at "
        f"{scale}). MOS: the scorer's; guarded: MOS minus the over-processing penalty (isp_env.reward); "
        "clipped: fraction of pixels with a channel at 0 or 255, and saturation: mean HSV saturation, "
        "both of the full-resolution render.",
        "",
        "| method | raws | mean MOS | guarded | > neutral | > neutral, guarded | clipped | saturation | "
        "scorer calls (training) | scorer calls per test raw |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for s in summary:
        beats, beats_g = beats_cells(s)
        lines.append(
            f"| {s['label']} | {s['n_images']} | {s['mean_mos']:.2f} | {s.get('mean_guarded', 0):.2f} | "
            f"{beats} | {beats_g} | {100 * s.get('mean_clipped', 0):.1f} % | "
            f"{s.get('mean_saturation', 0):.3f} | "
            f"{s['train_scorer_calls']} | {s['scorer_calls_per_image']:g} |"
        )
    asked = [s for s in summary if "scorer_calls_asked" in s]
    if asked:  # a search spends its budget in whole generations: what it used of what was asked
        used = "; ".join(map(used_of_asked, asked))
        lines += [
            "",
            f"Scorer calls used of those asked: {used} — a CMA-ES search scores its start, then whole "
            'generations: the calls too few for another are left unspent (docs/isp.md, "CMA-ES budgets").',
        ]
    names = {s["method"]: s["label"] for s in summary}
    for method, kept in meta.get("checked_kept", {}).items():
        shown = ", ".join(f"the {who} on {n}" for who, n in kept.items())
        lines += [
            "",
            f"{names.get(method, label(method))}: the best of the policy's setting, its base and neutral by "
            f"the reward on each raw — kept {shown} of the {sum(kept.values())} raws.",
        ]
    return "\n".join([*lines, "", *files(summary, meta)]) + "\n"


def files(summary: list[dict[str, Any]], meta: dict[str, Any]) -> list[str]:
    """The report's guide to the files beside it: what ``grid.png`` shows and where each method's renders
    and parameters are (a reader of report.md alone found neither)."""
    written = [s["method"] for s in summary if s["method"] not in ("neutral", "rawpy")]
    params = [
        f"`baselines/{m}.json`" if m.startswith("cma_") else f"`test/{m}/params/RAW.json`" for m in written
    ]
    shown = min(GRID_ROWS, int(meta.get("n_test") or 0))
    return [
        "## Files",
        "",
        f"* `grid.png`: 256-px centre crops of the full-resolution renders of the first {shown} raws — a row "
        "a raw under its name, a column a method (named as in the table; neutral first, the policy beside "
        "it) — each titled with its MOS, guarded score and clipped share, and its gain over neutral;",
        "* renders at full resolution: "
        + ", ".join(f"`test/{m}/renders/RAW.png`" for m in written)
        + " (neutral's and rawpy's are not written: `isp-tune render RAW -o OUT.png` renders neutral), each "
        "with `RAW.png.json` beside it: its raw, its setting (`isp-tune render RAW --params RAW.png.json` "
        "renders it again) and what a resume checks the file by;",
        "* the parameters of each render: " + ", ".join(params) + " (neutral: the defaults);",
        "* per raw and method: `results.csv`; per method, with these settings: `summary.json`.",
    ]


class Report(NamedTuple):
    """What :func:`write_report` wrote: ``summary`` per method (summary.json's), and ``rows`` per raw and
    method (``image``, ``method``, ``mos``, ``guarded``, ...: results.csv's, unrounded), so a caller that
    needs the rows has them without reading the file back."""

    summary: list[dict[str, Any]]
    rows: list[dict[str, Any]]


def write_report(
    out: Path,
    rows: list[dict[str, Any]],
    budgets: dict[str, dict[str, int]],
    meta: dict[str, Any],
    crops: dict[str, dict[str, np.ndarray]],
    labels: dict[str, str] | None = None,
) -> Report:
    """Write ``results.csv``, ``summary.json``, ``report.md`` and ``grid.png`` into ``out``; ``labels``:
    the policies' (:func:`policy_label`). ``meta`` gets ``checked_kept``, counted from the rows' ``kept``
    (:func:`kept_counts`)."""
    summary = summarise(rows, budgets, labels)
    kept: dict[str, list[str]] = {}  # per checked method, the candidate kept on each raw
    for r in rows:
        if "kept" in r:
            kept.setdefault(r["method"], []).append(r["kept"])
    if kept:
        meta = {**meta, "checked_kept": {m: kept_counts(k) for m, k in kept.items()}}
    buf = io.StringIO()
    fields = ["image", "method", *[c for c in COLUMNS if c in rows[0]]]
    w = csv.DictWriter(buf, fieldnames=fields)
    w.writeheader()
    for r in rows:
        w.writerow({k: (f"{r[k]:.6f}" if isinstance(r[k], float) else r[k]) for k in fields})
    write_text_atomic(out / "results.csv", buf.getvalue())
    write_json_atomic(out / "summary.json", {**meta, "methods": summary})
    write_text_atomic(out / "report.md", "# isp-tune report\n\n" + markdown(summary, meta))
    if crops:
        grid_png(out / "grid.png", crops, rows, labels=labels, caption=grid_caption(meta, len(crops)))
    return Report(summary, rows)


def grid_caption(meta: dict[str, Any], shown: int) -> str:
    """What ``grid.png`` shows, written above it (a reader of the picture alone could not tell crops from
    whole renders, nor which scorer's MOS its titles give)."""
    return (
        f"{shown} of {meta.get('n_test', shown)} raws: 256-px centre crops of the full-resolution renders. "
        f"MOS: scorer {meta.get('scorer', '?')}; guarded: MOS minus the over-processing penalty; clip: "
        "pixels with a channel at 0 or 255."
    )


BASELINES = ("neutral", "rawpy", "cma_global", "cma_per_image")  # the grid's columns that are no policy


def grid_methods(rows: list[dict[str, Any]], shown: Iterable[str]) -> list[str]:
    """grid.png's columns: neutral, then each policy (its checked setting beside it), then the other
    baselines. In the table's order the policy sat five columns from neutral, which is what it is compared
    with."""
    present = set(shown)
    ordered = [m for m in methods_in(rows) if m in present]
    policies = [m for m in ordered if m not in BASELINES]
    return (
        [m for m in ("neutral",) if m in present]
        + policies
        + [m for m in ordered if m in BASELINES and m != "neutral"]
    )


def gain(row: dict[str, Any], neutral: dict[str, Any]) -> float | None:
    """A render's gain over neutral's on the same raw: by the guarded score when measured, else by MOS."""
    key = "guarded" if "guarded" in row and "guarded" in neutral else "mos"
    if key not in row or key not in neutral:
        return None
    return float(row[key]) - float(neutral[key])


def crop_title(
    method: str,
    row: dict[str, Any],
    labels: dict[str, str] | None = None,
    neutral: dict[str, Any] | None = None,
) -> str:
    """A grid crop's title: its method wrapped to the column (a checked policy's label ran over its
    neighbour's), then its MOS and guarded score to three digits (a 0-1 scorer's 0.63 and 0.60 were both
    "0.6") and clipped share, its gain over ``neutral``'s row of the same raw, and which candidate a checked
    setting kept."""
    import textwrap

    def digits(x: float) -> str:  # trailing zeros kept: 0.500 beside 0.477 was "0.5", read as rounder
        return f"{x:#.3g}".rstrip(".")

    guarded = f", guarded {digits(row['guarded'])}" if "guarded" in row else ""
    up = gain(row, neutral) if neutral is not None and method != "neutral" else None
    by = "guarded" if "guarded" in row else "MOS"
    versus = "" if up is None else f"\n{by} {up:+.3f} vs neutral"
    kept = f"\nkept: the {row['kept']}'s setting" if "kept" in row else ""
    return (
        f"{textwrap.fill(label(method, labels), 34)}\nMOS {digits(row.get('mos', float('nan')))}{guarded}, "
        f"clip {100 * row.get('clipped', float('nan')):.0f}%{versus}{kept}"
    )


GRID_NAME_COLOUR = "#1f3f8f"  # a raw's name over its row (tests find it by this colour)


def grid_png(
    path: Path,
    crops: dict[str, dict[str, np.ndarray]],
    rows: list[dict[str, Any]],
    max_images: int = GRID_ROWS,
    labels: dict[str, str] | None = None,
    caption: str = "",
) -> None:
    """Rows: test raws (up to ``max_images``), each under its name; columns (:func:`grid_methods`): neutral,
    the policies beside it, the other baselines; full-resolution centre crops at about their own size, titled
    with :func:`crop_title`, a non-neutral crop marked with its gain over neutral; ``caption`` above them.
    Text sizes follow the crop's side: at 100 % zoom the names (were 6 pt, turned on their side) and titles
    read like a page's text."""
    import textwrap

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.font_manager import FontProperties, findfont, get_font

    drawable = get_font(findfont(FontProperties())).get_charmap()  # a raw's name in other scripts: "?"

    images = list(crops)[:max_images]
    methods = grid_methods(rows, (m for i in images for m in crops[i]))
    by = {(r["image"], r["method"]): r for r in rows}
    dpi = 100
    side = max((c.shape[1] for i in images for c in crops[i].values()), default=256)  # px, shown 1:1
    small = max(8.0, side / 28)  # points: ~13 px of text on a 256-px crop
    big = small * 1.3
    lines = max(
        (crop_title(m, by.get((i, m), {}), labels, by.get((i, "neutral"))).count("\n") + 1)
        for i in images
        for m in methods
    )
    title_in = lines * small * 1.35 / 72
    row_in = (side + 16) / dpi + title_in + big * 1.6 / 72
    fig = plt.figure(
        figsize=((side + 24) / dpi * len(methods), row_in * len(images) + (0.6 if caption else 0)),
        dpi=dpi,
        layout="constrained",
    )
    if caption:
        width = int((side + 24) * len(methods) / (small * 0.62))  # characters a line at the caption's size
        fig.suptitle(textwrap.fill(caption, width), fontsize=small, va="top")
    subs = fig.subfigures(len(images), 1, squeeze=False)[:, 0]
    for sub, name in zip(subs, images, strict=True):
        shown = "".join(c if ord(c) in drawable else "?" for c in name)  # (matplotlib warned of each)
        sub.suptitle(
            textwrap.fill(shown, int((side + 24) * len(methods) / (big * 0.7))),
            x=0.0,
            ha="left",
            fontsize=big,
            fontweight="bold",
            color=GRID_NAME_COLOUR,
        )
        axes = sub.subplots(1, len(methods), squeeze=False)[0]
        neutral = by.get((name, "neutral"))
        for ax, m in zip(axes, methods, strict=True):
            ax.axis("off")
            if m not in crops[name]:
                continue
            row = by.get((name, m), {})
            ax.imshow(crops[name][m], interpolation="nearest")
            ax.set_title(crop_title(m, row, labels, neutral), fontsize=small)
            up = gain(row, neutral) if neutral is not None and m != "neutral" else None
            if up is not None:  # the gain at a glance: green above neutral, red below
                better = better_than(up, 0.0)
                colour = (
                    "#0a7a2a" if better else ("#b0201a" if up < 0 and better_than(0.0, up) else "#555555")
                )
                ax.text(
                    0.03,
                    0.04,
                    f"{up:+.3f}",
                    transform=ax.transAxes,
                    fontsize=big,
                    fontweight="bold",
                    color=colour,
                    bbox={"facecolor": "white", "alpha": 0.85, "edgecolor": colour, "pad": 2},
                )
    with atomic_path(path) as tmp:  # tight bbox: nothing drawn touches the picture's edge
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight", pad_inches=0.05)
    plt.close(fig)
