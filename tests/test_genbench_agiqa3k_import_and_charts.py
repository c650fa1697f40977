"""genbench: `import-agiqa3k` with an image given two MOS (refused, as `attiqa eval` refuses it) and with
--out in the dataset's folder (refused); what the agreement chart and the AGIQA-3k pair sheet say
(docs/robustness.md). Small fixtures: noise PNGs under an official-format data.csv."""

from __future__ import annotations

import csv
from pathlib import Path

from helpers import agiqa3k_folder
from PIL import Image


def _one_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    return " ".join(stderr.split())


def test_import_agiqa3k_refuses_an_image_with_two_mos_as_eval_does(tmp_path, cli, genbench_cli):
    """**Was**: a score file giving an image a second row with another MOS was imported with the first
    row's MOS ("1 row of the score file repeats an earlier row's image (the first kept): left out") — each
    of its preference pairs decided by whichever row came first — while `attiqa eval agiqa3k` refuses the
    same file. Now both refuse it in the same words, naming the file and the image; no run is written.
    An exact repeat (same MOS) is still counted once."""
    root = agiqa3k_folder(tmp_path / "agiqa", extra=[(0, "4.9")])
    data = root / "data.csv"
    image = root / "AGIQA-3K" / "sd1.5_normal_000.png"
    said = f"{data} (mos_quality): 1 image(s) have two different scores, e.g. {image} (1 and 4.9) — fix the"
    res = genbench_cli("import-agiqa3k", root, "-o", tmp_path / "run")
    assert res.returncode == 2 and said in _one_line(res.stderr), res.stderr
    assert not (tmp_path / "run" / "manifest.jsonl").exists()
    ev = cli("eval", "agiqa3k", "--root", root, "-m", "classical", "-o", tmp_path / "ev", "--no-cache")
    assert ev.returncode == 2 and said in _one_line(ev.stderr), ev.stderr

    same = agiqa3k_folder(tmp_path / "same", extra=[(0, "1.0")])
    res = genbench_cli("import-agiqa3k", same, "-o", tmp_path / "run2")
    assert res.returncode == 0, res.stderr
    assert "1 row of the score file repeats an earlier row (same image, same MOS): left out" in res.stderr
    assert "6 pairs" in res.stderr  # per prompt: MOS 1, 2, 3 -> 3 pairs >= 0.5 apart


def test_import_agiqa3k_refuses_an_out_folder_in_the_dataset(tmp_path, genbench_cli):
    """**Was**: `genbench import-agiqa3k ROOT -o ROOT` (or -o ROOT/run, or into the image folder) wrote the
    run's manifest.jsonl, manifest.csv, prefs.csv, import.json and image_root.json among the dataset's
    files — later `score` / `agree` added scores/ and agreement/ there, and the next import replaced this
    one in the user's copy of the data. Now refused in one line naming the folder, nothing written; a run
    folder beside the dataset is fine."""
    root = agiqa3k_folder(tmp_path / "agiqa")
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    for out, folder, inside in (
        (root, root, ""),
        (root / "runs" / "m05", root, "inside "),
        (root / "AGIQA-3K", root, "inside "),
    ):
        res = genbench_cli("import-agiqa3k", root, "-o", out)
        assert res.returncode == 2, res.stderr
        assert f"--out {out} is {inside}the AGIQA-3k folder {folder} — " in _one_line(res.stderr)
        assert sorted(p.relative_to(root) for p in root.rglob("*")) == before
    res = genbench_cli("import-agiqa3k", root, "-o", tmp_path / "run")
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "run" / "manifest.jsonl").is_file()


def test_the_agreement_chart_says_what_its_interval_resampled_and_marks_a_trained_metric(
    tmp_path, genbench_cli
):
    """**Was** (a real run: import-agiqa3k of agiqa3k-dev, `agree --cluster-by prompt_id`): agreement.png's
    title said "95% bootstrap CI" whether the bootstrap resampled pairs or prompts (intervals that differ
    several-fold on pairs sharing prompts), and attiqa-agiqa3k's 100 % bar — a fit to the images it was
    trained on, marked "*" in the table with a warning — stood unmarked beside held-out metrics. Now the
    title says what was resampled (as the table's legend does), and a trained metric's bar is marked and
    hatched, with the note under the chart."""
    from genbench.agreement import agreement_figure, human_labels, metric_agreement
    from genbench.manifest import load_pairs
    from genbench.prefs import load_votes
    from genbench.run_scores import MetricScores

    root = agiqa3k_folder(tmp_path / "agiqa")
    run = tmp_path / "run"
    assert genbench_cli("import-agiqa3k", root, "-o", run).returncode == 0
    pairs = load_pairs(run)
    votes, source = load_votes(run, None)
    labels = human_labels(votes, pairs, source)
    images = sorted({p.image(s) for p in pairs for s in "ab"})
    mos = {p.image(s): p.record[f"mos_{s}"] for p in pairs for s in "ab"}
    fit = MetricScores("fitted", {im: mos[im] for im in images}, True, trained_on=("agiqa3k",))
    noise = MetricScores("noise", {im: float(k % 3) for k, im in enumerate(images)}, True)
    results = [metric_agreement(pairs, labels, s, n_boot=200) for s in (fit, noise)]
    over = ((None, "bootstrap over pairs"), ("prompt_id", "bootstrap over prompt_id groups"))
    for cluster_by, said in over:
        fig = agreement_figure(results, cluster_by)
        (ax,) = fig.axes
        assert ax.get_title() == f"Agreement with people (95% CI: {said})"
        assert [t.get_text() for t in ax.get_xticklabels()] == ["fitted *", "noise"]
        assert ax.patches[0].get_hatch() == "//" and not ax.patches[1].get_hatch()
        assert "* trained on these images: not a held-out figure" in [t.get_text() for t in fig.texts]
    fig = agreement_figure(results[1:])
    assert not fig.texts and [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["noise"]


def test_the_pair_sheet_says_how_many_pairs_of_each_kind_and_the_metrics_pick(tmp_path, genbench_cli):
    """**Was** (experiments/agiqa3k/pair_sheet.py on agiqa3k-dev scored with `classical`): four pairs the
    metric agreed on and four it did not, with no count — a 58.4 % metric read as a coin toss — each score at
    two decimals (0.5612 against 0.5608 showed as "0.56" twice), the metric's pick not shown, prompts cut at
    44 characters with room for more. Now the title gives each kind's count and the accuracy, the metric's
    pick is said under its image, and scores get the decimals that tell them apart."""
    import subprocess
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments" / "agiqa3k"))
    import pair_sheet

    assert pair_sheet.shown_scores(0.5612, 0.5608) == ("0.5612", "0.5608")
    assert pair_sheet.shown_scores(0.61, 0.4) == ("0.61", "0.40")
    run = tmp_path / "run"
    assert genbench_cli("import-agiqa3k", agiqa3k_folder(tmp_path / "agiqa"), "-o", run).returncode == 0
    for cmd in (("score", run, "-m", "classical", "-w", "0"), ("agree", run, "--bootstrap", "100")):
        assert genbench_cli(*cmd).returncode == 0
    out = tmp_path / "sheet.png"
    script = Path(pair_sheet.__file__)
    done = subprocess.run(
        [sys.executable, script, run, "--metric", "classical", "--n", "2", "--out", out],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0 and Image.open(out).size[0] > 0, done.stderr

    manifest = {r["pair_id"]: r for r in pair_sheet.read_records(run)}
    with open(run / "agreement" / "per_pair.csv", newline="", encoding="utf-8") as fh:
        rows = [{**manifest[r["pair_id"]], **r} for r in csv.DictReader(fh)]
    good, bad = pair_sheet.pick(rows, "classical", 2, 0, None)
    counts = pair_sheet.counts_line(rows, "classical", len(good), len(bad), 0)
    n_good = sum(r["classical_credit"] == "1" for r in rows)
    acc = 100 * n_good / len(rows)
    assert counts == (
        f"{len(good)} of the {n_good} pairs it agreed on, {len(bad)} of the {len(rows) - n_good} it did not "
        f"(accuracy {acc:.1f} % of {len(rows)} pairs), drawn at random (seed 0)"
    )
    fig = pair_sheet.sheet_figure(run, good + bad, "classical", counts)
    assert fig.get_suptitle().endswith("\n" + counts)
    for k, r in enumerate(good + bad):
        labels = [fig.axes[2 * k + i].get_xaxis().get_label().get_text() for i in range(2)]
        picked = ["(metric's pick)" in t.split("\n")[0] for t in labels]
        assert picked == [r["classical_pick"] == s for s in "ab"], labels
        shown = [t.split("metric ")[1] for t in labels]
        assert shown[0] != shown[1]
