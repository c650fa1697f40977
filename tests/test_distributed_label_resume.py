"""torchrun runs of `label`, `score`, `eval`, `train` as a user runs them: 2 processes, gloo."""

from __future__ import annotations

import os
import re
import select
import subprocess
import time

import pytest
from dist_helpers import fill
from helpers import attiqa_cmd


def read_until(fd: int, text: str, seen: bytearray, deadline: float) -> None:
    """Read ``fd`` into ``seen`` until ``text`` is in it (or the deadline)."""
    while text.encode() not in seen:
        ready, _, _ = select.select([fd], [], [], max(deadline - time.monotonic(), 0))
        assert ready, f"no {text!r} before the deadline: {seen[-3000:].decode(errors='replace')}"
        chunk = os.read(fd, 65536)
        assert chunk, f"output ended before {text!r}: {seen[-3000:].decode(errors='replace')}"
        seen += chunk


@pytest.mark.slow
@pytest.mark.serial(reason="a signal or kill timed against torchrun's processes")
def test_a_torchrun_label_job_lost_after_the_merge_says_the_table_is_whole(tmp_path, photos, tiny_dir):
    """`torchrun --nproc_per_node 2 -m attiqa.cli label DIR -t clip:FOLDER -o l.parquet`, rank 1 SIGKILLed
    once rank 0 had merged the table. **Was**: "label: another process of this torchrun job stopped (…) — the
    images labelled so far are kept (l.parquet.parts); rerun the same command to continue" — no parts are
    left, the table is whole. Now what is said is read from the disk: "l.parquet is whole (N images) —
    nothing to resume" (parts left: kept in them, rerun). The two processes are started as torchrun starts
    them (its environment, gloo) but without its agent, whose SIGTERM to the survivor races with the
    survivor's own line. No race on when the kill lands: rank 0's stderr is a pipe this test fills once rank 0
    logged its one progress line (one batch a rank), so rank 0 blocks at its next line, "labels: …", after
    the merge; rank 1 waits for it in a collective until it is killed."""
    import pyarrow.parquet as pq
    from dist_helpers import free_port, launch_env

    from attiqa.labeling import parts_dir

    folder = tmp_path / "photos"
    folder.mkdir()
    for i, (name, img) in enumerate(sorted(photos.items()) * 2):
        img.resize((48, 40)).rotate(9 * i).save(folder / f"{name}_{i:02d}.png")
    n = len(list(folder.iterdir()))
    out = tmp_path / "l.parquet"
    args = ("label", folder, "-t", f"clip:{tiny_dir}", "--device", "cpu", "--workers", "0", "-b", "64")
    cmd = attiqa_cmd(*args, "-o", out)
    where = {"WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port())}
    rd, wr = os.pipe()
    ranks = [
        subprocess.Popen(
            cmd,
            env=launch_env(**where, RANK=str(r), LOCAL_RANK=str(r)),
            stdout=subprocess.DEVNULL,
            stderr=wr if r == 0 else subprocess.DEVNULL,
        )  # fmt: skip
        for r in (0, 1)
    ]
    seen = bytearray()
    try:
        deadline = time.monotonic() + 300
        read_until(rd, f"labelling (clip:{tiny_dir}; rank 0 of 2: its share): ", seen, deadline)  # all of it
        read_until(rd, "\n", seen, deadline)
        fill(wr)  # rank 0's next line blocks: "labels: …", written after the merge
        while not out.exists():
            assert time.monotonic() < deadline and ranks[0].poll() is None, seen[-3000:].decode(
                errors="replace"
            )
            time.sleep(0.01)
        assert ranks[1].poll() is None, "rank 1 ended before rank 0 could say what it merged"
        ranks[1].kill()
    finally:
        os.close(wr)
        while chunk := os.read(rd, 65536):  # the filler, then what rank 0 said
            seen += chunk
        os.close(rd)
        for proc in ranks:
            if proc.wait(timeout=120) is None:
                proc.kill()
    said = seen.decode(errors="replace").replace("#", "")
    assert not parts_dir(out).exists() and pq.read_metadata(out).num_rows == n
    ours = [ln for ln in said.splitlines() if ln.startswith("error:")]
    if ranks[0].returncode == 0:  # rank 0 had passed its last collective before the kill: nothing lost
        assert not ours, said[-3000:]  # (a race of the full suite's load; the words: the test below)
        return
    assert ranks[0].returncode == 2, said[-3000:]
    assert len(ours) == 1 and ours[0].startswith(
        "error: label: another process of this torchrun job stopped "
    )
    assert ours[0].endswith(f"{out} is whole ({n} images) — nothing to resume"), said[-3000:]
    assert "Traceback" not in said


def test_what_a_stopped_label_run_kept_is_read_from_the_disk(tmp_path, photo_dir, cli):
    """The words of the torchrun test above on each state a stopped `label` leaves (one process makes it):
    part files (resume), the table with every image (nothing to resume), the table without some."""
    from attiqa.labeling import kept_words, parts_dir

    out = tmp_path / "l.parquet"
    paths = sorted(photo_dir.iterdir())
    assert kept_words(out, paths) == "no image was labelled yet; rerun the same command to label them"
    res = cli("label", paths[0], paths[1], "-o", out, "--workers", "0")
    assert res.returncode == 0, res.stderr
    assert kept_words(out, paths[:2]) == f"{out} is whole (2 images) — nothing to resume"
    left = len(paths) - 2
    assert (
        kept_words(out, paths)
        == f"{out} holds 2 image(s), {left} not yet; rerun the same command to " + "continue"
    )
    assert kept_words(out, None) == f"{out} holds 2 image(s); rerun the same command to label any left"
    pdir = parts_dir(out)
    pdir.mkdir()
    (pdir / "rank000-1-000000.parquet").write_bytes(out.read_bytes())  # a stopped run's part
    assert kept_words(out, paths) == (
        f"the 2 image(s) labelled so far are kept in {pdir}; rerun the same command to continue"
    )


def test_label_interrupted_says_what_it_kept(tmp_path, photo_dir):
    """Ctrl-C in `attiqa label` after its first batch was written. **Was**: a bare "interrupted" (the
    README says a rerun resumes, the command did not); now where the labels are and what to do."""
    from helpers import run_attiqa, signal_after

    from attiqa.labeling import parts_dir

    out = tmp_path / "labels.parquet"
    ctrl_c = signal_after(tmp_path, "replace", ".parquet", 1, "SIGINT", "attiqa.cli")
    stopped = run_attiqa("label", photo_dir, "-o", out, "--workers", "0", "--batch-size", "2", **ctrl_c)
    assert stopped.returncode == 130 and not out.exists(), stopped.stderr
    said = [ln for ln in stopped.stderr.splitlines() if ln.startswith("interrupted")]
    assert said == [
        f"interrupted: the 2 image(s) labelled so far are kept in {parts_dir(out)}; rerun the same "
        "command to continue"
    ], stopped.stderr


@pytest.mark.slow
@pytest.mark.serial(reason="two torchrun ranks need both cores")
def test_torchrun_label_and_train_refuse_a_bad_output_or_input_in_one_line(tmp_path, photo_dir):
    """`torchrun --nproc_per_node 2 -m attiqa.cli label DIR -o RO/l.parquet` (a read-only folder), `label DIR
    -o mos.csv` (not a label table), `train -c run.yaml` whose `finetune.csv` has no `image` column.
    **Was**: the one line printed by every process (2 here, N on N GPUs), as `score` and `eval` no longer
    did; now once, by rank 0 (the checks before the work are alike on every process), nothing written."""
    from helpers import run_attiqa, tiny_train_config

    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    bad_csv = tmp_path / "mos.csv"
    bad_csv.write_text("a,b\n1,2\n")
    cfg = tiny_train_config(tmp_path)
    env = {"OMP_NUM_THREADS": "1"}
    runs = {
        "read-only -o": (("label", photo_dir, "-o", ro / "l.parquet", "-w", "0"), True),
        "-o not a table": (("label", photo_dir, "-o", bad_csv, "-w", "0"), False),
        "bad finetune.csv": (("train", "-c", cfg, "--set", f"finetune.csv={bad_csv}"), False),
    }
    for what, (args, unprivileged) in runs.items():
        res = run_attiqa(*args, ranks=2, env=env, unprivileged=unprivileged)
        ours = res.stderr.split("torch/distributed/elastic")[0]
        errors = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
        assert res.returncode != 0 and len(errors) == 1, (what, res.stderr[-3000:])
        assert "Traceback" not in ours and "teacher:" not in ours, (what, ours)
    assert errors[0].startswith(f"error: {bad_csv}: missing column 'image'")
    assert list(ro.iterdir()) == [] and not (tmp_path / "run").exists()


@pytest.mark.slow
@pytest.mark.serial(reason="two torchrun ranks need both cores")
def test_a_torchrun_label_stopped_says_so_once_and_resumes_with_another_process_count(tmp_path, cli):
    """`torchrun --nproc_per_node 2 -m attiqa.cli label DIR -o l.parquet`, every process sent SIGTERM
    after its second part file (as torchrun's agent or a scheduler stops a job), then the same command with
    3 processes. **Was**: "interrupted" once per process and nothing on what was kept, and rank 0's bar
    counted its share against every image; now rank 0 alone says where the labels are and to rerun, its bar
    counts its share; the rerun with another process count labels only the rest, and the table holds every
    image once, as one process labels them."""
    import numpy as np
    import pyarrow.parquet as pq
    from helpers import run_attiqa, signal_after
    from PIL import Image

    from attiqa.labeling import parts_dir

    folder = tmp_path / "noise"
    folder.mkdir()
    for i in range(24):
        arr = np.random.default_rng(i).integers(0, 256, (40, 48, 3), dtype=np.uint8)
        Image.fromarray(arr).save(folder / f"n{i:02d}.png")
    out = tmp_path / "l.parquet"
    args = ("label", folder, "-o", out, "--workers", "0", "--batch-size", "2")
    stop = signal_after(tmp_path, "replace", ".parquet", 2, "SIGTERM", "attiqa.cli")
    stopped = run_attiqa(*args, ranks=2, **stop)
    assert stopped.returncode != 0 and not out.exists(), stopped.stderr[-3000:]
    said = [ln for ln in stopped.stderr.splitlines() if ln.startswith("interrupted")]
    assert len(said) == 1 and said[0].startswith("interrupted: the "), stopped.stderr[-3000:]
    kept = sum(pq.read_metadata(p).num_rows for p in parts_dir(out).glob("*.parquet"))
    assert 4 <= kept < 24 and said[0].endswith(
        f" image(s) labelled so far are kept in {parts_dir(out)}; rerun the same command to continue"
    )
    res = run_attiqa(*args, ranks=3, env={"OMP_NUM_THREADS": "1"})
    assert res.returncode == 0, res.stderr[-3000:]
    # rank 0's bar: its share (and the images kept), ending full — was "labelling (classical): 14/24" at its
    # end, its share counted against every image (read as 10 lost)
    bar = [ln for ln in res.stderr.splitlines() if ln.startswith("labelling (")]
    last = re.match(r"labelling \(classical; rank 0 of 3: its share\): (\d+)/(\d+) \(", bar[-1])
    assert last and last[1] == last[2] and int(last[2]) < 24, bar
    ref = tmp_path / "ref.parquet"
    assert cli("label", folder, "-o", ref, "--workers", "0").returncode == 0  # one process: this one
    table, want = pq.read_table(out).to_pylist(), pq.read_table(ref).to_pylist()
    assert [r["image"] for r in table] == [r["image"] for r in want]  # every image once, in one order
    for row, one in zip(table, want, strict=True):
        assert row == pytest.approx(one, abs=1e-5)
    assert not parts_dir(out).exists()


def test_a_label_rerun_with_nothing_new_leaves_no_parts_folder(tmp_path, photo_dir, cli):
    """`attiqa label DIR -o l.parquet` twice (DIR holds an unreadable file, tried again on each run).
    **Was**: the rerun left an empty `l.parquet.parts/` beside the table (made for parts, none written); now
    the folder is gone once the table is whole, as after a run that wrote parts."""
    from attiqa.labeling import parts_dir

    (photo_dir / "zero.png").write_bytes(b"")
    out = tmp_path / "l.parquet"
    for _ in range(2):
        res = cli("label", photo_dir, "-o", out, "--workers", "0")
        assert res.returncode == 0 and "zero.png" in res.stderr, res.stderr
        assert out.is_file() and not parts_dir(out).exists()
