"""`attiqa score` / `attiqa eval` (docs/robustness.md): what a read-only output folder, an eval into a folder
of another eval, the scatter plot and the help say. Each test failed before its fix."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from helpers import attiqa_env, run_attiqa, unprivileged_cmd
from PIL import Image


def _errors(res) -> list[str]:
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr[-2000:]
    return [" ".join(ln.split()) for ln in res.stderr.splitlines() if ln.startswith("error:")]


@pytest.fixture()
def mos_folder(tmp_path: Path, photos) -> Path:
    """A `folder` dataset: five real photos and a mos.csv."""
    root = tmp_path / "set"
    root.mkdir()
    rows = ["image,mos"]
    for i, (name, img) in enumerate(photos.items()):
        img.resize((img.width // 2, img.height // 2), Image.BICUBIC).save(root / f"{name}.jpg")
        rows.append(f"{name}.jpg,{30 + 10 * i}")
    (root / "mos.csv").write_text("\n".join(rows) + "\n")
    return root


def test_a_new_output_folder_under_a_read_only_one_names_the_folder_that_refuses(mos_folder, tmp_path):
    """**Was**: `attiqa score … -o RO/sub/x.csv` (RO read-only, sub not there) said "RO/sub: not writable
    (permission denied)" — a folder that does not exist, while RO, which refuses, went unnamed; so did
    `attiqa eval --out RO/sub/res` and the atomic writes' own check ("RO/sub: cannot create the output folder
    (Permission denied)"). Now every one names RO: the one check (`attiqa.io.atomic.output_folder`) looks
    at the nearest folder there is. (Run without root's permission override.)"""
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    said = f"error: {ro}: not writable (permission denied) — choose another --out"
    try:
        score = run_attiqa(
            "score", mos_folder, "-m", "classical", "-o", ro / "sub" / "x.csv", unprivileged=True
        )
        assert _errors(score) == [said]
        ev = run_attiqa("eval", "folder", "-r", mos_folder, "-m", "classical", "-o", ro / "sub" / "res",
                        "--no-cache", unprivileged=True)  # fmt: skip
        assert _errors(ev) == [said]
        # the same check where a file is written (create=True): what a library caller meets
        code = "from attiqa.io.atomic import write_text_atomic as w; import sys; w(sys.argv[1], 'x')"
        cmd = unprivileged_cmd([sys.executable, "-c", code, str(ro / "sub" / "deeper" / "x.txt")])
        res = subprocess.run(cmd, env=attiqa_env(), capture_output=True, text=True, timeout=120)
        assert f"AttiqaError: {ro}: not writable (permission denied)" in res.stderr, res.stderr[-2000:]
        assert not any(ro.iterdir())
    finally:
        ro.chmod(0o755)


def _eval(*args: object, cache: Path) -> subprocess.CompletedProcess:
    res = run_attiqa("eval", *args, "-q", env={"ATTIQA_CACHE": str(cache), "COLUMNS": "200"})
    assert res.returncode == 0, res.stderr[-2000:]
    return res


def test_eval_into_a_folder_of_another_eval_says_it_replaces_its_outputs(mos_folder, tmp_path, cli):
    """**Was**: `attiqa eval … -o OUT` into a folder holding another model's (or dataset's) eval replaced
    its predictions.csv, summary.json and scatter.png without a word, and `--help` did not say it would.
    Overwriting stays (the scores are in the cache: any eval is reproduced in seconds), but it is said, once,
    before the work — not for a rerun of the same eval; `--help` says so too."""
    out, cache = tmp_path / "out", tmp_path / "cache"
    first = _eval("folder", "-r", mos_folder, "-m", "classical", "-o", out, cache=cache)
    assert "replacing" not in first.stderr
    again = _eval("folder", "-r", mos_folder, "-m", "classical", "-o", out, cache=cache)
    assert "replacing" not in again.stderr  # the same eval: the same numbers again
    other = _eval("folder", "-r", mos_folder, "-o", out, cache=cache)  # the default model
    said = [" ".join(ln.split()) for ln in other.stderr.splitlines() if "replacing" in ln]
    assert said == [
        f"{out}: replacing the predictions.csv, summary.json, scatter.png of an earlier eval, classical on "
        "folder (mos, all)"
    ], other.stderr
    assert other.stderr.index("replacing") < other.stderr.index("wrote")
    summary = (out / "summary.json").read_text()
    assert '"name": "attiqa-default"' in summary
    # files no eval's summary describes (a folder of the user's own)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "predictions.csv").write_text("my own predictions\n")
    res = _eval("folder", "-r", mos_folder, "-m", "classical", "-o", mine, cache=cache)
    assert f"{mine}: replacing the predictions.csv there" in " ".join(res.stderr.split())
    help_text = " ".join(cli("eval", "--help").stdout.split())
    assert "replacing those there" in help_text


def test_the_eval_scatter_plot_gives_n(mos_folder, tmp_path):
    """**Was**: scatter.png's title was "folder (mos, all) — classical": how many images the figures and the
    cloud stand for was not on the picture. Now the title ends "(n = 5)" (and is the PNG's Title field)."""
    out = tmp_path / "out"
    _eval("folder", "-r", mos_folder, "-m", "classical", "-o", out, cache=tmp_path / "cache")
    with Image.open(out / "scatter.png") as im:
        assert im.text["Title"] == "folder (mos, all) — classical (n = 5)"


def _help(*command: str, columns: str) -> str:
    res = run_attiqa(*command, "--help", env={"COLUMNS": columns})  # "": a pipe, no width (rich: 80)
    assert res.returncode == 0, res.stderr
    return res.stdout


def test_score_and_eval_help_is_whole_at_80_columns_and_says_what_this_session_changed():
    """**Was** (`attiqa eval --help` at 80 and 100 columns, piped or on a terminal): --out's default folders
    cut to "runs/eval/DATASET-…" / "runs/eval/folder-C…" and --cache's file to "$ATTIQA_CACHE/eval…" (a word
    wider than the help column is cut, not wrapped); the default folder's split unsaid; --batch-size's new
    "fewer for a checkpoint whose views are larger than five 320-px crops" also in the help of `label`,
    `select-prompts` and `train exiqa`, whose batches are not counted so; score's help silent on resuming a
    stopped torchrun run. Now no option's help is cut, and each says what the command does."""
    for columns in ("80", "100", ""):
        for command in (("score",), ("eval",)):
            text = _help(*command, columns=columns)
            assert "…" not in text, (command, columns, text)
    wide = {c: " ".join(_help(c, columns="250").split()) for c in ("score", "eval")}
    assert "--split, model and --crops center" in wide["eval"]
    assert "eval_scores.sqlite in $ATTIQA_CACHE (default ~/.cache/attiqa)" in wide["eval"]
    assert "resumes with any number of processes" in wide["score"]
    for text in wide.values():
        assert "counted as images of five 320-px crops" in text
    for command in (("label",), ("train", "exiqa")):
        text = _help(*command, columns="250")
        assert "Images per model call." in text and "320-px" not in text, command
