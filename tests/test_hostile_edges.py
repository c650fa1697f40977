"""`isp-tune`, `genbench` and the score-file readers: each test runs the real command on the input a user hit
and holds a row of docs/robustness.md."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED_DATA, in_process
from genbench_helpers import copied_run
from helpers import run_genbench
from PIL import Image

AGIQA_HEADER = "name,prompt,adj1,adj2,style,mos_quality,std_quality,mos_align,std_align"


def _agiqa_root(root: Path, n: int = 6) -> Path:
    """An AGIQA-3k folder (the official data.csv columns) of one prompt over ``n`` noise images, MOS
    1.0, 1.6, ... so every pair is >= 0.5 apart."""
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(root / f"img{i}.png")
        rows.append([f"img{i}.png", "a cat", "", "", "", f"{1 + 0.6 * i:.2f}", "0.5", "2.0", "0.5"])
    with open(root / "data.csv", "w", newline="") as fh:
        fh.write(AGIQA_HEADER + "\n")
        csv.writer(fh).writerows(rows)
    return root


@pytest.fixture(scope="module")
def scored_run(tmp_path_factory) -> Path:
    """A run of `genbench import-agiqa3k` on :func:`_agiqa_root`, scored by `classical` (the real commands),
    made once for the module: a test works on its own copy (``genbench_helpers.copied_run``)."""
    from genbench.cli import main

    genbench = in_process("genbench", main)
    base = tmp_path_factory.mktemp("scored")
    run = base / "run"
    assert genbench("import-agiqa3k", _agiqa_root(base / "agiqa"), "-o", run).returncode == 0
    assert genbench("score", run, "-m", "classical", "-w", "0").returncode == 0
    return run


# ---------------------------------------------------------------------------------------------------------
# score files: a row with more cells than the header


def test_a_row_with_an_unquoted_comma_is_refused_naming_its_line(tmp_path, genbench_cli):
    """**Was**: `house of the, dragon` unquoted in AGIQA-3k's data.csv shifted the row's cells one column
    right — its mos_quality read from the empty style cell, the last cell dropped — and the image was
    left out as "no finite mos_quality" (or, with the style filled, given its std as MOS) without a word."""
    from attiqa.datasets import get_dataset
    from attiqa.datasets.readers import read_csv
    from attiqa.errors import AttiqaError

    root = _agiqa_root(tmp_path / "agiqa")
    lines = (root / "data.csv").read_text().splitlines()
    lines[3] = lines[3].replace("a cat", "a cat, sitting")  # row of img2, line 4 of the file
    (root / "data.csv").write_text("\n".join(lines) + "\n")
    res = genbench_cli("import-agiqa3k", root, "-o", tmp_path / "run")
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    err = " ".join(res.stderr.split())
    assert f"{root / 'data.csv'}:4: 10 cells under a header of 9 columns" in err and "quoted" in err
    assert not (tmp_path / "run").exists()
    # the same in `eval folder` / `bench -d folder=`: a name with a comma, unquoted
    (tmp_path / "mos.csv").write_text("image,mos\nimg0.png,3.5\nsmith, john.png,4.0\n")
    with pytest.raises(AttiqaError, match="mos.csv:3: 3 cells under a header of 2 columns"):
        get_dataset("folder", tmp_path / "mos.csv")
    # quoted, it is read whole; empty cells past the header (a spreadsheet's trailing comma) are no data
    (tmp_path / "mos.csv").write_text('image,mos\nimg0.png,3.5,\n"smith, john.png",4.0\n')
    table = read_csv(tmp_path / "mos.csv")
    assert [(r["image"], r["mos"]) for r in table.rows] == [("img0.png", "3.5"), ("smith, john.png", "4.0")]


# ---------------------------------------------------------------------------------------------------------
# the lines that name what a command wrote: an output name that is not UTF-8


def test_wrote_lines_show_a_non_utf8_output_name_as_the_rest_of_the_cli_does(tmp_path, isp_raws):
    """**Was**: "wrote s\\udcff.csv" (Python's surrogate escape of the byte) in `score`, `genbench
    import-agiqa3k`'s and `isp-tune render`'s last line, where the skipped lists and tables show `s\\xff`."""
    from helpers import run_attiqa, run_isp_tune

    root = _agiqa_root(tmp_path / "agiqa")
    odd = os.fsdecode(b"s\xff")
    res = run_attiqa("score", root / "img0.png", "-m", "classical", "-w", "0", "-o", tmp_path / f"{odd}.csv")
    assert res.returncode == 0, res.stderr
    assert f"wrote {tmp_path}/s\\xff.csv" in res.stderr and "udcff" not in res.stderr, res.stderr
    res = run_genbench("import-agiqa3k", root, "-o", tmp_path / odd)
    assert res.returncode == 0, res.stderr
    assert f"{tmp_path}/s\\xff: 15 pairs" in res.stderr and "udcff" not in res.stderr, res.stderr
    res = run_isp_tune("render", isp_raws[0], "-o", tmp_path / f"{odd}.png")
    assert res.returncode == 0, res.stderr
    assert f"-> {tmp_path}/s\\xff.png" in res.stderr and "udcff" not in res.stderr, res.stderr
    assert (tmp_path / f"{odd}.png").is_file() and (tmp_path / f"{odd}.csv").is_file()


# ---------------------------------------------------------------------------------------------------------
# benchmarks/isp_heldout.py: a folder that is not a finished isp-tune run


def test_isp_heldout_names_a_folder_that_is_not_a_run_in_one_line(tmp_path, isp_raws):
    """**Was**: `python benchmarks/isp_heldout.py RAWS --run agent=DIR` with DIR holding no run.json (a
    typo, a run killed before its split) ended in a FileNotFoundError traceback; `--run DIR` without
    `NAME=` in a ValueError one."""
    from helpers import REPO, attiqa_env

    raws = tmp_path / "raws"
    raws.mkdir()
    for p in isp_raws:
        (raws / p.name).write_bytes(p.read_bytes())
    (tmp_path / "run").mkdir()
    script = [
        sys.executable,
        str(REPO / "benchmarks" / "isp_heldout.py"),
        str(raws),
        "--out",
        str(tmp_path / "o"),
    ]
    for spec, said in (
        (
            f"agent={tmp_path / 'run'}",
            f"{tmp_path / 'run'}: no run.json — not a finished isp-tune run folder",
        ),
        (str(tmp_path / "run"), f"--run {tmp_path / 'run'}: expected NAME=RUN_DIR"),
    ):
        res = subprocess.run([*script, "--run", spec], env=attiqa_env(), capture_output=True, text=True)
        assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
        assert res.stderr.startswith(f"error: {said}") and len(res.stderr.splitlines()) == 1, res.stderr
    assert not (tmp_path / "o").exists()


# ---------------------------------------------------------------------------------------------------------
# isp-tune: every training raw damaged after its header


def test_isp_tune_with_no_decodable_training_raw_writes_nothing(tmp_path, isp_raws, isp_cli):
    """**Was**: raws cut short after a valid header pass the split's probe; with all of them so, `isp-tune`
    wrote run.json, a global base "searched" on no raw (baselines/cma_global.json) and teacher/, then
    stopped with "--algo teacher needs at least 2 readable training raws, found 0"."""
    from helpers import quick_isp_tune

    raw_dir, out, args = quick_isp_tune(tmp_path, isp_raws)
    for p in raw_dir.iterdir():
        data = p.read_bytes()
        p.write_bytes(data[: len(data) // 2])
    res = isp_cli(*args)
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(
        f"error: {raw_dir}: 0 of the 2 training raws the teacher searches (--teacher-raws) can be decoded"
    )
    assert "replace the damaged raws; nothing was written" in errors[0]
    assert not out.exists() or not any(out.iterdir())
    (tmp_path / "good").mkdir()
    good = quick_isp_tune(tmp_path / "good", isp_raws)[2]  # whole raws: the check costs two decodes
    res = isp_cli(*good)
    assert res.returncode == 0, res.stderr


# ---------------------------------------------------------------------------------------------------------
# --seed: negative or beyond numpy's legacy seeding


def test_a_negative_or_too_large_seed_is_a_bad_option_value(tmp_path, isp_raws, cli, genbench_cli, isp_cli):
    """**Was**: `isp-tune --seed -1` (and `attiqa distort --seed -1`) ended in numpy's "expected non-negative
    integer" traceback, `--seed 99999999999999999999` in "Seed must be between 0 and 2**32 - 1" — after
    isp-tune had split its raws. Now every command's --seed takes 0..2**32-1 (attiqa.cli.seed_option)."""
    from helpers import quick_isp_tune

    raw_dir, out, args = quick_isp_tune(tmp_path, isp_raws)
    photo = _agiqa_root(tmp_path / "photos", n=1) / "img0.png"
    for seed, said in (
        ("-1", "greater than or equal to 0"),
        (str(2**32), "less than or equal to 4294967295"),
    ):
        for res in (
            isp_cli(*args, "--seed", seed),
            cli("distort", photo, "-o", tmp_path / "d.png", "-t", "gaussian_blur", "-l", "2", "--seed", seed),
            genbench_cli("agree", tmp_path, "--seed", seed),
        ):
            assert res.returncode == 2 and "Traceback" not in res.stderr and said in res.stderr, res.stderr
    assert not out.exists() and not (tmp_path / "d.png").exists()
    res = cli(
        "distort", photo, "-o", tmp_path / "d.png", "-t", "gaussian_blur", "-l", "2", "--seed", str(2**32 - 1)
    )
    assert res.returncode == 0 and (tmp_path / "d.png").is_file(), res.stderr


# ---------------------------------------------------------------------------------------------------------
# genbench score / agree: a metric named twice


def test_a_metric_named_twice_is_scored_and_reported_once(tmp_path, genbench_cli):
    """**Was**: `genbench agree --metrics classical,classical` wrote two equal rows in agreement.csv and
    per_pair.csv with every classical column twice (a CSV with repeated columns); `score -m a,a` scored
    the metric, then read it all back as "already scored"."""
    run = tmp_path / "run"
    assert genbench_cli("import-agiqa3k", _agiqa_root(tmp_path / "agiqa"), "-o", run).returncode == 0
    res = genbench_cli("score", run, "-m", "classical,classical", "-w", "0")
    assert res.returncode == 0 and "already scored" in res.stderr, res.stderr
    assert res.stderr.count("classical: 6 scored, 0 already scored") == 1
    assert "classical: 0 scored, 6 already scored" not in res.stderr
    res = genbench_cli("agree", run, "--metrics", "classical, classical", "--bootstrap", "100")
    assert res.returncode == 0, res.stderr
    with open(run / "agreement" / "agreement.csv", newline="") as fh:
        assert [r["metric"] for r in csv.DictReader(fh)] == ["classical"]
    header = (run / "agreement" / "per_pair.csv").read_text().splitlines()[0].split(",")
    assert len(header) == len(set(header)) and "classical_pick" in header


# ---------------------------------------------------------------------------------------------------------
# genbench import-agiqa3k --margin 0; a folder that is no run yet


def test_import_agiqa3k_margin_0_names_the_pairs_it_leaves_out_for_what_they_are(tmp_path, genbench_cli):
    """**Was**: `--margin 0` said "1 pairs closer than 0.0 MOS left out" (nothing is closer than 0: they
    are pairs of equal MOS, which prefer neither image); `genbench score` on a folder without a manifest
    suggested `genbench run` or `import-imagereward` only, not the import the user may have meant."""
    root = _agiqa_root(tmp_path / "agiqa")
    text = (root / "data.csv").read_text().replace("img1.png,a cat,,,,1.60", "img1.png,a cat,,,,1.00")
    (root / "data.csv").write_text(text)
    res = genbench_cli("import-agiqa3k", root, "-o", tmp_path / "run", "--margin", "0")
    assert res.returncode == 0, res.stderr
    said = " ".join(res.stderr.split())
    assert (
        said.startswith(f"{tmp_path / 'run'}: 14 pairs")
        and "1 pair of equal MOS (no preference) left out" in said
    )
    assert "closer than 0.0" not in said
    res = genbench_cli("import-agiqa3k", root, "-o", tmp_path / "run2")
    assert res.returncode == 0 and "1 pair closer than 0.5 MOS left out" in res.stderr, res.stderr
    res = genbench_cli("score", tmp_path / "agiqa", "-m", "classical")
    assert res.returncode == 2 and "genbench import-agiqa3k" in " ".join(res.stderr.split()), res.stderr


def test_an_isp_manifest_row_with_an_unquoted_comma_is_refused(tmp_path, isp_raws, isp_cli):
    """**Was**: `raws/manifest.csv` (the layout of ../shared/data/raw/real: file, licence, ..., scene_group)
    with `GPL-3.0 (COPYING), v2` unquoted read the next cell as the scene group: two shots of one scene in
    two groups, free to land on both sides of the split, without a word. Now the reader of score files'
    row check (attiqa.datasets.readers.fitting_rows) refuses it: one line, nothing written."""
    from helpers import quick_isp_tune

    raw_dir, out, args = quick_isp_tune(tmp_path, isp_raws)
    names = sorted(p.name for p in raw_dir.iterdir())
    rows = [f"{n},GPL-3.0 (COPYING),{'chart' if i < 2 else n}\n" for i, n in enumerate(names)]
    rows[1] = rows[1].replace("(COPYING)", "(COPYING), v2")
    (raw_dir / "manifest.csv").write_text("file,licence,scene_group\n" + "".join(rows))
    res = isp_cli(*args)
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    said = " ".join(res.stderr.split())
    assert (
        f"error: {raw_dir / 'manifest.csv'}:3: 4 cells under a header of 3 columns" in said
        and "quoted" in said
    )
    assert not out.exists() or not any(out.iterdir())


def test_a_preferences_row_with_an_unquoted_comma_is_refused(tmp_path, scored_run, genbench_cli):
    """**Was**: `genbench agree --prefs FILE` with a rater `lee, a` unquoted (`PAIR,lee, a,b`) counted a vote
    for image a — the rater's second half read as the choice, the real choice b dropped — without a word."""
    run = copied_run(scored_run, tmp_path / "run")
    prefs = tmp_path / "prefs.csv"
    prefs.write_text("pair_id,rater,choice\nimg0|img1,ann,b\nimg0|img1,lee, a,b\n")
    res = genbench_cli("agree", run, "--prefs", prefs, "--metrics", "classical", "--bootstrap", "100")
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    assert f"error: {prefs}:3: 4 cells under a header of 3 columns" in " ".join(res.stderr.split())
    prefs.write_text('pair_id,rater,choice\nimg0|img1,ann,b\nimg0|img1,"lee, a",b\n')
    res = genbench_cli("agree", run, "--prefs", prefs, "--metrics", "classical", "--bootstrap", "100")
    assert res.returncode == 0 and "(2 votes on 1 pair)" in res.stderr, res.stderr


def test_export_votes_refuses_a_name_that_is_not_csv(tmp_path, genbench_cli):
    """**Was**: `genbench export-votes RUN -o votes.tsv` (or `.xlsx`, or `votes`) wrote comma-separated text
    under that name: a spreadsheet opens the .tsv as one column. Now one line before anything is written."""
    from genbench.manifest import load_pairs
    from genbench.vote.store import VoteStore

    run = tmp_path / "run"
    assert genbench_cli("import-agiqa3k", _agiqa_root(tmp_path / "agiqa"), "-o", run).returncode == 0
    VoteStore(run / "votes.sqlite").add("rater1", load_pairs(run)[0].pair_id, "a", "b")
    for name in ("votes.tsv", "votes.xlsx", "votes"):
        res = genbench_cli("export-votes", run, "-o", tmp_path / name)
        assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
        assert "give it a name ending in .csv" in res.stderr and not (tmp_path / name).exists()
    res = genbench_cli("export-votes", run, "-o", tmp_path / "votes.CSV")
    assert res.returncode == 0 and "1 vote from 1 rater" in res.stderr, res.stderr


def test_genbench_score_names_a_skipped_metric_once(tmp_path, genbench_cli, monkeypatch):
    """**Was**: "skipped nosuch.safetensors: nosuch.safetensors: checkpoint not found …" — the metric's name
    and then the error's own path, the same text twice on the line."""
    run = tmp_path / "run"
    assert genbench_cli("import-agiqa3k", _agiqa_root(tmp_path / "agiqa"), "-o", run).returncode == 0
    monkeypatch.chdir(tmp_path)
    res = genbench_cli("score", run, "-m", "nosuch.safetensors,classical", "-w", "0")
    assert res.returncode == 2, res.stderr  # session 60: a missing path is refused before any scoring
    said = " ".join(res.stderr.split())
    assert "--metrics: nosuch.safetensors: no such checkpoint file — check the path" in said, said
    assert said.count("nosuch.safetensors") == 1 and "classical: 6 scored" not in said


def test_genbench_metrics_naming_nothing_is_refused(tmp_path, scored_run, genbench_cli):
    """**Was** (session 41): `genbench score RUN -m ''` (or `' , '`) scored every metric of the registry,
    `agree -m ''` reported every scored one: an empty list read as "no option". Now one line, exit 2,
    before any work, listing what could be named."""
    from genbench.metric_names import default_metrics

    run = tmp_path / "run"
    assert genbench_cli("import-agiqa3k", _agiqa_root(tmp_path / "agiqa"), "-o", run).returncode == 0
    for given in ("", " , "):
        res = genbench_cli("score", run, "-m", given, "-w", "0")
        names = ", ".join(default_metrics())
        said = f"error: --metrics {given!r} names no metric — give one or more of {names}"
        assert res.returncode == 2 and res.stderr.strip().startswith(said), res.stderr
        assert len(res.stderr.strip().splitlines()) == 1 and not (run / "scores").exists()
    scored = copied_run(scored_run, tmp_path / "scored")
    res = genbench_cli("agree", scored, "-m", " , ")
    said = "names no metric — give one or more of classical (comma-separated)"
    assert res.returncode == 2 and said in res.stderr, res.stderr
    assert not (scored / "agreement").exists()


# ---------------------------------------------------------------------------------------------------------
# isp-tune: a raw whose name is not UTF-8


def test_a_raw_whose_name_is_not_utf8_is_read(tmp_path, isp_raws, isp_cli):
    """**Was**: `caf\\xe9.dng` (a Latin-1 name from an old card) skipped by `isp-tune` and refused by
    `render` as "LibRaw can't read it (UnicodeEncodeError: … surrogates not allowed)": rawpy encodes the
    name as UTF-8. Now LibRaw is handed the file's bytes (isp_env.raw.open_raw)."""
    from helpers import quick_isp_tune, run_isp_tune

    raw_dir, out, args = quick_isp_tune(tmp_path, isp_raws, test_fraction="0")
    odd = raw_dir / os.fsdecode(b"caf\xe9 [x].dng")
    (raw_dir / isp_raws[0].name).rename(odd)
    res = run_isp_tune("render", odd, "-o", tmp_path / "r.png")
    assert res.returncode == 0 and (tmp_path / "r.png").is_file(), res.stderr
    assert f"{raw_dir}/caf\\xe9 [x].dng -> {tmp_path / 'r.png'}" in res.stderr
    res = isp_cli(*args)
    assert res.returncode == 0 and "skipped" not in res.stderr and "UnicodeEncodeError" not in res.stderr, (
        res.stderr
    )
    assert str(odd) in json.loads((out / "run.json").read_text())["train"]


REAL_QTK = SHARED_DATA / "raw" / "real" / "a2tools__IMAGE01.QTK"


@pytest.mark.parametrize("source", ["dng", "qtk"])
def test_a_truncated_raw_is_our_one_line_without_libraws_own(tmp_path, isp_raws, source):
    """**Was** (session 41): "FILE: Unexpected end of file" on stderr — printed by LibRaw's C code itself —
    above our "error: FILE: LibRaw can't read it …" line. Now fd 2 is silenced while LibRaw opens and
    decodes (isp_env.raw.libraw_quiet): our line alone. A demo DNG and a real QuickTake raw, cut in half.
    A real process: LibRaw writes to fd 2, which an in-process call's captured sys.stderr never sees."""
    from helpers import run_isp_tune

    if source == "qtk" and not REAL_QTK.is_file():
        pytest.skip("the real raws of ../shared are not present")
    data = (isp_raws[0] if source == "dng" else REAL_QTK).read_bytes()
    cut = tmp_path / f"cut.{source}"
    cut.write_bytes(data[: len(data) // 2])
    res = run_isp_tune("render", cut, "-o", tmp_path / "r.png")
    assert res.returncode == 2 and res.stderr.splitlines() == [
        f"error: {cut}: LibRaw can't read it (LibRawIOError: Input/output error): the file ends early or is "
        "not a raw — check the file is a complete camera raw or DNG"
    ], res.stderr
    whole = tmp_path / f"whole.{source}"  # the same raw whole still renders, its line still shown
    whole.write_bytes(data)
    res = run_isp_tune("render", whole, "-o", tmp_path / "r.png")
    assert res.returncode == 0 and f"{whole} -> {tmp_path / 'r.png'}" in res.stderr, res.stderr


def test_isp_tune_refuses_a_split_leaving_the_teacher_one_raw_before_writing(tmp_path, isp_raws, isp_cli):
    """**Was**: `--test-fraction 0.7` on 4 raws (3 held out) wrote run.json and a global CMA-ES base of the
    one training raw, then "--algo teacher needs at least 2 readable training raws, found 1"."""
    from helpers import quick_isp_tune

    raw_dir, out, args = quick_isp_tune(tmp_path, isp_raws, test_fraction="0.7")
    res = isp_cli(*args, "--base", "global")
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    said = " ".join(res.stderr.split())
    assert f"error: {raw_dir}: the split leaves 1 training raw(s), 2 needed — lower --test-fraction" in said
    assert not out.exists() or not any(out.iterdir())


def test_agree_refuses_an_unknown_tie_rule_before_reading_anything(tmp_path, scored_run, genbench_cli):
    """**Was**: `genbench agree RUN --ties bogus` printed "preferences: RUN/prefs.csv (N votes …)" and then
    "error: tie policy 'bogus' …" (not the option's name); `--model-ties` alike."""
    run = copied_run(scored_run, tmp_path / "run")
    for option, rules in (("--ties", "skip, half"), ("--model-ties", "wrong, half")):
        said = f"error: {option} 'bogus': use one of {rules}"
        res = genbench_cli("agree", run, option, "bogus")
        assert res.returncode == 2 and res.stderr.strip() == said, res.stderr
    assert not (run / "agreement").exists()


def test_agree_with_a_misspelt_metric_names_the_scored_one(tmp_path, scored_run, genbench_cli):
    """**Was**: `genbench agree RUN -m clasical` (scored: classical) said "metric 'clasical' has not scored
    this run — `genbench score RUN --metrics clasical`": the fix it gave scores the typo (an unknown scorer
    again). Now it asks about the close metric this run has scores of and lists them."""
    run = copied_run(scored_run, tmp_path / "run")
    res = genbench_cli("agree", run, "-m", "clasical")
    said = " ".join(res.stderr.split())
    assert res.returncode == 2 and "run (did you mean 'classical'?) (scored: classical)" in said, res.stderr
    assert "--metrics clasical" not in said
    res = genbench_cli("agree", run, "-m", "nosuch")  # session 60: no scorer at all, no `score` fix to give
    said = " ".join(res.stderr.split())
    assert res.returncode == 2 and "no scorer is named so (`attiqa models`" in said, res.stderr
    assert "--metrics nosuch" not in said and "(scored: classical)" in said
    res = genbench_cli("agree", run, "-m", "attiqa-default")  # a real metric not scored yet: how to score it
    said = " ".join(res.stderr.split())
    assert res.returncode == 2 and "--metrics attiqa-default" in said and "(scored: classical)" in said


def test_an_isp_manifest_without_its_columns_is_said_not_ignored(tmp_path, isp_raws, isp_cli):
    """**Was**: `raws/manifest.csv` with `file,scene` (not `scene_group`) was ignored without a word: every
    raw its own scene group, so two shots of one scene could be split between training and test."""
    from helpers import quick_isp_tune

    raw_dir, out, args = quick_isp_tune(tmp_path, isp_raws, test_fraction="0")
    names = sorted(p.name for p in raw_dir.iterdir())
    (raw_dir / "manifest.csv").write_text("file,scene\n" + "".join(f"{n},chart\n" for n in names))
    res = isp_cli(*args)
    assert res.returncode == 0, res.stderr
    said = " ".join(res.stderr.split())
    assert (
        f"warning {raw_dir / 'manifest.csv'} has no columns file and scene_group (found: file, scene)" in said
    )


def test_isp_heldout_prints_no_share_of_a_gain_per_image_cma_es_did_not_make(tmp_path, isp_raws, isp_cli):
    """**Was**: with per-image CMA-ES no better than neutral the last line divided by max(its gain, 1e-9):
    "teacher: -1572102308 % of per-image CMA-ES's gain over neutral" (four real raws, budget 4; the same
    script), "0 %" here (a one-call budget: the policy, too, at neutral) — a share of no gain. A symlink loop
    among the raws (session 55): the run leaves it out, and so does the script's split of the same folder
    (**was** a traceback at its scene groups, which read only probed raws since isp55)."""
    from helpers import REPO, attiqa_env, quick_isp_tune

    raw_dir, out, args = quick_isp_tune(tmp_path, isp_raws)
    (raw_dir / "loop.dng").symlink_to("loop.dng")
    assert isp_cli(*args).returncode == 0
    cmd = [sys.executable, str(REPO / "benchmarks" / "isp_heldout.py"), str(raw_dir), "--run",
           f"teacher={out}", "--out", str(tmp_path / "h"), "--model", "classical", "--cma-global-budget", "1",
           "--cma-image-budget", "1"]  # fmt: skip
    res = subprocess.run(cmd, env=attiqa_env(), capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.strip().splitlines()
    last = next(line for line in lines if line.startswith("teacher: "))  # then teacher_checked's (session 44)
    assert last.startswith("teacher: mean MOS") and "per-image CMA-ES did not improve on neutral" in last, (
        last
    )
    assert lines[-1].startswith("teacher_checked: mean MOS"), lines[-1]


def test_the_ppo_progress_bar_counts_the_steps_it_will_take(tmp_path, isp_raws, isp_cli):
    """**Was**: `isp-tune --algo ppo --timesteps 8` showed "training PPO: 64/8": PPO collects whole rollouts
    (64 steps per env), so it trained 64 steps against a total of 8."""
    from helpers import quick_isp_tune

    raw_dir, out, args = quick_isp_tune(tmp_path, isp_raws, test_fraction="0")
    res = isp_cli(*args, "--algo", "ppo", "--timesteps", "8", "--n-envs", "1")
    assert res.returncode == 0, res.stderr
    assert "training PPO: 64/64" in res.stderr and "/8 " not in res.stderr, res.stderr
    assert json.loads((out / "training.json").read_text())["timesteps"] == 64
