"""`attiqa score` under real `torchrun --nproc_per_node 2` (gloo on CPU): each rank scores its share of the
images into its own journal, rank 0 writes one file in the input order — the same file one process writes,
resumable from any earlier run's journals whatever its number of processes."""

from __future__ import annotations

import csv
import json
import re
import subprocess
from pathlib import Path

import pytest
from helpers import run_attiqa

from attiqa.io.images import discover_images

pytestmark = pytest.mark.slow


def score(*args: object, ranks: int = 1) -> subprocess.CompletedProcess:
    return run_attiqa("score", *args, "-m", "classical", "--workers", "0", "--batch-size", "2", ranks=ranks)


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


def test_two_ranks_write_the_file_one_process_writes(images, tmp_path):
    one, two = tmp_path / "one.csv", tmp_path / "two.csv"
    assert score(images, "-o", one, "-q").returncode == 0
    res = score(images, "-o", two, ranks=2)
    assert res.returncode == 0, res.stderr[-3000:]
    assert rows(two) == rows(one) and len(rows(one)) == 1 + 9  # header + every readable image, input order
    assert res.stderr.count("skipped 1 file(s)") == 1 and "zero.png" in res.stderr  # rank 0 reports all
    assert res.stdout.count("9 image(s) scored") == 1  # one table, of both ranks' rows
    assert not list(tmp_path.glob(".two.csv.rank*")), "journals are removed once merged"

    doc = tmp_path / "two.json"
    assert score(images, "-o", doc, "-q", ranks=2).returncode == 0
    parsed = json.loads(doc.read_text())
    assert [r["image"] for r in parsed["results"]] == [r[0] for r in rows(one)[1:]]
    assert [Path(f["image"]).name for f in parsed["failed"]] == ["zero.png"]


def test_resumes_from_journals_of_an_earlier_run_with_another_world_size(images, tmp_path):
    ref = tmp_path / "ref.csv"
    assert score(images, "-o", ref, "-q").returncode == 0
    header, *done = rows(ref)
    out = tmp_path / "scores.csv"
    # an earlier run of 4 processes left rank 3's journal: two finished rows (marked by a score no real
    # image gets) and the half-written line of the kill
    kept = [[done[6][0], *["0.5"] * (len(header) - 1)], [done[1][0], *["0.25"] * (len(header) - 1)]]
    journal = tmp_path / ".scores.csv.rank3.partial.csv"
    with journal.open("w", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows([header, *kept])
        fh.write(done[2][0] + ",0.1")
    res = score(images, "-o", out, ranks=2)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "resuming: 2 image(s) already" in res.stderr
    got = rows(out)
    earlier = {r[0]: r for r in kept}
    assert got == [header, *(earlier.get(r[0], r) for r in done)]  # earlier rows kept, not scored again
    assert not journal.exists()


def test_torchrun_without_out_is_one_line(images):
    res = score(images, ranks=2)
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    assert res.returncode != 0 and lines and all("give --out" in ln for ln in lines)
    # torchrun prints its own traceback (ChildFailedError); none comes from our code
    assert not re.search(r'File "[^"]*/attiqa/', res.stderr)
