"""Round 3 of :mod:`test_cli_early_checks`: the bad inputs that still loaded torch (and SB3, diffusers)
before their one line — ``isp-tune``'s raws, split and settings, ``attiqa bench``'s split of the dataset's
rows, ``genbench score``'s metric names — each run through its command line's real entry point in ONE fresh
interpreter that must not have imported them when the line is said (``check``)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from early_checks import ISP_HEAVY, check

from isp_env.dng import demo_raws

ISP = "isp_env.cli"


def test_isp_tune_raws_split_and_settings_are_told_before_torch(tmp_path: Path) -> None:
    """isp_env.run_inputs (torch-free) lists, probes, groups and splits the raws and checks the settings."""
    made = demo_raws(tmp_path / "made")  # real DNGs that LibRaw reads
    empty, one, copies, scene, pair = (tmp_path / n for n in ("empty", "one", "copies", "scene", "pair"))
    for folder in (empty, one, copies, scene, pair):
        folder.mkdir()
    shutil.copy(made[0], one)
    for name in ("a.dng", "b.dng"):  # byte-identical copies: one scene group
        shutil.copy(made[0], copies / name)
    for p in made[:3]:
        shutil.copy(p, scene)
    (scene / "manifest.csv").write_text("file,scene_group\n" + "".join(f"{p.name},s\n" for p in made[:3]))
    for p in made[:2]:
        shutil.copy(p, pair)
    out = ["--out", str(tmp_path / "run")]

    def tune(folder: Path, *more: str) -> list[str]:
        return ["--raw-dir", str(folder), *out, *more]

    check(
        [
            (ISP, tune(empty), "found 0 raw file(s), need at least 2 (one to train, one to test)"),
            (ISP, tune(one), "one raw LibRaw can read"),
            (ISP, tune(copies), "its 2 raws are one scene group"),
            (ISP, tune(scene), "its 3 raws are one scene group ('s'"),
            (ISP, tune(pair, "--algo", "teacher"), "the split leaves 1 training raw(s), 2 needed"),
            (ISP, tune(pair, "--algo", "sax"), "unknown --algo 'sax'; one of teacher, sac, ppo, td3"),
            (ISP, tune(pair, "--action-mode", "relative"), "--action-mode 'relative': use residual"),
            (ISP, tune(pair, "--obs-mode", "pixels"), "--obs-mode 'pixels': use stats or image"),
            (ISP, tune(pair, "--algo", "teacher", "--obs-mode", "image"), "teacher needs --action-mode"),
            (ISP, tune(pair, "--algo", "TEACHER", "--teacher-start", "x"), "--teacher-start 'x': use"),
            (ISP, tune(pair, "--base", str(tmp_path / "no.json")), "no.json: not a readable parameter JSON"),
            (ISP, ["--raw-dir", str(pair), "--out", str(made[0])], "is a file, not a folder"),
        ],
        ISP_HEAVY,
    )
    assert not (tmp_path / "run").exists()


def test_genbench_score_metric_names_are_told_before_torch(tmp_path: Path, photos) -> None:
    """``-m ''`` listed the metrics from genbench.run_scores (torch); names that are all unknown were each
    "skipped" after torch loaded, then "no metric could score this run". Now genbench.metric_names
    (torch-free) says both. A typo among known names, or a checkpoint path that is not there, was "skipped"
    after the known ones had scored (minutes); now refused before any of them (session 60)."""
    from genbench_helpers import make_photo_run

    run = make_photo_run(tmp_path / "run", dict(list(photos.items())[:2]))
    g = "genbench.cli"
    check(
        [
            (
                g,
                ["score", str(run), "-m", ""],
                "--metrics '' names no metric — give one or more of classical",
            ),
            (g, ["score", str(run), "-m", " , "], "names no metric"),
            (g, ["score", str(run), "-m", "clasical"], "unknown scorer 'clasical' (did you mean 'classical'"),
            (g, ["score", str(run), "-m", "bogus,temu:3"], "unknown scorer 'bogus'"),
            (g, ["score", str(run), "-m", "classical,clasical"], "unknown scorer 'clasical' (did you mean"),
            (
                g,
                ["score", str(run), "-m", f"classical,{tmp_path / 'no.safetensors'}"],
                "no.safetensors: no such checkpoint file",
            ),
        ]
    )
    assert not (run / "scores").exists()


def test_genbench_run_model_that_is_a_file_says_so(tmp_path: Path) -> None:
    """**Was**: `genbench run --model /etc/hostname` said "not a diffusers pipeline folder" — a folder of
    the wrong kind; and model_index.json itself was refused the same way. Now: a file, and what to pass —
    before torch loads (review: it was said after `--device` was resolved, which imports torch)."""
    from early_checks import check

    pipe = tmp_path / "sd21"
    pipe.mkdir()
    (pipe / "model_index.json").write_text("{}")
    single = tmp_path / "v2-1_768.safetensors"
    single.write_bytes(b"\0" * 64)
    out = ["--pairs", "1", "--out", str(tmp_path / "gen")]
    cases = [
        ("genbench.cli", ["run", *out, "--model", str(single)], "a file, not a folder — pass the pipeline's"),
        (
            "genbench.cli",
            ["run", *out, "--model", str(pipe / "model_index.json")],
            f"pass its folder, --model {pipe}",
        ),
    ]
    check(cases)
    assert not (tmp_path / "gen").exists()


def test_attiqa_bench_split_errors_are_told_before_torch(tmp_path: Path) -> None:
    """`attiqa bench`'s splits were planned and checked in attiqa.protocols, after torch loaded (~3 s);
    now attiqa.bench_splits (torch-free) plans them from the dataset's rows and checks every split, and the
    command hands the plan on. Real images, a real folder dataset."""
    from PIL import Image

    data = tmp_path / "photos"
    data.mkdir()
    tables = {  # score file -> (its header, rows, the row of image i)
        "mos.csv": ("image,mos,scene", 10, "{i}.png,{i},s"),  # one scene
        "four.csv": ("image,mos", 4, "{i}.png,{i}"),
        "held.csv": ("image,mos", 10, "{i}.png,{low}"),  # MOS 0 but for the last two
    }
    for name, (header, n, row) in tables.items():
        lines = [row.format(i=i, low=int(i >= 8)) for i in range(n)]
        (data / name).write_text("\n".join([header, *lines]) + "\n")
    for i in range(10):
        Image.new("RGB", (32, 24), (20 * i, 80, 40)).save(data / f"{i}.png")
    out = ["-o", str(tmp_path / "bench")]
    a = "attiqa.cli"

    def bench(csv: str, *more: str) -> list[str]:
        return ["bench", "single", "-d", f"folder={data / csv}", *more, *out]

    check(
        [
            (a, bench("four.csv"), "gives 3 to train on and 1 to test on — fine-tuning needs at least 2"),
            (a, bench("mos.csv", "--group-by", "scen"), "have no 'scen' to group by (did you mean 'scene'"),
            (a, bench("mos.csv", "--group-by", "scene"), "all 10 items share one 'scene' ('s')"),
            (a, bench("held.csv", "--repeats", "3"), "held-out MOS values are 0"),
            (
                a,
                ["bench", "data-efficient", "-d", f"folder={data / 'mos.csv'}", "--fractions", "0.9", *out],
                "fine-tuning needs at least 2 on each side (add images, or choose other --fractions)",
            ),
        ]  # fmt: skip
    )
    assert not (tmp_path / "bench").exists()


def header_without_a_range(data: bytes) -> bytes:
    """A safetensors file whose first tensor's ``data_offsets`` is empty, every other byte as it was (the
    header padded with spaces to its length)."""
    import json

    n = int.from_bytes(data[:8], "little")
    table = json.loads(data[8 : 8 + n])
    first = next(k for k in table if k != "__metadata__")
    table[first]["data_offsets"] = []
    header = json.dumps(table, separators=(",", ":")).encode().ljust(n)
    assert len(header) == n
    return data[:8] + header + data[8 + n :]


@pytest.mark.parametrize("damage", ["cut short", "a tensor without its byte range"])
def test_a_damaged_bundled_model_is_told_before_torch(tmp_path: Path, damage: str) -> None:
    """`attiqa export attiqa-default` (and every use of a named model) checks the shipped file's SHA-256 by
    reading it as a checkpoint (io.checkpoints: torch). A file cut short — the usual damage — is now found
    torch-free (io.hashes.safetensors_hashes: the header, size and hash in one reading), same words.
    A damaged installation for real: a copy of the package whose bundled model lost its last bytes, or
    whose header gives a tensor no byte range (review: that was an IndexError's traceback)."""
    import json
    import os
    import subprocess
    import sys

    from early_checks import PROBE, ROOT

    site = tmp_path / "site"
    shutil.copytree(ROOT / "attiqa", site / "attiqa", ignore=shutil.ignore_patterns("__pycache__"))
    shipped = site / "attiqa" / "data" / "models" / "attiqa-default.safetensors"
    data = shipped.read_bytes()
    shipped.write_bytes(data[: len(data) - 4096] if damage == "cut short" else header_without_a_range(data))
    out = str(tmp_path / "mine.safetensors")
    cases = [["attiqa.cli", ["export", "attiqa-default", out], ""]]
    env = {**os.environ, "PYTHONPATH": str(site), "COLUMNS": "200"}
    res = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(cases), json.dumps(["torch"])],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300,
    )  # fmt: skip
    (_, _, code, err, loaded) = json.loads(res.stdout.splitlines()[-1])
    assert code == 2 and loaded == [], (code, loaded, err)
    said = " ".join(err.split())
    assert said.startswith(f"error: {shipped}: SHA-256 mismatch for the bundled model 'attiqa-default'"), said
    assert "reinstall attiqa" in said and not Path(out).exists()
