"""`attiqa eval`, `attiqa datasets`, `attiqa bench` as a user runs them (subprocess, real files)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from helpers import degraded_agiqa3k_root, run_attiqa
from PIL import Image

from attiqa.distortions import apply_distortion


def run(*args, cache: Path | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """The real command in a fresh process (what a user gets, exit code and all)."""
    env = {"COLUMNS": "200", **({"ATTIQA_CACHE": str(cache)} if cache is not None else {})}
    return run_attiqa(*args, env=env, cwd=cwd)


def test_help_explains_every_option(cli):
    out = cli("eval", "--help").stdout
    for opt in ("--root", "--model", "--target", "--out", "--batch-size", "--workers", "--device", "--csv"):
        assert opt in out
    assert "mos_align" in out and "summary.json" in out
    out = cli("bench", "--help").stdout
    for word in (
        "single",
        "cross",
        "data-efficient",
        "linear-probe",
        "--data",
        "--config",
        "--init",
        "--repeats",
    ):
        assert word in out
    assert "eval" in cli("--help").stdout and "datasets" in cli("--help").stdout


def test_datasets_lists_the_registry_and_details_one(cli):
    res = cli("datasets")
    assert res.returncode == 0
    for name in ("agiqa3k", "koniq10k", "clive", "spaq", "kadid10k", "live", "csiq", "tid2013", "folder"):
        assert name in res.stdout
    assert "DMOS" in res.stdout
    res = cli("datasets", "clive")
    assert res.returncode == 0 and "AllMOS_release" in res.stdout and "first 7" in res.stdout
    # how the images get into place: the step a half-downloaded copy misses (its eval error says the same)
    assert "images:" in res.stdout and "ChallengeDB_release" in res.stdout.split("images:")[1]
    res = run("datasets", "cliv3")  # a real process: exit code 2, one line
    assert res.returncode == 2 and "did you mean 'clive'" in res.stderr and "Traceback" not in res.stderr


def test_eval_agiqa3k_is_one_command_and_the_second_target_uses_the_cache(tmp_path, photos):
    degraded_agiqa3k_root(tmp_path / "AGIQA-3K", photos, n=16)
    cache = tmp_path / "cache"
    res = run(
        "eval", "agiqa3k", "--root", tmp_path / "AGIQA-3K", "-m", "classical", "-w", "0", "-q",
        cache=cache, cwd=tmp_path,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "16 scored, 0 from cache" in res.stderr and "was trained on" not in res.stderr
    summary = json.loads((tmp_path / "runs/eval/agiqa3k-mos_quality-classical/summary.json").read_text())
    fit = "logistic" if summary["logistic_fit"]["method"] == "logistic" else "linear fit"  # the fit kept
    assert "SROCC" in res.stdout and f"PLCC ({fit})" in res.stdout and f"RMSE ({fit})" in res.stdout
    assert summary["target"] == "mos_quality" and summary["n"] == 16
    res = run(
        "eval", "agiqa3k", "--root", tmp_path / "AGIQA-3K", "-m", "classical", "--target", "mos_align",
        "-o", tmp_path / "align", "-w", "0", "-q", cache=cache,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "0 scored, 16 from cache" in res.stderr
    summary = json.loads((tmp_path / "align" / "summary.json").read_text())
    assert summary["target"] == "mos_align" and summary["n_cached"] == 16
    assert (cache / "eval_scores.sqlite").is_file()


def test_eval_of_a_named_model_on_its_own_training_dataset_says_it_is_a_training_fit(tmp_path, photos):
    """`attiqa eval agiqa3k -m attiqa-agiqa3k` on agiqa3k-dev printed SROCC 0.98 as if held out (it was fitted
    on every one of those images); the registry's ``trained_on`` now puts a warning on screen and in
    summary.json. With ``--target mos_align`` the note said "its training fit" of a target it was never fitted
    to: now it says the images were seen, fitted to the other target."""
    degraded_agiqa3k_root(tmp_path / "AGIQA-3K", photos, n=6)
    res = run(
        "eval", "agiqa3k", "--root", tmp_path / "AGIQA-3K", "-m", "attiqa-agiqa3k", "-w", "0", "-q",
        "-o", tmp_path / "out", cache=tmp_path / "cache",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    said = " ".join(res.stderr.split())
    assert "attiqa-agiqa3k was trained on AGIQA-3K" in said and "not a held-out figure" in said
    warnings = json.loads((tmp_path / "out" / "summary.json").read_text())["warnings"]
    assert any("attiqa-agiqa3k was trained on" in w for w in warnings)
    # --target mos_align: it saw these images but was not fitted to that target ("its training fit" was wrong)
    res = run(
        "eval", "agiqa3k", "--root", tmp_path / "AGIQA-3K", "-m", "attiqa-agiqa3k", "-w", "0", "-q",
        "--target", "mos_align", "-o", tmp_path / "align", cache=tmp_path / "cache",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    said = " ".join(res.stderr.split())
    assert "trained on these AGIQA-3K images (fitted to their mos_quality, not mos_align)" in said, said
    assert "not a held-out figure" in said and "training fit" not in said


def test_eval_folder_with_csv_and_one_line_errors(tmp_path, photos, cli):
    d = tmp_path / "imgs"
    d.mkdir()
    lines = ["image,mos"]
    for i, (name, img) in enumerate(photos.items()):
        small = img.resize((48, 48))
        for lv in (0, 3):
            apply_distortion(small, "gaussian_noise", lv, seed=i).save(d / f"{name}{lv}.png")
            lines.append(f"{name}{lv}.png,{5 - lv}")
    (tmp_path / "scores.csv").write_text("\n".join(lines) + "\n")
    res = cli(
        "eval", "folder", "--root", d, "--csv", tmp_path / "scores.csv", "-m", "classical",
        "-o", tmp_path / "o", "-w", "0", "-q", "--no-cache",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert json.loads((tmp_path / "o" / "summary.json").read_text())["n"] == 10

    res = cli("eval", "agiqa3", "--root", d, "-m", "classical")
    assert res.returncode == 2 and "did you mean 'agiqa3k'" in res.stderr and "Traceback" not in res.stderr
    res = cli("eval", "koniq10k", "--root", d, "--csv", tmp_path / "scores.csv")
    assert res.returncode == 2 and "--csv is for the folder adapter" in res.stderr
    (d / "coffee3.png").unlink()
    res = cli("eval", "folder", "--root", d, "--csv", tmp_path / "scores.csv", "-m", "classical")
    assert res.returncode == 2 and "1 of 10 images are missing" in res.stderr and "coffee3.png" in res.stderr
    assert "Traceback" not in res.stderr and "scoring" not in res.stderr


def test_eval_plcc_after_the_fit_keeps_a_negative_sign(tmp_path, photos, cli):
    """Session 40: scores against a lower-is-better column (the blur level) gave a negative plain PLCC
    and a positive "PLCC (logistic)"; now both are negative."""
    d = tmp_path / "imgs"
    d.mkdir()
    lines = ["image,mos"]
    for i, (name, img) in enumerate(photos.items()):
        for lv in (0, 2, 4):
            apply_distortion(img.resize((64, 64)), "gaussian_blur", lv, seed=i).save(d / f"{name}{lv}.png")
            lines.append(f"{name}{lv}.png,{lv}")
    (d / "mos.csv").write_text("\n".join(lines) + "\n")
    res = cli(
        "eval", "folder", "--root", d, "-m", "classical", "-o", tmp_path / "o", "-w", "0", "-q", "--no-cache"
    )
    assert res.returncode == 0, res.stderr
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["n"] == 15 and summary["plcc"] < 0 and summary["plcc_fit"] < 0  # was +|plcc| or more


@pytest.mark.parametrize("protocol", ["single"])
def test_bench_command_writes_the_table(tmp_path, photos, protocol, cli):
    d = tmp_path / "set"
    d.mkdir()
    lines = ["image,mos"]
    for name, img in photos.items():
        small = img.resize((56, 56), Image.BICUBIC)
        for lv in range(4):
            apply_distortion(small, "gaussian_blur", lv).save(d / f"{name}{lv}.png")
            lines.append(f"{name}{lv}.png,{4 - lv}")
    (d / "mos.csv").write_text("\n".join(lines) + "\n")
    cfg = tmp_path / "ft.yaml"
    cfg.write_text(
        "backbone: tiny\npretrained_backbone: false\nhead_hidden: 16\nmos_hidden: 16\nbatch_size: 8\n"
        "resize_shorter: 48\ncrop_size: 40\nnum_workers: 0\n"
    )
    res = cli(
        "bench", protocol, "-d", f"Blur:folder={d / 'mos.csv'}", "-c", cfg, "--epochs", "1",
        "--device", "cpu", "-n", "2", "-o", tmp_path / "b", "-q",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "| Methods | Blur |" in res.stdout and "SROCC | PLCC" in res.stdout
    doc = json.loads((tmp_path / "b" / f"{protocol}.json").read_text())
    assert (
        len(doc["runs"]) == 2 and doc["base_config"]["epochs"] == 1 and doc["base_config"]["device"] == "cpu"
    )
    res = cli("bench", "singel", "-d", f"folder={d}", "-c", cfg)
    assert res.returncode == 2 and "did you mean 'single'" in res.stderr
    res = cli("bench", "single", "-d", "nonsense", "-c", cfg)
    assert res.returncode == 2 and "[LABEL:]NAME=ROOT" in res.stderr


def test_eval_of_two_folder_datasets_keeps_both_results(tmp_path, photos, cli, monkeypatch):
    """Session 47: `attiqa eval folder` on clive-dev and then on biq2021-val wrote both to
    runs/eval/folder-mos-classical/ — the second silently replaced the first's predictions and summary.
    The default folder now names the score file's folder (and the file, when it is not mos.csv)."""
    monkeypatch.chdir(tmp_path)
    for ds, lv in (("first", 2), ("second", 4)):
        d = tmp_path / ds
        d.mkdir()
        lines = ["image,mos"]
        for i, (name, img) in enumerate(photos.items()):
            for level in (0, lv):
                apply_distortion(img.resize((48, 48)), "gaussian_blur", level, seed=i).save(
                    d / f"{name}{level}.png"
                )
                lines.append(f"{name}{level}.png,{5 - level}")
        (d / "mos.csv").write_text("\n".join(lines) + "\n")
        res = cli("eval", "folder", "--root", ds, "-m", "classical", "-w", "0", "-q", "--no-cache")
        assert res.returncode == 0, res.stderr
    (tmp_path / "first" / "few.csv").write_text("image,mos\nastronaut0.png,5\ncoffee0.png,5\ncoffee2.png,3\n")
    res = cli(
        "eval", "folder", "--root", "first", "--csv", "first/few.csv", "-m", "classical", "-w", "0", "-q"
    )
    assert res.returncode == 0, res.stderr
    runs = tmp_path / "runs" / "eval"
    assert sorted(p.name for p in runs.iterdir()) == [
        "folder-first-few-mos-classical",
        "folder-first-mos-classical",
        "folder-second-mos-classical",
    ]
    assert "wrote runs/eval/folder-first-few-mos-classical/" in res.stderr
    predictions = (runs / "folder-first-mos-classical" / "predictions.csv").read_text()
    assert "astronaut2.png" in predictions and "astronaut4.png" not in predictions


def test_eval_with_center_crops_keeps_the_five_crop_results(tmp_path, photos, cli, monkeypatch):
    """Session 47: `attiqa eval folder --root biq2021-val/ -m attiqa-default --crops center` wrote to the same
    default folder as the five-crop eval before it (runs/eval/…-attiqa-default/), replacing its results; the
    default folder now ends in -center for center crops."""
    monkeypatch.chdir(tmp_path)
    d = tmp_path / "shots"
    d.mkdir()
    lines = ["image,mos"]
    for i, (name, img) in enumerate(list(photos.items())[:3]):
        img.resize((96, 96)).save(d / f"{name}.png")
        lines.append(f"{name}.png,{i}")
    (d / "mos.csv").write_text("\n".join(lines) + "\n")
    for extra in ([], ["--crops", "center"], ["--crops", "five"]):
        res = cli("eval", "folder", "--root", "shots", "-w", "0", "-q", "--no-cache", *extra)
        assert res.returncode == 0, res.stderr
    runs = tmp_path / "runs" / "eval"
    assert sorted(p.name for p in runs.iterdir()) == [
        "folder-shots-mos-attiqa-default",
        "folder-shots-mos-attiqa-default-center",
    ]
    five, center = (json.loads((runs / n / "summary.json").read_text()) for n in sorted(os.listdir(runs)))
    assert (five["model"]["crops"], center["model"]["crops"]) == ("five", "center")
