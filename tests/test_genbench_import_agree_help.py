"""genbench used as a user would: `import-agiqa3k` on damaged copies of its score file, `agree` with scorer
names that need an argument, and the command list of `genbench --help`."""

from __future__ import annotations

import json

from helpers import agiqa3k_folder, attiqa_env, run_genbench


def _said(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    return " ".join(stderr.split())


def test_a_score_file_with_nul_bytes_is_one_short_line(tmp_path, genbench_cli, cli):
    """**Was**: a data.csv whose end a crash left as zeros (8 KiB of NUL bytes over its last rows) ended
    `import-agiqa3k` and `attiqa eval agiqa3k` on "data.csv:7: mos_quality: '2.0\\x00\\x00…' is not a
    number" — the cell's repr, 33,000 characters on one line — and NULs inside a prompt made a prompt of
    their own, imported without a word. Now the one CSV reader refuses a row holding NUL bytes: the file
    and line, that the file is damaged, and to restore it; no run is written."""
    root = agiqa3k_folder(tmp_path / "agiqa")
    data = root / "data.csv"
    text = data.read_bytes()
    data.write_bytes(text[:-12] + b"\x00" * 8192)
    said = f"{data}:7: NUL bytes in the text — the file is damaged"
    res = genbench_cli("import-agiqa3k", root, "-o", tmp_path / "run")
    assert res.returncode == 2 and said in _said(res.stderr) and len(res.stderr) < 400, res.stderr[:400]
    assert not (tmp_path / "run").exists()
    ev = cli("eval", "agiqa3k", "--root", root, "-m", "classical", "-o", tmp_path / "ev", "--no-cache")
    assert ev.returncode == 2 and said in _said(ev.stderr) and len(ev.stderr) < 400, ev.stderr[:400]

    at = text.index(b"prompt 1")  # zeros inside a prompt's text, the rest of the file whole
    data.write_bytes(text[:at] + b"pro\x00\x00mpt 1" + text[at + 8 :])
    res = genbench_cli("import-agiqa3k", root, "-o", tmp_path / "run")
    assert res.returncode == 2 and f"{data}:3: NUL bytes in the text" in _said(res.stderr), res.stderr


def test_a_score_file_cut_short_says_the_images_it_leaves_out(tmp_path, genbench_cli):
    """**Was**: a data.csv cut short (a copy interrupted mid-file) was imported as the whole dataset: of
    6 images, the 4 of its whole rows made the pairs, and the only sign was "1 row of the score file has no
    finite mos_quality" (the cut row). Now the images beside the score file's that no row names are
    counted and one named, with the question whether the file is whole; import.json records them. A whole
    file says nothing of the kind."""
    root = agiqa3k_folder(tmp_path / "agiqa")
    data = root / "data.csv"
    res = genbench_cli("import-agiqa3k", root, "-o", tmp_path / "whole")
    assert res.returncode == 0 and "no row in the score file" not in res.stderr, res.stderr
    lines = data.read_text().splitlines(keepends=True)  # header + 6 rows
    data.write_text("".join(lines[:5]) + lines[5][:9])  # the 5th row cut inside its image's name
    res = genbench_cli("import-agiqa3k", root, "-o", tmp_path / "run")
    said = _said(res.stderr)
    assert res.returncode == 0, res.stderr
    folder = root / "AGIQA-3K"
    assert (
        f"2 images in {folder} have no row in the score file: left out (e.g. sd1.5_normal_004.png) — is "
        "the score file whole?" in said
    ), said
    info = json.loads((tmp_path / "run" / "import.json").read_text())
    assert info["unlisted"] == [str(folder / f"sd1.5_normal_00{i}.png") for i in (4, 5)]


def test_agree_gives_the_score_command_with_the_metric_as_named(tmp_path, genbench_cli):
    """**Was**: `genbench agree RUN -m temu-layer:5` (not scored yet) said "metric 'temu-layer_5' has not
    scored this run — `genbench score RUN --metrics temu-layer_5`" — its file's name, which `score` refuses
    as an unknown scorer; a checkpoint path was given as its file's stem (`--metrics my_model`). Now the
    command names the metric as the user gave it, quoted for the shell."""
    root = agiqa3k_folder(tmp_path / "agiqa")
    run = tmp_path / "run"
    assert genbench_cli("import-agiqa3k", root, "-o", run).returncode == 0
    assert genbench_cli("score", run, "-m", "classical", "-w", "0").returncode == 0
    res = genbench_cli("agree", run, "-m", "temu-layer:5")
    said = _said(res.stderr)
    assert res.returncode == 2, said
    assert f"`genbench score {run} --metrics temu-layer:5` (scored: classical)" in said
    assert "temu-layer_5`" not in said
    ckpt = tmp_path / "my model.safetensors"
    res = genbench_cli("agree", run, "-m", ckpt)
    said = _said(res.stderr)
    assert res.returncode == 2, said
    assert f"`genbench score {run} --metrics '{ckpt}'` (scored: classical)" in said, said


def test_the_command_list_cuts_no_help_inside_its_parentheses(tmp_path):
    """**Was**: `genbench --help` on a terminal under 100 columns (the plain layout) listed "vote  Serve the
    preference study (supp." — click ends a command's short help at its first full stop, here the
    abbreviation's. Now each line of the command list reads whole: no parenthesis left open."""
    res = run_genbench("--help", env={**attiqa_env(), "COLUMNS": "80"})
    assert res.returncode == 0, res.stderr
    commands = res.stdout.split("Commands:")[1].splitlines()
    listed = {line.split()[0]: line for line in commands if line.strip() and line.startswith("  ")}
    assert "vote" in listed and "Serve the preference study" in listed["vote"]
    for line in listed.values():
        assert line.count("(") == line.count(")"), line
