"""genbench: the AGIQA-3k path with bad cells, a tiny study's report, an unfinished run
(docs/robustness.md)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

HEADER = ["name", "prompt", "adj1", "adj2", "style", "mos_quality", "std_quality", "mos_align", "std_align"]


def _agiqa3k(root: Path, photos: dict, edit: dict | None = None) -> Path:
    """An AGIQA-3k folder in the official layout: 2 prompts x 3 real photos (96 px JPEGs) with MOS 1, 2.5, 4;
    ``edit`` ({column: text}) is written into the second row."""
    images = root / "AGIQA-3K"
    images.mkdir(parents=True)
    rows = []
    for p, prompt in enumerate(("a cat", "a dog")):
        for k, img in enumerate(list(photos.values())[:3]):
            file = f"gen{k}_normal_{p:03d}.jpg"
            img.resize((96, 96)).save(images / file, quality=90)
            mos = str(1.0 + 1.5 * k)
            rows.append([file, prompt, "", "", "", mos, "0.5", "2.0", "0.4"])
    for col, text in (edit or {}).items():
        rows[1][HEADER.index(col)] = text
    with open(root / "data.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([HEADER, *rows])
    return root


def test_a_cell_that_is_not_a_number_is_one_line_naming_the_file_and_the_fix(tmp_path, photos, genbench_cli):
    """**Was**: ``import-agiqa3k`` of a data.csv whose std_quality cell reads ``1,5`` (a decimal comma) or
    ``abc`` ended in a ValueError traceback; a mos_quality cell ``abc`` was "data.csv:3: 'abc' is not a
    number" — no column, no fix. Now one line each, naming the file, the column and the fix; nothing
    written."""
    for col, text in (("std_quality", "1,5"), ("mos_quality", "abc"), ("mos_align", "n.a.")):
        root = _agiqa3k(tmp_path / col, photos, {col: text})
        res = genbench_cli("import-agiqa3k", root, "--out", tmp_path / f"{col}_run")
        lines = res.stderr.strip().splitlines()
        assert res.returncode == 2 and len(lines) == 1, res.stderr
        said = lines[0]
        assert "Traceback" not in res.stderr and f"{root / 'data.csv'}" in said, said
        assert col in said and repr(text) in said and "is not a number — fix the cell" in said, said
        assert not (tmp_path / f"{col}_run").exists()
    root = _agiqa3k(tmp_path / "empty_std", photos, {"std_quality": ""})  # an empty spread: no value, ok
    res = genbench_cli("import-agiqa3k", root, "--out", tmp_path / "ok")
    assert res.returncode == 0, res.stderr


def test_the_report_of_a_metric_that_counted_no_pair_is_valid_json(tmp_path, photos, genbench_cli):
    """**Was**: ``genbench agree`` on a one-pair study whose pair people tied (or whose images a metric did
    not score) wrote ``"accuracy": NaN`` in agreement.json — no JSON (a parser, jq, a browser refuse it).
    Now null; the table shows "–"."""
    root = _agiqa3k(tmp_path / "agiqa", photos)
    run = tmp_path / "run"
    assert genbench_cli("import-agiqa3k", root, "--out", run, "--margin", "2.5").returncode == 0
    (pair,) = [json.loads(line)["pair_id"] for line in (run / "manifest.jsonl").read_text().splitlines()][:1]
    assert genbench_cli("score", run, "-m", "classical").returncode == 0
    prefs = tmp_path / "tie.csv"
    prefs.write_text(f"pair_id,rater,choice\n{pair},r1,a\n{pair},r2,b\n")
    res = genbench_cli("agree", run, "--prefs", prefs)
    assert res.returncode == 0, res.stderr
    text = (run / "agreement" / "agreement.json").read_text()

    def refuse(name: str) -> None:
        raise ValueError(name)

    report = json.loads(text, parse_constant=refuse)  # NaN / Infinity refused, as strict parsers do
    (result,) = report["results"]
    assert result["pairs"] == 0 and result["accuracy"] is None and result["ci_low"] is None


def test_a_run_left_unfinished_does_not_pass_for_a_whole_one(tmp_path, genbench_cli):
    """**Was**: a `genbench run --pairs 2` stopped after its first pair (Ctrl-C here; also a kill, images that
    failed, or a resume on an offline machine that stops before loading the model and writes nothing) left a
    folder that `genbench score` / `agree` took as the run: "2 scored", no word that half the pairs were
    never made. Now they say "RUN: 1 of 2 pairs made — `genbench run` did not finish: rerun it …"; a
    finished run says nothing. A tiny random Stable Diffusion (real diffusers)."""
    import pytest

    pytest.importorskip("diffusers")
    from genbench_helpers import build_tiny_sd

    from genbench.generate import GenSettings, generate_run, load_pipeline
    from genbench.prompts import load_prompt_spec

    sd = build_tiny_sd(tmp_path / "tiny" / "sd")
    pipe = load_pipeline(str(sd), "fp32", "cpu")
    settings = GenSettings(model=str(sd), steps=2, width=32, height=32, seed=7)
    run = tmp_path / "run"

    def ctrl_c(n: int, kept: bool = False) -> None:
        raise KeyboardInterrupt  # after the first pair's two images: as a Ctrl-C lands

    res = generate_run(run, load_prompt_spec(), settings, 2, batch_size=2, on_image=ctrl_c, pipeline=pipe)
    assert res.interruption is not None and res.made == 2
    said = genbench_cli("score", run, "-m", "classical")
    assert said.returncode == 0, said.stderr
    warning = " ".join(said.stderr.split())
    assert f"warning: {run}: 1 of 2 pairs made — `genbench run` did not finish: rerun it" in warning, warning
    generate_run(run, load_prompt_spec(), settings, 2, batch_size=2, pipeline=pipe)  # finished
    said = genbench_cli("score", run, "-m", "classical")
    assert said.returncode == 0 and "did not finish" not in said.stderr, said.stderr


def test_agree_on_one_pair_says_its_interval_is_the_wilson_one(tmp_path, photos, genbench_cli):
    """**Was**: ``genbench agree`` on a one-pair study printed "100.0% 20.7% 100.0%" under "low / high = its
    95% interval (bootstrap over pairs)" — but a bootstrap of one pair gives 100-100 %; the 20.7 % is the
    Wilson score interval the report widens it to (session 52), which nothing said; with ``--cluster-by``
    it said "fall in 1 clusters". Now a note names the metrics whose interval is Wilson's and says to read it
    as a rough range; "1 cluster"."""
    root = _agiqa3k(tmp_path / "agiqa", photos)
    run = tmp_path / "run"
    assert genbench_cli("import-agiqa3k", root, "--out", run, "--margin", "2.5").returncode == 0
    pair = json.loads((run / "manifest.jsonl").read_text().splitlines()[0])["pair_id"]
    assert genbench_cli("score", run, "-m", "classical").returncode == 0
    prefs = tmp_path / "one.csv"
    prefs.write_text(f"pair_id,rater,choice\n{pair},r1,b\n")
    res = genbench_cli("agree", run, "--prefs", prefs, "--cluster-by", "prompt_id")
    assert res.returncode == 0, res.stderr
    said = " ".join((res.stdout + res.stderr).split())
    assert (
        "note: with 1 pair counted (classical), the 95% interval is the pairs' Wilson score interval, not a "
        "bootstrap" in said
    ), said
    assert "fall in 1 cluster —" in said and "nan" not in said.lower()
    (result,) = json.loads((run / "agreement" / "agreement.json").read_text())["results"]
    assert (
        result["pairs"] == 1
        and 0 < result["ci_low"] < 0.3
        and result["ci_high"] == 1.0
        or (result["ci_low"] == 0.0 and 0.7 < result["ci_high"] < 1.0)
    )


def test_a_margin_that_leaves_no_pair_says_the_margin_that_keeps_one(tmp_path, photos, genbench_cli):
    """**Was**: ``import-agiqa3k --margin 10`` said "no pairs of one prompt differ by >= 10.0 MOS … — lower
    --margin": lower to what, the user had to guess run by run. Now the line gives the largest margin that
    keeps a pair (the test's MOS are 1, 2.5 and 4 per prompt: 3), which then imports; nothing written."""
    root = _agiqa3k(tmp_path / "agiqa", photos)
    res = genbench_cli("import-agiqa3k", root, "--out", tmp_path / "run", "--margin", "10")
    assert res.returncode == 2 and "a --margin of at most 3 keeps some" in res.stderr, res.stderr
    assert not (tmp_path / "run").exists()
    res = genbench_cli("import-agiqa3k", root, "--out", tmp_path / "run", "--margin", "3")
    assert res.returncode == 0 and "2 pairs" in res.stderr + res.stdout, res.stderr
