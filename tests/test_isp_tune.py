"""`isp-tune`: SB3 training on real DNGs with the classical scorer, resume after a kill, baselines, report."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED_DATA
from helpers import TINY_SAC, attiqa_env, isp_run, isp_tune_cmd, run_isp_tune, tiny_teacher_run
from PIL import Image

import attiqa
from isp_env.baselines import cma_search, mean_mos_objective
from isp_env.env import N_STATS
from isp_env.isp import develop, finish
from isp_env.mos_function import from_scorer
from isp_env.params import NAMES, neutral, to_normalized
from isp_env.policy_files import find_state
from isp_env.policy_io import load_policy, load_state
from isp_env.raw import read_raw
from isp_env.run_inputs import split
from isp_env.train_config import TrainConfig
from isp_env.tuning import build_model, make_vec_env, train

TINY = [
    *TINY_SAC,
    "--model",
    "classical",
    "--preview",
    "80",
    "--test-fraction",
    "0.4",
    "--cma-global-budget",
    "40",
    "--cma-image-budget",
    "15",
]


def _tiny_cfg(algo: str, timesteps: int, **kw) -> TrainConfig:
    # the CNN path on absolute actions (the defaults are stats and residual: isp_env.registration)
    kw = {"obs_mode": "image", "action_mode": "absolute", **kw}
    return TrainConfig(
        algo=algo,
        timesteps=timesteps,
        n_envs=1,
        preview=64,
        obs_size=36,
        max_steps=2,
        batch_size=16,
        buffer_size=200,
        learning_starts=10,
        n_steps=16,
        net_arch=[16],
        cnn_features=16,
        checkpoint_every=10_000,
        scorer="classical",
        **kw,
    )


@pytest.fixture()
def raw_dir(tmp_path, isp_raws) -> Path:
    d = tmp_path / "raws"
    (d / "raw_photos" / "HQa1to700" / "photos").mkdir(parents=True)
    for i, p in enumerate(isp_raws):
        shutil.copy(p, (d / "raw_photos" / "HQa1to700" / "photos" if i % 2 else d) / p.name)
    (d / "zz_truncated.dng").write_bytes(isp_raws[0].read_bytes()[:300])  # must be skipped and listed
    return d


def test_split_is_seeded_and_disjoint(isp_raws):
    tr, te = split(isp_raws, 0.25, seed=3)
    assert (tr, te) == split(isp_raws, 0.25, seed=3)
    assert len(te) == 1 and not set(tr) & set(te) and len(tr) + len(te) == len(isp_raws)


def test_split_keeps_scene_groups_on_one_side(tmp_path):
    """Repeat shots of one subject (manifest.csv's scene_group) never straddle the split, for any seed."""
    from isp_env.run_inputs import scene_groups

    root = tmp_path / "raws"
    root.mkdir()
    names = [f"r{i:02d}.dng" for i in range(20)]
    group = {n: (f"g{i // 4}" if i < 12 else n) for i, n in enumerate(names)}  # 3 groups of 4, 8 singletons
    for n in names:
        (root / n).write_bytes(n.encode())  # distinct files (byte-identical copies share a group: below)
    with open(root / "manifest.csv", "w") as fh:
        fh.write("file,camera,scene_group\n" + "".join(f"{n},x,{group[n]}\n" for n in names))
    raws = sorted(root / n for n in names)
    groups = scene_groups(raws, root)
    assert groups[root / "r01.dng"] == "g0" and groups[root / "r15.dng"] == "r15.dng"
    for seed in range(10):
        tr, te = split(raws, 0.3, seed, groups)
        assert te and tr and len(tr) + len(te) == 20
        assert not {groups[p] for p in tr} & {groups[p] for p in te}
        assert 3 <= len(te) <= 9  # about 30 %


def test_byte_identical_raws_stay_on_one_side_of_the_split(tmp_path, isp_raws):
    """**Was**: each copy of a raw its own group — for most seeds a copy of a training raw was a test raw."""
    from isp_env.raw import find_raws
    from isp_env.run_inputs import scene_groups

    root = tmp_path / "raws"
    (root / "again").mkdir(parents=True)
    for p in isp_raws:
        shutil.copy(p, root / p.name)
    for p in isp_raws[:2]:
        shutil.copy(p, root / "again" / f"copy_{p.name}")
    raws = find_raws(root)
    groups = scene_groups(raws, root)
    assert len(set(groups.values())) == len(isp_raws)
    assert groups[root / "again" / f"copy_{isp_raws[0].name}"] == groups[root / isp_raws[0].name]
    for seed in range(10):
        tr, te = split(raws, 0.3, seed, groups)
        assert te and tr and not {p.read_bytes() for p in tr} & {p.read_bytes() for p in te}


def test_cma_search_keeps_to_its_budget_and_never_loses_to_neutral(isp_raws):
    import torch

    torch.set_num_threads(1)  # small-image scoring single-threaded, as in the env workers (restored after)
    mos = from_scorer(attiqa.create_scorer("classical"))
    dev = develop(read_raw(isp_raws[0]), 64)
    start = mos.one(finish(dev, neutral()))
    res = cma_search(mean_mos_objective([dev], mos), budget=30, calls_per_eval=1, seed=0, popsize=6)
    assert res.calls <= 30 and mos.calls == res.calls + 1
    assert res.mos >= start and set(res.params) == set(NAMES)
    assert mos.one(finish(dev, res.params)) == pytest.approx(res.mos, abs=1e-6)  # the reported MOS is real


@pytest.mark.parametrize("algo", ["ppo", "td3"])
def test_other_algorithms_train_and_policy_round_trips(tmp_path, isp_raws, algo):
    cfg = _tiny_cfg(algo, 32)
    summary = train(tmp_path / algo, isp_raws[:2], cfg, subprocess=False)
    assert summary["timesteps"] >= 32 and summary["scorer_calls"] >= 32
    policy, card = load_policy(tmp_path / algo / "policy.safetensors")
    assert card["algo"] == algo and json.loads((tmp_path / algo / "policy.json").read_text())["algo"] == algo
    obs = {
        "image": np.random.default_rng(0).integers(0, 255, (3, 36, 36), dtype=np.uint8),
        "stats": np.full(N_STATS, 0.5, np.float32),
        "params": to_normalized(neutral()).astype(np.float32),
        "time": np.zeros(1, np.float32),
    }
    a1, _ = policy.predict(obs, deterministic=True)
    assert a1.shape == (16,) and np.isfinite(a1).all() and np.abs(a1).max() <= 1.0


def test_training_leaves_no_folder_in_the_temp_directory(tmp_path, isp_raws, monkeypatch):
    """SB3's default logger made an empty /tmp/SB3-<time> folder at every learn(): hundreds after a day of
    runs. Training logs into its own run folder and leaves the temp directory as it found it."""
    import tempfile

    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    monkeypatch.delenv("SB3_LOGDIR", raising=False)
    train(tmp_path / "ppo", isp_raws[:1], _tiny_cfg("ppo", 16), subprocess=False)
    # (torch's own compile cache may appear there: torchinductor_<user>, not ours)
    assert [p.name for p in tmp.iterdir() if p.name.startswith("SB3-")] == []


def test_training_can_start_from_a_saved_policy(tmp_path, isp_raws):
    """`isp-tune --init-policy P` (e.g. `default`): the new model starts with P's weights."""
    import torch

    from isp_env.tuning import init_from_policy

    cfg = _tiny_cfg("sac", 12)
    train(tmp_path / "first", isp_raws[:1], cfg, subprocess=False)
    venv = make_vec_env(isp_raws[:1], cfg, subprocess=False)
    model = build_model(cfg, venv)
    init_from_policy(model, tmp_path / "first" / "policy.safetensors")
    saved, _ = load_policy(tmp_path / "first" / "policy.safetensors")
    for k, v in saved.state_dict().items():
        assert torch.equal(v, model.policy.state_dict()[k]), k
    venv.close()
    from attiqa.errors import ConfigError

    td3 = _tiny_cfg("td3", 12)
    other = build_model(td3, make_vec_env(isp_raws[:1], td3, subprocess=False))
    with pytest.raises(ConfigError, match="does not fit"):
        init_from_policy(other, tmp_path / "first" / "policy.safetensors")


def test_shipped_default_policy_renders_without_a_scorer(isp_raws):
    """`isp-tune render RAW --policy default`: the policy in the package loads and tunes a raw it never saw,
    deterministically, with parameters in range and no scorer call."""
    from isp_env.params import PARAMS
    from isp_env.policy_files import DEFAULT_POLICY, resolve_policy
    from isp_env.tuning import tune_with_policy

    assert DEFAULT_POLICY.exists(), "the package ships isp_env/data/policy-default.safetensors"
    policy, card = load_policy(resolve_policy("default"))
    assert card["env"]["max_steps"] >= 1 and card["env"]["guard"] is True
    a = tune_with_policy(policy, card, isp_raws[0])
    assert a == tune_with_policy(policy, card, isp_raws[0])
    assert all(p.low <= a[p.name] <= p.high for p in PARAMS)


def test_resume_state_restores_weights_optimizers_and_replay_buffer(tmp_path, isp_raws):
    import torch

    cfg = _tiny_cfg("sac", 40)
    cfg.checkpoint_every = 20
    train(tmp_path, isp_raws[:2], cfg, subprocess=False)
    state = find_state(tmp_path / "checkpoint")
    venv = make_vec_env(isp_raws[:2], cfg, subprocess=False)
    fresh = build_model(cfg, venv)
    doc = load_state(fresh, state)
    assert fresh.num_timesteps == doc["num_timesteps"] == 40
    assert fresh.replay_buffer.pos == 40 and fresh.replay_buffer.observations["image"][:40].any()
    policy, _ = load_policy(tmp_path / "policy.safetensors")
    for k, v in policy.state_dict().items():
        assert torch.equal(v, fresh.policy.state_dict()[k]), k
    opt = fresh.actor.optimizer.state_dict()["state"]
    assert opt and all(int(s["step"]) == 40 - cfg.learning_starts for s in opt.values())  # one update a step
    venv.close()


@pytest.mark.slow
@pytest.mark.serial(reason="its kill must land mid-run: a race with the run's pace")
def test_isp_tune_cli_end_to_end_with_kill_and_resume(tmp_path, raw_dir, isp_cli):
    out = tmp_path / "run"
    args = [
        "--raw-dir",
        str(raw_dir),
        "--out",
        str(out),
        "--timesteps",
        "200",
        "--checkpoint-every",
        "30",
        *TINY,
    ]
    proc = subprocess.Popen(
        isp_tune_cmd(*args), env=attiqa_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip
    deadline = time.time() + 240
    try:
        while time.time() < deadline:  # kill (SIGKILL, no clean-up) once a checkpoint past step 60 exists
            st = find_state(out / "checkpoint")
            if st is not None and json.loads((st / "state.json").read_text())["num_timesteps"] >= 60:
                break
            assert proc.poll() is None, proc.stdout.read()
            time.sleep(0.5)
        os.killpg(proc.pid, signal.SIGKILL)  # our own process group: the CLI and its env workers
    finally:
        proc.wait(timeout=30)
    assert not (out / "policy.safetensors").exists()
    res = run_isp_tune(*args)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "resuming from" in res.stderr and "RL agent" in res.stdout
    assert f"renders: {out / 'test' / 'agent' / 'renders'}" in " ".join(res.stderr.split())  # the real folder
    summary = json.loads((out / "summary.json").read_text())
    methods = {m["method"]: m for m in summary["methods"]}
    assert set(methods) == {"neutral", "rawpy", "cma_global", "cma_per_image", "agent", "agent_checked"}
    assert [Path(k).name for k in summary["skipped"]] == ["zz_truncated.dng"]
    training = json.loads((out / "training.json").read_text())
    base_calls = json.loads((out / "run.json").read_text())["base_scorer_calls"]  # the global CMA-ES base
    assert 0 < base_calls <= 40 and methods["cma_global"]["train_scorer_calls"] == base_calls
    assert training["timesteps"] >= 200
    assert methods["agent"]["train_scorer_calls"] == training["scorer_calls"] + base_calls
    assert training["scorer_calls"] >= 200  # one call per step plus one per reset, across the kill
    assert methods["cma_per_image"]["test_scorer_calls"] <= 15 * summary["n_test"]
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert len(rows) == 6 * summary["n_test"] and all(np.isfinite(float(r["mos"])) for r in rows)
    assert "| RL agent (SAC) |" in (out / "report.md").read_text()  # the card's algorithm (session 40)
    assert Image.open(out / "grid.png").size[0] > 300
    for pfile in (out / "test" / "agent" / "params").glob("*.json"):
        doc = json.loads(pfile.read_text())
        render = np.asarray(Image.open(out / "test" / "agent" / "renders" / f"{pfile.stem}.png"))
        raw = read_raw(doc["raw"])
        assert render.shape == (*(s // 2 * 2 for s in raw.shape), 3)  # full resolution
        np.testing.assert_array_equal(render, finish(develop(raw), doc["params"]))

    # render: with the policy, with a parameter file, neutral (in this process: no start-up to pay)
    raw_path = json.loads(next((out / "test" / "agent" / "params").glob("*.json")).read_text())["raw"]
    for extra in (
        ["--policy", str(out / "policy.safetensors")],
        ["--params", str(next((out / "test" / "agent" / "params").glob("*.json")))],
        [],
    ):
        png = tmp_path / f"r{len(extra)}.png"
        r = isp_cli("render", raw_path, "-o", str(png), *extra)
        assert r.returncode == 0, r.stderr
        assert np.asarray(Image.open(png)).shape[2] == 3
        assert set(json.loads(r.stdout)) == set(NAMES)


def test_cli_errors_are_one_line(tmp_path, isp_cli):
    (tmp_path / "empty").mkdir()
    r = isp_cli("--raw-dir", tmp_path / "empty", "--out", tmp_path / "o", "--model", "classical")
    assert r.returncode == 2 and "found 0 raw file(s)" in r.stderr and "Traceback" not in r.stderr
    r = isp_cli("render", tmp_path / "missing.dng", "-o", tmp_path / "x.png")
    assert r.returncode == 2 and "missing.dng: file not found" in r.stderr and "Traceback" not in r.stderr
    r = isp_cli("render", tmp_path / "missing.dng", "-o", tmp_path / "x.gif")  # refused before reading
    assert r.returncode == 2 and "x.gif: unknown output format" in r.stderr and "Traceback" not in r.stderr


def test_cli_help_and_bad_parameter_file(tmp_path, isp_raws):
    from typer.testing import CliRunner

    from attiqa.errors import ConfigError
    from isp_env.cli import app

    r = CliRunner().invoke(app, ["--help"])
    assert r.exit_code == 0 and "--raw-dir" in r.output and "render" in r.output
    bad = tmp_path / "p.json"
    bad.write_text("{not json")
    r = CliRunner().invoke(
        app, ["render", str(isp_raws[0]), "-o", str(tmp_path / "x.png"), "--params", str(bad)]
    )
    assert isinstance(r.exception, ConfigError)
    assert "p.json: not a usable parameter JSON" in str(r.exception)
    for doc, said in (
        ({"saturation": 99}, "saturation=99 (range 0..2)"),
        ({"hue": "x"}, "hue='x'"),
        ([1, 2], "expected an object"),
    ):  # were clipped or read silently (session 26)
        bad.write_text(json.dumps(doc))
        r = CliRunner().invoke(
            app, ["render", str(isp_raws[0]), "-o", str(tmp_path / "x.png"), "--params", str(bad)]
        )
        assert isinstance(r.exception, ConfigError) and said in str(r.exception), r.output
    r = CliRunner().invoke(
        app,
        [
            "render",
            str(isp_raws[0]),
            "-o",
            str(tmp_path / "x.png"),
            "--policy",
            str(tmp_path / "none.safetensors"),
        ],
    )
    assert "none.safetensors: no such policy file — pass a policy.safetensors written by `isp-tune`" in str(
        r.exception
    )
    good = tmp_path / "g.json"
    good.write_text(json.dumps({"saturation": 0.0}))
    r = CliRunner().invoke(
        app, ["render", str(isp_raws[0]), "-o", str(tmp_path / "g.png"), "--params", str(good)]
    )
    assert r.exit_code == 0, r.output
    grey = np.asarray(Image.open(tmp_path / "g.png")).astype(int)
    assert np.abs(grey - grey.mean(axis=2, keepdims=True)).max() <= 1


REAL_RAWS = SHARED_DATA / "raw" / "real"


@pytest.mark.shared_data
@pytest.mark.skipif(not (REAL_RAWS / "manifest.csv").exists(), reason="real raws of ../shared not present")
def test_real_raws_are_found_and_split_by_their_scene_groups():
    """The 43 real raws (QuickTake .qtk, DC50 .kdc, D30 .crw, CinemaDNG) are all found; repeat shots of one
    subject never straddle the split."""
    from isp_env.raw import find_raws
    from isp_env.run_inputs import scene_groups

    raws = find_raws(REAL_RAWS)
    assert len(raws) == 43
    groups = scene_groups(raws, REAL_RAWS)
    assert len(set(groups.values())) < len(raws)  # some groups hold several shots
    tr, te = split(raws, 0.3, 0, groups)
    assert not {groups[p] for p in tr} & {groups[p] for p in te}
    assert 0.2 * len(raws) <= len(te) <= 0.4 * len(raws)


@pytest.mark.parametrize("algo", ["sac", "td3", "ppo"])
def test_untrained_residual_policy_renders_the_base_and_round_trips(tmp_path, isp_raws, algo):
    """Residual actions (ours): the action head starts at zero, so before any update the deterministic
    policy renders the base setting; the MLP-on-statistics policy saves, loads and resumes (Box buffer)."""
    from isp_env.params import check_values
    from isp_env.tuning import tune_with_policy

    base = check_values({"tone_exposure": 0.2, "saturation": 1.1})
    cfg = _tiny_cfg(algo, 8, obs_mode="stats", action_mode="residual", delta_scale=0.3, base=base)
    cfg.max_steps, cfg.learning_starts = 1, 100  # SAC/TD3: no update within 8 steps
    venv = make_vec_env(isp_raws[:1], cfg, subprocess=False)
    model = build_model(cfg, venv)
    obs = venv.reset()
    action, _ = model.predict(obs, deterministic=True)
    assert np.abs(action).max() == 0.0
    venv.close()
    cfg.timesteps, cfg.checkpoint_every = 24, 12
    train(tmp_path, isp_raws[:2], cfg, subprocess=False)
    policy, card = load_policy(tmp_path / "policy.safetensors")
    assert card["env"]["obs_mode"] == "stats" and card["env"]["base"] == base
    if algo != "ppo":  # no update yet (learning_starts): the loaded policy still renders the base
        assert tune_with_policy(policy, card, isp_raws[2]) == base
        fresh = build_model(cfg, make_vec_env(isp_raws[:2], cfg, subprocess=False))
        load_state(fresh, find_state(tmp_path / "checkpoint"))
        assert fresh.replay_buffer.pos == 24 and fresh.replay_buffer.observations[:24].any()
    else:
        values = tune_with_policy(policy, card, isp_raws[2])
        assert all(abs(to_normalized(values)[i] - to_normalized(base)[i]) <= 0.3 + 1e-6 for i in range(16))


def test_test_fraction_zero_trains_a_residual_policy_on_every_raw(tmp_path, isp_raws):
    """`isp-tune --test-fraction 0` (how the shipped policy is made): every raw trains, the base is the
    global CMA-ES setting of those raws (its scorer calls count as training cost), nothing is evaluated."""

    assert split(isp_raws, 0.0, seed=0) == (sorted(isp_raws), [])
    d = tmp_path / "raws"
    d.mkdir()
    for p in isp_raws:
        shutil.copy(p, d / p.name)
    cfg = _tiny_cfg("sac", 12, obs_mode="stats", action_mode="residual", delta_scale=0.3)
    cfg.max_steps = 1
    assert (
        isp_run(
            d, tmp_path / "run", cfg, test_fraction=0.0, subprocess=False, cma_global_budget=24, base="global"
        )
        == []
    )
    plan = json.loads((tmp_path / "run" / "run.json").read_text())
    assert len(plan["train"]) == len(isp_raws) and plan["test"] == [] and 0 < plan["base_scorer_calls"] <= 24
    _, card = load_policy(tmp_path / "run" / "policy.safetensors")
    g = json.loads((tmp_path / "run" / "baselines" / "cma_global.json").read_text())
    assert card["env"]["base"] == g["params"] and card["env"]["action_mode"] == "residual"


def test_isp_tune_typos_suggest_the_right_name(tmp_path, isp_raws):
    """`isp-tune --algo sca`, `--action-mode residul` and `render --policy defualt` named the valid values
    (or the policy file missing) but not the one meant, as attiqa's scorer, dataset and distortion names
    do; now "did you mean", before anything is read or written."""
    from typer.testing import CliRunner

    from isp_env.cli import app

    for option, typo, meant in (("--algo", "sca", "sac"), ("--action-mode", "residul", "residual")):
        out = tmp_path / option.strip("-")
        r = CliRunner().invoke(app, ["--raw-dir", str(isp_raws[0].parent), "--out", str(out), option, typo])
        assert r.exit_code != 0 and f"(did you mean {meant!r}?)" in str(r.exception), r.exception
        assert not out.exists()  # was left behind, empty: made before the settings were checked
    png = tmp_path / "x.png"
    r = CliRunner().invoke(app, ["render", str(isp_raws[0]), "-o", str(png), "--policy", "defualt"])
    assert "defualt: no such policy file (did you mean 'default'?)" in str(r.exception), r.exception
    assert not png.exists()


def test_a_refused_isp_tune_leaves_no_run_folder(tmp_path, isp_raws):
    """`isp-tune --out RUN` made RUN before the settings were checked: a typo (`--algo sca`, `--teacher-start
    middle`) or a raw folder of one raw left an empty RUN behind. Now RUN is made only once every check has
    passed; an --out under a file is still refused first, before any raw is read."""
    from typer.testing import CliRunner

    from isp_env.cli import app

    one = tmp_path / "one"
    one.mkdir()
    shutil.copy(isp_raws[0], one)
    for raw_dir, extra, said in (
        (isp_raws[0].parent, ["--algo", "sca"], "unknown --algo 'sca'"),
        (isp_raws[0].parent, ["--algo", "teacher", "--teacher-start", "middle"], "--teacher-start 'middle'"),
        (one, [], "one raw LibRaw can read"),
    ):
        out = tmp_path / "runs" / "RUN"
        r = CliRunner().invoke(app, ["--raw-dir", str(raw_dir), "--out", str(out), *extra])
        assert r.exit_code != 0 and said in str(r.exception), r.exception
        assert not (tmp_path / "runs").exists(), said
    (tmp_path / "file").write_text("x")
    r = CliRunner().invoke(app, ["--raw-dir", str(one), "--out", str(tmp_path / "file" / "RUN")])
    assert str(r.exception) == (
        f"{tmp_path / 'file' / 'RUN'}: cannot create the output folder ({tmp_path / 'file'} is a file, not a "
        "folder) — choose another --out"
    )


def test_the_help_names_the_files_a_run_writes(tmp_path, isp_raws):
    """`isp-tune --help` said every method, the CMA-ES baselines too, wrote test/METHOD/params/*.json; the
    baselines write their parameters to baselines/*.json. Now every path the help names is checked on a
    real (tiny) run with baselines, and none it leaves out."""
    from typer.testing import CliRunner

    from isp_env.cli import app

    said = " ".join(CliRunner().invoke(app, ["--help"]).output.replace("│", " ").split())
    gets = said.split("RUN gets ", 1)[1].split("Rerun", 1)[0]  # the sentence on the run folder
    named = re.findall(r"[\w.*/]+\.(?:json|png|csv|md|safetensors)", gets)
    assert "baselines/cma_global.json" in named and "baselines/cma_per_image.json" in named, said
    _, run = tiny_teacher_run(tmp_path, isp_raws, "--cma-global-budget", "6", "--cma-image-budget", "3")
    for name in named:
        for method in ("teacher", "cma_global", "cma_per_image") if "METHOD" in name else ("",):
            path = name.replace("METHOD", method)
            if path.startswith("test/cma_") and "/params/" in path:
                continue  # the help says METHOD is teacher or agent there
            assert list(run.glob(path)), path
    assert not list(run.glob("test/cma_*/params"))  # the baselines' parameters are in baselines/


def test_render_takes_out_as_every_other_output_option(tmp_path, isp_raws):
    """`isp-tune render RAW --out x.png` was "No such option: --out (Possible options: --output)" while
    `isp-tune --out`, `attiqa distort --out`, `gallery --out` and `genbench ... --out` all spell it so; now
    `--out` is accepted beside `--output` / `-o`."""
    from typer.testing import CliRunner

    from isp_env.cli import app

    png = tmp_path / "x.png"
    r = CliRunner().invoke(app, ["render", str(isp_raws[0]), "--out", str(png)])
    assert r.exit_code == 0, r.output
    assert Image.open(png).size[0] > 0


def test_settings_that_do_not_fit_are_refused_before_any_search(tmp_path, isp_raws, capsys):
    """Session 26: an unknown --algo or --teacher-start was refused only after the global CMA-ES had spent
    its scorer calls (45 s on the shared raws); now before anything is read or written. Session 59: the
    library's inputs (``run_inputs``) probed every raw before ``run()`` checked the config — a damaged raw's
    "skipped" line (minutes of probing on a FiveK-sized folder) before the refusal; now the config first."""
    from attiqa.errors import AttiqaError
    from isp_env.train_config import TeacherSettings, TrainConfig

    raw_dir = tmp_path / "raws"
    raw_dir.mkdir()
    for p in isp_raws:
        (raw_dir / p.name).write_bytes(p.read_bytes())
    (raw_dir / "cut.dng").write_bytes(isp_raws[0].read_bytes()[:200])  # probed: said "skipped"
    for cfg, teacher, said in (
        (
            TrainConfig(algo="sacc", scorer="classical", action_mode="residual"),
            None,
            "unknown --algo 'sacc'; one of teacher, sac, ppo, td3",
        ),
        (
            TrainConfig(algo="teacher", scorer="classical", action_mode="residual", obs_mode="stats"),
            TeacherSettings(start="middle"),
            "--teacher-start 'middle': use base or neutral",
        ),
        (
            TrainConfig(algo="teacher", scorer="classical", action_mode="delta", obs_mode="stats"),
            None,
            "--algo teacher needs --action-mode residual",
        ),
        (TrainConfig(algo="sac", scorer="classical", action_mode="resid"), None, "--action-mode 'resid'"),
        (TrainConfig(algo="sac", scorer="clasical"), None, "unknown scorer 'clasical'"),  # -m too
    ):
        capsys.readouterr()
        with pytest.raises(AttiqaError, match=re.escape(said)):
            isp_run(raw_dir, tmp_path / "out", cfg, teacher=teacher)
        assert capsys.readouterr().err == "", "the raws were probed before the config was refused"
        assert not (tmp_path / "out").exists()


def test_a_split_is_the_same_whether_the_raw_folder_was_given_absolute_or_relative(tmp_path, monkeypatch):
    """A rerun (or benchmarks/isp_heldout.py) with `--raw-dir /abs/raws` of a run made with `--raw-dir raws`
    was refused as 'another split' (session 26): run.json is compared by names within the raw folder."""
    from isp_env.run import split_names

    raws = tmp_path / "raws"
    raws.mkdir()
    for i in range(6):
        (raws / f"r{i}.dng").write_bytes(b"x")
    monkeypatch.chdir(tmp_path)

    def plan(root: Path) -> dict:
        tr, te = split(sorted(root.glob("*.dng")), 0.3, 0)
        return {"raw_dir": str(root), "train": [str(p) for p in tr], "test": [str(p) for p in te]}

    rel, absolute = plan(Path("raws")), plan(raws)
    assert rel["test"] != absolute["test"] and split_names(rel) == split_names(absolute)
    assert split_names(rel)[1] and all("/" not in n for n in split_names(rel)[1])


def test_a_cma_es_generation_is_scored_in_shared_reward_calls_with_the_same_result(tmp_path, isp_raws):
    """Each generation's renders go to the reward in one call (batched forward passes); the search finds
    what it found scoring one render a call: the same scores, calls and setting."""
    import torch
    from helpers import tiny_attiqa_scorer

    from isp_env.baselines import guarded_objective, score_together
    from isp_env.reward import guarded_item

    torch.set_num_threads(1)
    scorer = tiny_attiqa_scorer(tmp_path)
    lists: list[int] = []
    mos = from_scorer(scorer, batch_size=4)
    fn = mos.fn
    mos.fn = lambda ims: lists.append(len(ims)) or fn(ims)
    one = from_scorer(scorer, batch_size=1)
    items = [guarded_item(p, 64) for p in isp_raws[:2]]
    for its, pop in (([items[0]], 6), (items, 4)):  # per image; global over two raws
        lists.clear()
        objective = guarded_objective(its, one)
        ref = cma_search(lambda x, o=objective: o(x), 30, len(its), seed=0, popsize=pop)  # one at a time
        res = cma_search(guarded_objective(its, mos), 30, len(its), seed=0, popsize=pop)
        assert res.params == pytest.approx(ref.params, abs=1e-9) and res.mos == pytest.approx(
            ref.mos, abs=1e-4
        )
        assert res.calls == ref.calls and sum(lists) == res.calls  # every render counted
        assert lists == [len(its)] + [pop * len(its)] * (len(lists) - 1)  # neutral, then whole generations
    # several raws' objectives sharing a reward (a CV fold's predictions): one call, the same numbers
    objs = [guarded_objective([it], mos) for it in items]
    xs = [np.full(len(NAMES), v) for v in (-0.3, 0.2)]
    lists.clear()
    together = score_together([(o, x) for o in objs for x in xs])
    assert lists == [4]
    assert together == pytest.approx([o(x) for o in objs for x in xs], abs=1e-4)


def test_render_says_when_the_raw_the_policy_or_the_output_is_a_folder(tmp_path, isp_raws):
    """**Was** (session 35): `isp-tune render FOLDER` said "FOLDER: file not found"; `--policy RUN` (the run
    folder, where policy.safetensors is) "no such policy file"; `-o FOLDER` "unknown output format". Now a
    run folder holding policy.safetensors is its policy, and the other two say they are folders."""
    from typer.testing import CliRunner

    from attiqa.errors import AttiqaError
    from isp_env.cli import app
    from isp_env.policy_files import DEFAULT_POLICY

    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(DEFAULT_POLICY, run / "policy.safetensors")
    raw = isp_raws[0]
    for args, said in (
        ([tmp_path, "-o", tmp_path / "x.png"], f"{tmp_path}: a folder, not a raw file"),
        ([raw, "-o", run], f"--output {run}: a folder — give a file name, e.g. {run / 'render.png'}"),
        ([raw, "-o", tmp_path / "x.png", "--policy", tmp_path / "no"], f"{tmp_path / 'no'}: no such policy"),
        ([raw, "-o", tmp_path / "x.png", "--policy", tmp_path], f"{tmp_path}: a folder without policy"),
    ):
        r = CliRunner().invoke(app, ["render", *map(str, args)])
        assert isinstance(r.exception, AttiqaError) and str(r.exception).startswith(said), r.output
    for policy in (run, run / "policy.safetensors"):
        r = CliRunner().invoke(
            app, ["render", str(raw), "-o", str(tmp_path / "r.png"), "--policy", str(policy)]
        )
        assert r.exit_code == 0, r.output
        (tmp_path / "r.png").rename(tmp_path / f"{policy.name}.png")
    assert (tmp_path / "run.png").read_bytes() == (tmp_path / "policy.safetensors.png").read_bytes()


def test_a_run_folder_of_another_algorithm_is_refused(tmp_path, isp_raws):
    """**Was** (session 35): `isp-tune --algo sac -o RUN` on a finished teacher run trained SAC over it: the
    teacher's policy.safetensors replaced and its row gone from results.csv, without a word. Now refused
    before any work, as another split or reward model is."""
    from helpers import quick_isp_tune
    from typer.testing import CliRunner

    from attiqa.errors import ConfigError
    from isp_env.cli import app

    _, out, args = quick_isp_tune(tmp_path, isp_raws)
    assert CliRunner().invoke(app, args).exit_code == 0
    policy = (out / "policy.safetensors").read_bytes()
    r = CliRunner().invoke(app, [*args, "--algo", "sac", "--timesteps", "20", "--learning-starts", "5"])
    assert isinstance(r.exception, ConfigError), r.output
    assert str(r.exception) == f"{out}: this run folder holds a --algo teacher run, not sac — use a new --out"
    assert (out / "policy.safetensors").read_bytes() == policy
    assert CliRunner().invoke(app, args).exit_code == 0  # the same command still resumes


def test_a_text_file_named_dng_is_not_called_a_disk_error(tmp_path, isp_raws):
    """**Was** (session 35): text named `.dng` / `.cr2`, or a raw cut short, was "LibRaw can't read it
    (LibRawIOError: b'Input/output error')": LibRaw's I/O error for running out of data, which reads as a
    failing disk, its text as Python bytes. Now the reason is text and says what it means."""
    from isp_env.raw import RawReadError, probe_raw, read_raw

    (tmp_path / "notes.cr2").write_text("hello\n")
    data = isp_raws[0].read_bytes()
    (tmp_path / "cut.dng").write_bytes(data[:300])
    for path in (tmp_path / "notes.cr2", tmp_path / "cut.dng"):
        with pytest.raises(RawReadError) as err:
            read_raw(path)
        problem = probe_raw(path)
        for said in (str(err.value), str(problem)):
            assert (
                said.startswith(f"{path}: LibRaw can't read it (LibRawIOError: Input/output error")
                and "b'" not in said
            ), said
            assert "the file ends early or is not a raw" in said, said


def test_steps_a_resumed_run_kept_count_in_the_progress_but_not_in_its_rate(capsys):
    """**Was** (session 35): resumed at step 300 of 3000, `isp-tune` (SAC) logged "training SAC: 300/3000
    (87565647.2 step/s)": the kept steps counted as done in no time. Now ``progress_task(kept=...)`` shows
    them in the count, and the rate is of this run's work (here at most 100 steps in 0.2 s or more)."""
    from attiqa.progress import progress_task

    with progress_task("training SAC", total=1000, unit="step", kept=900) as advance:
        time.sleep(0.2)
        advance(100)
    line = capsys.readouterr().err.strip().splitlines()[-1]
    found = re.fullmatch(r"training SAC: 1000/1000 \(([\d.]+) step/s, 900 kept from an earlier run\)", line)
    assert found and float(found.group(1)) <= 500, line


def test_raws_of_one_scene_group_and_a_manifest_that_is_not_utf8_are_one_line(tmp_path, isp_raws):
    """**Was** (session 35; the three DC50 raws of ../shared/data/raw/real, one scene group in their
    manifest): "3 training raws, 0 test raws" without a word though --test-fraction was 0.3, then the
    teacher's cross-validation of one group ended in numpy's "Singular matrix" traceback (so did
    --test-fraction 0); a manifest.csv that is not UTF-8 in a UnicodeDecodeError traceback. Now one line
    each, before any search."""
    from helpers import quick_isp_tune
    from typer.testing import CliRunner

    from attiqa.errors import AttiqaError, ConfigError
    from isp_env.cli import app

    raw_dir, out, args = quick_isp_tune(tmp_path, isp_raws)
    names = sorted(p.name for p in raw_dir.iterdir())
    (raw_dir / "manifest.csv").write_text("file,scene_group\n" + "".join(f"{n},chart\n" for n in names))
    r = CliRunner().invoke(app, args)
    assert isinstance(r.exception, ConfigError), r.output
    said = str(r.exception)
    assert said.startswith(f"{raw_dir}: its 4 raws are one scene group ('chart':"), said
    r = CliRunner().invoke(app, [*args, "--test-fraction", "0"])
    assert isinstance(r.exception, ConfigError), r.output
    said = str(r.exception)
    assert said.startswith("--algo teacher: its training raws are one scene group ('chart')"), said
    assert not (out / "teacher").exists() or not any((out / "teacher").iterdir())  # no search spent
    (raw_dir / "manifest.csv").write_bytes("file,scene_group\nx.dng,caf\xe9\n".encode("latin-1"))
    r = CliRunner().invoke(app, args)
    assert isinstance(r.exception, AttiqaError), r.output
    assert str(r.exception).startswith(f"{raw_dir / 'manifest.csv'}: not a UTF-8 text file"), str(r.exception)


def test_raws_in_a_linked_folder_are_found_and_a_link_cycle_ends(tmp_path, isp_raws):
    """**Was** (session 35): `--raw-dir raws` where ``raws/cam1`` links to the folder holding the raws (a
    folder of linked camera folders) found none: "found 0 raw file(s)" (`attiqa score` follows linked
    folders since session 32). Now linked folders are searched, each real folder once (a link back up
    ends), as `attiqa` searches images; macOS's ``._NAME.dng`` companions are not raws."""
    from isp_env.raw import find_raws

    real = tmp_path / "store" / "cam1"
    real.mkdir(parents=True)
    for p in isp_raws[:2]:
        shutil.copy(p, real / p.name)
    (real / "._x.dng").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    root = tmp_path / "raws"
    root.mkdir()
    (root / "cam1").symlink_to(real)
    (root / "again").symlink_to(real)  # a second link to the same folder: searched once
    (real / "up").symlink_to(tmp_path / "store")  # a cycle
    shutil.copy(isp_raws[2], root / isp_raws[2].name)
    found = find_raws(root)
    assert sorted(p.name for p in found) == sorted(p.name for p in isp_raws[:3]), found
    assert found == sorted(found)


def test_a_damaged_file_of_a_run_is_one_line_naming_it(tmp_path, isp_raws):
    """**Was** (session 35): a run's run.json, training.json or teacher/targets_neutral.json cut short (an
    edit, a bad disk; they are written atomically) ended the rerun in a JSONDecodeError traceback. Now one
    line naming the file and what to do; deleting it redoes its step."""
    from helpers import quick_isp_tune
    from typer.testing import CliRunner

    from attiqa.errors import ConfigError
    from isp_env.cli import app

    _, out, args = quick_isp_tune(tmp_path, isp_raws)
    assert CliRunner().invoke(app, args).exit_code == 0
    for name in ("run.json", "training.json", "teacher/targets_neutral.json"):
        whole = (out / name).read_bytes()
        (out / name).write_bytes(whole[: len(whole) // 2])
        r = CliRunner().invoke(app, args)
        assert isinstance(r.exception, ConfigError), r.output
        assert str(r.exception).startswith(f"{out / name}: damaged (not JSON:"), str(r.exception)
        (out / name).unlink()
        if name == "training.json":
            (out / name).write_bytes(whole)  # the targets' turn next: the fit must not be kept
            (out / "policy.safetensors").unlink()
    r = CliRunner().invoke(app, args)  # the deleted files' steps redone
    assert r.exit_code == 0, r.output


def test_render_given_a_policy_where_parameters_go_says_which_option_takes_it(tmp_path, isp_raws):
    """**Was** (session 35): `render --params RUN/policy.json` listed the card's 13 keys as "unknown ISP
    parameter(s)", `--params RUN/policy.safetensors` a UTF-8 decode error, `--params RUN` "Is a directory",
    `--policy RUN/policy.json` "not a readable safetensors checkpoint (header too large)". Each now names
    the option that takes it; following the advice renders."""
    from attiqa.io.checkpoints import load_checkpoint
    from isp_env.policy_files import DEFAULT_POLICY

    run = tmp_path / "run"
    (run / "test" / "teacher" / "params").mkdir(parents=True)
    shutil.copy(DEFAULT_POLICY, run / "policy.safetensors")
    (run / "policy.json").write_text(json.dumps(load_checkpoint(DEFAULT_POLICY)[1]))  # the card beside it
    setting = run / "test" / "teacher" / "params" / "a.json"
    setting.write_text(json.dumps({"tone_exposure": 0.2}))
    raw, out = isp_raws[0], tmp_path / "r.png"
    advice = f"render with its policy: --policy {run / 'policy.safetensors'}; or pass --params a setting the "
    for args, said in (
        (["--params", run / "policy.json"], f"{run / 'policy.json'}: an isp-tune policy, not parameter "
                                            f"values — {advice}run tuned, e.g. {setting}"),
        (["--params", run / "policy.safetensors"], f"{run / 'policy.safetensors'}: an isp-tune policy"),
        (["--params", run], f"{run}: an isp-tune run folder, not parameter values — render with its "
                            f"policy: --policy {run};"),
        (["--policy", run / "policy.json"], f"{run / 'policy.json'}: a JSON file, not a policy — pass the "
                                            f"policy itself, {run / 'policy.safetensors'} (a parameter "
                                            "file goes to --params)"),
    ):  # fmt: skip
        r = run_isp_tune("render", raw, "-o", out, *args)
        lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
        assert r.returncode == 2 and len(lines) == 1 and lines[0].startswith(f"error: {said}"), r.stderr
        assert not out.exists()
    for args in (["--policy", run / "policy.safetensors"], ["--params", setting]):  # the advice works
        r = run_isp_tune("render", raw, "-o", out, *args)
        assert r.returncode == 0 and out.is_file(), r.stderr
        out.unlink()


@pytest.mark.skipif(not Path("/sys/kernel").is_dir(), reason="needs Linux's /sys (no file can be made there)")
def test_an_output_that_cannot_be_made_is_named_not_its_temp_file(isp_raws, tmp_path):
    """**Was** (session 35): `render -o /sys/x.png` said "/sys/.x.png.<host>.<pid>.<random>.tmp: Permission
    denied" — the atomic write's temp file, a name the user never gave. The same for every atomic write."""
    from helpers import run_attiqa

    r = run_isp_tune("render", isp_raws[0], "-o", "/sys/x.png")
    assert r.returncode == 2 and r.stderr.startswith("error: /sys/x.png: Permission denied — check"), r.stderr
    assert ".tmp" not in r.stderr and "Traceback" not in r.stderr
    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    r = run_attiqa("distort", tmp_path / "a.png", "-t", "gaussian_blur", "-l", "1", "-o", "/sys/y.png")
    assert r.returncode == 2 and r.stderr.startswith("error: /sys/y.png: Permission denied"), r.stderr


LONG_STEP = """
import multiprocessing, os, sys, time
from isp_env.tuning import exit_with_parent

def step(parent, deathsig):  # an env worker in the middle of a long step: it does not read its pipe
    exit_with_parent(parent, deathsig)
    print("ready", flush=True)
    time.sleep(120)

if __name__ == "__main__":
    worker = multiprocessing.get_context("spawn").Process(target=step, args=(os.getpid(), sys.argv[1] == "1"))
    worker.start()
    print(worker.pid, flush=True)
    worker.join()
"""


def _gone(pid: int) -> bool:
    """Exited (a zombie waiting for its new parent to reap it counts: it holds no memory, runs nothing)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] == "Z"


@pytest.mark.parametrize("deathsig", [True, False], ids=["prctl", "sentinel-thread"])
def test_env_workers_end_when_their_parent_is_killed(tmp_path, deathsig):
    """**Was** (session 35): after a ``kill -9`` of ``isp-tune --n-envs 2`` its env workers ran on until their
    step finished and they wrote to the dead parent (seconds; a BrokenPipeError traceback). A real spawned
    worker in a 120 s step, its real parent killed with SIGKILL: the worker is gone within 2 s — by the
    kernel's parent-death signal (Linux) or by the watch thread every platform has."""
    script = tmp_path / "long_step.py"
    script.write_text(LONG_STEP)
    parent = subprocess.Popen(
        [sys.executable, str(script), "1" if deathsig else "0"], env=attiqa_env(), stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        worker = int(parent.stdout.readline())
        assert parent.stdout.readline().strip() == "ready"
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        deadline = time.monotonic() + 2.0
        while not _gone(worker) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _gone(worker), "the worker outlived its killed parent"
    finally:
        parent.kill()
        with contextlib.suppress(ProcessLookupError, NameError):
            os.kill(worker, signal.SIGKILL)


def test_grid_png_of_one_held_out_raw_keeps_its_titles_inside_the_picture(tmp_path):
    """A quick run on 4 raws holds out 1: grid.png is then one row of five methods, and the first line of
    every column title ("neutral defaults", ...) was cut off by the picture's top edge (tight_layout with
    aspect-locked images). Nothing drawn may touch the border: the outermost pixels are background."""
    from isp_env.report import grid_png

    methods = ["neutral", "rawpy", "cma_global", "cma_image", "teacher"]
    for n in (1, 2):
        crops = {f"raw{i}": {m: np.full((256, 256, 3), 90, np.uint8) for m in methods} for i in range(n)}
        rows = [{"image": r, "method": m, "mos": 30.0, "clipped": 0.1} for r in crops for m in methods]
        grid_png(tmp_path / "grid.png", crops, rows, labels={"teacher": "teacher policy (base)"})
        grey = np.asarray(Image.open(tmp_path / "grid.png").convert("L"))
        border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
        assert border.min() == 255, f"{n} raw(s): ink on the border (a clipped title)"


def test_a_scene_split_far_from_test_fraction_is_said_in_the_camera_splits_sentence(
    tmp_path, isp_raws, capsys
):
    """**Was** silent: 4 raws in 2 scene groups of 2 (manifest.csv) at --test-fraction 0.3 held out one
    group (50/50, not 70/30) — only a split by camera said its share. Now a scene split far from the
    fraction (over ``attiqa.splits.SHARE_SLACK``) says it in the same sentence (``attiqa.splits.say_share``,
    bench's too); the raws it holds out are the same (a resume compares them). Raws each their own group (no
    manifest) say nothing: 2 raws holding out 1 is a whole raw's rounding, which no --seed changes (review:
    7 raws said 57/43 at every seed)."""
    from isp_env.run_inputs import list_raws

    raws = tmp_path / "raws"
    raws.mkdir()
    for p in isp_raws[:4]:
        shutil.copy(p, raws / p.name)
    rows = "".join(f"{p.name},{'s1' if i < 2 else 's2'}\n" for i, p in enumerate(isp_raws[:4]))
    (raws / "manifest.csv").write_text("file,scene_group\n" + rows)
    listing = list_raws(raws, tmp_path / "out", 0.3, 0)
    said = " ".join(capsys.readouterr().err.split())
    assert (listing.train, listing.test) == split(sorted(listing.raws), 0.3, 0, listing.groups)
    assert (
        "raws: its 4 raws fall in 2 scene groups and a split holds out whole scene groups (1 of 2): "
        "train/test is 50/50, not the 70/30 asked (--test-fraction 0.3) — another --seed picks other scene "
        "groups, or add raws of other scenes" in said
    ), said
    (raws / "manifest.csv").unlink()
    for p in isp_raws[2:4]:
        (raws / p.name).unlink()
    list_raws(raws, tmp_path / "out2", 0.3, 0)  # 2 raws, 2 groups of one: 50/50 is the nearest a raw allows
    assert "train/test" not in capsys.readouterr().err
    list_raws(isp_raws[0].parent, tmp_path / "out", 0.3, 0)
    assert "train/test" not in capsys.readouterr().err
