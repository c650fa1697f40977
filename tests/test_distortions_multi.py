"""ExIQA multi-distortion generator (§V-A): the draw, labels, determinism, resume after a kill, bad sources,
and `attiqa make-distorted` as a user runs it."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from conftest import resized
from helpers import run_attiqa
from PIL import Image

from attiqa.distortions import KADID_NAMES, NUM_LEVELS
from attiqa.distortions.multi import apply_plan, make_distorted_set, plan_item
from attiqa.errors import ConfigError


@pytest.fixture()
def sources(tmp_path, photos) -> list[Path]:
    d = tmp_path / "src"
    d.mkdir()
    out = []
    for n in ("astronaut", "coffee", "chelsea"):
        p = d / f"{n}.png"
        resized(photos[n], longer=48).save(p)
        out.append(p)
    return out


def _rows(path: Path) -> list[dict]:
    with path.open() as fh:
        return list(csv.DictReader(fh))


def test_the_draw_follows_the_recipe():
    plans = [plan_item(0, r, i, KADID_NAMES) for r in range(10) for i in range(60)]
    ks = np.array([len(p.names) for p in plans])
    assert ks.min() >= 1 and ks.max() <= 25 and len(set(ks.tolist())) > 15  # K ~ U{1..25}
    assert abs(ks.mean() - 13) < 1.5
    for p in plans:
        assert len(set(p.names)) == len(p.names)  # without replacement
        assert all(1 <= lv <= NUM_LEVELS for lv in p.levels)
    levels = Counter(lv for p in plans for lv in p.levels)
    assert set(levels) == {1, 2, 3, 4, 5}
    assert plan_item(0, 3, 7, KADID_NAMES) == plan_item(0, 3, 7, KADID_NAMES)  # seeded per item
    assert plan_item(1, 3, 7, KADID_NAMES) != plan_item(0, 3, 7, KADID_NAMES)
    capped = [len(plan_item(0, 0, i, KADID_NAMES, max_k=3).names) for i in range(50)]
    assert max(capped) <= 3


def test_images_and_labels(tmp_path, sources):
    out = tmp_path / "set"
    res = make_distorted_set(sources, out, rounds=2, seed=4)
    assert res.written == 6 and not res.failed
    rows = _rows(out / "labels.csv")
    assert len(rows) == 6 and list(rows[0])[:5] == ["image", "source", "round", "k", "sequence"]
    assert list(rows[0])[5:] == list(KADID_NAMES)
    for r in rows:
        img = out / r["image"]
        src = Path(r["source"])
        with Image.open(img) as a, Image.open(src) as b:
            assert a.size == b.size
        strengths = {d: float(r[d]) for d in KADID_NAMES}
        assert set(strengths.values()) <= {0.0, 0.2, 0.4, 0.6, 0.8, 1.0}
        applied = [s.split(":") for s in r["sequence"].split(";")]
        assert int(r["k"]) == len(applied) == sum(v > 0 for v in strengths.values())
        for name, lv in applied:
            assert strengths[name] == pytest.approx(int(lv) / 5)
        # the image is exactly the plan applied to the source
        plan = plan_item(4, int(r["round"]), sources.index(src), KADID_NAMES)
        with Image.open(src) as s_img, Image.open(img) as got:
            assert apply_plan(s_img.convert("RGB"), plan).tobytes() == got.convert("RGB").tobytes()
    # rounds differ: the same source gets another mix
    by_src = {}
    for r in rows:
        by_src.setdefault(r["source"], []).append(r["sequence"])
    assert all(len(set(v)) == 2 for v in by_src.values())


def test_resume_after_a_kill_gives_the_same_dataset(tmp_path, sources):
    ref = tmp_path / "ref"
    make_distorted_set(sources, ref, rounds=2, seed=1)
    out = tmp_path / "killed"
    done = []

    def kill_after_two(n, kept=False):
        done.append(n)
        if len(done) == 2:
            raise KeyboardInterrupt

    stopped = make_distorted_set(sources, out, rounds=2, seed=1, flush_every=50, on_item=kill_after_two)
    assert isinstance(stopped.interruption, KeyboardInterrupt) and stopped.written == 2
    assert len(list((out / "images").rglob("*.png"))) == 2
    assert len(_rows(out / "labels.csv")) == 2  # the labels of the finished images, before any flush
    res = make_distorted_set(sources, out, rounds=2, seed=1)
    assert res.existing == 2 and res.written == 4
    for p in sorted((ref / "images").rglob("*.png")):
        q = out / p.relative_to(ref)
        assert q.read_bytes() == p.read_bytes()
    assert (out / "labels.csv").read_text() == (ref / "labels.csv").read_text().replace(str(ref), str(out))
    with pytest.raises(ConfigError, match="other settings"):
        make_distorted_set(sources, out, rounds=2, seed=2)


def test_bad_source_is_skipped_and_reported(tmp_path, sources):
    bad = sources[0].parent / "broken.png"
    bad.write_bytes(b"\x89PNG not really")
    res = make_distorted_set([*sources, bad], tmp_path / "out", rounds=2)
    assert res.written == 6 and len(res.failed) == 1 and "broken.png" in res.failed[0]
    assert len(_rows(tmp_path / "out" / "labels.csv")) == 6


def test_make_distorted_command(tmp_path, sources, cli):
    out = tmp_path / "cli"
    args = ["make-distorted", sources[0].parent, "--rounds", "2", "--out", out, "--seed", "3"]
    r = cli(*args)
    assert r.returncode == 0, r.stderr
    assert len(_rows(out / "labels.csv")) == 6
    again = cli(*args)
    assert again.returncode == 0 and "0 written, 6 already there" in again.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    none = cli("make-distorted", empty, "--out", out)
    assert none.returncode == 2 and "no images found" in none.stderr and "Traceback" not in none.stderr


def test_an_interrupted_make_distorted_says_rerun_to_resume(tmp_path, sources):
    """**Was** (session 35): Ctrl-C printed a bare "interrupted", and labels.csv was not written before its
    first flush (50 images). Now what was kept and "rerun the same command to resume", exit 130 — and the
    rerun does resume."""
    import signal
    import subprocess
    import time

    from helpers import attiqa_cmd, attiqa_env

    out = tmp_path / "set"
    args = ["make-distorted", sources[0].parent, "--rounds", "200", "--out", out]
    proc = subprocess.Popen(attiqa_cmd(*args), env=attiqa_env(), stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while len(list(out.rglob("*.png"))) < 4 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    err = proc.communicate(timeout=60)[1]
    assert proc.returncode == 130, err
    lines = [ln for ln in err.splitlines() if not ln.startswith("distorting")]
    kept = len(list(out.rglob("*.png")))
    assert 4 <= kept < 600 and "Traceback" not in err
    assert lines == [f"interrupted: {kept} written, 0 already there, kept in {out} with their labels; rerun "
                     "the same command to resume"], err  # fmt: skip
    assert sorted(r["image"] for r in _rows(out / "labels.csv")) == sorted(
        str(p.relative_to(out)) for p in out.rglob("*.png")
    )
    again = run_attiqa(*args[:3], "3", *args[4:])  # the same settings but fewer rounds: refused, not mixed
    assert again.returncode == 2 and "other settings" in again.stderr
    proc = subprocess.Popen(attiqa_cmd(*args), env=attiqa_env(), stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while len(list(out.rglob("*.png"))) < kept + 2 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    err = proc.communicate(timeout=60)[1]
    assert proc.returncode == 130
    assert f", {kept} already there, kept in {out}" in err, err  # the rerun resumed: nothing made twice
