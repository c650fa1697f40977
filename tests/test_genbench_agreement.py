"""genbench agreement: majority labels, tie policies, model ties, bootstrap CIs, report files; scoring a run
with the real `classical` scorer and a tiny ATTIQA checkpoint; the ImageReward import."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import torch
from conftest import SHARED_DATA
from genbench_helpers import make_photo_run
from PIL import Image
from typer.testing import CliRunner

from attiqa.errors import AttiqaError, ConfigError
from attiqa.models import AttiqaModel, create_backbone, save_model
from genbench.agreement import Vote, bootstrap_ci, human_labels, metric_agreement
from genbench.cli import app
from genbench.imagereward import expand_rankings, import_imagereward
from genbench.manifest import Pair, load_pairs
from genbench.metric_scoring import score_run
from genbench.run_scores import MetricScores, load_metric_scores

runner = CliRunner()


def _pairs(n: int) -> list[Pair]:
    return [Pair(f"p{i}", f"p{i}_a.png", f"p{i}_b.png") for i in range(n)]


def _votes(spec: dict[str, tuple[int, int]]) -> list[Vote]:
    out = []
    for pid, (na, nb) in spec.items():
        out += [Vote(pid, "a", f"r{k}") for k in range(na)] + [Vote(pid, "b", f"s{k}") for k in range(nb)]
    return out


# p0: people prefer a, metric too; p1: people b, metric a; p2: people tied; p3: people a, metric tie;
# p4: no votes at all
VOTES = {"p0": (2, 1), "p1": (0, 3), "p2": (1, 1), "p3": (1, 0)}
SCORES = {
    "p0_a.png": 0.9,
    "p0_b.png": 0.1,
    "p1_a.png": 0.8,
    "p1_b.png": 0.2,
    "p2_a.png": 0.5,
    "p2_b.png": 0.4,
    "p3_a.png": 0.3,
    "p3_b.png": 0.3,
    "p4_a.png": 0.1,
    "p4_b.png": 0.2,
}


@pytest.mark.parametrize(
    "ties, model_ties, pairs, accuracy",
    [
        ("skip", "wrong", 3, 1 / 3),
        ("half", "wrong", 4, 1.5 / 4),
        ("skip", "half", 3, 1.5 / 3),
        ("half", "half", 4, 2 / 4),
    ],
)
def test_tie_policies(ties, model_ties, pairs, accuracy):
    ps = _pairs(5)
    labels = human_labels(_votes(VOTES), ps)
    assert {k: v.label for k, v in labels.items()} == {"p0": "a", "p1": "b", "p2": "tie", "p3": "a"}
    r = metric_agreement(ps, labels, MetricScores("m", SCORES), ties, model_ties, n_boot=200)
    assert r.pairs == pairs and math.isclose(r.accuracy, accuracy)
    assert r.human_ties == 1 and r.model_ties == 1 and r.missing == 0
    assert r.picks == {"p0": "a", "p1": "a", "p2": "a", "p3": "tie"}


def test_lower_is_better_flips_the_pick_and_missing_scores_are_counted():
    ps = _pairs(5)
    labels = human_labels(_votes(VOTES), ps)
    flipped = MetricScores("m", {k: -v for k, v in SCORES.items()}, higher_is_better=False)
    assert metric_agreement(ps, labels, flipped).picks == {"p0": "a", "p1": "a", "p2": "a", "p3": "tie"}
    partial = MetricScores("m", {k: v for k, v in SCORES.items() if not k.startswith("p1")})
    r = metric_agreement(ps, labels, partial)
    assert r.missing == 1 and r.pairs == 2 and r.accuracy == 0.5
    with pytest.raises(ConfigError):
        metric_agreement(ps, labels, partial, tie_policy="coin")
    with pytest.raises(AttiqaError, match="not in the run's manifest"):
        human_labels([Vote("zz", "a")], ps)


def test_bootstrap_interval_matches_the_binomial_width():
    credits = np.array([1.0] * 140 + [0.0] * 60)  # 70 % of 200 pairs, as in Table 8's ATTIQA row
    lo, hi = bootstrap_ci(credits, n_boot=10000, seed=1)
    half_width = 1.96 * math.sqrt(0.7 * 0.3 / 200)  # normal approximation, about 6.4 points
    assert lo < 0.7 < hi
    assert abs((hi - lo) / 2 - half_width) < 0.01
    assert bootstrap_ci(np.ones(30), 500) == (1.0, 1.0)


@pytest.fixture()
def photo_run(tmp_path, photos):
    return make_photo_run(tmp_path / "run", photos)


def test_a_checkpoint_retrained_at_the_same_path_is_scored_again(photo_run, tmp_path):
    """**Was**: "0 scored, 10 already scored" — the old weights' scores kept as the new model's."""
    from helpers import tiny_attiqa_checkpoint

    pairs = load_pairs(photo_run)
    ckpt = str(tiny_attiqa_checkpoint(tmp_path))
    first = score_run(photo_run, pairs, ckpt, num_workers=0)
    assert (first.scored, first.kept) == (10, 0)
    old = load_metric_scores(photo_run, [ckpt])[0].values
    torch.manual_seed(1)  # "retrained": other weights, the same file name
    model = AttiqaModel(create_backbone("tiny"), head_hidden=16, mos_hidden=8)
    model.set_mos_range(0.0, 100.0)
    save_model(model, ckpt, card={"name": "tiny"})
    again = score_run(photo_run, pairs, ckpt, num_workers=0)
    assert (again.scored, again.kept) == (10, 0)
    new = load_metric_scores(photo_run, [ckpt])[0].values
    assert new.keys() == old.keys() and new != old
    assert (score_run(photo_run, pairs, ckpt, num_workers=0).kept) == 10  # the same weights: nothing to do


def test_damaged_score_files_are_one_line_and_skip_only_their_metric(photo_run, tmp_path):
    """**Was** (session 34): a damaged ``scores/<metric>.json`` ended `agree` in a JSONDecodeError
    traceback, a score that is not a number in a ValueError one; a damaged row stopped `genbench score`
    for every metric, with `attiqa score`'s advice "choose another --out" (genbench has none)."""
    from helpers import tiny_attiqa_checkpoint

    ckpt = str(tiny_attiqa_checkpoint(tmp_path))
    args = ["score", str(photo_run), "--metrics", f"classical,{ckpt}", "--workers", "0"]
    assert runner.invoke(app, args).exit_code == 0
    scores = photo_run / "scores"
    good = (scores / "classical.csv").read_text()
    lines = good.splitlines(keepends=True)
    cells = lines[1].split(",")
    damaged = "".join([lines[0], ",".join([cells[0], "x", *cells[2:]]), *lines[2:]])  # line 2's score
    (scores / "classical.csv").write_text(damaged)
    res = runner.invoke(app, [*args, "--batch-size", "4"])
    said = " ".join(res.output.split())
    assert res.exit_code == 0 and "Traceback" not in res.output, res.output
    assert f"skipped classical: {scores / 'classical.csv'}: line 2 is not a row of scores — delete it" in said
    assert "tiny.safetensors: 0 scored, 10 already scored" in said  # the other metric went on
    for name, text, message in (
        ("classical.json", "{oops", f"{scores / 'classical.json'}: unreadable — `genbench score"),
        (
            "classical.csv",
            damaged,
            f"{scores / 'classical.csv'}: score of images/astronaut_a.png is 'x', not",
        ),
    ):
        before = (scores / name).read_text()
        (scores / name).write_text(text)
        (tmp_path / "p.csv").write_text("pair_id,choice\nastronaut,a\n")
        res = runner.invoke(app, ["agree", str(photo_run), "--prefs", str(tmp_path / "p.csv")])
        assert isinstance(res.exception, AttiqaError) and message in str(res.exception), res.output
        (scores / name).write_text(before)


def test_a_scores_folder_that_cannot_be_written_is_named_with_its_fix(photo_run, tmp_path, genbench_cli):
    """**Was** (session 35): a file at RUN/scores skipped each metric with "delete it to score classical
    again", then "no metric could score this run — ... check the images listed as unreadable" (none were);
    a folder at RUN/scores/classical.csv ended in the last-resort OSError line."""

    scores = photo_run / "scores"
    scores.write_text("not a folder")
    res = genbench_cli("score", photo_run, "-m", "classical", "--workers", "0")
    said = " ".join(res.stderr.split())
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    assert f"error: {scores}: a file where genbench keeps the run's scores (a folder) — move it away" in said
    assert "delete it" not in said and "unreadable" not in said
    scores.unlink()
    (scores / "classical.csv").mkdir(parents=True)  # one metric's file is a folder: the others go on
    broken = photo_run.parent / "broken.safetensors"  # a metric that loads no model: skipped in turn too
    broken.write_bytes(b"not a checkpoint")
    res = genbench_cli("score", photo_run, "-m", f"classical,{broken}", "--workers", "0")
    said = " ".join(res.stderr.split())
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    assert f"skipped classical: {scores / 'classical.csv'}: a folder where genbench writes classical" in said
    assert f"skipped {broken}: " in said and "see above why each was skipped" in said
    (scores / "classical.csv").rmdir()  # following the advice: it scores
    res = genbench_cli("score", photo_run, "-m", "classical", "--workers", "0")
    assert res.returncode == 0 and "classical: 10 scored" in res.stderr, res.stderr


def test_a_read_only_scores_folder_says_chmod(photo_run):
    """**Was** (session 36): skipped as root, so CI (root) never ran it; now the command runs without root's
    permission override (``unprivileged``)."""
    from helpers import run_genbench

    scores = photo_run / "scores"
    scores.mkdir()
    scores.chmod(0o555)
    try:
        res = run_genbench("score", photo_run, "-m", "classical", "--workers", "0", unprivileged=True)
    finally:
        scores.chmod(0o755)
    said = " ".join(res.stderr.split())
    fix = f"make {scores} writable (chmod u+w {scores})"
    assert res.returncode == 2 and f"error: {scores}: not writable (permission denied) — {fix}" in said, said
    assert not any(scores.iterdir())


def test_score_agree_end_to_end(photo_run, tmp_path):
    torch.manual_seed(0)
    model = AttiqaModel(create_backbone("tiny"), head_hidden=16, mos_hidden=8)
    model.set_mos_range(0.0, 100.0)
    ckpt = save_model(model, tmp_path / "tiny_ckpt.safetensors", card={"name": "tiny"})

    res = runner.invoke(
        app, ["score", str(photo_run), "--metrics", f"classical,{ckpt}", "--workers", "0", "--device", "cpu"]
    )
    assert res.exit_code == 0, res.output
    for slug in ("classical", "tiny_ckpt"):
        with open(photo_run / "scores" / f"{slug}.csv", newline="") as fh:
            rows = list(csv.DictReader(fh))
        meta = json.loads((photo_run / "scores" / f"{slug}.json").read_text())
        assert meta["column"] == ("score" if slug == "classical" else "mos") and meta["higher_is_better"]
        assert len(rows) == 10 and all(r[meta["column"]] for r in rows)
        assert rows[0]["image"] == "images/astronaut_a.png"
    # a rerun scores nothing again
    res = runner.invoke(app, ["score", str(photo_run), "--metrics", "classical", "--workers", "0"])
    assert "0 scored, 10 already scored" in res.output

    # raters: the sharp image wins everywhere except one pair, where they tie
    pairs = load_pairs(photo_run)
    with open(tmp_path / "prefs.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["pair_id", "rater", "choice"])
        for k, p in enumerate(pairs):
            sharp, soft = p.record["sharp"], "b" if p.record["sharp"] == "a" else "a"
            w.writerows([[p.pair_id, "r1", sharp], [p.pair_id, "r2", soft if k == 0 else sharp]])
    res = runner.invoke(
        app, ["agree", str(photo_run), "--prefs", str(tmp_path / "prefs.csv"), "--bootstrap", "500"]
    )
    assert res.exit_code == 0, res.output
    out = photo_run / "agreement"
    report = " ".join(next(ln for ln in res.output.splitlines() if ln.startswith("report:")).split())
    for name in ("agreement.csv", "per_pair.csv", "agreement.json", "agreement.png"):  # every file it wrote
        assert name in report and (out / name).is_file()
    with open(out / "agreement.csv", newline="") as fh:
        summary = {r["metric"]: r for r in csv.DictReader(fh)}
    assert set(summary) == {"classical", "tiny_ckpt"}

    # recompute the classical row from its scores file: picks vs the sharp image on pairs 1..4
    scores = load_metric_scores(photo_run, ["classical"])[0].values
    expected = np.mean(
        [(scores[p.image_a] > scores[p.image_b]) == (p.record["sharp"] == "a") for p in pairs[1:]]
    )
    row = summary["classical"]
    assert int(row["pairs"]) == 4 and math.isclose(float(row["accuracy"]), expected, abs_tol=1e-6)
    assert float(row["ci_low"]) <= float(row["accuracy"]) <= float(row["ci_high"])
    with open(out / "per_pair.csv", newline="") as fh:
        per_pair = list(csv.DictReader(fh))
    assert len(per_pair) == 5 and per_pair[0]["human"] == "tie" and per_pair[0]["classical_credit"] == ""
    assert Image.open(out / "agreement.png").size[0] > 300
    assert "classical" in res.output and "%" in res.output

    # bad preference files are one-line errors
    (tmp_path / "bad.sqlite").write_text("not a database")
    res = runner.invoke(app, ["agree", str(photo_run), "--prefs", str(tmp_path / "bad.sqlite")])
    assert res.exit_code != 0 and "not a usable vote database" in str(res.exception)
    assert json.loads((out / "agreement.json").read_text())["human_ties"] == 1


def test_unreadable_image_is_skipped_and_reported(photo_run):
    (photo_run / "images" / "coffee_b.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    rep = score_run(photo_run, load_pairs(photo_run), "classical", num_workers=0)
    assert rep.scored == 9 and len(rep.failed) == 1 and "coffee_b.png" in rep.failed[0]
    # with its fix, as `attiqa score` lists it (session 45: the fix was left out)
    assert rep.failed[0].endswith(
        "— the file is damaged or not really an image: re-export or re-download it, or leave it out"
    )
    assert "images/coffee_b.png" not in load_metric_scores(photo_run, ["classical"])[0].values
    rep = score_run(photo_run, load_pairs(photo_run), "no-such-metric")
    assert "unknown scorer" in rep.error


def _ir_items():
    return [
        {
            "id": "001",
            "prompt": "a red fox",
            "generations": ["x/1.png", "x/2.png", "x/3.png"],
            "ranking": [2, 1, 2],
        },
        {"id": "002", "prompt": "an owl", "generations": ["y/1.png", "y/2.png"], "ranking": [1, 3]},
        {"id": "003", "prompt": "broken", "generations": ["z/1.png"], "ranking": [1, 2]},
    ]


def test_imagereward_expansion(tmp_path):
    records, prefs, res = expand_rankings(_ir_items(), tmp_path)
    assert [r["pair_id"] for r in records] == ["001:0-1", "001:1-2", "002:0-1"]
    assert [p["choice"] for p in prefs] == ["b", "a", "a"]  # rank 1 beats rank 2; equal ranks left out
    assert res.equal_rank_pairs == 1 and res.prompts == 2 and len(res.skipped) == 1
    assert records[0]["image_a"] == str(tmp_path.resolve() / "x/1.png")


def test_imagereward_import_score_and_agree(tmp_path, photos):
    images = tmp_path / "ir_images"
    items = _ir_items()[:2]
    srcs = list(photos.values())
    for k, rel in enumerate(g for it in items for g in it["generations"]):
        (images / rel).parent.mkdir(parents=True, exist_ok=True)
        srcs[k].resize((96, 96)).save(images / rel)
    (tmp_path / "test.json").write_text(json.dumps(items))
    run = tmp_path / "ir_run"
    res = runner.invoke(
        app, ["import-imagereward", str(tmp_path / "test.json"), "--images", str(images), "--out", str(run)]
    )
    assert res.exit_code == 0, res.output and "3 pairs from 2 prompts" in res.output
    assert "not under" not in res.output and "none of the" not in res.output
    # session 26: rankings whose images are not where --images says import with a warning, not silently
    first = sorted(images.rglob("*.png"))[0]
    first.rename(tmp_path / "aside.png")
    r = runner.invoke(
        app,
        [
            "import-imagereward",
            str(tmp_path / "test.json"),
            "--images",
            str(images),
            "--out",
            str(tmp_path / "r1"),
        ],
    )
    assert r.exit_code == 0 and "1 of the 5 images are not under" in " ".join(r.output.split())
    r = runner.invoke(
        app,
        [
            "import-imagereward",
            str(tmp_path / "test.json"),
            "--images",
            str(tmp_path / "no"),
            "--out",
            str(tmp_path / "r2"),
        ],
    )
    assert r.exit_code == 0 and "none of the 5 images is under" in " ".join(r.output.split())
    assert "pass --images FOLDER holding them" in " ".join(r.output.split())
    (tmp_path / "aside.png").rename(first)
    res = runner.invoke(app, ["score", str(run), "--workers", "0"])  # every scorer in the registry
    assert res.exit_code == 0 and "classical: 5 scored" in res.output, res.output
    res = runner.invoke(app, ["agree", str(run), "--bootstrap", "200"])  # prefs.csv found in the run
    assert res.exit_code == 0, res.output
    with open(run / "agreement" / "agreement.csv", newline="") as fh:
        assert int(next(csv.DictReader(fh))["pairs"]) == 3


def test_imagereward_items_sharing_an_id_get_distinct_pair_ids(tmp_path):
    """**Was**: pair ids came from each item's ``id``, so two items with one id wrote every pair id twice
    and `score` / `agree` refused the run ("pair_id ... appears twice"). Now an exact repeat is left out
    (its pairs would count twice) and another item under a used id is renamed ``ID#2`` (the first free
    number); the items whose id is their own keep their pair ids, so a re-import keeps earlier votes."""
    images = tmp_path / "imgs"
    rng = np.random.default_rng(0)
    items = _ir_items()[:2] + [
        {"id": "001", "prompt": "a blue fox", "generations": ["w/1.png", "w/2.png"], "ranking": [2, 1]},
        _ir_items()[1],  # "002" again, unchanged: a repeat
        {"id": "001#2", "prompt": "a cat", "generations": ["v/1.png", "v/2.png"], "ranking": [1, 2]},
    ]
    for rel in {g for it in items for g in it["generations"]}:
        (images / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(images / rel)
    (tmp_path / "one_each.json").write_text(json.dumps(items[:2]))
    (tmp_path / "test.json").write_text(json.dumps(items))
    args = ["--images", str(images), "--out"]
    assert runner.invoke(app, ["import-imagereward", str(tmp_path / "one_each.json"), *args,
                               str(tmp_path / "before")]).exit_code == 0  # fmt: skip
    run = tmp_path / "run"
    res = runner.invoke(app, ["import-imagereward", str(tmp_path / "test.json"), *args, str(run)])
    assert res.exit_code == 0, res.output
    said = " ".join(res.output.split())
    assert "1 items repeat an earlier item of their id: left out" in said
    assert "1 items use an id an earlier item has: renamed (001 -> 001#3)" in said
    ids = [p.pair_id for p in load_pairs(run)]  # the old import: "pair_id '001:0-1' appears twice"
    assert ids == ["001:0-1", "001:1-2", "002:0-1", "001#3:0-1", "001#2:0-1"]
    assert set(ids) >= {p.pair_id for p in load_pairs(tmp_path / "before")}
    with open(run / "prefs.csv", newline="") as fh:
        assert [r["pair_id"] for r in csv.DictReader(fh)] == ids  # one vote per pair, none counted twice
    again = tmp_path / "again"
    assert (
        runner.invoke(app, ["import-imagereward", str(tmp_path / "test.json"), *args, str(again)]).exit_code
        == 0
    )
    assert [p.pair_id for p in load_pairs(again)] == ids
    assert runner.invoke(app, ["score", str(run), "-m", "classical", "-w", "0"]).exit_code == 0
    res = runner.invoke(app, ["agree", str(run), "--bootstrap", "200"])
    assert res.exit_code == 0, res.output
    with open(run / "agreement" / "agreement.csv", newline="") as fh:
        assert int(next(csv.DictReader(fh))["pairs"]) == 5


def test_imagereward_file_with_a_byte_order_mark_and_null_ids(tmp_path):
    """**Was** (session 34): a rankings file saved with a byte-order mark (Windows Notepad's UTF-8) was
    refused as "not valid JSON (Unexpected UTF-8 BOM ...)" — the preferences CSV is read with one; items
    with ``"id": null`` were all named ``None`` (pair ids ``None:0-1``, then ``None#2:0-1``, ...)."""
    items = [{**it, "id": None} for it in _ir_items()[:2]]
    (tmp_path / "r.json").write_bytes(b"\xef\xbb\xbf" + json.dumps(items).encode())
    res = import_imagereward(tmp_path / "r.json", None, tmp_path / "run")
    assert res.pairs == 3 and not res.renamed
    assert [p.pair_id for p in load_pairs(tmp_path / "run")] == ["#0:0-1", "#0:1-2", "#1:0-1"]


def test_agree_with_another_runs_preferences_names_the_file(tmp_path):
    """**Was** (session 34): "1 voted pair id(s) are not in the run's manifest ..." without the file."""
    (tmp_path / "r.json").write_text(json.dumps(_ir_items()[:2]))
    import_imagereward(tmp_path / "r.json", None, tmp_path / "run")
    (tmp_path / "other.csv").write_text("pair_id,choice\nelsewhere:0-1,a\n")
    res = runner.invoke(app, ["agree", str(tmp_path / "run"), "--prefs", str(tmp_path / "other.csv")])
    assert isinstance(res.exception, AttiqaError)
    assert str(res.exception).startswith(f"{tmp_path / 'other.csv'}: 1 voted pair id(s) are not in the run's")


def test_an_empty_vote_database_does_not_hide_the_imported_preferences(tmp_path):
    """**Was** (session 34): `genbench vote` started on an imported run and stopped before a vote left a
    votes.sqlite that `agree` took over prefs.csv: "no votes for this run's pairs yet"."""
    from genbench.prefs import load_votes
    from genbench.vote.store import VoteStore

    (tmp_path / "r.json").write_text(json.dumps(_ir_items()[:2]))
    run = tmp_path / "run"
    import_imagereward(tmp_path / "r.json", None, run)
    VoteStore(run / "votes.sqlite")  # what the vote server makes at its start
    votes, source = load_votes(run)
    assert source == run / "prefs.csv" and [v.pair_id for v in votes] == ["001:0-1", "001:1-2", "002:0-1"]
    VoteStore(run / "votes.sqlite").add("al", "002:0-1", "b", "a")
    votes, source = load_votes(run)  # once someone voted, the votes count
    assert source == run / "votes.sqlite" and [(v.pair_id, v.choice) for v in votes] == [("002:0-1", "b")]


def test_suggested_commands_quote_a_run_folder_with_a_space(tmp_path):
    """**Was** (session 34): "— run `genbench score my run` first": typed as shown, two arguments."""
    import shlex

    (tmp_path / "r.json").write_text(json.dumps(_ir_items()[:2]))
    run = tmp_path / "my run ü"
    import_imagereward(tmp_path / "r.json", None, run)
    for args, command in (
        (["agree", str(run)], ["genbench", "score", str(run)]),  # no scores yet
        (["export-votes", str(run)], ["genbench", "vote", str(run)]),  # no votes yet
    ):
        res = runner.invoke(app, args)
        assert isinstance(res.exception, AttiqaError), res.output
        assert shlex.split(str(res.exception).split("`")[1]) == command, str(res.exception)


@pytest.mark.shared_data
def test_real_imagereward_test_file(tmp_path):
    path = SHARED_DATA / "preferences" / "imagereward_test.json"
    if not path.exists():
        pytest.skip("../shared/data/preferences/imagereward_test.json is not on this machine")
    items = json.loads(path.read_text())
    expected = sum(
        it["ranking"][i] != it["ranking"][j]
        for it in items
        for i in range(len(it["ranking"]))
        for j in range(i + 1, len(it["ranking"]))
    )
    res = import_imagereward(path, tmp_path / "imgs", tmp_path / "run")
    assert res.prompts == 466 and res.pairs == expected and not res.skipped
    assert len(load_pairs(tmp_path / "run")) == expected


def _scored_ir_run(tmp_path, items) -> tuple:
    """An ImageReward import of ``items`` (random-noise images on disk), scored by `classical`."""
    images = tmp_path / "imgs"
    rng = np.random.default_rng(0)
    for rel in {g for it in items for g in it["generations"]}:
        (images / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(images / rel)
    (tmp_path / "r.json").write_text(json.dumps(items))
    run = tmp_path / "run"
    import_imagereward(tmp_path / "r.json", images, run)
    assert runner.invoke(app, ["score", str(run), "-m", "classical", "-w", "0"]).exit_code == 0
    return run, images


def test_agree_says_which_preferences_it_measures_against(tmp_path):
    """**Was** (session 34): once anyone voted on an imported run, `agree` measured against the votes
    alone without a word — the import's prefs.csv (every ranked pair) silently left aside. Now it says
    which preferences it uses, and that the other file is there and how to choose it (``--prefs``)."""
    from genbench.vote.store import VoteStore

    run, _ = _scored_ir_run(tmp_path, _ir_items()[:2])
    res = runner.invoke(app, ["agree", str(run), "--bootstrap", "100"])
    said = " ".join(res.output.split())
    assert res.exit_code == 0 and f"preferences: {run / 'prefs.csv'} (3 votes on 3 pairs)" in said, said
    assert "not used" not in said
    VoteStore(run / "votes.sqlite").add("al", "002:0-1", "b", "a")
    res = runner.invoke(app, ["agree", str(run), "--bootstrap", "100"])
    said = " ".join(res.output.split())
    assert res.exit_code == 0 and f"preferences: {run / 'votes.sqlite'} (1 vote on 1 pair)" in said, said
    assert f"{run / 'prefs.csv'} is not used" in said and f"--prefs {run / 'prefs.csv'}" in said
    res = runner.invoke(app, ["agree", str(run), "--bootstrap", "100", "--prefs", str(run / "prefs.csv")])
    said = " ".join(res.output.split())
    assert (
        res.exit_code == 0 and f"preferences: {run / 'prefs.csv'} (3 votes" in said and "not used" not in said
    )
    with open(run / "agreement" / "agreement.csv", newline="") as fh:
        assert int(next(csv.DictReader(fh))["pairs"]) == 3


def test_cluster_by_a_field_that_cannot_group_the_pairs_is_refused(tmp_path):
    """**Was** (session 34): ``--cluster-by source`` (one value on every pair of an import) resampled one
    cluster: the interval "50.0% – 50.0%", a certainty the data do not give; a typo named no field. Now
    both are one line: a field with one value, and the run's fields with the closest name."""
    run, _ = _scored_ir_run(tmp_path, _ir_items()[:2])
    args = ["agree", str(run), "--bootstrap", "100", "--cluster-by"]
    res = runner.invoke(app, [*args, "source"])
    assert isinstance(res.exception, ConfigError), res.output
    assert "--cluster-by source: every voted pair has the same value ('imagereward')" in str(res.exception)
    assert not (run / "agreement" / "agreement.csv").exists()
    res = runner.invoke(app, [*args, "promt_id"])
    assert isinstance(res.exception, ConfigError), res.output
    assert "did you mean 'prompt_id'?" in str(res.exception)
    res = runner.invoke(app, [*args, "prompt_id"])  # two prompts: two clusters
    assert res.exit_code == 0, res.output
    # **was** said nothing: an interval of two clusters held the truth in 57 % of simulated studies
    # (benchmarks/cluster_bootstrap_coverage.py); now a warning under the table, the report still written
    said = " ".join(res.output.split())
    assert (
        "warning: --cluster-by prompt_id: the voted pairs fall in 2 clusters — with fewer than 20 a cluster "
        "bootstrap's 95% interval is too narrow" in said
    ), said
    assert (
        json.loads((run / "agreement" / "agreement.json").read_text())["settings"]["cluster_by"]
        == "prompt_id"
    )


def test_imagereward_ranks_must_be_numbers_not_booleans(tmp_path):
    """**Was** (session 34): ``"ranking": [true, false]`` imported as ranks 1 and 0 (a bool is an int in
    Python): a pair whose preference nobody gave. Now the item is skipped as malformed."""
    items = [*_ir_items()[:2], {"id": "b", "generations": ["q/1.png", "q/2.png"], "ranking": [True, False]}]
    records, prefs, res = expand_rankings(items, tmp_path)
    assert [r["pair_id"] for r in records] == ["001:0-1", "001:1-2", "002:0-1"]
    assert res.skipped == ["b: generations must be paths and ranking integers"]


def test_imagereward_images_option_naming_a_file_is_refused(tmp_path):
    """**Was** (session 34): ``--images rankings.json`` (a file) imported with only the warning "none of the
    images is under ..." — no image can ever be under a file. Now one line before anything is written; a
    folder not made yet still imports with the warning (the images may come later)."""
    (tmp_path / "r.json").write_text(json.dumps(_ir_items()[:2]))
    args = ["import-imagereward", str(tmp_path / "r.json"), "--out", str(tmp_path / "run"), "--images"]
    res = runner.invoke(app, [*args, str(tmp_path / "r.json")])
    assert isinstance(res.exception, AttiqaError), res.output
    assert str(res.exception).startswith(f"--images {tmp_path / 'r.json'}: a file, not a folder")
    assert not (tmp_path / "run").exists()
    res = runner.invoke(app, [*args, str(tmp_path / "later")])
    assert res.exit_code == 0 and "none of the 5 images is under" in " ".join(res.output.split())


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("image,Score\nimages/a.png,0.5\nimages/b.png,0.25\n", None),
        ("image,score,score\nimages/a.png,0.5,0.7\n", "column 'score' appears twice in the header"),
        ("image,score\nimages/a.png,0.5\nimages/b,c.png,0.7\n", "classical.csv:3: 3 cells under a header"),
        ("Image,score,image\nimages/a.png,0.5,x\n", "columns 'Image' and 'image' differ only in case"),
    ],
)
def test_a_hand_edited_scores_file_is_read_by_the_one_csv_reader(tmp_path, text, message):
    """**Was** (session 41): `genbench agree` read ``scores/METRIC.csv`` with its own ``csv.DictReader``:
    a ``Score`` header gave the metric no scores at all, a column named twice was read from its last copy,
    a name with an unquoted comma shifted its score out of the column without a word. Now the one CSV
    reader (:func:`attiqa.datasets.readers.read_csv`) reads it: any case of a name, one line otherwise."""
    scores = tmp_path / "run" / "scores"
    scores.mkdir(parents=True)
    (scores / "classical.json").write_text('{"metric": "classical", "column": "score"}')
    (scores / "classical.csv").write_text(text)
    if message is None:
        assert load_metric_scores(tmp_path / "run", ["classical"])[0].values == {
            "images/a.png": 0.5,
            "images/b.png": 0.25,
        }
        return
    with pytest.raises(AttiqaError, match=message) as err:
        load_metric_scores(tmp_path / "run", ["classical"])
    assert "\n" not in str(err.value) and "`genbench score" in str(err.value)


def test_the_wilson_note_of_many_pairs_all_right_does_not_call_them_few():
    """**Was** `genbench agree` on an AGIQA-3k import whose `attiqa-agiqa3k` scores picked all 549 pairs
    right: "with 549 pairs counted …, the 95% interval is the pairs' Wilson score interval, not a bootstrap
    (one of so few pairs has next to nothing to resample): read it as a rough range" — 549 pairs are not
    few and 99.3-100 % is no rough range: the bootstrap had nothing to resample because every pair counted
    alike. A handful of pairs keeps its words."""
    from genbench.agreement import wilson_note

    credits = np.ones(549)
    many = metric_agreement_of(credits)
    said = wilson_note([many])
    assert many.wilson and "so few pairs" not in said and "rough range" not in said, said
    assert "every one of the 549 pairs counted alike (all right; m): a bootstrap has nothing" in said, said
    assert "so few pairs" in wilson_note([metric_agreement_of(np.ones(3))])


def metric_agreement_of(credits: np.ndarray):
    """:func:`metric_agreement` of pairs on which people chose a, the metric scoring a above b where
    ``credits`` is 1 (right) and below where 0 (wrong)."""
    ps = _pairs(credits.size)
    labels = human_labels(_votes({p.pair_id: (1, 0) for p in ps}), ps)
    scores = {}
    for p, c in zip(ps, credits, strict=True):
        scores[p.image_a], scores[p.image_b] = (0.9, 0.1) if c else (0.1, 0.9)
    return metric_agreement(ps, labels, MetricScores("m", scores), n_boot=200)
