"""genbench: `import-imagereward` refuses an --out among its dataset's files (the one check it shares with
`import-agiqa3k`); `per_pair.csv` carries the human MOS of AGIQA-3k imports; `genbench agree`'s lines at 80
columns (docs/robustness.md). Small fixtures: noise PNGs."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
from helpers import run_genbench
from PIL import Image

from genbench.imagereward import import_imagereward


def _one_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    return " ".join(stderr.split())


def _rankings(folder: Path, images: Path) -> Path:
    """``folder/r.json``: one item ranking three noise PNGs in ``images``."""
    images.mkdir(parents=True, exist_ok=True)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for n in ("x", "y", "z"):
        Image.fromarray(rng.integers(0, 256, (32, 40, 3), dtype=np.uint8)).save(images / f"{n}.png")
    item = {"id": "k1", "prompt": "a cat", "generations": ["x.png", "y.png", "z.png"], "ranking": [1, 2, 3]}
    (folder / "r.json").write_text(json.dumps([item]), encoding="utf-8")
    return folder / "r.json"


def _tree(root: Path) -> list[Path]:
    return sorted(p.relative_to(root) for p in root.rglob("*"))


def test_import_imagereward_refuses_an_out_folder_among_the_dataset(tmp_path, genbench_cli):
    """**Was**: `genbench import-imagereward r.json --images IMGS -o IMGS` (or -o IMGS/run, or -o the
    folder r.json is in) wrote manifest.jsonl, manifest.csv, prefs.csv and image_root.json among the
    dataset's files, while `import-agiqa3k` refused the same. Now refused in the same words by the one check
    both share, nothing written; a run in a subfolder beside r.json (the README's `--out ir_run`) is fine."""
    data = tmp_path / "ir"
    rankings = _rankings(data, data / "images")
    before = _tree(data)
    for out, what, inside, args in (
        (data, "the rankings file's folder", "", []),  # --images defaults to that folder
        (data, "the rankings file's folder", "", ["--images", data / "images"]),
        (data / "images", "the --images folder", "", ["--images", data / "images"]),
        (data / "images" / "run", "the --images folder", "inside ", ["--images", data / "images"]),
    ):
        res = genbench_cli("import-imagereward", rankings, *args, "--out", out)
        assert res.returncode == 2, res.stderr
        folder = data if what.startswith("the rankings") else data / "images"
        said = f"--out {out} is {inside}{what} {folder} — a run's files (manifest, prefs.csv, scores/, "
        assert said in _one_line(res.stderr), res.stderr
        assert "e.g. --out ir_run" in _one_line(res.stderr)
        assert _tree(data) == before
    res = genbench_cli("import-imagereward", rankings, "--images", data / "images", "--out", data / "ir_run")
    assert res.returncode == 0, res.stderr
    assert (data / "ir_run" / "manifest.jsonl").is_file()


HEADER = ["name", "prompt", "adj1", "adj2", "style", "mos_quality", "std_quality", "mos_align", "std_align"]


def _agiqa3k(root: Path) -> Path:
    """An AGIQA-3k folder: data.csv of one prompt over three noise PNGs of MOS 1.2, 2.0 and 3.1."""
    (root / "AGIQA-3K").mkdir(parents=True)
    rng = np.random.default_rng(1)
    rows = []
    for i, mos in enumerate(("1.2", "2.0", "3.1")):
        name = f"sd1.5_normal_{i:03d}.png"
        Image.fromarray(rng.integers(0, 256, (36, 44, 3), dtype=np.uint8)).save(root / "AGIQA-3K" / name)
        rows.append([name, "a red car", "", "", "", mos, "0.5", "2.0", "0.5"])
    with open(root / "data.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([HEADER, *rows])
    return root


def _per_pair(run: Path) -> list[dict]:
    with open(run / "agreement" / "per_pair.csv", newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_per_pair_csv_carries_the_human_mos_of_an_agiqa3k_import(tmp_path, genbench_cli):
    """**Was**: per_pair.csv of `genbench agree` on an AGIQA-3k import gave each pair's votes (one synthetic
    vote, from the MOS) and each metric's scores, but not the two images' MOS, which the manifest holds: a
    person checking a disagreement could not see whether the people's gap was 0.5 or 3. Now three columns
    after `human`: human_mos_a, human_mos_b, human_mos_a_minus_b. An ImageReward import (ranks, no MOS)
    gets none of them."""
    run = tmp_path / "run"
    assert genbench_cli("import-agiqa3k", _agiqa3k(tmp_path / "agiqa"), "-o", run).returncode == 0
    for cmd in (("score", run, "-m", "classical", "-w", "0"), ("agree", run, "--bootstrap", "100")):
        done = genbench_cli(*cmd)
        assert done.returncode == 0, done.stderr
    rows = _per_pair(run)
    assert list(rows[0])[5:9] == ["human", "human_mos_a", "human_mos_b", "human_mos_a_minus_b"]
    mos = {"000": 1.2, "001": 2.0, "002": 3.1}
    got = {}
    for r in rows:
        a, b = (mos[Path(r[f"image_{s}"]).stem[-3:]] for s in "ab")
        got[r["pair_id"]] = (
            float(r["human_mos_a"]),
            float(r["human_mos_b"]),
            float(r["human_mos_a_minus_b"]),
        )
        assert got[r["pair_id"]] == (a, b, round(a - b, 6))
        assert r["human"] == ("a" if a > b else "b")
    assert len(got) == 3

    from genbench.agreement import human_labels, metric_agreement, write_report
    from genbench.manifest import load_pairs
    from genbench.prefs import load_votes
    from genbench.run_scores import MetricScores

    ir = tmp_path / "ir_run"
    import_imagereward(_rankings(tmp_path / "ir", tmp_path / "ir"), None, ir)
    pairs = load_pairs(ir)
    labels = human_labels(load_votes(ir, None)[0], pairs, ir / "prefs.csv")
    scores = MetricScores("m", {p.image(s): float(s == "a") for p in pairs for s in "ab"}, True)
    write_report(
        ir / "agreement", pairs, labels, [metric_agreement(pairs, labels, scores, n_boot=100)], [scores], {}
    )
    assert list(_per_pair(ir)[0])[5:7] == ["human", "m_a"]


def _on_a_terminal(columns: int, *args: object) -> str:
    """``genbench ARGS`` run on a real pseudo-terminal ``columns`` wide; its output without colour codes."""
    from helpers import genbench_cmd, on_a_terminal

    return on_a_terminal(genbench_cmd(*args), columns)


def test_agree_lines_fit_80_columns_and_its_table_says_what_the_star_means(tmp_path, genbench_cli):
    """**Was**: `genbench agree` on an AGIQA-3k import printed its "note:" (pairs sharing prompts) and its
    warnings as one long line each — cut mid-word by an 80-column terminal, one 200-character line in a
    log — under a table wrapped at 80; and on a wide terminal the rich table marked attiqa-agiqa3k "*" with
    nothing in the table saying why (only the warning lines above it). Now every line is at most 80
    columns, wrapped at spaces with `--cluster-by` whole, and both tables' legends say what "*" means."""
    run = tmp_path / "run"
    assert genbench_cli("import-agiqa3k", _agiqa3k(tmp_path / "agiqa"), "-o", run).returncode == 0
    assert genbench_cli("score", run, "-m", "attiqa-agiqa3k", "-w", "0").returncode == 0
    res = run_genbench("agree", run, "--bootstrap", "100")  # stdout a pipe: rich's 80 columns
    assert res.returncode == 0, res.stderr
    lines = (res.stderr + res.stdout).splitlines()
    paths = ("preferences: ", "report: ")  # a line naming a file runs as long as its path
    assert all(len(line) <= 80 for line in lines if not line.startswith(paths)), lines
    note = next(k for k, line in enumerate(lines) if line.startswith("note: ") and "share" in line)
    said = " ".join(line.strip() for line in lines[note : note + 3])
    assert said.endswith("likely too narrow — --cluster-by prompt_id resamples prompts"), said
    assert "* trained on these images: not a held-out figure" in " ".join(res.stdout.split())
    assert any(line.startswith("attiqa-agiqa3k *") for line in lines)

    wide = _on_a_terminal(120, "agree", run, "--bootstrap", "100")
    assert "attiqa-agiqa3k *" in wide and "┃" in wide  # rich's table
    shown = [line.strip() for line in wide.splitlines()]
    k = shown.index("95% CI: bootstrap over pairs")  # the caption, a line of its own
    assert shown[k + 1] == "* trained on these images: not a held-out figure", wide


def test_genbench_help_at_80_columns_shows_options_and_defaults_whole():
    """**Was**: `genbench run --help` on a terminal of 80 columns drew rich's option panel with the help in a
    25-character column: --model's default cut to "stabilityai/stable-diff…" (the model one would copy).
    Now below 100 columns the help is click's plain layout (as isp-tune's): every option name and default
    whole, no line over 80, in `genbench --help` and every subcommand's."""
    import re

    from helpers import genbench_cmd, on_a_terminal
    from typer.main import get_command

    from genbench.cli import app

    group = get_command(app)
    for sub in ["", *group.commands]:  # type: ignore[attr-defined]
        text = on_a_terminal(genbench_cmd(*([sub] if sub else []), "--help"), 80)
        assert "…" not in text and all(len(line) <= 80 for line in text.splitlines()), text
        shown = set(re.findall(r"--[a-z][a-z-]*[a-z]", text))
        names = group if not sub else group.commands[sub]  # type: ignore[attr-defined]
        assert {o for p in names.params for o in p.opts if o.startswith("--")} <= shown, text
    run_help = on_a_terminal(genbench_cmd("run", "--help"), 80)
    assert "[default: stabilityai/stable-diffusion-2-1]" in run_help, run_help


def test_agree_on_a_wide_terminal_shows_a_long_metric_name_whole(tmp_path, genbench_cli):
    """**Was**: on a terminal of 100–132 columns the rich table cut a checkpoint's long name to its column
    ("finetuned_on_agiqa3k_dev_with_the_ri…" at 120): the one column that says which model a row is. Now the
    table's columns follow the one whole-word rule of every table (`attiqa.cli.table_widths`): a name longer
    than a column can hold sends the table to plain lines, where it is whole on a line of its own."""
    from helpers import tiny_attiqa_checkpoint

    run = tmp_path / "run"
    assert genbench_cli("import-agiqa3k", _agiqa3k(tmp_path / "agiqa"), "-o", run).returncode == 0
    name = "finetuned_on_agiqa3k_dev_with_the_ridge_head_and_five_test_crops_last"
    model = tiny_attiqa_checkpoint(tmp_path / "m").rename(tmp_path / "m" / f"{name}.safetensors")
    res = genbench_cli("score", run, "-m", model, "-w", "0")
    assert res.returncode == 0, res.stderr
    for columns in (100, 120):
        wide = _on_a_terminal(columns, "agree", run, "--bootstrap", "100")
        assert name in wide and "…" not in wide, wide
        paths = ("preferences: ", "report: ")  # a line naming a file runs as long as its path
        assert all(len(line) <= columns for line in wide.splitlines() if not line.startswith(paths)), wide
