"""`isp-tune` on many raws (MIT-Adobe FiveK: 5,000, 1,500 held out): the evaluated held-out raws are capped
(``--test-raws``), spread over the scene groups and seeded, and the evaluation holds no raw's images after
scoring it (docs/isp.md, "At FiveK scale")."""

from __future__ import annotations

import colorsys
import json
import runpy
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED_DATA, in_process
from helpers import REPO, attiqa_env, isp_run

from isp_env.dng import demo_photo, dng_from_photo
from isp_env.teacher import spread_sample

REAL_RAWS = SHARED_DATA / "raw" / "real"
TINY = (
    *("--model", "classical", "--preview", "64", "--obs-size", "36", "--base", "neutral"),
    *("--teacher-budget", "6", "--teacher-raws", "2", "--cma-global-budget", "12", "--cma-image-budget", "6"),
)


def distinct_raws(folder: Path, n: int, long_side: int = 96) -> list[Path]:
    """``n`` distinct DNGs unprocessed from bundled photos (each its own crop, layout and noise)."""
    folder.mkdir(parents=True, exist_ok=True)
    photos = [demo_photo(name, long_side) for name in ("astronaut", "coffee", "chelsea", "rocket")]
    layouts = ("RGGB", "BGGR", "GRBG", "GBRG")
    out = []
    for i in range(n):
        img = photos[i % 4][i // 4 % 3 :, i // 12 % 3 :]  # another crop per round of photos
        out.append(dng_from_photo(folder / f"r{i:02d}.dng", img, layouts[i % 4], seed=i))
    return out


def test_held_out_raws_above_the_cap_are_sampled_over_the_scene_groups_seeded_and_reported(tmp_path, isp_cli):
    """12 raws in 6 scene groups of 2, half held out (3 groups, 6 raws), ``--test-raws 3``: one raw of each
    held-out group is evaluated — the raws ``spread_sample`` picks with the run's seed — and summary.json,
    report.md and the printed line say 3 of 6. Without the option (default 100) all 6 are evaluated."""
    raws = distinct_raws(tmp_path / "raws", 12)
    group = {p.name: f"scene{i // 2}" for i, p in enumerate(raws)}
    (tmp_path / "raws" / "manifest.csv").write_text(
        "file,scene_group\n" + "".join(f"{n},{g}\n" for n, g in group.items())
    )
    args = ("--raw-dir", tmp_path / "raws", *TINY, "--test-fraction", "0.5", "--seed", "3")
    res = isp_cli(*args, "--out", tmp_path / "capped", "--test-raws", "3")  # in this process
    assert res.returncode == 0, res.stderr[-2000:]
    assert "evaluating 3 of the 6 held-out raws (--test-raws)" in " ".join(res.stderr.split())
    plan = json.loads((tmp_path / "capped" / "run.json").read_text())
    held = [Path(p) for p in plan["test"]]
    assert len(held) == 6 and len({group[p.name] for p in held}) == 3  # the split: whole groups
    summary = json.loads((tmp_path / "capped" / "summary.json").read_text())
    assert summary["n_test"] == 3 and summary["n_held_out"] == 6
    picked = sorted(summary["test_raws"])
    assert {group[f"{k}.dng"] for k in picked} == {group[p.name] for p in held}  # one of each group
    groups = {p: group[p.name] for p in held}
    assert picked == [p.stem for p in spread_sample(held, 3, groups, 3)]  # seeded: the run's seed
    renders = tmp_path / "capped" / "test" / "teacher" / "renders"
    assert sorted(p.stem for p in renders.glob("*.png")) == picked
    assert "Held-out raws: 3 evaluated of 6" in (tmp_path / "capped" / "report.md").read_text()

    # session 45: benchmarks/isp_heldout.py evaluated every held-out raw; now the same cap and sample (the
    # script as `python benchmarks/isp_heldout.py ARGS` runs it, in this process: no Python and torch again)
    script = REPO / "benchmarks" / "isp_heldout.py"
    heldout = in_process(str(script), lambda: runpy.run_path(str(script), run_name="__main__"))
    res = heldout(tmp_path / "raws", "--run", f"teacher={tmp_path / 'capped'}", "--out", tmp_path / "heldout",
                  "--model", "classical", "--test-fraction", "0.5", "--seed", "3", "--test-raws", "3",
                  "--cma-global-budget", "12", "--cma-image-budget", "6")  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    assert "evaluating 3 of the 6 held-out raws (--test-raws)" in " ".join(res.stderr.split())
    again = json.loads((tmp_path / "heldout" / "summary.json").read_text())
    assert sorted(again["test_raws"]) == picked and again["n_held_out"] == 6

    res = isp_cli(*args, "--out", tmp_path / "whole")  # the default cap (100): every held-out raw
    assert res.returncode == 0, res.stderr[-2000:]
    whole = json.loads((tmp_path / "whole" / "summary.json").read_text())
    assert whole["n_test"] == 6 and "n_held_out" not in whole
    assert sorted(whole["test_raws"]) == sorted(p.stem for p in held)
    assert "Held-out raws: 6 (" in (tmp_path / "whole" / "report.md").read_text()


@pytest.mark.skipif(not REAL_RAWS.is_dir(), reason="no shared real raws")
def test_the_43_real_raws_at_a_cap_of_their_13_held_out_raws_are_evaluated_whole(tmp_path, isp_cli):
    """The shared 43 real raws hold out 13 (seed 0, whole scene groups): a cap of 13 — as the default of
    100 — evaluates every one of them, in the split's order, and reports no sample."""
    res = isp_cli("--raw-dir", REAL_RAWS, *TINY, "--out", tmp_path / "run", "--test-raws", "13")
    assert res.returncode == 0, res.stderr[-2000:]
    assert "evaluating" not in res.stderr and "13 test raws" in res.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    plan = json.loads((tmp_path / "run" / "run.json").read_text())
    assert summary["n_test"] == len(plan["test"]) == 13 and "n_held_out" not in summary
    with (tmp_path / "run" / "results.csv").open() as fh:
        images = list(dict.fromkeys(row.split(",")[0] for row in fh.read().splitlines()[1:]))
    assert images == [Path(p).stem for p in plan["test"]]
    assert "Held-out raws: 13 (" in (tmp_path / "run" / "report.md").read_text()


def test_each_held_out_raws_front_end_is_made_once_over_the_evaluations_passes(tmp_path, monkeypatch):
    """**Was** (session 44's memory fix): only the last raw's front end and guard were held, so the checked
    setting, the per-image CMA-ES and the scoring each made every held-out raw's again (3 builds a raw, ~2 s
    each at 24 MP), after a decode of each only to skip damaged ones. Now the probe makes it and the first
    ``FRONT_ENDS_KEPT`` are kept: one build a raw (the real :func:`guarded_item`, counted). Beyond the
    bound (``isp-tune check`` with ``front_ends=2``) the others are made in each pass, not kept.
    Session 46: the policy's tuning read each held-out raw again (its environment's own front end) and the
    scoring rendered rawpy again beside the guard's render — 3 decodes and 2 rawpy renders a raw; now the
    tuning takes the kept front end and the guard's render serves the scoring: 2 decodes (the front end,
    the full-resolution renders) and 1 rawpy render (the real functions, counted). Session 47: `isp-tune
    check -m classical` with the default policy (its front end at another scale) read each raw again for
    the tuning; now the probe's decode is developed at the policy's scale."""
    import isp_env.env
    import isp_env.raw
    import isp_env.reward
    import isp_env.run
    from isp_env.run_inputs import check_inputs
    from isp_env.train_config import TeacherSettings, TrainConfig

    real, built = isp_env.run.guarded_item, Counter()
    decoded, rendered = Counter(), Counter()

    def counted(path, *args, **kwargs):
        item = real(path, *args, **kwargs)
        built[Path(path).name] += 1  # made (a raw it cannot decode raises)
        return item

    def counting(fn, calls):
        def wrapped(path, *args, **kwargs):
            calls[Path(path).name] += 1
            return fn(path, *args, **kwargs)

        return wrapped

    monkeypatch.setattr(isp_env.run, "guarded_item", counted)
    read = counting(isp_env.raw.read_raw, decoded)  # every module that reads a raw, by the name it uses
    for module in (isp_env.raw, isp_env.run, isp_env.env):
        monkeypatch.setattr(module, "read_raw", read)
    rawpy = counting(isp_env.reward.rawpy_render, rendered)
    for module in (isp_env.reward, isp_env.run):
        monkeypatch.setattr(module, "rawpy_render", rawpy)
    raw_dir = tmp_path / "raws"
    distinct_raws(raw_dir, 8)
    cfg = TrainConfig(algo="teacher", scorer="classical", preview=64, obs_size=36, action_mode="residual")
    teacher = TeacherSettings(budget=6, raws=2)
    isp_run(raw_dir, tmp_path / "run", cfg, test_fraction=0.5, cma_global_budget=12, cma_image_budget=6,
            base="neutral", teacher=teacher)  # fmt: skip
    test = [Path(p).name for p in json.loads((tmp_path / "run" / "run.json").read_text())["test"]]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    methods = {m["method"] for m in summary["methods"]}
    assert len(test) == 4 and {"teacher_checked", "cma_per_image"} <= methods  # the passes that make them
    assert {n: built[n] for n in test} == dict.fromkeys(test, 1)  # main: 3 each
    assert {n: decoded[n] for n in test} == dict.fromkeys(test, 2)  # session 45: 3 each
    assert {n: rendered[n] for n in test} == dict.fromkeys(test, 1)  # session 45: 2 each

    built.clear()
    decoded.clear()
    data = (raw_dir / "r00.dng").read_bytes()
    (raw_dir / "cut.dng").write_bytes(data[: len(data) // 2])  # damaged after its header: the probe skips it
    inputs = check_inputs(raw_dir, tmp_path / "check", "default")
    rows = isp_env.run.check_policy(inputs, "classical", front_ends=2)
    order = [f"{r['image']}.dng" for r in rows]
    assert len(order) == 8 and built == dict.fromkeys(order[:2], 1) | dict.fromkeys(order[2:], 2)
    # the default policy renders at its own reward model's scale, not the classical scorer's: its tuning
    # develops the probe's decode at that scale (session 46: it read each raw again, 3 and 4 decodes); the
    # raws past the bound are decoded again by the checked setting
    assert {n: decoded[n] for n in order} == dict.fromkeys(order[:2], 2) | dict.fromkeys(order[2:], 3)
    skipped = json.loads((tmp_path / "check" / "summary.json").read_text())["skipped"]
    assert (
        list(skipped) == [str(raw_dir / "cut.dng")]
        and "LibRaw can't read it" in skipped[str(raw_dir / "cut.dng")]
    )


def test_check_evaluates_at_most_test_raws_spread_over_the_scene_groups(tmp_path):
    """**Was**: `isp-tune check DIR` rendered every raw of DIR (hours on FiveK's 5,000). Now at most
    ``--test-raws`` (default 100, as a run's held-out raws), spread over DIR's scene groups and seeded by
    ``--seed`` like a run's sample, and said: "3 of the 8 raws found", ``n_held_out`` in summary.json."""
    from typer.testing import CliRunner

    from isp_env.cli import app

    raws = distinct_raws(tmp_path / "raws", 8)
    group = {p: f"scene{i // 2}" for i, p in enumerate(raws)}
    (tmp_path / "raws" / "manifest.csv").write_text(
        "file,scene_group\n" + "".join(f"{p.name},{g}\n" for p, g in group.items())
    )
    out = tmp_path / "check"
    args = ["check", str(tmp_path / "raws"), "--model", "classical", "--out", str(out), "--test-raws", "3"]
    r = CliRunner().invoke(app, [*args, "--seed", "5"])
    assert r.exit_code == 0, r.output + repr(r.exception)
    assert "evaluating 3 of the 8 raws found (--test-raws)" in " ".join(r.output.split())
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_test"] == 3 and summary["n_held_out"] == 8
    assert sorted(summary["test_raws"]) == [p.stem for p in spread_sample(raws, 3, group, 5)]
    assert len({group[tmp_path / "raws" / f"{k}.dng"] for k in summary["test_raws"]}) == 3  # 3 groups of 4
    assert len(list((out / "test" / "policy" / "renders").glob("*.png"))) == 3
    assert "checked with the policy `default`: 3 evaluated of 8" in (out / "report.md").read_text()
    kept = summary["checked_kept"]["policy_checked"]  # counted from the rows (session 45): 3 raws
    assert list(kept) == ["policy", "base", "neutral"] and sum(kept.values()) == 3


PEAK = """import sys; from pathlib import Path; from isp_env.run import check_policy
from isp_env.run_inputs import check_inputs
inputs = check_inputs(Path(sys.argv[1]), Path(sys.argv[2]), "default")
check_policy(inputs, "classical", front_ends=int(sys.argv[3]))
print(next(ln for ln in Path("/proc/self/status").read_text().splitlines() if ln.startswith("VmHWM")))"""


@pytest.mark.serial(reason="measures a child process's peak memory")
def test_evaluation_memory_does_not_grow_with_the_raws_evaluated(tmp_path):
    """**Was**: every evaluated raw's front end and guard were held until the report, and its grid crops
    were views keeping its full-resolution renders alive — ``isp-tune check`` of 20 raws of 1200 x 800
    peaked 190 MB above 4 of them (a 24 MP render is 72 MB: a FiveK run ran out of memory after about 60
    held-out raws). Since session 45 the first ``FRONT_ENDS_KEPT`` (100) front ends are kept between the
    passes; past that bound memory must stay flat, so here 2 are kept (``front_ends``). Measured (VmHWM, a
    fresh process each; session 45): 36 raws peak 9-25 MiB above 4 with 2 kept (three runs), 12 MiB on main
    (the last one held), 97 MiB with every one kept (~3 MiB a raw at the classical scorer's scale)."""
    peaks = {}
    for n in (4, 36):
        distinct_raws(tmp_path / f"raws{n}", n, long_side=1200)
        cmd = [sys.executable, "-c", PEAK, str(tmp_path / f"raws{n}"), str(tmp_path / f"check{n}"), "2"]
        res = subprocess.run(cmd, env=attiqa_env(), capture_output=True, text=True, timeout=600)
        assert res.returncode == 0, res.stderr[-2000:]
        peaks[n] = int(res.stdout.split()[-2]) / 1024  # MiB
        assert len(list((tmp_path / f"check{n}" / "test" / "policy" / "renders").glob("*.png"))) == n
    assert peaks[36] - peaks[4] < 50, peaks  # every front end kept: ~100 MiB more


def test_raws_of_one_size_are_not_read_whole_to_find_copies(tmp_path):
    """**Was**: every raw sharing its size with another was hashed whole (uncompressed DNGs of one camera
    all do: 5,000 FiveK raws of 25 MB would be read before the split). Now only those whose first and last
    64 KiB agree are; byte-identical copies still share a scene group, a raw differing only inside does
    not."""
    from isp_env.run_inputs import scene_groups

    rng = np.random.default_rng(0)
    root = tmp_path / "raws"
    root.mkdir()
    for i in range(12):
        (root / f"r{i:02d}.dng").write_bytes(rng.bytes(2 << 20))  # 12 distinct files of 2 MiB
    (root / "copy.dng").write_bytes((root / "r03.dng").read_bytes())
    inner = bytearray((root / "r05.dng").read_bytes())
    inner[1 << 20] ^= 1
    (root / "inner.dng").write_bytes(bytes(inner))  # the same ends as r05, one bit apart inside
    raws = sorted(root.glob("*.dng"))

    def read_bytes() -> int:
        return int(
            next(
                ln for ln in Path("/proc/self/io").read_text().splitlines() if ln.startswith("rchar")
            ).split()[1]
        )

    before = read_bytes()
    groups = scene_groups(raws, root)
    read = read_bytes() - before
    assert groups[root / "copy.dng"] == groups[root / "r03.dng"] == "copy.dng"  # the first in name order
    assert groups[root / "inner.dng"] == "inner.dng" and groups[root / "r05.dng"] == "r05.dng"
    assert len(set(groups.values())) == 13
    assert read < 10 * 2**20, read / 2**20  # 14 x 128 KiB + 4 raws whole; all 14 whole: 28 MiB


def test_clipped_and_saturation_are_the_reports_measures_of_a_render():
    """The fraction of pixels with a channel at 0 or 255 and the mean HSV saturation (colorsys's), on
    renders with clipped, black, grey and saturated pixels."""
    from isp_env.reward import clipped_and_saturation

    rng = np.random.default_rng(0)
    for shape in ((1, 1, 3), (5, 7, 3), (16, 9, 3)):
        rgb = rng.choice(np.array([0, 1, 77, 128, 254, 255], dtype=np.uint8), size=shape)
        clipped, sat = clipped_and_saturation(rgb)
        px = rgb.reshape(-1, 3)
        assert clipped == np.mean([(p == 0).any() or (p == 255).any() for p in px])
        want = np.mean([colorsys.rgb_to_hsv(*(p / 255.0))[1] for p in px])
        assert sat == pytest.approx(want, abs=1e-6)
