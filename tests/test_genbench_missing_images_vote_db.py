"""A new user's pass over genbench on real data (docs/robustness.md): the README's and docs/agiqa3k_model.md's
commands on agiqa3k-dev and the ImageReward rankings of the shared data, as real commands. Every fixture is
made here (real photos, real rankings items); each test failed before its fix."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

from genbench_helpers import VoteServer, copied_run, make_photo_run

IR_ITEMS = [  # two items in the ImageReward test format (ids and paths as the public file writes them)
    {
        "id": "005658-0040",
        "prompt": "deathly portal to the abyss, ultra detailed",
        "generations": [f"part-005658/images/0040/{k}.webp" for k in ("g0", "g1", "g2")],
        "ranking": [1, 2, 3],
    },
    {
        "id": "005664-0153",
        "prompt": "a lighthouse in a storm",
        "generations": [f"part-005664/images/0153/{k}.webp" for k in ("g0", "g1")],
        "ranking": [2, 1],
    },
]


def _rankings(folder: Path, photos: dict | None = None) -> Path:
    """The rankings file in ``folder``; with ``photos``, each generation written there as a real photo."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "imagereward_test.json").write_text(json.dumps(IR_ITEMS))
    if photos is not None:
        imgs = list(photos.values())
        for k, gen in enumerate(g for it in IR_ITEMS for g in it["generations"]):
            (folder / gen).parent.mkdir(parents=True, exist_ok=True)
            imgs[k % len(imgs)].resize((96, 64)).save(folder / gen, "WEBP")
    return folder / "imagereward_test.json"


def test_score_and_vote_on_a_run_whose_images_are_not_on_disk_say_so_first(tmp_path, photos, genbench_cli):
    """**Was** (session 48, the shared ImageReward rankings, whose images are not in the shared data):
    `genbench score` loaded the metric, listed ten "file not found" images and ended in "no metric could
    score this run — see above why each was skipped"; `genbench vote` said "serving 6399 pairs", logged
    2,202 warnings at a rater's first request and showed the rater "All pairs are done" (every /api/next
    1.6–2.1 s). Now both say, in one line before any model or vote database, that none of the images is on
    disk and how to point the run at them."""
    rankings = _rankings(tmp_path / "ir")
    res = genbench_cli("import-imagereward", rankings, "--out", tmp_path / "run")
    assert res.returncode == 0 and "none of the 5 images is under" in res.stderr, res.stderr
    for cmd in (["score", "-m", "classical"], ["vote", "--port", "0"]):
        res = genbench_cli(cmd[0], tmp_path / "run", *cmd[1:])
        lines = res.stderr.splitlines()
        assert res.returncode == 2 and len(lines) == 1, res.stderr
        said = lines[0]
        assert "none of the 5 images its manifest names is on disk" in said, said
        assert "g0.webp" in said and "--images FOLDER" in said, said
    assert not (tmp_path / "run" / "scores").exists() and not (tmp_path / "run" / "votes.sqlite").exists()

    # following the advice: the same rankings imported with the folder holding the images scores
    photos_dir = tmp_path / "ImageReward"
    _rankings(photos_dir, photos)
    res = genbench_cli("import-imagereward", rankings, "--images", photos_dir, "--out", tmp_path / "run")
    assert res.returncode == 0 and "not under" not in res.stderr, res.stderr
    res = genbench_cli("score", tmp_path / "run", "-m", "classical")
    assert res.returncode == 0 and "classical: 5 scored, 0 already scored, 0 unreadable" in res.stderr


def test_vote_says_once_at_the_start_which_pairs_miss_an_image(tmp_path, photos):
    """**Was** (session 48): a pair left out for a missing image was one warning per image, logged at the
    request that first met it — thousands of lines through a study of an import with part of its images.
    Now one line at the start counts them (an image damaged or deleted later is still its own line)."""
    run = make_photo_run(tmp_path / "run", photos)
    for name in ("astronaut_a.png", "coffee_b.png"):
        (run / "images" / name).unlink()
    server = VoteServer(run, tmp_path / "server.log")
    try:
        for rater in ("r1", "r2", "r3", "r4"):
            with urllib.request.urlopen(f"{server.url}/api/next?rater={rater}", timeout=30) as resp:
                assert json.loads(resp.read())["finished"] is False
    finally:
        server.stop()
    lines = (tmp_path / "server.log").read_text().splitlines()
    assert len(lines) == 3, lines
    assert "2 of 5 pairs are not shown to raters: an image is missing (e.g. " in lines[0], lines
    assert lines[1].startswith("serving 5 pairs on http://127.0.0.1:") and lines[2].startswith("stopped:")


def _agiqa_folder(root: Path, photos: dict) -> Path:
    """An AGIQA-3k folder in the official layout: data.csv and real photos, two prompts of three images,
    MOS 1.0 / 1.7 / 3.0 (pairs 0.7, 1.3 and 2.0 apart)."""
    (root / "AGIQA-3K").mkdir(parents=True)
    rows = ["name,prompt,adj1,adj2,style,mos_quality,std_quality,mos_align,std_align"]
    imgs = list(photos.values())
    for k, (gen, mos) in enumerate((("glide", 1.0), ("sd1.5", 1.7), ("midjourney", 3.0)) * 2):
        name, prompt = f"{gen}_normal_{k // 3:03d}.jpg", ("a cat", "a dog")[k // 3]
        imgs[k % len(imgs)].resize((64, 64)).save(root / "AGIQA-3K" / name)
        rows.append(f"{name},{prompt},,,,{mos},0.5,2.5,0.6")
    (root / "data.csv").write_text("\n".join(rows) + "\n")
    return root


def test_a_reimport_that_would_drop_voted_pairs_is_refused(tmp_path, photos, genbench_cli):
    """**Was** (session 48, agiqa3k-dev: 105 votes of 3 raters, then `genbench import-agiqa3k` again with
    `--margin 1` into the same run): the manifest replaced without a word, 40 voted pairs gone from it;
    `genbench agree` then refused the run's own votes — "41 voted pair id(s) are not in the run's manifest
    … are the preferences for this run? Pass its own with --prefs FILE" — and the study went on over other
    pairs. Now the import is refused before anything is written; one that keeps every voted pair (the same
    margin, a smaller one) goes ahead."""
    from genbench.manifest import load_pairs
    from genbench.vote.store import VoteStore

    root, run = _agiqa_folder(tmp_path / "agiqa", photos), tmp_path / "run"
    assert genbench_cli("import-agiqa3k", root, "--out", run).returncode == 0
    close = next(p for p in load_pairs(run) if abs(p.record["mos_diff"] - 0.7) < 1e-9)
    VoteStore(run / "votes.sqlite").add("r1", close.pair_id, "b", "a")
    before = {f: (run / f).read_bytes() for f in ("manifest.jsonl", "manifest.csv", "prefs.csv")}

    res = genbench_cli("import-agiqa3k", root, "--out", run, "--margin", "1")
    lines = res.stderr.splitlines()
    assert res.returncode == 2 and len(lines) == 1, res.stderr
    said = lines[0]
    assert said.startswith(f"error: {run / 'votes.sqlite'}: 1 vote is on 1 pair this import leaves out")
    assert close.pair_id in said and "--margin" in said, said
    assert {f: (run / f).read_bytes() for f in before} == before

    for margin in ("0.5", "0"):  # every voted pair kept
        res = genbench_cli("import-agiqa3k", root, "--out", run, "--margin", margin)
        assert res.returncode == 0, res.stderr
    assert genbench_cli("score", run, "-m", "classical").returncode == 0
    res = genbench_cli("agree", run)
    assert res.returncode == 0 and "(1 vote on 1 pair)" in res.stderr, res.stderr


def test_a_resumed_score_counts_only_its_own_images_in_the_rate(
    tmp_path, photos, scored_photo_run, genbench_cli
):
    """**Was** (session 48, `genbench score RUN -m classical` on agiqa3k-dev again after a Ctrl-C at 512 of
    1491 images): "classical: 512/1491 (35299.7 img/s)", then "672/1491 (227.4 img/s)" — the images the
    earlier run scored were counted as scored in no time (the real rate: ~80 img/s). Now they are in the
    count, not in the rate, as `attiqa score` shows a resume."""
    import re

    from genbench.manifest import read_records, write_manifest

    run = copied_run(scored_photo_run, tmp_path / "run")
    records = read_records(run)
    for k, img in enumerate(list(photos.values())[:2]):  # two more pairs: 4 new images, 10 scored
        for side, size in (("a", (80, 60)), ("b", (60, 80))):
            img.resize(size).save(run / "images" / f"new{k}_{side}.png")
        records.append(
            {"pair_id": f"new{k}", "image_a": f"images/new{k}_a.png", "image_b": f"images/new{k}_b.png"}
        )
    write_manifest(run, records)
    res = genbench_cli("score", run, "-m", "classical")
    assert res.returncode == 0 and "classical: 4 scored, 10 already scored" in res.stderr, res.stderr
    # main printed "classical: 10/14 (R img/s)" at once: R = 10 images over the time the metric took to
    # load, whatever that was; now a line comes after a batch and its rate is of that batch's images.
    # Session 57: the 10 are said as kept, from the first line (was no line until a batch, "kept" unsaid)
    bar = [" ".join(ln.split()) for ln in res.stderr.splitlines() if ln.startswith("classical: ")]
    assert bar[0] == "classical: 10/14 (none done now, 10 kept from an earlier run)", bar
    lines = re.findall(r"classical: (\d+)/14 \(([\d.]+) img/s, 10 kept from an earlier run\)", res.stderr)
    assert lines and all(int(done) > 10 for done, _rate in lines), res.stderr


def test_agree_on_pairs_sharing_prompts_says_how_to_resample_prompts(tmp_path, photos, genbench_cli):
    """**Was** (session 48, `genbench agree` on agiqa3k-dev's 4,660 pairs of 150 prompts, as the README's
    line runs it): "58.4% (57.0% – 59.8%)" without a word, an interval resampling pairs as if the 31 pairs
    of a prompt were independent; by prompt (`--cluster-by prompt_id`, as docs/agiqa3k_model.md measures)
    it is 55.6 – 61.2 %. Now a note under the table says so and names the option; none once it is given,
    nor for a generated run (one prompt per pair, no prompt_id)."""
    root, run = _agiqa_folder(tmp_path / "agiqa", photos), tmp_path / "run"
    assert genbench_cli("import-agiqa3k", root, "--out", run, "--margin", "0.5").returncode == 0
    assert genbench_cli("score", run, "-m", "classical").returncode == 0
    res = genbench_cli("agree", run)
    said = " ".join(res.stderr.split())
    assert res.returncode == 0 and "note: the 6 voted pairs share 2 prompts (prompt_id)" in said, said
    assert "--cluster-by prompt_id resamples prompts" in said, said
    res = genbench_cli("agree", run, "--cluster-by", "prompt_id")
    assert res.returncode == 0 and "note:" not in res.stderr, res.stderr

    photo_run = make_photo_run(tmp_path / "gen", photos)
    (photo_run / "prefs.csv").write_text("pair_id,choice\nastronaut,a\ncoffee,b\n")
    assert genbench_cli("score", photo_run, "-m", "classical").returncode == 0
    res = genbench_cli("agree", photo_run)  # 2 pairs: the Wilson interval's note (session 54), not this one
    assert res.returncode == 0 and "share" not in res.stderr and "--cluster-by" not in res.stderr, res.stderr


def test_a_damaged_vote_database_is_one_line_with_a_fix_each_command_has(tmp_path, photos, genbench_cli):
    """**Was** (session 48, `RUN/votes.sqlite` cut short by a copy and one overwritten with text): `genbench
    vote` said "not a usable vote database (…) — move it away or point to another file" (vote has no option
    naming another file), `genbench export-votes` "— pass a votes.sqlite of `genbench vote` or a CSV" (it
    takes neither). Now each says to restore it from a backup; vote how to set it aside, agree that
    ``--prefs`` takes a CSV. The file is left as it is."""
    from genbench.vote.store import VoteStore

    run = make_photo_run(tmp_path / "run", photos)
    db = run / "votes.sqlite"
    store = VoteStore(db)
    for k, pid in enumerate(("astronaut", "coffee", "chelsea")):
        store.add(f"r{k}", pid, "a", "b")
    whole = db.read_bytes()
    for damaged in (whole[: len(whole) // 2], b"pair_id,choice\nastronaut,a\n"):
        db.write_bytes(damaged)
        said = {}
        for cmd in (["vote", "--port", "0"], ["export-votes"], ["agree"]):
            res = genbench_cli(cmd[0], run, *cmd[1:])
            assert res.returncode == 2 and len(res.stderr.splitlines()) == 1, res.stderr
            said[cmd[0]] = res.stderr
        assert all(
            "not a usable vote database" in s and "restore it from a backup" in s for s in said.values()
        )
        assert f"move it away (mv {db} {db}.damaged)" in said["vote"], said
        assert (
            "point to another file" not in said["vote"] and "pass a votes.sqlite" not in said["export-votes"]
        ), said
        assert db.read_bytes() == damaged


def test_rankings_of_another_format_say_why_nothing_was_imported(tmp_path, genbench_cli):
    """**Was** (session 48): a JSON list in another layout — ImageRewardDB's per-image metadata
    (``image_path``, ``rank``), items missing ``ranking`` — "no item with two differently ranked images —
    nothing to import", the reason (every item malformed) and the expected layout unsaid. Now the line counts
    the malformed items, gives the first one's reason and the item layout; nothing is written."""
    other = tmp_path / "metadata.json"
    other.write_text(json.dumps([{"prompt_id": "0001", "image_path": "images/a.webp", "rank": 1}] * 2))
    res = genbench_cli("import-imagereward", other, "--out", tmp_path / "run")
    said = " ".join(res.stderr.split())
    assert res.returncode == 2 and len(res.stderr.splitlines()) == 1, res.stderr
    assert "no item with two differently ranked images (2 of 2 items malformed, e.g. #0: needs" in said, said
    assert '"generations": [paths], "ranking": [ranks, 1 = best]}' in said and not (tmp_path / "run").exists()


def test_a_vote_database_damaged_under_a_running_study_is_one_line_not_a_traceback(tmp_path, photos):
    """**Was** (session 48, `votes.sqlite` overwritten while `genbench vote` ran): every request of every
    rater answered 500 "The server encountered an internal error …", a 30-line traceback each in the
    organiser's terminal, and the stop ended in the error instead of its "stopped:" line. Now the rater
    gets 503 "the study cannot read its votes — please tell the study's organiser", the terminal one line
    naming the file per request, and the stop says it stopped, and why nothing can be counted."""
    import http.client

    run = make_photo_run(tmp_path / "run", photos)
    server = VoteServer(run, tmp_path / "server.log")

    def ask(method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        con = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        con.request(method, path, json.dumps(body) if body else None, {"Content-Type": "application/json"})
        resp = con.getresponse()
        out = resp.status, json.loads(resp.read())
        con.close()
        return out

    try:
        status, nxt = ask("GET", "/api/next?rater=r1")
        assert (
            status == 200
            and ask("POST", "/api/vote", {"rater": "r1", "pair_id": nxt["pair_id"], "choice": "left"})[0]
            == 201
        )
        status, nxt = ask("GET", "/api/next?rater=r1")
        for name in ("votes.sqlite", "votes.sqlite-wal", "votes.sqlite-shm"):
            (run / name).unlink(missing_ok=True)
        (run / "votes.sqlite").write_text("pair_id,choice\n")  # a CSV saved over it
        for method, path, body in (
            ("GET", "/api/next?rater=r1", None),
            ("GET", "/api/progress?rater=r1", None),
            ("POST", "/api/vote", {"rater": "r1", "pair_id": nxt["pair_id"], "choice": "right"}),
        ):
            status, answer = ask(method, path, body)
            assert status == 503 and "please tell the study's organiser" in answer["error"], (path, answer)
    finally:
        server.stop()
    log = (tmp_path / "server.log").read_text()
    lines = log.splitlines()
    assert "Traceback" not in log and len(lines) == 5, lines
    assert all("votes.sqlite: " in ln and "(file is not a database)" in ln for ln in lines[1:]), lines
    assert lines[-1].startswith("stopped: ") and server.proc.returncode == 143, lines
