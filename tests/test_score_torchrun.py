"""`attiqa score` under real `torchrun --nproc_per_node 2` (gloo on CPU): each rank scores its share of the
images into its own journal, rank 0 writes one file in the input order — the same file one process writes,
resumable from any earlier run's journals whatever its number of processes."""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import photo_folder
from helpers import holding, run_attiqa

from attiqa.io.images import discover_images

pytestmark = pytest.mark.slow


OPTIONS = ("-m", "classical", "--workers", "0", "--batch-size", "2")


def score(*args: object) -> subprocess.CompletedProcess:
    """``attiqa score ARGS`` under torchrun, 2 processes (one process: the ``cli`` fixture, in this one)."""
    return run_attiqa("score", *args, *OPTIONS, ranks=2)


def rows(path: Path) -> list[list[str]]:
    with path.open(newline="") as fh:
        return list(csv.reader(fh))


@pytest.fixture()
def images(photo_dir: Path) -> Path:
    """Nine photos (the five and four copies) and one zero-byte file."""
    for i, p in enumerate(discover_images([photo_dir])[:4]):
        (photo_dir / f"copy{i}{p.suffix}").write_bytes(p.read_bytes())
    (photo_dir / "zero.png").write_bytes(b"")
    return photo_dir


@pytest.mark.serial(reason="two torchrun ranks need both cores")
def test_two_ranks_write_the_file_one_process_writes(images, tmp_path, cli):
    one, two = tmp_path / "one.csv", tmp_path / "two.csv"
    assert cli("score", images, *OPTIONS, "-o", one, "-q").returncode == 0
    lock = tmp_path / ".two.csv.lock"
    lock.touch()  # a killed run's lock file: nobody holds it
    res = score(images, "-o", two)
    assert res.returncode == 0, res.stderr[-3000:]
    assert rows(two) == rows(one) and len(rows(one)) == 1 + 9  # header + every readable image, input order
    assert res.stderr.count("skipped 1 file(s)") == 1 and "zero.png" in res.stderr  # rank 0 reports all
    assert res.stdout.count("9 image(s) scored") == 1  # one table, of both ranks' rows
    assert not list(tmp_path.glob(".two.csv.rank*")), "journals are removed once merged"
    assert not lock.exists()  # taken over by rank 0, the writer (the other rank neither waited nor was
    # refused), and removed as it let go once the file was merged

    doc = tmp_path / "two.json"
    assert score(images, "-o", doc, "-q").returncode == 0
    parsed = json.loads(doc.read_text())
    assert [r["image"] for r in parsed["results"]] == [r[0] for r in rows(one)[1:]]
    assert [Path(f["image"]).name for f in parsed["failed"]] == ["zero.png"]
    assert not (tmp_path / ".two.json.lock").exists()


@pytest.mark.serial(reason="two torchrun ranks need both cores")
def test_resumes_from_journals_of_an_earlier_run_with_another_world_size(images, tmp_path, cli):
    ref = tmp_path / "ref.csv"
    assert cli("score", images, *OPTIONS, "-o", ref, "-q").returncode == 0
    header, *done = rows(ref)
    out = tmp_path / "scores.csv"
    # an earlier run of 4 processes left rank 3's journal: two finished rows (marked by a score no real
    # image gets) and the half-written line of the kill
    kept = [[done[6][0], *["0.5"] * (len(header) - 1)], [done[1][0], *["0.25"] * (len(header) - 1)]]
    journal = tmp_path / ".scores.csv.rank3.partial.csv"
    with journal.open("w", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows([header, *kept])
        fh.write(done[2][0] + ",0.1")
    res = score(images, "-o", out)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "resuming: 2 image(s) already" in res.stderr
    got = rows(out)
    earlier = {r[0]: r for r in kept}
    assert got == [header, *(earlier.get(r[0], r) for r in done)]  # earlier rows kept, not scored again
    assert not journal.exists()


@pytest.mark.serial(reason="two torchrun ranks need both cores")
def test_torchrun_without_out_is_one_line(images):
    res = score(images)
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    assert res.returncode != 0 and lines and all("give --out" in ln for ln in lines)
    # torchrun prints its own traceback (ChildFailedError); none comes from our code
    assert not re.search(r'File "[^"]*/attiqa/', res.stderr)


# rank 1 dies (a real SIGKILL: out of memory, a node lost) as it starts its share; rank 0 scores its own and
# meets the loss at the gather that follows
DIES_AT_ITS_SHARE = """
import os, signal
import attiqa.sharding as sharding
from attiqa.cli import main

real = sharding.score_share

def dies(shards, *args, **kwargs):
    if shards.rank == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    return real(shards, *args, **kwargs)

sharding.score_share = dies
main()
"""


@pytest.mark.serial(reason="a signal or kill timed against torchrun's processes")
def test_a_peer_lost_before_the_gather_is_one_line_without_torchruns_agent(images, tmp_path, cli):
    """Two processes started as a cluster launcher starts them (srun, a Kubernetes job: the env of each
    rank, no torchrun agent to stop the survivor), rank 1 killed; rank 0 scores its share, then waits at the
    gather. **Was**: gloo's RuntimeError ("Connection closed by peer … GLHF!") as a 40-line traceback from
    `Shards.gather`; now one line saying to rerun (`attiqa.sharding`'s collectives raise `PeerLost`, as
    training's did), and the rerun in one process completes the file."""
    import socket

    from helpers import attiqa_cmd, attiqa_env

    script = tmp_path / "dies.py"
    script.write_text(DIES_AT_ITS_SHARE)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    out = tmp_path / "s.csv"
    cmd = attiqa_cmd(
        "score", images, "-m", "classical", "--workers", "0", "-b", "2", "-o", out, script=script
    )
    procs = [
        subprocess.Popen(
            cmd,
            env=attiqa_env(
                {
                    "OMP_NUM_THREADS": "1",
                    "WORLD_SIZE": "2",
                    "RANK": str(r),
                    "LOCAL_RANK": str(r),
                    "MASTER_ADDR": "127.0.0.1",
                    "MASTER_PORT": port,
                }
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for r in (0, 1)
    ]
    said = [p.communicate(timeout=300) for p in procs]
    assert procs[1].returncode == -9
    err = said[0][1]
    assert procs[0].returncode == 2 and "Traceback" not in err, err[-3000:]
    errors = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: another process of this torchrun job stopped ")
    assert errors[0].endswith(" — rerun the same command to continue"), errors
    res = cli("score", images, *OPTIONS, "-o", out, "-q")
    assert res.returncode == 0, res.stderr[-3000:]
    ref = tmp_path / "ref.csv"
    assert cli("score", images, *OPTIONS, "-o", ref, "-q").returncode == 0
    (head, *got), (head_ref, *want) = rows(out), rows(ref)
    assert head == head_ref and sorted(got) == sorted(want)  # every image once (resumed rows first)


@pytest.mark.serial(reason="two torchrun ranks need both cores")
def test_a_torchrun_score_into_a_held_out_is_one_line_said_once(photo_dir, tmp_path):
    """Under torchrun the held --out is told by rank 0's probe once the process group has started, once, as
    the job's line (one helper with one process's probe in its checks); nothing is written."""
    out = tmp_path / "s.csv"
    first = holding(out, "resumed_output_held(T, Command.SCORE)")
    try:
        res = score(photo_dir, "-o", out)
    finally:
        first.communicate(b"", timeout=60)
    busy = "another process is writing it now (the same command still running?) — let it finish "
    busy += "(rerunning it then resumes what it left), or choose another --out"
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    assert res.returncode != 0 and errors == [f"error: {out}: {busy}"], res.stderr[-3000:]
    assert not out.exists() and not list(tmp_path.glob(".s.csv.rank*"))


@pytest.mark.serial(reason="two torchrun ranks need both cores")
def test_torchrun_score_scores_a_replaced_photo_again(tmp_path, photos, cli):
    """Under real `torchrun --nproc_per_node 2` (gloo): rank 0 drops the replaced photo's row before any
    rank reads the file, the ranks record their rows' identities beside it, folded once merged; the line is
    said once."""
    src = photo_folder(tmp_path / "photos", photos, n=3)
    other = photo_folder(tmp_path / "other", photos, n=4) / "rocket.png"
    out = tmp_path / "s.csv"
    args = ("score", src, "-m", "classical", "-o", out, "-w", "0", "-q")
    assert run_attiqa(*args, ranks=2).returncode == 0
    assert not list(tmp_path.glob(".s.csv.rank*")) and (tmp_path / ".s.csv.files").is_file()
    fresh = tmp_path / "fresh.csv"
    assert cli("score", other, "-m", "classical", "-o", fresh, "-w", "0", "-q").returncode == 0
    shutil.copyfile(other, src / "astronaut.png")  # replaced in place
    res = run_attiqa(*args, ranks=2)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stderr.count("1 photo changed since the earlier run: scored again") == 1
    after = {r[0]: r[1:] for r in rows(out)[1:]}
    assert len(after) == 3 and after[str(src / "astronaut.png")] == rows(fresh)[1][1:]
    assert "changed" not in cli(*args).stderr  # one process after torchrun: the ranks' record is read
