"""`isp_env` defects: the library's bounds, the check's decodes, odd raws and what a person looks at (the
CLI's help, the run's report) — each on real DNGs read by rawpy."""

from __future__ import annotations

import pytest
from helpers import isp_run

from attiqa.errors import ConfigError


@pytest.mark.timeout(60)
@pytest.mark.parametrize("steps", [0, 21, 10**12])
def test_the_library_refuses_the_episode_lengths_the_cli_refuses(tmp_path, isp_raws, steps, capsys):
    """**Was** `--max-steps` bounded by the option parser only: `isp_env.run.run` with
    `TrainConfig(max_steps=10**12)` trained, then hung applying the agent (one render a step); now
    :func:`isp_env.train_config.check_config` refuses it before any work, with the parser's bound
    (:data:`isp_env.registration.MAX_STEPS`, one constant for both) — before the raws are probed (a damaged
    one's "skipped" line was said first since session 59's ``run_inputs``, until it checked the config)."""
    from isp_env.registration import MAX_STEPS
    from isp_env.train_config import TrainConfig

    raws = tmp_path / "raws"
    raws.mkdir()
    for p in isp_raws:
        (raws / p.name).write_bytes(p.read_bytes())
    (raws / "cut.dng").write_bytes(isp_raws[0].read_bytes()[:200])
    cfg = TrainConfig(algo="sac", timesteps=4, max_steps=steps, scorer="classical", obs_mode="stats")
    with pytest.raises(ConfigError, match=rf"--max-steps {steps}: use 1 to {MAX_STEPS}"):
        isp_run(raws, tmp_path / "run", cfg, baselines=False, subprocess=False)
    assert capsys.readouterr().err == "", "the raws were probed before the config was refused"
    assert not (tmp_path / "run").exists()


def test_the_grid_says_what_each_crop_is_with_its_scores_to_three_digits():
    """**Was** a grid crop titled with its method's whole label on one line — the checked policy's ("policy:
    teacher policy (ridge), checked (best of it, its base, neutral by the reward)", now shorter: report.md
    says how) ran over its neighbour's, both unreadable — and "MOS 0.6" for a 0-1 scorer's 0.63 and 0.60
    alike, no guarded score (what the checked setting chose by) and not which candidate it kept; now the
    label wrapped to the column, MOS and guarded to three digits, and the candidate kept."""
    from isp_env.report import crop_title

    label = "a policy with a long name: teacher policy (ridge), checked"
    row = {"mos": 0.628521, "guarded": 0.36, "clipped": 0.163, "kept": "base"}
    title = crop_title("policy_checked", row, {"policy_checked": label})
    lines = title.splitlines()
    assert " ".join(lines[:-2]) == label and max(len(line) for line in lines[:-2]) <= 34
    assert lines[-2:] == ["MOS 0.629, guarded 0.360, clip 16%", "kept: the base's setting"]
    assert crop_title("neutral", {"mos": 30.82, "clipped": 0.0}) == "neutral defaults\nMOS 30.8, clip 0%"


def test_a_raw_named_in_another_script_draws_the_grid_without_warnings(tmp_path):
    """**Was** a raw named `照片 1.QTK`: four matplotlib "Glyph 29031 (CJK UNIFIED IDEOGRAPH-7167) missing
    from font(s) DejaVu Sans" warnings, each with its source line, in `isp-tune check`'s output, and boxes
    in the grid; now the characters the font cannot draw are shown as "?" (results.csv keeps the name)."""
    import warnings

    import numpy as np
    from PIL import Image

    from isp_env.report import grid_png

    crop = np.full((64, 64, 3), 90, np.uint8)
    crops = {"Été 2024__照片 1": {"neutral": crop}, "Ωmega": {"neutral": crop}}
    rows = [{"image": k, "method": "neutral", "mos": 0.5, "clipped": 0.0} for k in crops]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        grid_png(tmp_path / "grid.png", crops, rows)
    assert Image.open(tmp_path / "grid.png").size[0] > 100


@pytest.mark.timeout(600)
def test_the_check_report_names_its_policy_and_its_files(tmp_path, isp_raws):
    """**Was** `isp-tune check`'s report.md headed "Held-out raws: 4" (a folder's raws, held out of
    nothing), without the policy it checked, and silent on grid.png, the renders and the parameters
    beside it; grid.png had no caption (crops or whole renders? whose MOS?). Now report.md names the
    folder and the policy (summary.json: ``checked_policy``) and ends with a guide to its files, and
    grid.png has a caption (:func:`isp_env.report.grid_caption`). The real command, the classical scorer."""
    import json

    from typer.testing import CliRunner

    from isp_env.cli import app
    from isp_env.report import grid_caption

    out = tmp_path / "check"
    raw_dir = isp_raws[0].parent
    r = CliRunner().invoke(app, ["check", str(raw_dir), "-m", "classical", "--out", str(out)])
    assert r.exit_code == 0, r.output + repr(r.exception)
    report = (out / "report.md").read_text()
    assert report.splitlines()[2].startswith(f"Raws of `{raw_dir}` checked with the policy `default`: 4 (")
    assert "Held-out" not in report
    files = report.split("## Files")[1]
    assert "`grid.png`: 256-px centre crops of the full-resolution renders of the first 4 raws" in files
    for m in ("policy", "policy_checked"):
        assert f"`test/{m}/renders/RAW.png`" in files and f"`test/{m}/params/RAW.json`" in files
        assert len(list((out / "test" / m / "renders").glob("*.png"))) == 4
    summary = json.loads((out / "summary.json").read_text())
    assert summary["checked_policy"] == {"policy": "default", "raw_dir": str(raw_dir)}
    caption = grid_caption(summary, 4)
    assert caption.startswith(
        "4 of 4 raws: 256-px centre crops of the full-resolution renders. MOS: scorer classical"
    )


@pytest.mark.parametrize("columns", ["100", "200"])
def test_command_help_is_wrapped_to_the_terminal_not_to_the_source(columns):
    """**Was** `isp-tune check --help` broken mid-sentence wherever its docstring's lines ended ("…both
    scored by the reward" / "model (MOS, …", "cameras it" / "was trained on"): typer 0.29's rich help keeps
    a paragraph's single line breaks, so a line of the 110-column source wider than the terminal left a
    one-word line after it; now each paragraph flows to the terminal's width
    (:func:`attiqa.cli._common.unwrapped`, in `run_app`: every CLI). The real command, in a subprocess."""
    import subprocess

    from helpers import attiqa_env, isp_tune_cmd

    res = subprocess.run(
        isp_tune_cmd("check", "--help"), env={**attiqa_env(), "COLUMNS": columns}, capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    text = [line.strip() for line in res.stdout.splitlines()]
    start = next(i for i, line in enumerate(text) if line.startswith("Each raw (at most --test-raws"))
    paragraph = text[start : text.index("", start)]
    assert all(len(line) > int(columns) * 0.6 for line in paragraph[:-1]), paragraph  # no short line inside
    assert " ".join(paragraph).startswith("Each raw (at most --test-raws of them) rendered neutral and with")


def test_a_run_s_cached_setting_is_read_back_as_written():
    """**Was** a held-out raw's cached parameters read back through `check_values`, whose round trip
    through the normalised range moves a value by a float ulp now and then: on the 43 shared raws, after a
    Ctrl-C, `isp-tune check` again re-scored the checked setting of 7 raws (its cache is keyed on the
    policy's setting) and wrote their files with other last digits than an uninterrupted run's. Now
    :func:`isp_env.params.written_values` keeps a complete, in-range setting as written."""
    import json

    from isp_env.params import check_values, neutral, written_values

    values = {**neutral(), "sharpen_threshold": 0.011889022771758705}  # a2tools__DC0010S's checked setting
    assert check_values(values)["sharpen_threshold"] == 0.011889022771758706  # the round trip moves it
    assert written_values(json.loads(json.dumps(values))) == values
    assert written_values({"sharpen_threshold": 9.0}) == check_values({"sharpen_threshold": 9.0})  # clipped


@pytest.mark.timeout(900)
def test_ctrl_c_in_check_says_what_is_kept_and_the_rerun_ends_as_an_uninterrupted_check(
    tmp_path, isp_raws, isp_cli
):
    """**Was** `isp-tune check` (and `isp-tune --raw-dir`) cut short by Ctrl-C: a bare "interrupted",
    nothing on what was kept or that the same command resumes; now one line saying both (exit 130), and
    the rerun's folder equals an uninterrupted check's, file for file. A real Ctrl-C once the first raw's
    parameters are written."""
    import filecmp
    import signal

    from helpers import interrupt_when, isp_tune_cmd

    raw_dir, out, ref = isp_raws[0].parent, tmp_path / "cut", tmp_path / "ref"
    args = ["check", raw_dir, "-m", "classical", "--out"]
    first = out / "test" / "policy" / "params"
    cut = interrupt_when(isp_tune_cmd(*args, out), signal.SIGINT, lambda: any(first.glob("*.json")))
    assert cut.returncode == 130, cut.stderr[-2000:]
    said = [line for line in cut.stderr.splitlines() if line.startswith("interrupted")]
    assert said == [f"interrupted: the finished work is kept in {out}; rerun the same command to resume"]
    assert isp_cli(*args, out).returncode == 0  # the rerun and an uninterrupted check
    assert isp_cli(*args, ref).returncode == 0
    files = sorted(p.relative_to(ref) for p in ref.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    differ = [f for f in files if not filecmp.cmp(ref / f, out / f, shallow=False)]
    assert differ == []


@pytest.mark.parametrize(("fmt", "kind"), [("JPEG", "JPEG"), ("PNG", "PNG"), ("WEBP", "WebP")])
def test_a_developed_image_under_a_raw_s_name_is_said_to_be_one(tmp_path, fmt, kind, isp_cli):
    """**Was** a JPEG renamed `photo.dng` (a phone's export, a mix-up): "LibRaw can't read it
    (LibRawFileUnsupportedError: Unsupported file format or not RAW file) — check the file is a complete
    camera raw or DNG", which sends the user looking for damage; now "a JPEG image named .dng, not a camera
    raw" (by its first bytes), in `isp-tune render`'s one line and a folder's skipped list alike."""
    import numpy as np
    from PIL import Image

    from isp_env.raw import probe_raw

    path = tmp_path / "photo.dng"
    Image.fromarray(np.full((32, 32, 3), 120, np.uint8)).save(path, format=fmt)
    r = isp_cli("render", path, "-o", tmp_path / "out.png")
    said = r.stderr.strip()
    assert r.returncode == 2 and "\n" not in said, r.stderr
    assert said.startswith(f"error: {path}: a {kind} image named .dng, not a camera raw — check the file"), (
        said
    )
    assert f"a {kind} image named .dng, not a camera raw" in str(probe_raw(path))
    assert not (tmp_path / "out.png").exists()


@pytest.mark.timeout(600)
def test_the_policy_sheet_names_each_raw_and_outlines_its_captions(tmp_path, isp_raws):
    """**Was** `benchmarks/isp_policy_sheet.py`'s contact sheet captioned in plain yellow — unreadable on a
    bright photo (a wall, a sky) — without the raw of each row, and with `--check` only "kept: base", not
    the reward of each candidate; now the captions are outlined in black, each row's raw is named in its
    neutral panel and the kept line gives every candidate's reward. Read from the sheet's own pixels
    against the neutral render it shows (the real script, the classical scorer)."""
    import subprocess
    import sys

    import numpy as np
    from helpers import REPO, attiqa_env
    from PIL import Image

    from isp_env.isp import develop, finish
    from isp_env.params import neutral
    from isp_env.raw import read_raw

    out = tmp_path / "sheet.png"
    cmd = [sys.executable, str(REPO / "benchmarks" / "isp_policy_sheet.py"), str(isp_raws[0]), "--check"]
    res = subprocess.run([*cmd, "--model", "classical", "--out", str(out), "--long-side", "192"],
                         env=attiqa_env(), capture_output=True, text=True, timeout=600)  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    plain = finish(develop(read_raw(isp_raws[0]), 192), neutral()).astype(int)
    h, w = plain.shape[:2]
    sheet = np.asarray(Image.open(out).convert("RGB")).astype(int)
    drawn = np.abs(sheet[:h, :w] - plain).sum(axis=2) > 0  # the neutral panel's captions
    assert drawn[h - 20 :].sum() > 20, "no raw name at the bottom of the neutral panel"
    ink = sheet[:h, :w][drawn[:h]]
    dark = (ink.max(axis=1) < 60).sum()
    assert dark > 20 and dark < len(ink), "captions not outlined"


def test_the_grid_caption_sits_above_the_first_row_s_titles(tmp_path):
    """The caption (session 47) over eight rows of three methods, the checked one's title four lines
    (label, scores, kept): **was** drawn by `suptitle` where `tight_layout` did not leave room, over the
    first row's right-hand title; now in a band of its own — the picture's first run of inked pixel rows
    is the caption's, then a white gap of at least 8 px rows before the titles (lines are 2-4 apart)."""
    import numpy as np
    from PIL import Image

    from isp_env.report import grid_caption, grid_png

    methods = ("neutral", "policy", "policy_checked")
    crops = {f"raw{i}": {m: np.full((256, 256, 3), 90, np.uint8) for m in methods} for i in range(8)}
    rows = [
        {"image": k, "method": m, "mos": 0.629, "guarded": 0.629, "clipped": 0.16}
        | ({"kept": "neutral"} if m == "policy_checked" else {})
        for k in crops
        for m in methods
    ]
    labels = {
        "policy": "policy: teacher policy (ridge)",
        "policy_checked": "policy: teacher policy (ridge), checked",
    }
    caption = grid_caption({"n_test": 43, "scorer": "classical"}, 8)
    grid_png(tmp_path / "grid.png", crops, rows, labels=labels, caption=caption)
    grey = np.asarray(Image.open(tmp_path / "grid.png").convert("L"))
    inked = (grey < 200).any(axis=1)
    crops_start = int(np.argmax((grey == 90).sum(axis=1) > 200))  # the first row of the first crops
    band = inked[int(np.argmax(inked)) : crops_start]  # the caption and the first row's titles
    gaps = np.diff(np.flatnonzero(band)) - 1  # white rows between inked ones
    assert gaps.max() >= 8, f"caption and titles {gaps.max()} px apart at most: they meet"
