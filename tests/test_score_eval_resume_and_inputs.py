"""`attiqa score` and `attiqa eval` (docs/robustness.md): run as a user runs them on real photos
(scikit-image's) and small generated fixtures. Each test failed before its fix."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from helpers import attiqa_cmd, attiqa_env, rank_pid, run_attiqa, tiny_attiqa_checkpoint

from attiqa.io.images import discover_images


def _rows(path: Path) -> list[list[str]]:
    with path.open(newline="") as fh:
        return list(csv.reader(fh))


def _journal(path: Path, header: list[str], rows: list[list[str]], cut: str = "") -> None:
    """A rank's journal as a killed `torchrun … score` leaves it: finished rows, and ``cut``, the
    half-written line of the kill."""
    with path.open("w", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows([header, *rows])
        fh.write(cut)


def test_one_process_resumes_the_journals_of_a_stopped_torchrun_run(photo_dir, tmp_path, cli):
    """**Was**: `torchrun … attiqa score DIR -o s.csv` stopped (a rank killed), then `attiqa score DIR -o
    s.csv` in one process (no GPUs free, or a laptop): the ranks' journals were not read — every finished
    image scored again, the journals left beside the file for good — and with another model the journals'
    rows were not even compared. Now their rows are taken into the file, the journals removed, and a
    journal of another model is refused as a file of one is — said without "(crops None)" for a scorer
    that has no crops."""
    ref = tmp_path / "ref.csv"
    assert cli("score", photo_dir, "-m", "classical", "-o", ref, "-q").returncode == 0
    header, *done = _rows(ref)
    assert len(done) == 5
    out = tmp_path / "s.csv"
    # rank 0 finished two images, rank 1 one (and was cut mid-line); marked by scores no photo gets
    mark = [[done[0][0], *["0.5"] * 6], [done[2][0], *["0.25"] * 6], [done[1][0], *["0.125"] * 6]]
    _journal(tmp_path / ".s.csv.rank0.partial.csv", header, mark[:2])
    _journal(tmp_path / ".s.csv.rank1.partial.csv", header, mark[2:], cut=done[3][0] + ",0.1")
    (tmp_path / ".s.csv.scorer.json").write_text((tmp_path / ".ref.csv.scorer.json").read_text())

    other = cli("score", photo_dir, "-m", "attiqa-default", "--crops", "center", "-o", out, "-q")
    assert other.returncode == 2 and not out.exists()
    assert f"error: {out}: holds scores of classical, not of attiqa-default (crops center)" in " ".join(
        other.stderr.split()
    )

    res = cli("score", photo_dir, "-m", "classical", "-o", out)
    assert res.returncode == 0, res.stderr
    assert f"resuming: 3 image(s) already in {out}, 2 to score" in " ".join(res.stderr.split())
    got = _rows(out)
    assert got[0] == header and sorted(got[1:]) == sorted([*mark, done[3], done[4]])  # each image once
    assert not list(tmp_path.glob(".s.csv.rank*"))

    # a JSON output the same way: the earlier rows in the document
    doc = tmp_path / "s.json"
    _journal(tmp_path / ".s.json.rank1.partial.csv", header, mark[:1])
    assert cli("score", photo_dir, "-m", "classical", "-o", doc, "-q").returncode == 0
    results = json.loads(doc.read_text())["results"]
    assert sorted(r["image"] for r in results) == sorted(r[0] for r in done)
    assert next(r for r in results if r["image"] == done[0][0])["score"] == 0.5
    assert not list(tmp_path.glob(".s.json.*partial.csv"))


@pytest.mark.slow
@pytest.mark.serial(reason="two torchrun ranks need both cores")
def test_torchrun_resumes_a_stopped_one_process_json_run(photo_dir, tmp_path, cli):
    """**Was**: `attiqa score DIR -o s.json` stopped, then the same under `torchrun --nproc_per_node 2`: the
    one-process run's journal (`.s.json.partial.csv`) was not read — its images scored again, the journal
    left behind. Now the ranks skip them and rank 0 writes them into the document, in the input order. And
    its progress bar, of its own share, says so."""
    ref = tmp_path / "ref.csv"
    assert cli("score", photo_dir, "-m", "classical", "-o", ref, "-q").returncode == 0
    header, *done = _rows(ref)
    doc = tmp_path / "s.json"
    _journal(tmp_path / ".s.json.partial.csv", header, [[done[3][0], *["0.5"] * 6]], cut=done[0][0])
    res = run_attiqa("score", photo_dir, "-m", "classical", "--workers", "0", "-o", doc, ranks=2)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "resuming: 1 image(s) already in" in res.stderr
    # **was** "scoring: 2/2" after "4 to score" (rank 0's share, read as images lost); now said, and (session
    # 57) its share of the kept image in the count from the first frame: 1 kept + 2 of the 4 left
    bars = [" ".join(ln.split()) for ln in res.stderr.splitlines() if ln.startswith("scoring")]
    assert bars and all(ln.startswith("scoring (rank 0 of 2: its share): ") for ln in bars), bars
    assert bars[0].endswith(": 1/3 (none done now, 1 kept from an earlier run)"), bars
    assert bars[-1].startswith("scoring (rank 0 of 2: its share): 3/3 (")
    results = json.loads(doc.read_text())["results"]
    assert [r["image"] for r in results] == [r[0] for r in done]  # the input order, each image once
    assert results[3]["score"] == 0.5
    assert not list(tmp_path.glob(".s.json.*partial.csv"))


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="finds a rank's process in /proc")
@pytest.mark.serial(reason="a signal or kill timed against torchrun's processes")
@pytest.mark.timeout(900)  # the in-process rerun: a hang fails, as a subprocess did
def test_a_rank_killed_under_torchrun_then_one_process_scores_the_rest(photos, tmp_path, cli):
    """SIGKILL to one of the 2 processes of `torchrun … attiqa score DIR -o s.csv` (a rank out of memory,
    a node lost), then the same command in one process: the killed rank's finished rows and the other's
    are kept, the rest scored, every image once, the file equal to one process's run."""
    folder = tmp_path / "photos"
    folder.mkdir()
    base = list(photos.values())
    for i in range(40):
        base[i % len(base)].resize((160, 160)).rotate(9 * i).save(folder / f"img{i:02d}.png")
    ckpt = tiny_attiqa_checkpoint(tmp_path)
    out = tmp_path / "s.csv"
    args = ("score", folder, "-m", ckpt, "--crops", "center", "--workers", "0", "-b", "1", "-o", out)
    env = attiqa_env({"OMP_NUM_THREADS": "1"})
    journal = tmp_path / ".s.csv.rank1.partial.csv"
    pipe = subprocess.PIPE
    proc = subprocess.Popen(attiqa_cmd(*args, ranks=2), env=env, stdout=pipe, stderr=pipe)
    deadline = time.monotonic() + 300
    victim = None
    while time.monotonic() < deadline and proc.poll() is None:
        if journal.exists() and journal.read_bytes().count(b"\n") >= 4:  # header + 3 rows
            victim = rank_pid(proc, 1)
            break
        time.sleep(0.02)
    assert victim is not None, "rank 1 finished (or never started) before it could be killed"
    os.kill(victim, signal.SIGKILL)
    proc.communicate(timeout=120)
    assert proc.returncode != 0 and not out.exists()
    kept = {r[0] for j in tmp_path.glob(".s.csv.rank*.partial.csv") for r in _rows(j)[1:] if len(r) == 7}
    assert len(kept) >= 3

    res = cli(*args)  # one process: this one
    assert res.returncode == 0, res.stderr[-3000:]
    said = " ".join(res.stderr.split())
    assert f"resuming: {len(kept)} image(s) already in {out}, {40 - len(kept)} to score" in said
    fresh = tmp_path / "fresh.csv"
    assert cli(*args[:-1], fresh).returncode == 0
    header, *rows = _rows(out)
    assert header == _rows(fresh)[0] and len(rows) == 40
    assert sorted(r[0] for r in rows) == [str(p) for p in discover_images([folder])]
    ref = {r[0]: r for r in _rows(fresh)[1:]}
    for r in rows:  # a share is batched otherwise than the whole list: float rounding, 6 digits printed
        assert [float(v) for v in r[1:]] == pytest.approx([float(v) for v in ref[r[0]][1:]], abs=1e-3)
    assert not list(tmp_path.glob(".s.csv.rank*"))


def test_eval_says_what_is_wrong_with_an_image_as_score_does(photos, tmp_path):
    """**Was**: `attiqa eval folder` on a table listing a photo without read permission, a link pointing
    at itself and an iPhone HEIC said "unreadable (PermissionError: [Errno 13] Permission denied: '…')",
    "cannot stat (Too many levels of symbolic links)" and "not a recognised image format" — where `attiqa
    score` names each with its fix; and with --skip-missing only their count ("3 missing/unreadable image(s)
    skipped (missing='skip')"), not which. Now the check says what the loader says
    (`attiqa.io.images.header_problem`), and --skip-missing lists the images it left out."""
    root = tmp_path / "set"
    root.mkdir()
    for name, img in list(photos.items())[:3]:
        img.resize((64, 64)).save(root / f"{name}.png")
    (root / "locked.png").write_bytes((root / "coffee.png").read_bytes())
    (root / "locked.png").chmod(0)
    (root / "loop.jpg").symlink_to("loop.jpg")
    (root / "phone.heic").write_bytes(b"\0\0\0\x18ftypheic\0\0\0\0mif1heic")
    names = [*(f"{n}.png" for n in list(photos)[:3]), "locked.png", "loop.jpg", "phone.heic"]
    (root / "mos.csv").write_text("image,mos\n" + "".join(f"{n},{i}\n" for i, n in enumerate(names)))
    said = {
        "locked.png": "permission denied — give yourself read permission (chmod u+r on the file, u+rx on its "
        "folders) or leave it out",
        "loop.jpg": "symlink loop (the link points back to itself) — point the link at the real file",
        "phone.heic": "a HEIC / HEIF image, which this installation cannot decode — convert it to JPEG",
    }
    args = ("eval", "folder", "--root", root, "-m", "classical", "--no-cache", "-q", "-o", tmp_path / "ev")
    res = run_attiqa(*args, unprivileged=True)
    assert res.returncode == 2, res.stderr
    text = " ".join(res.stderr.split())
    assert "3 of 6 images are missing or unreadable" in text
    assert all(f"{root / name}: {words}" in text for name, words in said.items()), text

    res = run_attiqa(*args, "--skip-missing", unprivileged=True)
    assert res.returncode == 0, res.stderr
    text = " ".join(res.stderr.split())
    assert "3 missing or unreadable image(s) left out of the metrics" in text
    assert "left out (--skip-missing): " in text
    assert all(f"{root / name}: {words}" in text for name, words in said.items()), text


def test_a_training_state_passed_as_the_model_names_the_checkpoint_beside_it(tmp_path, cli):
    """**Was**: `attiqa score photo.png -m RUN/finetune/last.state.safetensors` (the largest file of a run,
    which a user may pick as "the model") said "checkpoint has no ATTIQA model card — was it written by
    attiqa?" — it was. Now it says what the file is and names the checkpoint beside it, as a `.json` card
    passed for the model does (`score`, `eval`, `export`)."""
    from helpers import tiny_train_config

    cfg = tiny_train_config(tmp_path)
    assert cli("train", "-c", cfg).returncode == 0
    state = tmp_path / "run" / "finetune" / "last.state.safetensors"
    assert state.is_file()
    photo = tmp_path / "set" / "images" / "img00.png"
    said = (
        f"error: {state}: a training state (what `attiqa train --resume` continues from), not a model — pass "
        f"the checkpoint beside it, {state.with_name('last.safetensors')}"
    )
    for args in (
        ("score", photo, "-m", state),
        ("eval", "folder", "--root", tmp_path / "set", "-m", state, "-o", tmp_path / "ev"),
        ("export", state, tmp_path / "copy.safetensors"),
    ):
        res = cli(*args)
        assert res.returncode == 2 and said in " ".join(res.stderr.split()), res.stderr
    assert cli("score", photo, "-m", state.with_name("last.safetensors"), "-q").returncode == 0


def test_a_photo_named_twice_is_scored_once(photo_dir, tmp_path, cli, monkeypatch):
    """**Was**: `attiqa score photos photos/astronaut.jpg /abs/…/photos/astronaut.jpg
    photos/sub/../astronaut.jpg` (a folder and a photo of it, or the same photo by another path) scored the
    photo four times: as many rows of it in `-o`, each counted in "N image(s) scored". Now once, as first
    found."""
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "s.csv"
    spellings = ["photos/astronaut.jpg", str(photo_dir / "astronaut.jpg"), "photos/sub/../astronaut.jpg"]
    res = cli("score", "photos", *spellings, "-m", "classical", "-o", out)
    assert res.returncode == 0, res.stderr
    images = [r[0] for r in _rows(out)[1:]]
    assert len(images) == 5 and "photos/astronaut.jpg" in images
    assert "5 image(s) scored" in res.stdout
    # a link to a photo is a name of its own: kept
    (photo_dir / "link.jpg").symlink_to("astronaut.jpg")
    assert len(discover_images([photo_dir, photo_dir / "astronaut.jpg"])) == 6


def test_a_cards_large_crops_make_smaller_batches(photo_dir, tmp_path):
    """**Was**: a checkpoint whose card says 1024-px test crops (within the card check's 32..4096) was
    scored 16 images a call as a 320-px one: 16 five-crop views of 1024 px are a 1 GB batch, of 4096 px
    16 GB (peak RSS 5.1 GB for 80 clive-dev photos at 1024 px). Now `--batch-size` counts images of the
    paper's five 320-px crops and larger views come proportionally fewer a call (1.6 GB); the shipped
    models' batches are as they were."""
    import torch

    from attiqa.models import AttiqaModel, create_backbone, save_model
    from attiqa.scorers import load_scorer
    from attiqa.scoring import score_batches

    torch.manual_seed(0)
    sizes = {"test_resize_shorter": 1024, "test_crop": 1024}
    model = AttiqaModel(create_backbone("tiny"), head_hidden=8, mos_hidden=8, input_sizes=sizes)
    model.set_mos_range(0.0, 100.0)
    big = save_model(model, tmp_path / "big.safetensors", card={"name": "big"})
    photos = discover_images([photo_dir])[:3]
    five = [
        len(b.indices) for b in score_batches(photos, load_scorer(str(big)), batch_size=16, num_workers=0)
    ]
    assert five == [1, 1, 1]  # 16 * 5 * 320² // (5 * 1024²)
    center = load_scorer(str(big), crops="center")
    assert [len(b.indices) for b in score_batches(photos, center, 16, 0)] == [3]  # 16 * 5 * 320² // 1024²: 7
    shipped = load_scorer("attiqa-default", crops="center")
    assert [len(b.indices) for b in score_batches(photos * 6, shipped, 16, 0)] == [16, 2]


def test_eval_of_a_model_without_mos_writes_no_empty_scatter(tmp_path, cli):
    """**Was**: `attiqa eval folder -m pretrain/last.safetensors` (a pretrain-only checkpoint: no MOS head,
    the warning says so) wrote scatter.png as empty axes from -0.04 to 0.04 with "SROCC nan" — no picture a
    person can check — and said "wrote OUT/ (predictions.csv, summary.json, scatter.png)". Now no plot is
    written (an earlier run's is removed: it is not of these numbers) and the line says so."""
    import torch
    from helpers import tiny_train_config

    from attiqa.models import AttiqaModel, create_backbone, save_model

    tiny_train_config(tmp_path)  # the 8-image folder dataset
    torch.manual_seed(0)
    pre = save_model(AttiqaModel(create_backbone("tiny"), head_hidden=8), tmp_path / "pre.safetensors", {})
    out = tmp_path / "ev"
    out.mkdir()
    (out / "scatter.png").write_bytes(b"an earlier run's plot")
    res = cli("eval", "folder", "--root", tmp_path / "set", "-m", pre, "--no-cache", "-q", "-o", out)
    assert res.returncode == 0, res.stderr
    said = " ".join(res.stderr.split())
    assert f"wrote {out}/ (predictions.csv, summary.json)" in said and "is NaN for every image" in said
    assert not (out / "scatter.png").exists()
    assert "scatter" not in json.loads((out / "summary.json").read_text())["files"]


@pytest.mark.slow
@pytest.mark.serial(reason="two torchrun ranks need both cores")
def test_under_torchrun_a_refusal_is_said_once(photo_dir, tmp_path, cli):
    """**Was**: under `torchrun --nproc_per_node 2`, `attiqa score DIR -o s.csv` on a file of another model,
    `-m` a mistyped checkpoint, and `attiqa eval folder` on a table listing a missing photo printed each
    refusal once per process (twice here, 8 times on 8 GPUs). Now once: the checks every process makes
    alike on the same files are said by rank 0 (`attiqa.sharding.alike_on_every_process`)."""
    out = tmp_path / "s.csv"
    assert cli("score", photo_dir, "-m", "classical", "-o", out, "-q").returncode == 0
    root = tmp_path / "set"
    root.mkdir()
    (root / "a.png").write_bytes((photo_dir / "sub" / "coffee.png").read_bytes())
    (root / "mos.csv").write_text("image,mos\na.png,1\ngone.png,2\n")
    for args, said in (
        (("score", photo_dir, "-m", "attiqa-default", "-o", out), f"{out}: holds scores of classical"),
        (("score", photo_dir, "-m", tmp_path / "typo.safetensors", "-o", out), "checkpoint not found"),
        (("eval", "folder", "--root", root, "-m", "classical", "-o", tmp_path / "ev"), "1 of 2 images are"),
    ):
        res = run_attiqa(*args, "-q", ranks=2)
        assert res.returncode != 0
        errors = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
        assert len(errors) == 1 and said in errors[0], res.stderr[-3000:]


def test_eval_resumed_from_the_cache_says_so_before_its_bar(tmp_path, cli, monkeypatch):
    """**Was**: `attiqa eval` rerun after a Ctrl-C (or after a subset was evaluated) drew "scoring: 5/5"
    with no word of the 3 images found in the score cache until its last line ("5 scored, 3 from cache");
    `attiqa score` says "resuming: N image(s) already in FILE, M to score" first. Now `eval` too."""
    from helpers import eval_resumed_from_the_cache

    monkeypatch.setenv("ATTIQA_CACHE", str(tmp_path / "cache"))
    # -w 0: decoded in this process, as when torch takes every core
    # (with a worker: test_eval_bar_cached_images.py)
    lines = eval_resumed_from_the_cache(tmp_path, cli, "0")
    first = next(i for i, ln in enumerate(lines) if ln.startswith("scoring"))
    assert lines[first - 1] == "resuming: 3 image(s) already in the score cache, 5 to score", lines
    assert lines[first].startswith("scoring: 3/8 (") and "5 scored, 3 from cache" in " ".join(lines)
