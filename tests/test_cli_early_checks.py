"""A user's mistake is told before the model stack loads: each bad-input case below runs its command line's
real entry point (``main()``, as the console script does) in ONE fresh interpreter, case after case, and
after each the test asserts the error line, exit code 2 and that torch (and diffusers, gymnasium,
stable-baselines3) is still not imported. A case that imported torch is named; the cases after it would
be meaningless, so it is the first failure reported. Structural, not timed: the time it saves is measured
by ``benchmarks/cli_startup.py`` (its ERRORS).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from early_checks import ISP_HEAVY, check
from PIL import Image


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    path = tmp_path / "photos" / "a.png"
    path.parent.mkdir()
    Image.new("RGB", (32, 24), (120, 80, 40)).save(path)
    return path


def test_attiqa_score_and_export_bad_inputs_are_told_before_torch(tmp_path: Path, photo: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    a = "attiqa.cli"
    check(
        [
            (a, ["score", str(tmp_path / "missing.jpg")], "no such file or folder"),
            (a, ["score", str(empty)], "no images found"),
            (a, ["score", str(photo), "-o", str(tmp_path / "s.txt")], "unsupported output type .txt"),
            (a, ["score", str(photo), "-o", str(tmp_path)], "is a folder"),
            (a, ["score", str(photo), "-o", str(tmp_path / "scores")], "has no file extension"),
            (a, ["score", str(photo), "--sheet", str(tmp_path / "s.jpg")], "--sheet"),
            (
                a,
                ["export", str(tmp_path / "nope.safetensors"), str(tmp_path / "c.safetensors")],
                "no such checkpoint",
            ),
            (a, ["export", str(photo), str(tmp_path)], "is a folder — give the file name to write"),
            (a, ["export", str(photo), str(tmp_path / "c.txt")], "a checkpoint is written as .safetensors"),
        ]
    )


def test_attiqa_eval_bad_inputs_are_told_before_torch(tmp_path: Path, photo: Path) -> None:
    data = photo.parent
    Image.new("RGB", (32, 24), (20, 80, 40)).save(data / "b.png")
    (data / "mos.csv").write_text("image,mos\na.png,1\nb.png,2\n")
    (tmp_path / "gap.csv").write_text("image,mos\na.png,1\nb.png,2\nmissing.png,3\n")
    a, m = "attiqa.cli", ["-m", "classical"]
    folder = ["eval", "folder", "--root", str(data)]
    check(
        [
            (a, ["eval", "nosuch", "--root", str(data), *m], "unknown dataset 'nosuch'"),
            (a, ["eval", "agiqa3k", "--root", str(data), "--csv", str(data / "mos.csv"), *m], "--csv is for"),
            (a, [*folder[:3], str(tmp_path / "nope"), *m], "dataset root not found"),
            (a, [*folder, "--split", "bogus", *m], "no items in split 'bogus'"),
            (a, [*folder, "-o", str(data), *m], "is the dataset's own folder"),
            (a, [*folder, "--csv", str(tmp_path / "gap.csv"), *m], "missing.png: not found"),
            (a, [*folder, "-o", str(photo), *m], str(photo)),
        ]
    )


def test_attiqa_train_and_label_file_errors_are_told_before_torch(tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text("label: [unclosed\n")
    (tmp_path / "typo.yaml").write_text("bogus_section: 1\n")
    a = "attiqa.cli"
    check(
        [
            (a, ["train", "--config", str(tmp_path / "missing.yaml")], "config file not found"),
            (a, ["train", "--config", str(tmp_path / "broken.yaml")], "not valid YAML"),
            (a, ["train", "--config", str(tmp_path / "typo.yaml")], "unknown key 'bogus_section'"),
            (a, ["train", "--config", str(tmp_path)], "a folder, not a run config"),
            (a, ["label", str(tmp_path), "-o", str(tmp_path)], "is a folder — give --out a file name"),
        ]
    )


def test_genbench_score_and_agree_run_errors_are_told_before_torch(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    pair = {"pair_id": "p1", "image_a": "a.png", "image_b": "b.png", "prompt": "a cat"}
    (run / "manifest.jsonl").write_text(json.dumps(pair) + "\n")
    g, m = "genbench.cli", ["-m", "classical"]
    check(
        [
            (g, ["score", str(tmp_path / "nope"), *m], "no manifest.jsonl"),
            (g, ["score", str(run / "manifest.jsonl"), *m], "a file, not a run folder"),
            (g, ["score", str(run), *m], "none of the 2 images its manifest names is on disk"),
            (g, ["agree", str(run), "--ties", "bogus"], "--ties 'bogus': use one of"),
            (g, ["agree", str(tmp_path / "nope")], "no manifest.jsonl"),
            (g, ["agree", str(run), "--prefs", str(tmp_path / "p.csv")], "p.csv: no such file"),
            (g, ["agree", str(run)], "no votes.sqlite or prefs.csv"),
            (g, ["agree", str(run), "-o", str(run / "scores")], "is the run's scores folder"),
        ]
    )


def test_isp_tune_bad_options_are_told_before_torch(tmp_path: Path) -> None:
    raws = tmp_path / "raws"
    raws.mkdir()
    i, out = "isp_env.cli", ["--out", str(tmp_path / "run")]
    check(
        [
            (i, ["--raw-dir", str(tmp_path / "nope"), *out], "not a folder"),
            (
                i,
                ["--raw-dir", str(raws), *out, "--batch-size", "999999"],
                "larger than the agents' replay buffer",
            ),
        ],
        ISP_HEAVY,
    )
