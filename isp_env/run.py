"""`isp-tune --raw-dir DIR`: split, train, apply the agent to the test images, run the baselines, report.

Every stage is resumable: training from its checkpoint, per-image outputs are skipped when present, baseline
results are saved image by image. Unreadable raws are skipped and listed in ``summary.json``.
"""

from __future__ import annotations

import glob
import json
import random
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from attiqa.errors import ConfigError
from attiqa.io.atomic import atomic_path, write_json_atomic
from attiqa.io.names import portable_stem
from attiqa.progress import console, progress_task
from isp_env.baselines import cma_search, mean_mos_objective, rawpy_preview
from isp_env.isp import Developed, develop, finish
from isp_env.params import check_values, neutral
from isp_env.policy_io import load_policy
from isp_env.raw import RAW_EXTENSIONS, RawReadError, find_raws, read_raw
from isp_env.report import write_report
from isp_env.scoring import MOSFunction, load_mos_function
from isp_env.tuning import TrainConfig, train, tune_with_policy


def split(raws: list[Path], test_fraction: float, seed: int) -> tuple[list[Path], list[Path]]:
    """Seeded random split; at least one image on each side when there are two or more."""
    order = list(raws)
    random.Random(seed).shuffle(order)
    n_test = min(max(1, round(len(order) * test_fraction)), len(order) - 1) if len(order) > 1 else 0
    return sorted(order[n_test:]), sorted(order[:n_test])


def image_key(path: Path, root: Path) -> str:
    """The name of an image's outputs: its path under ``root`` without the extension — unless another raw
    of that stem sits beside it (``IMG_1.CR2`` + ``IMG_1.dng``): then with it, so neither overwrites the
    other; undecodable bytes as ``_`` (the key goes into UTF-8 reports)."""
    rel = path.relative_to(root) if path.is_relative_to(root) else Path(path.name)
    twins = [p for p in path.parent.glob(glob.escape(path.stem) + ".*") if p.suffix.lower() in RAW_EXTENSIONS]
    key = str(rel if len(twins) > 1 else rel.with_suffix("")).replace("/", "__")
    return portable_stem(key, max_bytes=200)


def _save_png(path: Path, rgb: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        Image.fromarray(rgb).save(tmp, format="PNG")


def _load_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def run(raw_dir: Path, out: Path, cfg: TrainConfig, test_fraction: float = 0.2, baselines: bool = True,
        subprocess: bool = True) -> list[dict[str, Any]]:
    raws = find_raws(raw_dir)
    if len(raws) < 2:
        raise ConfigError(f"{raw_dir}: found {len(raws)} raw file(s), need at least 2 (one to train, one to "
                          f"test) — extensions searched: {', '.join(sorted(RAW_EXTENSIONS))}")
    train_raws, test_raws = split(raws, test_fraction, cfg.seed)
    plan = {"raw_dir": str(raw_dir), "seed": cfg.seed, "test_fraction": test_fraction,
            "train": [str(p) for p in train_raws], "test": [str(p) for p in test_raws]}
    mos = load_mos_function(cfg.scorer)  # fail early (e.g. no default model), before writing anything
    old = _load_json(out / "run.json")
    if old and (old.get("train"), old.get("test")) != (plan["train"], plan["test"]):
        raise ConfigError(f"{out}: this run folder holds another split (other raws or seed) — use a new "
                          "--out")
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "run.json", {**plan, "config": cfg.learning_key()})
    console.print(f"{len(train_raws)} training raws, {len(test_raws)} test raws -> {out}")

    training = train(out, train_raws, cfg, subprocess=subprocess)
    agent_calls = int(training["scorer_calls"])

    skipped: dict[str, str] = dict(training.get("skipped", {}))
    devs: dict[str, Developed] = {}
    paths: dict[str, Path] = {}
    for p in test_raws:
        try:
            devs[image_key(p, raw_dir)] = develop(read_raw(p), cfg.preview)
            paths[image_key(p, raw_dir)] = p
        except RawReadError as exc:
            skipped[str(p)] = str(exc)
            console.print(f"[yellow]skipped[/] {exc}")
    if not devs:
        raise ConfigError(f"{raw_dir}: none of the {len(test_raws)} test raws could be read")

    policy, card = load_policy(out / "policy.safetensors")
    params: dict[str, dict[str, dict[str, float]]] = {"neutral": {k: neutral() for k in devs}, "agent": {}}
    with progress_task("agent: tune + full-res render", total=len(devs), unit="img") as advance:
        for key, path in paths.items():
            pfile, png = out / "test" / "params" / f"{key}.json", out / "test" / "renders" / f"{key}.png"
            done = _load_json(pfile)
            if done.get("policy_timesteps") == card["timesteps"]:  # outputs of this very policy: keep
                values = check_values(done["params"])
            else:
                values = tune_with_policy(policy, card, path)
                png.unlink(missing_ok=True)
                write_json_atomic(pfile, {"raw": str(path), "params": values,
                                          "policy_timesteps": card["timesteps"]})
            if not png.exists():
                _save_png(png, finish(develop(read_raw(path)), values))
            params["agent"][key] = values
            advance(1)

    budgets = {"agent": {"train": agent_calls, "test": 0}, "neutral": {}, "rawpy": {}}
    previews: dict[str, dict[str, np.ndarray]] = {k: {} for k in devs}
    if baselines:
        _baselines(out, cfg, mos, devs, paths, train_raws, agent_calls, params, budgets, previews, skipped)

    rows = []
    for key, dev in devs.items():
        for method, per_image in params.items():
            previews[key][method] = finish(dev, per_image[key])
        for method, img in previews[key].items():
            rows.append({"image": key, "method": method, "mos": float(mos.one(img))})
    meta = {"scorer": mos.name, "preview": cfg.preview, "algo": cfg.algo, "timesteps": training["timesteps"],
            "n_train": len(train_raws), "n_test": len(devs), "skipped": skipped}
    return write_report(out, rows, budgets, meta, previews)


def _baselines(out, cfg, mos: MOSFunction, devs, paths, train_raws, agent_calls, params, budgets, previews,
               skipped) -> None:
    for key, path in paths.items():
        previews[key]["rawpy"] = rawpy_preview(path, devs[key].linear.shape[:2])
    # global CMA-ES on the training images, with the agent's training budget
    gfile = out / "baselines" / "cma_global.json"
    g = _load_json(gfile)
    if g.get("budget") != agent_calls:  # missing, or computed for a shorter/longer training run
        train_devs = []
        for p in train_raws:
            try:
                train_devs.append(develop(read_raw(p), cfg.preview))
            except RawReadError as exc:
                skipped[str(p)] = str(exc)
        rng = np.random.default_rng(cfg.seed)
        n = min(len(train_devs), max(1, agent_calls // (12 * 3)))  # >= 3 generations of 12 on the subset
        subset = [train_devs[i] for i in sorted(rng.choice(len(train_devs), n, replace=False))]
        console.print(f"global CMA-ES on {n} training images, budget {agent_calls} scorer calls")
        res = cma_search(mean_mos_objective(subset, mos), agent_calls, len(subset), cfg.seed)
        g = {"params": res.params, "train_mos": res.mos, "calls": res.calls, "n_images": n,
             "budget": agent_calls}
        write_json_atomic(gfile, g)
    params["cma_global"] = {k: g["params"] for k in devs}
    budgets["cma_global"] = {"train": g["calls"], "test": 0}
    # per-image CMA-ES on each test image, the agent's training budget split over the test images
    pfile = out / "baselines" / "cma_per_image.json"
    per_budget = max(agent_calls // len(devs), 1)
    per = {k: v for k, v in _load_json(pfile).items() if v.get("budget") == per_budget}
    with progress_task("per-image CMA-ES", total=len(devs), unit="img") as advance:
        for key, dev in devs.items():
            if key not in per:
                res = cma_search(mean_mos_objective([dev], mos), per_budget, 1, cfg.seed)
                per[key] = {"params": res.params, "mos": res.mos, "calls": res.calls, "budget": per_budget}
                write_json_atomic(pfile, per)
            advance(1)
    params["cma_per_image"] = {k: per[k]["params"] for k in devs}
    budgets["cma_per_image"] = {"train": 0, "test": int(sum(per[k]["calls"] for k in devs))}
