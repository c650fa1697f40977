"""isp-tune: grid.png readable at 100 % zoom, parameter files' raws found from any working folder, X-Trans
raws, resume after a kill at each phase (docs/robustness.md rows)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

# one colour a method: the test finds each column by it
COLOURS = {
    "neutral": (200, 30, 30),
    "rawpy": (30, 200, 30),
    "cma_global": (240, 160, 40),
    "cma_per_image": (200, 200, 30),
    "teacher": (30, 200, 200),
    "teacher_checked": (200, 30, 200),
}


def _grid(tmp_path, gains):
    from PIL import Image

    from isp_env.report import grid_caption, grid_png

    crops = {
        f"raw{i}_from_the_camera": {m: np.full((256, 256, 3), c, np.uint8) for m, c in COLOURS.items()}
        for i in range(len(gains))
    }
    rows = [
        {
            "image": k,
            "method": m,
            "mos": 0.5 + (g if m == "teacher" else 0.0),
            "guarded": 0.45 + (g if m == "teacher" else 0.0),
            "clipped": 0.1,
        }
        | ({"kept": "policy"} if m == "teacher_checked" else {})
        for k, g in zip(crops, gains, strict=True)
        for m in COLOURS
    ]
    labels = {"teacher": "teacher policy (base)", "teacher_checked": "teacher policy (base), checked"}
    caption = grid_caption({"n_test": 13, "scorer": "classical"}, len(crops))
    grid_png(tmp_path / "grid.png", crops, rows, labels=labels, caption=caption)
    return np.asarray(Image.open(tmp_path / "grid.png").convert("RGB")).astype(int)


def _where(img, colour, tol=0):
    return np.all(np.abs(img - np.array(colour)) <= tol, axis=-1)


def test_the_grid_puts_the_policy_beside_neutral_with_its_gain_and_names_each_raw_readably(tmp_path):
    """**Was**: grid.png's columns in the table's order — neutral first, the policy five columns away,
    after rawpy and both CMA-ES baselines — no gain over neutral anywhere, and each raw's name at 6 pt turned
    on its side left of its row (~6 px letters). Now the policy and its checked setting stand beside
    neutral, the other baselines after them; every non-neutral crop carries its gain over neutral (title
    line and a coloured mark: green above, red below), and each raw's name is a bold heading over its row,
    sized from the crop (letters at least a 25th of the crop's side)."""
    img = _grid(tmp_path, [0.04, -0.03])
    centres = {m: np.flatnonzero(_where(img, c).sum(axis=0) > 100).mean() for m, c in COLOURS.items()}
    order = sorted(centres, key=centres.__getitem__)
    assert order == ["neutral", "teacher", "teacher_checked", "rawpy", "cma_global", "cma_per_image"]

    from isp_env.report import GRID_NAME_COLOUR, crop_title

    # each raw's name: horizontal, over its row's crops, letters a person reads at 100 %
    name = _where(img, tuple(int(GRID_NAME_COLOUR[i : i + 2], 16) for i in (1, 3, 5)), tol=25)
    ys = np.flatnonzero(name.any(axis=1))
    runs = np.split(ys, np.flatnonzero(np.diff(ys) > 6) + 1)  # a line of text, underscores too
    assert len(runs) == 2, "one name heading a row"
    tiles = np.flatnonzero(_where(img, COLOURS["neutral"]).sum(axis=1) > 100)
    for run, first_tile_row in zip(runs, (tiles[0], tiles[tiles > runs[1][0]][0]), strict=True):
        height = run[-1] - run[0] + 1
        xs = np.flatnonzero(name[run].any(axis=0))
        assert height >= 256 / 25, f"the raw's name {height} px high"
        assert xs[-1] - xs[0] > 4 * height, "the name is written across, not on its side"
        assert run[-1] < first_tile_row, "the name is over its row"

    # the gain: green on the raw the policy beat neutral on, red on the other
    teacher_x = np.flatnonzero(_where(img, COLOURS["teacher"]).sum(axis=0) > 100)
    rows_of = [tiles[tiles < runs[1][0]], tiles[tiles > runs[1][0]]]
    green = _where(img, (0x0A, 0x7A, 0x2A), tol=30)[:, teacher_x]
    red = _where(img, (0xB0, 0x20, 0x1A), tol=30)[:, teacher_x]
    assert green[rows_of[0]].sum() > 30 and green[rows_of[1]].sum() == 0
    assert red[rows_of[1]].sum() > 30 and red[rows_of[0]].sum() == 0
    title = crop_title(
        "teacher", {"mos": 0.54, "guarded": 0.49, "clipped": 0.1}, None, {"mos": 0.5, "guarded": 0.45}
    )
    assert "guarded +0.040 vs neutral" in title.splitlines()


def test_a_per_raw_setting_is_rendered_from_any_working_folder(tmp_path, isp_raws, monkeypatch):
    """**Was**: a run given a relative ``--raw-dir`` recorded each raw as typed (``raws/b/x.dng``), so
    ``isp-tune render RAWS/b/x.dng --params RUN/baselines/cma_per_image.json`` from another working folder
    matched it by file name only — and with ``raws/a/x.dng`` in the same run, refused it ("2 for x.dng").
    Now each parameter file records the raw's absolute path and its path under the raw folder
    (``raw_in_dir``); a file of an earlier version (the path as typed) is matched by that path less its
    ``..``. Real raws, the real per-image search and command, the classical scorer."""
    import json

    from typer.testing import CliRunner

    import attiqa
    from isp_env.cli import app
    from isp_env.mos_function import from_scorer
    from isp_env.run import HeldOutItems, image_keys, per_image_cma
    from isp_env.train_config import TrainConfig

    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    for sub, src in (("a", isp_raws[0]), ("b", isp_raws[1])):
        (work / "raws" / sub).mkdir(parents=True)
        (work / "raws" / sub / "x.dng").write_bytes(src.read_bytes())
    elsewhere.mkdir()
    monkeypatch.chdir(work)  # the run, given relative paths
    raw_dir = Path("raws")
    paths = image_keys(sorted(raw_dir.rglob("*.dng")), raw_dir)
    mos = from_scorer(attiqa.create_scorer("classical"))
    per = per_image_cma(work / "run", TrainConfig(seed=0), mos, HeldOutItems(paths, None, 64), raw_dir, 6)
    assert per["b__x"]["raw_in_dir"] == "b/x.dng" and per["b__x"]["raw"] == str(work / "raws/b/x.dng")
    pfile = work / "run" / "baselines" / "cma_per_image.json"
    for key, ev in (("a__x", 0.3), ("b__x", -0.3)):  # the two raws' settings told apart
        per[key]["params"]["tone_exposure"] = ev
    pfile.write_text(json.dumps(per))
    old = tmp_path / "old.json"  # an earlier version's: the raws as the run was given them
    earlier = {k: {f: v[f] for f in ("params", "score", "calls", "budget")} for k, v in per.items()}
    old.write_text(json.dumps({k: {**v, "raw": f"raws/{k[0]}/x.dng"} for k, v in earlier.items()}))

    monkeypatch.chdir(elsewhere)
    for params in (pfile, old):
        for key in ("a__x", "b__x"):
            png = elsewhere / f"{params.stem}-{key}.png"
            raw = work / "raws" / key[0] / "x.dng"
            r = CliRunner().invoke(app, ["render", str(raw), "--params", str(params), "-o", str(png)])
            assert r.exit_code == 0, r.output
            assert json.loads(png.with_suffix(".png.json").read_text())["params"] == pytest.approx(
                per[key]["params"]
            )


def test_an_xtrans_dng_is_read_developed_tuned_and_evaluated(tmp_path):
    """**Was**: a Fujifilm X-Trans raw (6x6 colour filter) refused by ``read_raw`` ("not a 2x2 RGB Bayer
    sensor … remove it from the input"), untested: no X-Trans raw is among the real ones. ``write_dng``
    now writes the 6x6 pattern (``layout="XTRANS"``, CFARepeatPatternDim 6 6), which LibRaw opens as
    X-Trans; the ISP reads it (cfa and black 6x6), develops it with a demosaic for any filter, and its
    neutral render agrees with LibRaw's own X-Trans render as closely as the ISP's Bayer render agrees with
    LibRaw's Bayer render, in the same colours as the Bayer DNG of the same photo. The environment runs
    on it, and the rawpy baseline of a small X-Trans raw (LibRaw's X-Trans interpolation refuses frames under
    512 px: an isp-tune evaluation ended in LibRawIOError's traceback) is LibRaw's linear demosaic. Real
    rawpy throughout, the classical scorer."""
    import attiqa
    from isp_env.dng import XTRANS, demo_photo, dng_from_photo
    from isp_env.env import ISPTuningEnv
    from isp_env.isp import develop, finish
    from isp_env.mos_function import from_scorer
    from isp_env.params import neutral
    from isp_env.raw import read_raw
    from isp_env.reward import rawpy_render

    photo = demo_photo("chelsea", 600)
    xt = dng_from_photo(tmp_path / "x.dng", photo, "XTRANS")
    bayer = dng_from_photo(tmp_path / "b.dng", photo, "RGGB")
    raw = read_raw(xt)
    assert np.array_equal(raw.cfa, XTRANS) and raw.black.shape == (6, 6) and np.all(raw.black == 64)

    ours = {p: finish(develop(read_raw(p)), neutral()).astype(float) for p in (xt, bayer)}
    libraw = {p: rawpy_render(p).astype(float) for p in (xt, bayer)}
    h, w = ours[xt].shape[:2]
    assert ours[bayer].shape[:2] == (h, w) == libraw[xt].shape[:2]

    def agreement(a, b):
        return min(np.corrcoef(a[..., c].ravel(), b[..., c].ravel())[0, 1] for c in range(3))

    assert agreement(ours[xt], libraw[xt]) > min(0.95, agreement(ours[bayer], libraw[bayer]))
    assert np.abs(ours[xt].mean(axis=(0, 1)) - ours[bayer].mean(axis=(0, 1))).max() < 5  # same colours

    small = dng_from_photo(tmp_path / "small.dng", demo_photo("coffee", 192), "XTRANS")
    assert rawpy_render(small).shape == (128, 192, 3)
    scorer = from_scorer(attiqa.create_scorer("classical"))
    for preview in (64, None):
        env = ISPTuningEnv(
            [small], scorer=scorer, preview=preview, obs_size=32, max_steps=1, obs_mode="stats"
        )
        env.reset(seed=0)
        _, reward, done, _, info = env.step(np.zeros(16, dtype=np.float32))
        assert done and np.isfinite(reward) and 0 < info["mos"] < 1


@pytest.mark.slow  # three tiny runs: ~20 s
def test_a_resume_finds_every_damaged_file_of_the_run_before_any_work(tmp_path, isp_raws):
    """**Was**: a run folder whose kept JSON files were damaged (an edit, a bad disk: a kill cannot, they
    are written whole and renamed) resumed its work step by step until the first damaged file's step — the
    held-out raws tuned and checked again by the teacher before ``baselines/cma_per_image.json`` stopped it
    — and named that file alone, so the next rerun stopped at the next one. Now every file a resume reads
    back is read first: one line naming them all, before any progress; deleting them redoes their steps
    and keeps the rest. The real command, in its own processes."""
    from helpers import TINY_TEACHER_OPTIONS, run_isp_tune, tiny_teacher_run
    from typer.testing import CliRunner

    from isp_env.cli import app

    budgets = ("--cma-global-budget", "6", "--cma-image-budget", "6")
    raw_dir, run = tiny_teacher_run(tmp_path, isp_raws, *budgets)
    damaged = [
        run / "baselines" / "cma_per_image.json",
        next((run / "test" / "teacher" / "params").glob("*.json")),
        next((run / "teacher").glob("targets_*.json")),
    ]
    kept = {p: p.read_bytes() for p in run.glob("test/*/renders/*.png")}
    for p in damaged:
        p.write_text('{"params": {"tone_gamma": 0.4')  # cut short
    args = ["--raw-dir", str(raw_dir), "--out", str(run), *TINY_TEACHER_OPTIONS, *budgets]
    res = run_isp_tune(*args)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    error = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(error) == 1 and "3 files of the run damaged: " in error[0], res.stderr
    assert all(f"{p.relative_to(run)} (not JSON)" in error[0] for p in damaged)
    for p in damaged:
        p.unlink()
    again = CliRunner().invoke(app, args)  # in this process: the run's steps, not a second start-up
    assert again.exit_code == 0, again.output
    assert all(p.is_file() for p in damaged[:2])  # the teacher, fitted, does not read its searches again
    assert {p: p.read_bytes() for p in run.glob("test/*/renders/*.png")} == kept


@pytest.mark.slow  # two tiny runs: ~30 s
def test_a_run_killed_in_its_per_image_searches_keeps_the_finished_ones(tmp_path, isp_raws):
    """The audit of session 52 (a kill in each phase; training's and the renders' have tests of their own):
    ``isp-tune`` SIGKILLed once the per-image CMA-ES of the first held-out raw is saved, then the same
    command: no traceback, that search kept as it was (not searched again: "1 kept from an earlier run"),
    the other made, every output written. Real processes, real raws, the classical scorer."""
    import json
    import subprocess

    from helpers import TINY_TEACHER_OPTIONS, attiqa_env, isp_tune_cmd, kill_when, run_isp_tune

    raw_dir = tmp_path / "raws"
    raw_dir.mkdir()
    for p in isp_raws:
        (raw_dir / p.name).write_bytes(p.read_bytes())
    run = tmp_path / "run"
    budgets = ("--cma-global-budget", "6", "--cma-image-budget", "24", "--test-fraction", "0.5")
    args = ("--raw-dir", raw_dir, "--out", run, *TINY_TEACHER_OPTIONS, *budgets)
    searches = run / "baselines" / "cma_per_image.json"

    def one_search() -> bool:
        try:
            return len(json.loads(searches.read_text())) == 1
        except (OSError, ValueError):
            return False

    proc = subprocess.Popen(
        isp_tune_cmd(*args), env=attiqa_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    kill_when(proc, one_search)
    first = json.loads(searches.read_text())
    res = run_isp_tune(*args)
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr[-2000:]
    assert "per-image CMA-ES: 2/2 (" in res.stderr and "1 kept from an earlier run)" in res.stderr
    after = json.loads(searches.read_text())
    assert len(after) == 2 and all(after[k] == v for k, v in first.items())
    assert (run / "summary.json").is_file() and len(list(run.glob("test/*/renders/*.png"))) == 2 * 4
