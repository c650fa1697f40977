"""Metric–human agreement on image pairs (ATTIQA §5.1, Table 8: accuracy at picking the preferred image).

- Human label per pair = majority of its votes. A pair with as many votes for each side is a *tie*:
  ``tie_policy="skip"`` leaves it out (reported), ``"half"`` gives every metric half credit on it (the
  way PickScore scores ties). Pairs without votes are left out.
- A metric picks the image with the better score (its direction from the scorer's metadata). Equal
  scores are a *model tie*: wrong by default (ImageReward's rule), or half credit with
  ``model_ties="half"``.
- Accuracy = mean credit over the pairs counted; the 95 % interval is a percentile bootstrap over pairs,
  or over groups of them with ``cluster_by`` (ours: the paper reports no interval), widened to at least
  the Wilson score interval of the pairs: a bootstrap of a few pairs all right has nothing to resample.

The paper does not say how its 60 raters' votes were turned into one label per pair; majority is ours.
"""

from __future__ import annotations

import csv
import io
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from statistics import NormalDist
from typing import TYPE_CHECKING

import numpy as np

from attiqa.datasets.readers import read_csv
from attiqa.errors import AttiqaError, ConfigError, did_you_mean
from attiqa.io.atomic import atomic_path, output_folder, write_json_atomic, write_text_atomic
from attiqa.io.tables import read_cell, safe_cell
from attiqa.progress import counted
from genbench.files import SCORES_DIR
from genbench.manifest import Pair

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from genbench.run_scores import MetricScores

TIE_POLICIES = ("skip", "half")
MODEL_TIE_RULES = ("wrong", "half")


@dataclass(frozen=True)
class Vote:
    pair_id: str
    choice: str  # "a" | "b"
    rater: str = ""
    line: int = field(default=0, compare=False)  # its line in a CSV (0: a vote database's), for errors


@dataclass
class HumanLabel:
    votes_a: int
    votes_b: int

    @property
    def label(self) -> str:
        if self.votes_a == self.votes_b:
            return "tie"
        return "a" if self.votes_a > self.votes_b else "b"


@dataclass
class MetricAgreement:
    metric: str
    pairs: int  # pairs counted
    correct: float  # sum of credit
    accuracy: float
    ci_low: float
    ci_high: float
    human_ties: int  # human-tied pairs counted (half policy) or skipped (skip policy)
    model_ties: int
    missing: int  # pairs left out because an image has no score
    trained_on: str = ""  # the run's sources (e.g. agiqa3k) among the metric's training data: not held out
    wilson: bool = False  # the interval is the Wilson one: the bootstrap's was narrower (a few pairs)
    credits: dict[str, float] = field(default_factory=dict, repr=False)
    picks: dict[str, str] = field(default_factory=dict, repr=False)


def read_votes_csv(path: Path) -> list[Vote]:
    """Votes from a CSV with columns ``pair_id`` and ``choice`` (a|b), optionally ``rater``, read by the one
    CSV reader (:func:`attiqa.datasets.readers.read_csv`): its errors, and lines as an editor counts them."""
    path = Path(path)
    table = read_csv(path, what="preferences CSV (pair_id,choice[,rater])")  # a spreadsheet may write ;
    pair_col, choice_col = table.column("pair_id", required=False), table.column("choice", required=False)
    if pair_col is None or choice_col is None:  # the fix was left to guess, an empty file "found: none"
        found = f"its header is {', '.join(table.fields)}" if table.fields else "it is empty"
        raise AttiqaError(
            f"{path}: expected CSV columns pair_id,choice[,rater] (choice = a or b), {found} — name its "
            "columns so in a first line, or pass the preferences file the votes were saved in"
        )
    rater_col = table.column("rater", required=False)
    votes = []
    fix = "fix or delete the line"  # a study's file: the rest of its votes are not dropped without a word
    for n, row in table.numbered():
        cell = row.get(choice_col)
        if cell is None:  # "got None": a line of fewer cells than the header (a note, a cut line)
            raise AttiqaError(
                f"{path}:{n}: no choice cell — the line has fewer cells than the header's "
                f"{len(table.fields)} ({','.join(table.fields)}); {fix}"
            )
        choice = str(cell).lower()
        if choice not in ("a", "b"):
            raise AttiqaError(f"{path}:{n}: choice must be a or b, got {cell!r} — {fix}")
        pair = read_cell(str(row.get(pair_col) or ""))
        if not pair:  # was "1 voted pair id(s) are not in the run's manifest (e.g. )"
            raise AttiqaError(f"{path}:{n}: no pair_id — {fix}")
        rater = read_cell(str(row.get(rater_col) or "")) if rater_col else ""
        votes.append(Vote(pair, choice, rater, n))
    return votes


def first_votes(votes: Iterable[Vote]) -> tuple[list[Vote], list[Vote]]:
    """(the votes that count, the repeats left out): a named rater's later votes on a pair they already
    voted on — a CSV of two exports concatenated, a rater's row pasted twice — are not more say in the
    pair's majority; the first counts, as ``genbench vote`` records only a rater's first vote on a pair.
    Votes without a rater (an import's one synthetic voter per row) are all kept."""
    kept, repeats, seen = [], [], set()
    for v in votes:
        key = (v.rater, v.pair_id)
        if v.rater and key in seen:
            repeats.append(v)
            continue
        seen.add(key)
        kept.append(v)
    return kept, repeats


def human_labels(
    votes: Iterable[Vote], pairs: list[Pair], source: Path | None = None, left_out: set[str] | None = None
) -> dict[str, HumanLabel]:
    """Vote counts per known pair. Votes for pair ids the manifest lacks are an error naming ``source``
    (wrong file?) when no vote is for this run, or when the caller gives no ``left_out`` set; otherwise
    those pair ids go into ``left_out`` and their votes are left aside: one stale vote (a pair dropped
    from the run since) refused every other one as "are the preferences for this run?"."""
    votes = list(votes)  # read again for the first unknown one's line
    known = {p.pair_id for p in pairs}
    counts: Counter[tuple[str, str]] = Counter()
    unknown = set()
    for v in votes:
        if v.pair_id not in known:
            unknown.add(v.pair_id)
            continue
        counts[(v.pair_id, v.choice)] += 1
    if unknown and (left_out is None or not counts):  # the first such vote's line and a pair id the run has
        first = next(v for v in votes if v.pair_id in unknown)
        where = f"line {first.line}: " if first.line else ""
        theirs = f"; the run's are e.g. {min(known)}" if known else ""
        raise AttiqaError(
            f"{source or 'the votes'}: {len(unknown)} voted pair id(s) are not in the run's manifest (e.g. "
            f"{where}{first.pair_id}{theirs}) — are the preferences for this run? Pass its own with --prefs "
            "FILE (its votes.sqlite, or a CSV pair_id,choice of its pair ids)"
        )
    if left_out is not None:
        left_out.update(unknown)
    out = {}
    for p in pairs:
        a, b = counts[(p.pair_id, "a")], counts[(p.pair_id, "b")]
        if a + b:
            out[p.pair_id] = HumanLabel(a, b)
    return out


def bootstrap_ci(
    credits: np.ndarray,
    n_boot: int = 10000,
    seed: int = 0,
    level: float = 0.95,
    groups: np.ndarray | None = None,
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``credits`` (resampling pairs with replacement).

    With ``groups`` (one label per credit) whole groups are resampled instead — a cluster bootstrap (ours):
    pairs that share a prompt (or an image) are not independent, and resampling them one by one makes the
    interval too narrow. The statistic is then the pooled mean over the drawn groups' pairs."""
    if credits.size == 0:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    if groups is not None:
        _, inverse = np.unique(np.asarray(groups), return_inverse=True)
        sums = np.bincount(inverse, weights=credits)
        counts = np.bincount(inverse).astype(float)
    else:
        sums, counts = credits, np.ones_like(credits)
    n = sums.size
    means = np.empty(n_boot)
    chunk = max(1, 2_000_000 // n)
    for start in range(0, n_boot, chunk):
        k = min(chunk, n_boot - start)
        idx = rng.integers(0, n, (k, n))
        means[start : start + k] = sums[idx].sum(axis=1) / counts[idx].sum(axis=1)
    alpha = (1.0 - level) / 2
    lo, hi = np.quantile(means, [alpha, 1 - alpha])
    return float(lo), float(hi)


def wilson_interval(successes: float, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion (half credits count half). The floor under ``agree``'s
    bootstrap: resampling 3 pairs all right gives 100-100 %, a certainty 3 votes do not give (Wilson:
    43.9-100 %); for hundreds of pairs both intervals are the binomial one."""
    if n <= 0:
        return math.nan, math.nan
    z = NormalDist().inv_cdf(0.5 + level / 2)
    p = min(1.0, max(0.0, successes / n))
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def _cluster_groups(pairs: list[Pair], pair_ids: list[str], name: str) -> np.ndarray:
    """The ``name`` field of each of ``pair_ids``' manifest records: the clusters of the bootstrap. A field
    a record lacks is refused with the run's fields; so is one value on every pair (two pairs or more):
    resampling one cluster gives a zero-width interval, a certainty the votes do not give."""
    records = {p.pair_id: p.record for p in pairs}
    lacking = [pid for pid in pair_ids if name not in records[pid]]
    if lacking:
        fields = sorted({k for pid in pair_ids for k in records[pid]})
        hint = did_you_mean(name, fields) or f" (the manifest's fields: {', '.join(fields)})"
        raise ConfigError(f"--cluster-by {name}: not in the manifest record of pair {lacking[0]!r}{hint}")
    groups = np.array([str(records[pid][name]) for pid in pair_ids])
    if groups.size > 1 and np.unique(groups).size == 1:
        raise ConfigError(
            f"--cluster-by {name}: every voted pair has the same value ({str(groups[0])!r}) — one cluster "
            "gives no interval; name a field whose values group the pairs, e.g. prompt_id"
        )
    return groups


def shared_prompts_note(pairs: list[Pair], labels: dict[str, HumanLabel], cluster_by: str | None) -> str:
    """A line for ``agree`` when the voted pairs share prompts (``prompt_id``: AGIQA-3k, ImageReward imports)
    and the bootstrap resamples pairs: the interval then treats pairs of one prompt as independent and is
    too narrow (agiqa3k-dev's figures by pair and by prompt: docs/robustness.md); "" otherwise."""
    if cluster_by is not None:
        return ""
    ids = [p.record.get("prompt_id") for p in pairs if p.pair_id in labels]
    if not ids or any(i is None for i in ids) or len(set(map(str, ids))) == len(ids):
        return ""
    return (
        f"the {len(ids)} voted pairs share {counted(len(set(map(str, ids))), 'prompt')} (prompt_id): "
        "the 95% interval "
        "resamples pairs as if independent and is likely too narrow — --cluster-by prompt_id resamples "
        "prompts"
    )


MIN_CLUSTERS = 20
"""Fewer clusters and ``agree --cluster-by``'s 95% interval is too narrow: in simulated studies (20 pairs a
cluster, `python benchmarks/cluster_bootstrap_coverage.py`) it held the true accuracy in 57% of them with 2
clusters, 82-83% with 3-5, 89.5% with 10, 92% with 15, 94% with 20 and 30 (few clusters: Cameron, Gelbach &
Miller 2008, "Bootstrap-based improvements for inference with clustered errors"). Said, not refused."""


def few_clusters_warning(pairs: list[Pair], labels: dict[str, HumanLabel], cluster_by: str | None) -> str:
    """A line for ``agree --cluster-by FIELD`` when the voted pairs fall in fewer than :data:`MIN_CLUSTERS`
    values of FIELD; "" otherwise."""
    if cluster_by is None:
        return ""
    n = len({str(p.record.get(cluster_by)) for p in pairs if p.pair_id in labels})
    if n >= MIN_CLUSTERS:
        return ""
    return (
        f"--cluster-by {cluster_by}: the voted pairs fall in {counted(n, 'cluster')} — with fewer than "
        f"{MIN_CLUSTERS} a "
        "cluster bootstrap's 95% interval is too narrow (it held the truth in 57-92% of simulated studies of "
        "2-15 clusters); read it as a rough range"
    )


ALIKE_PAIRS = 20
"""From this many pairs a Wilson interval of pairs all right (or all wrong) is not said as "so few pairs":
549 of them all right was "read it as a rough range" for 99.3-100 %."""


def wilson_note(results: list[MetricAgreement]) -> str:
    """A line for ``agree`` when a metric's interval is the Wilson one, not the bootstrap the legend names (1
    pair all right: 20.7-100 %, where the bootstrap said 100-100 %); "" otherwise."""
    few = [r for r in results if r.wilson]
    if not few:
        return ""
    counts = sorted({r.pairs for r in few})
    said = counted(counts[0], "pair") if len(counts) == 1 else f"{counts[0]}-{counts[-1]} pairs"
    if counts[0] >= ALIKE_PAIRS and all(r.accuracy in (0.0, 1.0) for r in few):  # many, all right or wrong
        how = " / ".join(sorted({"all right" if r.accuracy else "all wrong" for r in few}))
        return (
            f"every one of the {said} counted alike ({how}; {', '.join(r.metric for r in few)}): a bootstrap "
            "has nothing to resample, so the 95% interval is the pairs' Wilson score interval"
        )
    return (
        f"with {said} counted ({', '.join(r.metric for r in few)}), the 95% interval is the pairs' Wilson "
        "score interval, not a bootstrap (one of so few pairs has next to nothing to resample): read it as a "
        "rough range — more votes narrow it"
    )


def check_tie_rules(tie_policy: str, model_ties: str) -> None:
    """``--ties`` / ``--model-ties`` known, else one line — checked by ``genbench agree`` before it reads
    the preferences and scores, not between its "preferences: …" line and the table."""
    if tie_policy not in TIE_POLICIES:
        raise ConfigError(f"--ties {tie_policy!r}: use one of {', '.join(TIE_POLICIES)}")
    if model_ties not in MODEL_TIE_RULES:
        raise ConfigError(f"--model-ties {model_ties!r}: use one of {', '.join(MODEL_TIE_RULES)}")


def metric_agreement(
    pairs: list[Pair],
    labels: dict[str, HumanLabel],
    scores: MetricScores,
    tie_policy: str = "skip",
    model_ties: str = "wrong",
    n_boot: int = 10000,
    seed: int = 0,
    cluster_by: str | None = None,
) -> MetricAgreement:
    """Accuracy of ``scores`` on the labelled pairs; ``cluster_by`` (a manifest field, e.g. ``prompt_id``)
    makes the interval a cluster bootstrap over that field's values (see :func:`bootstrap_ci`)."""
    check_tie_rules(tie_policy, model_ties)
    sign = 1.0 if scores.higher_is_better else -1.0
    credits: dict[str, float] = {}
    picks: dict[str, str] = {}
    human_ties = n_model_ties = missing = 0
    for p in pairs:
        lab = labels.get(p.pair_id)
        if lab is None:
            continue
        sa, sb = scores.values.get(p.image_a), scores.values.get(p.image_b)
        if sa is None or sb is None or math.isnan(sa) or math.isnan(sb):
            missing += 1
            continue
        pick = "tie" if sa == sb else ("a" if sign * (sa - sb) > 0 else "b")
        picks[p.pair_id] = pick
        if lab.label == "tie":
            human_ties += 1
            if tie_policy == "skip":
                continue
        n_model_ties += pick == "tie"
        if lab.label == "tie":
            credits[p.pair_id] = 0.5
        elif pick == "tie":
            credits[p.pair_id] = 0.5 if model_ties == "half" else 0.0
        else:
            credits[p.pair_id] = float(pick == lab.label)
    arr = np.fromiter(credits.values(), dtype=float, count=len(credits))
    groups = None
    if cluster_by:
        groups = _cluster_groups(pairs, list(credits), cluster_by)
    lo, hi = bootstrap_ci(arr, n_boot, seed, groups=groups)
    wilson = False
    if arr.size:  # never narrower than the pairs' own binomial interval
        w_lo, w_hi = wilson_interval(float(arr.sum()), int(arr.size))
        wilson = (w_hi - w_lo) > 1.25 * (hi - lo)  # far wider: the bootstrap had little to resample
        lo, hi = min(lo, w_lo), max(hi, w_hi)
    return MetricAgreement(
        metric=scores.name,
        pairs=arr.size,
        correct=float(arr.sum()),
        accuracy=float(arr.mean()) if arr.size else math.nan,
        ci_low=lo,
        ci_high=hi,
        human_ties=human_ties,
        model_ties=n_model_ties,
        missing=missing,
        trained_on=",".join(sorted(set(scores.trained_on) & {str(p.record.get("source")) for p in pairs})),
        wilson=wilson,
        credits=credits,
        picks=picks,
    )


SUMMARY_COLUMNS = (
    "metric",
    "pairs",
    "correct",
    "accuracy",
    "ci_low",
    "ci_high",
    "human_ties",
    "model_ties",
    "missing",
    "trained_on",
)


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.6g}"
    return str(v)


def report_folder(run_dir: Path, out: Path | None) -> Path:
    """``agree``'s report folder (default ``RUN/agreement``), checked before the work: a folder, not a file
    name (``-o agreement.csv``), writable, and not the run's scores folder — every later ``agree`` would
    read the report's CSVs there back as metrics."""
    out_dir = Path(out) if out is not None else Path(run_dir) / "agreement"
    if out_dir.resolve() == Path(run_dir, SCORES_DIR).resolve():
        raise AttiqaError(
            f"{out_dir}: is the run's scores folder — the report's CSVs would be read back as metrics; "
            f"choose another --out (default: {Path(run_dir) / 'agreement'})"
        )
    return output_folder(out_dir, "--out", create=False)  # made by write_report: a bad --prefs leaves none


def write_report(
    out_dir: Path,
    pairs: list[Pair],
    labels: dict[str, HumanLabel],
    results: list[MetricAgreement],
    scores: list[MetricScores],
    settings: dict,
) -> dict[str, Path]:
    """agreement.csv (one row per metric), per_pair.csv, agreement.json and agreement.png in ``out_dir``."""
    out_dir = Path(out_dir)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(SUMMARY_COLUMNS)
    for r in results:
        w.writerow([safe_cell(_fmt(getattr(r, c))) for c in SUMMARY_COLUMNS])
    write_text_atomic(out_dir / "agreement.csv", buf.getvalue())

    buf = io.StringIO()
    w = csv.writer(buf)
    head = ["pair_id", "image_a", "image_b", "votes_a", "votes_b", "human"]
    # an AGIQA-3k import's pairs carry the people's MOS: a reader of a disagreement sees the gap it had
    with_mos = any("mos_a" in p.record and "mos_b" in p.record for p in pairs)
    if with_mos:
        head += ["human_mos_a", "human_mos_b", "human_mos_a_minus_b"]
    for s in scores:
        head += [f"{s.name}_a", f"{s.name}_b", f"{s.name}_pick", f"{s.name}_credit"]
    w.writerow(head)
    for p in pairs:
        lab = labels.get(p.pair_id)
        row = [
            p.pair_id,
            p.image_a,
            p.image_b,
            lab.votes_a if lab else 0,
            lab.votes_b if lab else 0,
            lab.label if lab else "",
        ]
        if with_mos:
            row += _mos_cells(p.record)
        for s, r in zip(scores, results, strict=True):
            credit = r.credits.get(p.pair_id)
            row += [
                _fmt(s.values.get(p.image_a, math.nan)),
                _fmt(s.values.get(p.image_b, math.nan)),
                r.picks.get(p.pair_id, ""),
                "" if credit is None else _fmt(credit),
            ]
        w.writerow([safe_cell(c) for c in row])  # pair ids and file names come from users
    write_text_atomic(out_dir / "per_pair.csv", buf.getvalue())

    write_json_atomic(
        out_dir / "agreement.json",
        {
            "settings": settings,
            "pairs_in_manifest": len(pairs),
            "pairs_with_votes": len(labels),
            "human_ties": sum(lab.label == "tie" for lab in labels.values()),
            # a metric of no pair counted (all tied, none scored): null, not NaN (json_text)
            "results": [{c: getattr(r, c) for c in SUMMARY_COLUMNS} for r in results],
        },
    )
    bar_chart(results, out_dir / "agreement.png", settings.get("cluster_by"))
    return {k: out_dir / f"{k}" for k in ("agreement.csv", "per_pair.csv", "agreement.json", "agreement.png")}


def _mos_cells(record: dict) -> list[str]:
    """A pair's human MOS of each side and their difference (empty where the manifest has none)."""
    a, b = (record.get(f"mos_{side}") for side in ("a", "b"))
    if isinstance(a, int | float) and isinstance(b, int | float) and math.isfinite(a - b):
        return [_fmt(a), _fmt(b), _fmt(a - b)]
    return ["" if v is None else _fmt(v) for v in (a, b)] + [""]


def ci_wording(cluster_by: str | None) -> str:
    """What the 95 % interval resampled, as the report says it: the interval over pairs and over prompts
    differ several-fold on pairs sharing prompts, so a reader must see which one a figure is."""
    return f"bootstrap over {cluster_by} groups" if cluster_by else "bootstrap over pairs"


TRAINED_MARK = " *"
TRAINED_NOTE = "* trained on these images: not a held-out figure"


def agreement_figure(results: list[MetricAgreement], cluster_by: str | None = None) -> Figure:
    """Accuracy per metric with its 95 % interval (saying what the bootstrap resampled) and the 50 % chance
    line; a metric trained on the run's images is marked and hatched, as `agree`'s table marks it — its
    bar (100 % on AGIQA-3k for attiqa-agiqa3k) is a training fit, not a measurement beside the others."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(max(5.0, 1.1 * len(results) + 2), 4.0), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    names = [r.metric + (TRAINED_MARK if r.trained_on else "") for r in results]
    acc = np.array([r.accuracy * 100 for r in results])
    err = np.array(
        [[(r.accuracy - r.ci_low) * 100 for r in results], [(r.ci_high - r.accuracy) * 100 for r in results]]
    )
    x = np.arange(len(results))
    bars = ax.bar(x, np.nan_to_num(acc), width=0.6, yerr=np.nan_to_num(err), capsize=4, color="#4c72b0")
    for bar, r in zip(bars, results, strict=True):
        if r.trained_on:
            bar.set_facecolor("#9a9a9a")
            bar.set_edgecolor("#c8c8c8")  # the hatch's colour: light, so the label on it stays readable
            bar.set_hatch("//")
    ax.axhline(50, color="grey", lw=1, ls="--", label="chance")
    for xi, a, r in zip(x.tolist(), acc, results, strict=True):
        said = "no pair\nscored" if math.isnan(a) else f"{a:.1f}%\nn={r.pairs}"
        colour = "black" if math.isnan(a) else "white"
        ax.text(xi, 2, said, ha="center", va="bottom", color=colour, fontsize=8)
    ax.set_xticks(x, names, rotation=20 if len(names) > 4 else 0, ha="right" if len(names) > 4 else "center")
    ax.set_ylim(0, 105)  # a 100 % bar keeps its interval's cap in view
    ax.set_yticks(range(0, 101, 20))
    ax.set_ylabel("picks the preferred image (%)")
    ax.set_title(f"Agreement with people (95% CI: {ci_wording(cluster_by)})", fontsize=10)
    ax.legend(loc="upper right", fontsize=8)
    if any(r.trained_on for r in results):
        fig.text(0.01, 0.01, TRAINED_NOTE, fontsize=8, ha="left", va="bottom")
        fig.tight_layout(rect=(0, 0.04, 1, 1))
    else:
        fig.tight_layout()
    return fig


def bar_chart(results: list[MetricAgreement], out: Path, cluster_by: str | None = None) -> Path:
    """agreement.png: :func:`agreement_figure`, written atomically."""
    fig = agreement_figure(results, cluster_by)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png")
    return Path(out)
