"""genbench: the agreement interval on a handful of pairs, the rater id of a second tab, and the AGIQA-3k pair
sheet's labels (docs/robustness.md)."""

from __future__ import annotations

import csv
import sqlite3
from pathlib import Path

import pytest
from genbench_helpers import copied_run, make_photo_run

from genbench.manifest import load_pairs


def _prefs(path: Path, votes: list[tuple[str, str]]) -> Path:
    with open(path, "w", newline="") as fh:
        csv.writer(fh).writerows([("pair_id", "rater", "choice"), *((p, "r1", c) for p, c in votes)])
    return path


def test_agree_on_three_pairs_all_right_gives_no_certain_interval(tmp_path, scored_photo_run, genbench_cli):
    """**Was**: three votes the metric got right gave "100.0% (100.0% – 100.0%)" — the percentile bootstrap of
    three equal credits has nothing to resample, a certainty three votes do not give. Now the interval is at
    least the pairs' Wilson score interval: 43.9 – 100 % for 3 of 3."""
    run = copied_run(scored_photo_run, tmp_path / "run")
    from genbench.manifest import read_records

    sharp = {r["pair_id"]: r["sharp"] for r in read_records(run)}  # people pick the sharp photo
    prefs = _prefs(tmp_path / "prefs.csv", list(sharp.items())[:3])
    r = genbench_cli("agree", run, "--prefs", prefs, "-m", "classical")
    assert r.returncode == 0, r.stderr
    with open(run / "agreement" / "agreement.csv", newline="") as fh:
        (row,) = csv.DictReader(fh)
    assert row["pairs"] == "3" and float(row["accuracy"]) == 1.0  # classical prefers the sharp photo
    assert abs(float(row["ci_low"]) - 0.4385) < 0.001 and float(row["ci_high"]) == 1.0
    assert "43.9%" in r.stdout and "100.0%" in r.stdout


def test_a_raters_repeated_vote_in_a_csv_counts_once(tmp_path, photos, scored_photo_run, genbench_cli):
    """**Was**: a preferences CSV holding a rater's vote on a pair twice (two `export-votes` files
    concatenated; a row pasted twice) counted both — r1's two votes for a outvoted r2's one for b, a tie
    read as a preference for a, and "3 votes on 2 pairs". Now a named rater's later votes on a pair are
    left out and said (the first counts, as `genbench vote` records a rater's first vote only); votes
    without a rater (an import's) are all kept. Also: a rater who voted on some pairs only counts there."""
    run = copied_run(scored_photo_run, tmp_path / "run")
    ids = [p for p, _ in sorted(photos.items())][:3]
    votes = [(ids[0], "r1", "a"), (ids[1], "r1", "b"), (ids[0], "r2", "b"), (ids[0], "r1", "a")]
    votes += [(ids[2], "", "a"), (ids[2], "", "a")]  # anonymous: two people
    prefs = tmp_path / "prefs.csv"
    with open(prefs, "w", newline="") as fh:
        csv.writer(fh).writerows([("pair_id", "rater", "choice"), *votes])
    r = genbench_cli("agree", run, "--prefs", prefs, "-m", "classical", "--bootstrap", "200")
    assert r.returncode == 0, r.stderr
    said = " ".join((r.stderr + r.stdout).split())  # the preferences' lines on stderr, the table on stdout
    assert "(5 votes on 3 pairs)" in said
    assert (
        f"1 repeated vote of a rater on a pair they voted on before left out — the first counts, as in "
        f"genbench vote (e.g. rater r1 on pair {ids[0]})" in said
    )
    with open(run / "agreement" / "per_pair.csv", newline="") as fh:
        per_pair = {row["pair_id"]: row for row in csv.DictReader(fh)}
    assert (per_pair[ids[0]]["votes_a"], per_pair[ids[0]]["votes_b"], per_pair[ids[0]]["human"]) == (
        "1",
        "1",
        "tie",
    )
    assert (per_pair[ids[2]]["votes_a"], per_pair[ids[1]]["votes_b"]) == ("2", "1")
    assert "1 tied (skipped)" in said


def _square_agiqa3k(root: Path, photos: dict) -> Path:
    """An AGIQA-3k folder of real photos cut square (AGIQA-3k's images are square): 2 prompts x 4 images,
    MOS within AGIQA-3k's 0-5 scale (import-agiqa3k refuses others)."""
    from PIL import Image

    images = root / "AGIQA-3K"
    images.mkdir(parents=True)
    head = ["name", "prompt", "adj1", "adj2", "style", "mos_quality", "std_quality", "mos_align", "std_align"]
    rows = [head]
    for i, img in enumerate(list(photos.values())[:4] * 2):
        side = min(img.size)
        name = f"sd1.5_normal_{i:03d}.png"
        img.crop((0, 0, side, side)).resize((256, 256), Image.BICUBIC).save(images / name)
        prompt = "a cosmic universe" if i % 2 else "man lost in space"
        rows.append([name, prompt, "", "", "", f"{0.5 + i * 0.6:.1f}", "0.5", "2.0", "0.5"])
    with open(root / "data.csv", "w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    return root


def test_the_pair_sheet_labels_do_not_run_into_each_other(tmp_path, photos, genbench_cli):
    """**Was** (experiments/agiqa3k/pair_sheet.py on agiqa3k-dev, the sheet looked at): each pair's
    "agreed: “prompt”" title was drawn over the "MOS 2.71  metric 0.54" line of the pair above it — square
    images in cells of 4.6 x 2.55 inches left the titles no room. Now no text of the sheet overlaps another
    or an image (measured on the drawn figure)."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments" / "agiqa3k"))
    import pair_sheet

    run = tmp_path / "run"
    root = _square_agiqa3k(tmp_path / "agiqa", photos)
    steps = [("import-agiqa3k", root, "-o", run), ("score", run, "-m", "classical", "-w", "0")]
    for cmd in (*steps, ("agree", run, "--bootstrap", "100")):
        assert genbench_cli(*cmd).returncode == 0
    manifest = {r["pair_id"]: r for r in pair_sheet.read_records(run)}
    with open(run / "agreement" / "per_pair.csv", newline="", encoding="utf-8") as fh:
        rows = [{**manifest[r["pair_id"]], **r} for r in csv.DictReader(fh)]
    chosen = rows[:8]
    fig = pair_sheet.sheet_figure(run, chosen, "classical", "counts")
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    boxes = [("title", -1, fig._suptitle.get_window_extent(renderer))]  # noqa: SLF001 - (what, owner, box)
    for k, ax in enumerate(fig.axes):
        boxes.append(("image", k, ax.get_window_extent(renderer)))
        for what in (ax.title, ax._left_title, ax.xaxis.label):  # noqa: SLF001 - the left title's artist
            if what.get_text():
                boxes.append((what.get_text().split("\n")[0], k, what.get_window_extent(renderer)))
    clashes = [
        (a[0], b[0])
        for i, a in enumerate(boxes)
        for b in boxes[i + 1 :]
        if a[1] != b[1] and a[2].overlaps(b[2])
    ]
    assert clashes == []


@pytest.mark.slow  # two runs scored and agreed in subprocesses: ~25 s on a loaded 2-core machine
def test_the_pair_sheet_of_a_run_it_cannot_draw_is_one_line(tmp_path, photos, genbench_cli):
    """**Was**: `pair_sheet.py RUN --metric clasical` (a typo) drew an empty sheet and exited 0; on a
    generated run (no human MOS) it ended in a KeyError traceback ('mos_a'); before `genbench agree`, in a
    FileNotFoundError's. Now one line each, exit 1, naming the metrics there / what the sheet needs / the
    command to run first."""
    import subprocess
    import sys

    script = Path(__file__).resolve().parents[1] / "experiments" / "agiqa3k" / "pair_sheet.py"

    def sheet(run: Path, metric: str) -> subprocess.CompletedProcess:
        cmd = [sys.executable, script, run, "--metric", metric, "--out", tmp_path / "s.png"]
        return subprocess.run(cmd, capture_output=True, text=True)

    run = tmp_path / "run"
    root = _square_agiqa3k(tmp_path / "agiqa", photos)
    assert genbench_cli("import-agiqa3k", root, "-o", run).returncode == 0
    said = sheet(run, "classical")
    assert said.returncode == 1 and said.stderr == (
        f"error: {run / 'agreement' / 'per_pair.csv'}: not found — run `genbench agree {run}` first\n"
    )
    for cmd in (("score", run, "-m", "classical", "-w", "0"), ("agree", run, "--bootstrap", "100")):
        assert genbench_cli(*cmd).returncode == 0
    said = sheet(run, "clasical")
    assert said.returncode == 1 and said.stderr == (
        f"error: --metric clasical: not in {run / 'agreement' / 'per_pair.csv'} (its metrics: classical)\n"
    )
    assert not (tmp_path / "s.png").exists()
    made = make_photo_run(tmp_path / "made", photos)  # pairs without MOS, as a generated run's
    from genbench.manifest import read_records

    prefs = _prefs(tmp_path / "votes.csv", [(r["pair_id"], r["sharp"]) for r in read_records(made)])
    agree = ("agree", made, "--prefs", prefs, "--bootstrap", "100")
    for cmd in (("score", made, "-m", "classical", "-w", "0"), agree):
        assert genbench_cli(*cmd).returncode == 0
    said = sheet(made, "classical")
    assert said.returncode == 1 and "Traceback" not in said.stderr
    assert said.stderr.startswith(f"error: {made}: its pairs carry no human MOS")


def test_import_of_a_dataset_of_symbolic_links_says_why_and_what_to_do(tmp_path, photos, genbench_cli):
    """**Was**: `genbench import-agiqa3k` of a folder whose images are symbolic links to another folder (a
    subset made with `ln -s`) was refused as "image_a ... is outside the run's image folders ... — fix the
    manifest or re-import the run": the path shown was inside the folder given, and re-importing did the
    same. The links stay refused (a link in a downloaded set could lead to any file), but the line now says
    it is a link, where to, and the fix (copy the images in place of the links, cp -L); it named
    ``RUN/manifest.jsonl``, never written, where the folder imported from is what is refused (session 61)."""
    import shutil

    real = _square_agiqa3k(tmp_path / "real", photos)
    linked = tmp_path / "linked"
    (linked / "AGIQA-3K").mkdir(parents=True)
    shutil.copy(real / "data.csv", linked / "data.csv")
    for image in (real / "AGIQA-3K").iterdir():
        (linked / "AGIQA-3K" / image.name).symlink_to(image)
    r = genbench_cli("import-agiqa3k", linked, "-o", tmp_path / "run")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    (line,) = r.stderr.strip().splitlines()
    assert f"is a symbolic link to {real / 'AGIQA-3K'}/" in line
    assert "copy the images in place of the links (cp -L)" in line and "re-import" not in line
    # what is refused is named: the folder imported from, never RUN/manifest.jsonl, which is not written
    assert line.startswith(f"error: {linked / 'AGIQA-3K'}: pair ") and "manifest.jsonl" not in line, line
    assert not (tmp_path / "run").exists()
    for image in (linked / "AGIQA-3K").iterdir():  # the fix given works
        image.unlink()
        shutil.copy(real / "AGIQA-3K" / image.name, image)
    assert genbench_cli("import-agiqa3k", linked, "-o", tmp_path / "run").returncode == 0


@pytest.mark.slow  # four `genbench run` processes, each loading diffusers: ~40 s on a loaded 2-core machine
def test_genbench_run_with_fewer_pairs_keeps_the_pairs_people_voted_on(tmp_path, genbench_cli):
    """**Was**: `genbench run -n 2` on a run of 3 pairs people had voted on said "0 images made, 4 already
    there" and wrote a manifest of 2 pairs — the votes on p0002 then left out by `agree` ("not in the run's
    manifest"), as imports did before they checked (session 47). Now refused before anything is written,
    naming the --pairs that keeps them; a smaller --pairs that drops no voted pair goes ahead."""
    from genbench_helpers import build_tiny_sd

    from genbench.vote.store import VoteStore

    sd = build_tiny_sd(tmp_path / "tiny" / "sd")
    run = tmp_path / "run"
    options = ("--model", sd, "-o", run, "--steps", "1", "--width", "16", "--height", "16", "--device", "cpu")
    assert genbench_cli("run", "-n", "3", *options).returncode == 0
    store = VoteStore(run / "votes.sqlite")
    store.add("r1", "p0000", "a", "a")
    store.add("r1", "p0002", "b", "a")
    manifest = (run / "manifest.jsonl").read_bytes()
    r = genbench_cli("run", "-n", "2", *options)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip() == (
        f"error: {run / 'votes.sqlite'}: 1 vote is on 1 pair this run leaves out (e.g. p0002) — they would "
        "no longer count; rerun with --pairs 3 (or more) to keep them — each pair keeps its prompt and seeds "
        "— or pass another --out"
    )
    assert (run / "manifest.jsonl").read_bytes() == manifest
    r = genbench_cli("run", "-n", "4", *options)  # a larger study keeps every voted pair
    assert r.returncode == 0 and [p.pair_id for p in load_pairs(run)] == ["p0000", "p0001", "p0002", "p0003"]
    with sqlite3.connect(run / "votes.sqlite") as con:
        con.execute("DELETE FROM votes WHERE pair_id = 'p0002'")
    assert genbench_cli("run", "-n", "1", *options).returncode == 0  # no voted pair left out
    assert [p.pair_id for p in load_pairs(run)] == ["p0000"]


@pytest.mark.parametrize("resamples", ["9999999999999", "99999999999999999999"])
def test_a_bootstrap_count_no_machine_holds_is_refused_in_one_line(
    tmp_path, scored_photo_run, genbench_cli, resamples
):
    """**Was** `genbench agree RUN --bootstrap 9999999999999` (a few digits too many): a traceback from
    numpy ("Unable to allocate 72.8 TiB …", or "Maximum allowed dimension exceeded") once the votes and
    scores were read; now the option's range is said in one line, before any work."""
    run = copied_run(scored_photo_run, tmp_path / "run")
    from genbench.manifest import read_records

    prefs = _prefs(tmp_path / "prefs.csv", [(r["pair_id"], r["sharp"]) for r in read_records(run)])
    r = genbench_cli("agree", run, "--prefs", prefs, "-m", "classical", "--bootstrap", resamples)
    said = " ".join(r.stderr.split())
    assert r.returncode == 2 and "Traceback" not in said, said
    assert "invalid value for '--bootstrap': Input should be less than or equal to 1000000" in said, said
    assert not (run / "agreement").exists()
