"""`attiqa eval` under real `torchrun --nproc_per_node 2` (gloo on CPU): each rank scores its share of the
dataset into the shared score cache, the results meet on every rank and rank 0 alone writes the outputs —
the predictions and metrics one process writes; a run killed mid-way resumes from the cache."""

from __future__ import annotations

import contextlib
import csv
import json
import re
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from helpers import attiqa_cmd, attiqa_env, run_attiqa, tiny_attiqa_checkpoint

from attiqa.evaluation.cache import ScoreCache

pytestmark = pytest.mark.slow

# a share is batched otherwise than the whole list: float rounding of the kernels, seen up to 1e-6 on the
# tiny checkpoint's 0-100 MOS scale (values printed to 6 digits)
TOLERANCE = 1e-3


def dataset(root: Path, photos, n: int, side: int) -> list[Path]:
    """``n`` small images (rotated photos) with a MOS each, in a folder dataset; the 4th is truncated
    (its header reads, its data does not: found when decoded, listed, left out of the metrics)."""
    root.mkdir()
    base = list(photos.values())
    paths = []
    for i in range(n):
        p = root / f"img{i:03d}.png"
        base[i % len(base)].resize((side, side)).rotate(7 * i).save(p)
        paths.append(p)
    data = paths[3].read_bytes()
    paths[3].write_bytes(data[: len(data) * 3 // 5])
    (root / "mos.csv").write_text(
        "image,mos\n" + "".join(f"{p.name},{1 + i * 7 % 9 / 2}\n" for i, p in enumerate(paths))
    )
    return paths


# `attiqa` with the image check (find_unreadable, where the package looks it up) counted: each rank appends
# the paths it checks to $CHECKED.<rank>
COUNTED_CHECK = """
import os
import attiqa.datasets.base as base
import attiqa.evaluation.evaluate as ev
from attiqa.cli import main

real = base.find_unreadable

def counted(paths, *args, **kwargs):
    with open(f"{os.environ['CHECKED']}.{os.environ.get('RANK', '0')}", "a") as fh:
        fh.writelines(f"{p}\\n" for p in paths)
    return real(paths, *args, **kwargs)

base.find_unreadable = ev.find_unreadable = counted
main()
"""


def eval_args(root: Path, out: Path, ckpt: Path, *extra: str) -> list[object]:
    return ["eval", "folder", "--root", root, "-m", ckpt, "-o", out, "-q", *extra, "--batch-size", "2",
            "--workers", "0", "--device", "cpu"]  # fmt: skip


def evaluate(
    root: Path, out: Path, cache: Path, ckpt: Path, *extra: str, checked: Path | None = None
) -> subprocess.CompletedProcess:
    """``attiqa eval`` under torchrun, 2 processes (one: :func:`evaluate_alone`); with ``checked``, the image
    check counted into ``checked.<rank>``."""
    env = {"ATTIQA_CACHE": str(cache), "OMP_NUM_THREADS": "1"}
    script = None
    if checked is not None:
        script = checked.parent / "counted_attiqa.py"
        script.write_text(COUNTED_CHECK)
        env["CHECKED"] = str(checked)
    return run_attiqa(*eval_args(root, out, ckpt, *extra), ranks=2, script=script, env=env)


def evaluate_alone(cli, root: Path, out: Path, cache: Path, ckpt: Path, *extra: str):
    """``attiqa eval`` in one process, this one (the ``cli`` fixture), its score cache in ``cache``."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ATTIQA_CACHE", str(cache))
        return cli(*eval_args(root, out, ckpt, *extra))


def checked_paths(log: Path, ranks: int = 2) -> list[list[str]]:
    """The paths each rank's image check looked at."""
    return [
        (p.read_text().splitlines() if (p := log.with_name(f"{log.name}.{r}")).exists() else [])
        for r in range(ranks)
    ]


def predictions(out: Path) -> list[list[str]]:
    with (out / "predictions.csv").open(newline="") as fh:
        return list(csv.reader(fh))


def assert_same(a: Path, b: Path) -> float:
    """The same predictions.csv (images, MOS, splits; scores to TOLERANCE) and summary metrics; the
    largest score difference."""
    (head_a, *rows_a), (head_b, *rows_b) = predictions(a), predictions(b)
    assert head_a == head_b and [r[:4] for r in rows_a] == [r[:4] for r in rows_b]
    diff = max(
        abs(float(x) - float(y))
        for ra, rb in zip(rows_a, rows_b, strict=True)
        for x, y in zip(ra[4:], rb[4:], strict=True)
    )
    assert diff <= TOLERANCE
    sa, sb = (json.loads((d / "summary.json").read_text()) for d in (a, b))
    for k in ("srocc", "plcc", "krcc", "plcc_fit", "rmse_fit"):
        assert sa[k] == pytest.approx(sb[k], abs=1e-4), k
    assert sa["n"] == sb["n"] and sa["failed"] == sb["failed"]
    return diff


@pytest.mark.serial(reason="two torchrun ranks need both cores")
def test_two_ranks_write_what_one_process_writes_and_a_rerun_uses_the_cache(tmp_path, photos, cli):
    paths = dataset(tmp_path / "ds", photos, 11, 64)
    ckpt = tiny_attiqa_checkpoint(tmp_path)
    one = evaluate_alone(cli, tmp_path / "ds", tmp_path / "one", tmp_path / "cache1", ckpt)
    assert one.returncode == 0, one.stderr
    two = evaluate(tmp_path / "ds", tmp_path / "two", tmp_path / "cache2", ckpt)
    assert two.returncode == 0, two.stderr[-3000:]
    assert_same(tmp_path / "one", tmp_path / "two")
    summary = json.loads((tmp_path / "two" / "summary.json").read_text())
    assert summary["n"] == len(paths) - 1 and [Path(f["image"]).name for f in summary["failed"]] == [
        "img003.png"
    ]
    assert summary["n_scored"] == len(paths) - 1 and summary["n_cached"] == 0
    assert two.stdout.count("SROCC") == 1 and two.stderr.count("wrote ") == 1  # rank 0 alone reports
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == [
        "predictions.csv",
        "scatter.png",
        "summary.json",
    ]
    with ScoreCache(tmp_path / "cache2" / "eval_scores.sqlite") as store:
        assert store.count() == len(paths) - 1  # both ranks stored their shares

    again = evaluate(tmp_path / "ds", tmp_path / "again", tmp_path / "cache2", ckpt)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"0 scored, {len(paths) - 1} from cache" in " ".join(again.stderr.split())
    assert_same(tmp_path / "two", tmp_path / "again")


@pytest.mark.serial(reason="two torchrun ranks need both cores")
def test_two_ranks_check_each_image_once_and_report_as_one_process(tmp_path, photos, cli):
    """**Was**: every rank checked every image (header reads), and ``attiqa eval`` checked twice (the
    command, then :func:`evaluate`). Now each image is checked once, by one rank; the report of missing
    images is the one a single process gives, in input order."""
    paths = dataset(tmp_path / "ds", photos, 11, 48)
    for p in (paths[8], paths[5]):
        p.unlink()
    ckpt = tiny_attiqa_checkpoint(tmp_path)
    one = evaluate_alone(cli, tmp_path / "ds", tmp_path / "one", tmp_path / "cache", ckpt)
    error = one.stderr[one.stderr.index("error:") :].strip()
    assert one.returncode == 2 and error.index("img005.png") < error.index("img008.png"), one.stderr
    two = evaluate(tmp_path / "ds", tmp_path / "two", tmp_path / "cache", ckpt, checked=tmp_path / "stop")
    assert two.returncode != 0 and two.stderr.count(error) == 1, two.stderr[-3000:]  # said once (session 50)
    by_rank = checked_paths(tmp_path / "stop")
    assert all(by_rank) and sorted(sum(by_rank, [])) == sorted(map(str, paths))  # each image once

    skip = ("--skip-missing",)
    one = evaluate_alone(cli, tmp_path / "ds", tmp_path / "one", tmp_path / "cache1", ckpt, *skip)
    assert one.returncode == 0, one.stderr
    two = evaluate(
        tmp_path / "ds", tmp_path / "two", tmp_path / "cache2", ckpt, *skip, checked=tmp_path / "skip"
    )
    assert two.returncode == 0, two.stderr[-3000:]
    assert_same(tmp_path / "one", tmp_path / "two")
    sa, sb = (
        json.loads((tmp_path / d / "summary.json").read_text())["skipped_missing"] for d in ("one", "two")
    )
    assert sa == sb and [Path(s.split(":")[0]).name for s in sb] == ["img005.png", "img008.png"]
    by_rank = checked_paths(tmp_path / "skip")
    assert all(by_rank) and sorted(sum(by_rank, [])) == sorted(map(str, paths))


@pytest.mark.serial(reason="a signal or kill timed against torchrun's processes")
def test_killed_under_torchrun_resumes_from_the_cache(tmp_path, photos, cli):
    paths = dataset(tmp_path / "ds", photos, 120, 256)
    ckpt = tiny_attiqa_checkpoint(tmp_path)
    cache = tmp_path / "cache" / "eval_scores.sqlite"

    def cached() -> int:  # read only: the poll must not take the writers' locks
        try:
            with contextlib.closing(sqlite3.connect(f"file:{cache}?mode=ro", uri=True, timeout=1)) as db:
                return int(db.execute("SELECT COUNT(*) FROM image_scores").fetchone()[0])
        except sqlite3.Error:  # not created yet
            return 0

    cmd = attiqa_cmd(*eval_args(tmp_path / "ds", tmp_path / "killed", ckpt), ranks=2)
    env = attiqa_env({"ATTIQA_CACHE": str(cache.parent), "OMP_NUM_THREADS": "1"})
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None and cached() < 6:
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)  # as `kill` or Slurm stop a job: torchrun passes it on to both ranks
    _, err = proc.communicate(timeout=120)
    assert proc.returncode != 0, err[-3000:]
    assert not re.search(r'File "[^"]*/attiqa/', err)  # torchrun prints its own traceback; none from ours
    kept = cached()
    assert 6 <= kept < len(paths) - 1 and not (tmp_path / "killed" / "predictions.csv").exists()

    res = evaluate(tmp_path / "ds", tmp_path / "killed", cache.parent, ckpt)
    assert res.returncode == 0, res.stderr[-3000:]
    assert f"{len(paths) - 1 - kept} scored, {kept} from cache" in " ".join(res.stderr.split())
    fresh = evaluate_alone(cli, tmp_path / "ds", tmp_path / "fresh", tmp_path / "nocache", ckpt, "--no-cache")
    assert fresh.returncode == 0, fresh.stderr
    assert_same(tmp_path / "fresh", tmp_path / "killed")
