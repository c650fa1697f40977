"""`isp-tune check DIR --policy P`: a policy against the neutral render on a folder of raws — what a user runs
before trusting a policy on another camera's raws."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

from helpers import isp_tune_cmd, one_line_error, paused_after
from typer.testing import CliRunner

from isp_env.cli import app


def test_check_compares_the_shipped_policy_with_neutral_on_real_dngs(tmp_path, isp_raws):
    """Four real DNGs (rawpy reads them), the shipped policy and the default reward model: one row per raw,
    the printed table and summary agree with the report's results.csv, and the report files are written."""
    raws = tmp_path / "raws"
    raws.mkdir()
    for p in isp_raws:
        shutil.copy(p, raws / p.name)
    out = tmp_path / "check"
    r = CliRunner().invoke(app, ["check", str(raws), "--out", str(out)])
    assert r.exit_code == 0, r.output + repr(r.exception)
    with (out / "results.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    by = {(row["image"], row["method"]): row for row in rows}
    names = sorted({row["image"] for row in rows})
    assert names == sorted(p.stem for p in isp_raws)
    assert {row["method"] for row in rows} == {"neutral", "policy", "policy_checked"}
    said = " ".join(r.output.split())
    wins = sum(float(by[n, "policy"]["mos"]) > float(by[n, "neutral"]["mos"]) for n in names)
    assert f"MOS: policy above neutral on {wins} of 4 raws" in said
    kept = {"policy": 0, "base": 0, "neutral": 0}
    for n in names:
        assert f"{float(by[n, 'neutral']['mos']):.2f}" in r.output
        assert (out / "test" / "policy" / "renders" / f"{n}.png").exists()
        # session 44: the checked setting is the best of the policy's, its base and neutral by the guarded
        # reward (the shipped policy's base is not neutral: three candidates)
        saved = json.loads((out / "test" / "policy_checked" / "params" / f"{n}.json").read_text())
        assert list(saved["scores"]) == ["policy", "base", "neutral"]
        assert saved["scores"][saved["chosen"]] == max(saved["scores"].values())
        kept[saved["chosen"]] += 1
        best = max(float(by[n, m]["guarded"]) for m in ("policy", "neutral"))
        assert float(by[n, "policy_checked"]["guarded"]) >= best - 1e-3
    shown = ", ".join(f"the {who} on {k}" for who, k in kept.items())
    assert f"checked (isp-tune render --check): kept {shown} raws" in said
    assert (out / "report.md").exists() and (out / "grid.png").exists()


def test_check_refuses_bad_input_in_one_line_and_leaves_no_folder(tmp_path, isp_raws):
    empty = tmp_path / "empty"
    empty.mkdir()
    runner = CliRunner()
    for args, message in (
        (["check", str(tmp_path / "nope")], "not a folder"),
        (["check", str(empty), "--out", str(tmp_path / "o1")], "found no raw file"),
        (
            ["check", str(isp_raws[0].parent), "--policy", "defualt", "--out", str(tmp_path / "o2")],
            "did you mean",
        ),
    ):
        r = runner.invoke(app, args)
        assert r.exit_code != 0 and message in str(r.exception), (args, r.exception)
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o2").exists()
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = runner.invoke(app, ["check", str(isp_raws[0].parent), "--out", str(blocker / "sub")])
    assert r.exit_code != 0 and str(blocker) in str(r.exception)
    assert Path(blocker).read_text() == "x"


def test_check_returns_the_rows_it_scored_not_a_reading_of_its_own_file(tmp_path, isp_raws):
    """Session 44: **was** the rows read back from the ``results.csv`` just written (six decimals), a second
    source beside the scores in memory; now the scored rows themselves: each raw's values are the ones the
    summary's means are taken from, to the last bit."""
    import json

    import numpy as np

    from isp_env.run import check_policy
    from isp_env.run_inputs import check_inputs

    rows = check_policy(check_inputs(isp_raws[0].parent, tmp_path / "check", "default"))
    assert sorted(str(r["image"]) for r in rows) == sorted(p.stem for p in isp_raws)
    summary = json.loads((tmp_path / "check" / "summary.json").read_text())
    means = {s["method"]: s for s in summary["methods"]}
    for method in ("neutral", "policy"):
        for key in ("mos", "guarded"):
            values = [float(r[f"{method}_{key}"]) for r in rows]
            assert float(np.mean(values)) == means[method][f"mean_{key}"], (method, key)


def test_check_says_bad_input_before_torch_loads(tmp_path, isp_raws):
    """**Was**: ``isp-tune check`` imported the model stack (torch) before its input checks, so a file given
    for the folder, a folder of no raw, a misspelt ``--policy`` and another command's report folder were
    said after seconds of imports; ``isp-tune`` says its own before torch. Now each is one line before torch
    loads, as the in-process checks above say it."""
    from early_checks import ISP_HEAVY, check

    empty = tmp_path / "empty"
    empty.mkdir()
    report = tmp_path / "report"
    report.mkdir()
    (report / "run.json").write_text("{}")  # an isp-tune run's folder, not a check's report
    raws = str(isp_raws[0].parent)
    cases = [
        (["check", str(isp_raws[0])], "a raw file, not a folder"),
        (["check", str(empty), "--out", str(tmp_path / "o1")], "found no raw file"),
        (["check", raws, "--policy", "defualt", "--out", str(tmp_path / "o2")], "did you mean"),
        (["check", raws, "--out", str(report)], str(report)),
    ]
    check([("isp_env.cli", args, words) for args, words in cases], ISP_HEAVY)
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o2").exists()


def test_a_second_check_into_an_out_being_written_is_one_line(tmp_path, isp_raws, isp_cli):
    """**Was**: `isp-tune check --out` was not held: two checks into one folder each wrote results.csv, the
    renders and the report over the other's. Now --out is held from before the first write (a new one made
    for it) to the end: the second is one line, the folder as the first writes it."""
    raws = tmp_path / "raws"
    raws.mkdir()
    for p in isp_raws[:2]:
        shutil.copy(p, raws / p.name)
    out = tmp_path / "check"
    args = ["check", str(raws), "-m", "classical", "--out", str(out)]
    with paused_after(tmp_path, "isp_env.run:evaluate", isp_tune_cmd(*args)):
        assert (out / ".attiqa.lock").read_bytes() == b"checking a policy in; isp-tune check"
        before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
        second = isp_cli(*args)
        busy = "another process is checking a policy in it now (the same command still running?) — let it "
        busy += "finish (rerunning it then resumes what it left), or choose another --out"
        assert one_line_error(second) == f"error: {out}: {busy}"
        assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert (out / "report.md").is_file() and not (out / ".attiqa.lock").exists()
