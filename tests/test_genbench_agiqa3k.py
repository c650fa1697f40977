"""genbench import-agiqa3k on a small generated AGIQA-3k folder: the pairing rule (same prompt only, MOS
margin, same generator), the run folder `genbench score` / `genbench agree` read, the CLI and its errors."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from attiqa.errors import AttiqaError
from genbench.agiqa3k import DEFAULT_MARGIN, generator_of, import_agiqa3k, make_pairs, read_agiqa3k
from genbench.cli import app
from genbench.manifest import load_pairs
from genbench.prefs import load_votes

runner = CliRunner()

# (file name, prompt, mos_quality, std_quality): two prompts; "cat" has two sd1.5 settings and a Midjourney
# image, "dog" one pair closer than the margin.
ROWS = [
    ("AttnGAN_normal_001.jpg", "a cat", 0.9, 0.5),
    ("sd1.5_normal_001.jpg", "a cat", 2.6, 0.6),
    ("sd1.5_lowstep_001.jpg", "a cat", 1.8, 0.7),
    ("midjourney_normal_001.jpg", "a cat", 3.9, 0.3),
    ("glide_normal_002.jpg", "a dog", 1.0, 0.5),
    ("sd1.5_normal_002.jpg", "a dog", 1.3, 0.6),
    ("xl2.2_normal_002.jpg", "a dog", 3.5, 0.4),
]


@pytest.fixture()
def agiqa_root(tmp_path):
    """A folder in the official layout: data.csv + 64-px JPEGs (brightness follows the MOS)."""
    root = tmp_path / "agiqa"
    (root / "AGIQA-3K").mkdir(parents=True)
    with open(root / "data.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["name", "prompt", "adj1", "adj2", "style", "mos_quality", "std_quality", "mos_align",
                    "std_align"])  # fmt: skip
        for name, prompt, mos, std in ROWS:
            w.writerow([name, prompt, "", "", "", mos, std, 2.5, 0.6])
            rng = np.random.default_rng(len(name))
            arr = np.clip(rng.normal(60 * mos, 20, (64, 64, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(arr).save(root / "AGIQA-3K" / name)
    return root


def _mos(name: str) -> float:
    return next(r[2] for r in ROWS if r[0] == name)


def test_generator_is_the_first_field_of_the_name():
    assert generator_of("sd1.5_lowstep_002.jpg") == "sd1.5"
    assert generator_of("xl2.2_normal_010.jpg") == "xl2.2"
    assert generator_of("plain.jpg") == ""


def test_pairs_share_a_prompt_differ_by_the_margin_and_prefer_the_higher_mos(agiqa_root):
    images = read_agiqa3k(agiqa_root)
    records, prefs, res = make_pairs(images, margin=0.5)
    prompt_of = {r[0]: r[1] for r in ROWS}
    # every same-prompt pair: cat 4 images -> 6 pairs, dog 3 -> 3; left out: |diff| < 0.5
    expected = []
    for i, a in enumerate(ROWS):
        for b in ROWS[i + 1 :]:
            if a[1] == b[1] and abs(a[2] - b[2]) >= 0.5:
                expected.append({a[0], b[0]})
    got = [{r["image_a"].rsplit("/", 1)[1], r["image_b"].rsplit("/", 1)[1]} for r in records]
    assert sorted(map(sorted, got)) == sorted(map(sorted, expected))
    assert res.pairs == len(expected) == 8 and res.close_pairs == 1 and res.prompts == 2
    for rec, pref in zip(records, prefs, strict=True):
        na, nb = rec["image_a"].rsplit("/", 1)[1], rec["image_b"].rsplit("/", 1)[1]
        assert prompt_of[na] == prompt_of[nb] == rec["prompt"]
        assert abs(_mos(na) - _mos(nb)) >= 0.5
        assert pref["choice"] == ("a" if _mos(na) > _mos(nb) else "b")
        assert rec["same_generator"] == (generator_of(na) == generator_of(nb))


def test_margin_and_same_generator_filters(agiqa_root):
    images = read_agiqa3k(agiqa_root)
    _, _, loose = make_pairs(images, margin=0.0)
    assert loose.pairs == 9  # every same-prompt pair (no equal MOS here)
    _, _, strict = make_pairs(images, margin=2.0)
    assert strict.pairs == 4  # cat: AttnGAN-midjourney 3.0, sd1.5 lowstep-midjourney 2.1; dog: 2.5, 2.2
    recs, prefs, sg = make_pairs(images, margin=0.5, same_generator=True)
    names = [{r["image_a"].rsplit("/", 1)[1], r["image_b"].rsplit("/", 1)[1]} for r in recs]
    assert names == [{"sd1.5_normal_001.jpg", "sd1.5_lowstep_001.jpg"}]
    assert recs[0]["image_a"].endswith("sd1.5_lowstep_001.jpg")  # a/b in name order
    assert prefs[0]["choice"] == "b"  # sd1.5 normal (2.6) over lowstep (1.8)
    assert sg.other_generator_pairs == 9 - 1
    with pytest.raises(AttiqaError, match="margin"):
        make_pairs(images, margin=-1)


def test_equal_mos_is_never_a_preference(agiqa_root):
    images = read_agiqa3k(agiqa_root)
    images[1].mos = images[2].mos  # two sd1.5 images of "a cat" now tie
    recs, _, _ = make_pairs(images, margin=0.0)
    assert not any({r["image_a"], r["image_b"]} == {str(images[1].image), str(images[2].image)} for r in recs)


def test_run_folder_is_read_by_genbench_and_missing_images_are_reported(agiqa_root, tmp_path):
    (agiqa_root / "AGIQA-3K" / "xl2.2_normal_002.jpg").unlink()
    out = tmp_path / "run"
    res = import_agiqa3k(agiqa_root, out)
    assert res.margin == DEFAULT_MARGIN and len(res.missing) == 1 and res.images == len(ROWS) - 1
    pairs = load_pairs(out)
    votes, source = load_votes(out)
    assert source.name == "prefs.csv" and {v.pair_id for v in votes} == {p.pair_id for p in pairs}
    assert all("xl2.2" not in p.image_a + p.image_b for p in pairs)
    info = json.loads((out / "import.json").read_text())
    assert info["pairs"] == len(pairs) and info["margin"] == DEFAULT_MARGIN


def test_cli_import_then_score_and_agree_with_the_classical_scorer(agiqa_root, tmp_path):
    out = tmp_path / "run"
    r = runner.invoke(app, ["import-agiqa3k", str(agiqa_root), "--out", str(out), "--margin", "0.5"])
    assert r.exit_code == 0, r.output
    assert "8 pairs" in r.output
    r = runner.invoke(app, ["score", str(out), "-m", "classical"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["agree", str(out), "--bootstrap", "200"])
    assert r.exit_code == 0, r.output
    with open(out / "agreement" / "agreement.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert rows[0]["metric"] == "classical" and int(rows[0]["pairs"]) == 8
    r = runner.invoke(app, ["import-agiqa3k", str(agiqa_root), "--out", str(tmp_path / "x"), "--margin", "9"])
    # an AttiqaError: `genbench` (run_app) prints it as one line with exit code 2
    assert isinstance(r.exception, AttiqaError) and "keeps some" in str(r.exception)  # session 54: the margin
    r = runner.invoke(app, ["import-agiqa3k", str(tmp_path / "nope"), "--out", str(tmp_path / "y")])
    assert isinstance(r.exception, AttiqaError) and "dataset root not found" in str(r.exception)


def test_cluster_bootstrap_resamples_whole_groups():
    from genbench.agreement import bootstrap_ci

    # 5 prompts, each with 40 pairs that are all right or all wrong: the evidence is 5 values, not 200
    credits = np.repeat([1.0, 0.0, 1.0, 1.0, 0.0], 40)
    groups = np.repeat(["p0", "p1", "p2", "p3", "p4"], 40)
    lo_pair, hi_pair = bootstrap_ci(credits, 4000, 0)
    lo_clu, hi_clu = bootstrap_ci(credits, 4000, 0, groups=groups)
    lo_five, hi_five = bootstrap_ci(np.array([1.0, 0.0, 1.0, 1.0, 0.0]), 4000, 0)
    assert hi_clu - lo_clu > 2.5 * (hi_pair - lo_pair)
    assert (lo_clu, hi_clu) == pytest.approx((lo_five, hi_five), abs=0.05)
    assert lo_clu <= 0.6 <= hi_clu


def test_agree_cluster_by_a_manifest_field(agiqa_root, tmp_path):
    out = tmp_path / "run"
    import_agiqa3k(agiqa_root, out, margin=0.5)
    assert runner.invoke(app, ["score", str(out), "-m", "classical"]).exit_code == 0
    r = runner.invoke(app, ["agree", str(out), "--bootstrap", "300", "--cluster-by", "prompt_id"])
    assert r.exit_code == 0, r.output
    info = json.loads((out / "agreement" / "agreement.json").read_text())
    assert info["settings"]["cluster_by"] == "prompt_id"
    r = runner.invoke(app, ["agree", str(out), "--cluster-by", "no_such_field"])
    assert r.exception is not None and "no_such_field" in str(r.exception)


def test_bench_groups_agiqa3k_by_prompt_so_no_prompt_is_on_both_sides(agiqa_root):
    """`attiqa bench --group-by auto|prompt` on AGIQA-3k: every split keeps a prompt's images on one side."""
    from attiqa.bench_splits import group_keys, random_splits
    from attiqa.datasets import get_dataset

    ds = get_dataset("agiqa3k", agiqa_root)
    groups = group_keys(ds, "auto")
    assert groups == group_keys(ds, "prompt") == [r[1] for r in ROWS]
    splits = random_splits(len(ds), 6, 0, test_fraction=0.5, groups=groups)
    for sp in splits:
        assert sorted(sp.train + sp.test) == list(range(len(ds)))
        assert not {groups[i] for i in sp.train} & {groups[i] for i in sp.test}
    assert len({sp.test for sp in splits}) == 2  # both prompts get tested across the seeds
    assert group_keys(ds, None) is None  # --group-by none: image-wise, the paper's random splits


def test_a_linked_image_folder_is_the_users_layout_but_a_linked_image_is_still_refused(agiqa_root, tmp_path):
    """Session 26 (a newcomer's pass): ``ROOT/AGIQA-3K`` as a link to the images elsewhere was refused as
    'outside the run's image folders' right after the import wrote it; the linked folder is the image root
    now. An image that links out of that folder stays outside (the security rule of genbench.manifest)."""
    root = tmp_path / "linked"
    root.mkdir()
    (root / "data.csv").write_bytes((agiqa_root / "data.csv").read_bytes())
    (root / "AGIQA-3K").symlink_to(agiqa_root / "AGIQA-3K")
    res = import_agiqa3k(root, tmp_path / "run")
    assert res.pairs == len(load_pairs(tmp_path / "run")) > 0
    r = runner.invoke(app, ["score", str(tmp_path / "run"), "-m", "classical"])
    assert r.exit_code == 0, r.output
    secret = tmp_path / "secret.jpg"
    (agiqa_root / "AGIQA-3K" / "sd1.5_normal_001.jpg").rename(secret)
    (agiqa_root / "AGIQA-3K" / "sd1.5_normal_001.jpg").symlink_to(secret)
    refused = r"sd1.5_normal_001.jpg' is a symbolic link to .*secret.jpg, outside the run's image folders"
    with pytest.raises(AttiqaError, match=refused):
        import_agiqa3k(root, tmp_path / "run2")


def _agree_warnings(agiqa_root, tmp_path, metrics):
    """(run folder, agree's warning lines) of an import of ``agiqa_root`` scored with ``metrics``."""
    out = tmp_path / "run"
    assert runner.invoke(app, ["import-agiqa3k", str(agiqa_root), "--out", str(out)]).exit_code == 0
    r = runner.invoke(app, ["score", str(out), "-m", metrics, "-w", "0"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["agree", str(out), "--bootstrap", "200"])
    assert r.exit_code == 0, r.output
    warned: list[str] = []  # a warning wrapped at 80 columns goes on in lines indented by two spaces
    going_on = False
    for line in r.output.splitlines():
        if line.startswith("warning:"):
            warned.append(line)
        elif going_on and line.startswith("  "):
            warned[-1] += " " + line.strip()
        going_on = line.startswith("warning:") or (going_on and line.startswith("  "))
    return out, warned


def test_agree_warns_when_a_metric_was_trained_on_the_runs_images(agiqa_root, tmp_path):
    """**Was** (session 41): `genbench agree` on an AGIQA-3k run reported attiqa-agiqa3k (fitted on all of
    agiqa3k-dev) as any other metric — near 100 % on its own training images, without a word. Now the
    registry's ``trained_on`` (attiqa/data/models.json), matched by name or by the weights' SHA-256 (a copy
    passed as a path), against the run's source: one warning line per metric and a ``trained_on`` column."""
    import shutil

    from attiqa.scorers.zoo import resolve_weights

    copy = tmp_path / "mine.safetensors"
    shutil.copyfile(resolve_weights("attiqa-agiqa3k"), copy)
    out, warned = _agree_warnings(agiqa_root, tmp_path, f"classical,attiqa-agiqa3k,{copy}")
    assert warned == [
        f"warning: {m} was trained on AGIQA-3K images; agreement on them is not a held-out figure"
        for m in ("attiqa-agiqa3k", "mine")
    ], warned
    with open(out / "agreement" / "agreement.csv", newline="") as fh:
        rows = {row["metric"]: row["trained_on"] for row in csv.DictReader(fh)}
    assert rows == {"attiqa-agiqa3k": "agiqa3k", "classical": "", "mine": "agiqa3k"}
    results = json.loads((out / "agreement" / "agreement.json").read_text())["results"]
    assert {r["metric"]: r["trained_on"] for r in results} == rows


def test_eval_and_agree_both_know_an_exported_copy_of_a_shipped_model(agiqa_root, tmp_path):
    """**Was**: the two training-fit warnings knew a shipped model in two ways — `attiqa eval` by the name
    in the checkpoint's card only, `genbench agree` by the name given or the file's SHA-256 only. An
    `attiqa export` of attiqa-agiqa3k (its card's name kept, other bytes) was warned about by eval and not
    by agree, which reported its near-perfect agreement on its own training images as held out. Now one
    test, `attiqa.scorers.zoo.shipped_model` (the name given, the card's name, or the weights' SHA-256),
    behind both."""
    from attiqa.cli.app import app as attiqa_app
    from attiqa.scorers.zoo import resolve_weights

    exported = tmp_path / "exported.safetensors"
    r = runner.invoke(attiqa_app, ["export", str(resolve_weights("attiqa-agiqa3k")), str(exported)])
    assert r.exit_code == 0, r.output
    _, warned = _agree_warnings(agiqa_root, tmp_path, f"classical,{exported}")
    assert warned == [
        "warning: exported was trained on AGIQA-3K images; agreement on them is not a held-out figure"
    ]
    args = ["eval", "agiqa3k", "--root", str(agiqa_root), "-m", str(exported), "-w", "0", "-q", "--no-cache"]
    r = runner.invoke(attiqa_app, [*args, "-o", str(tmp_path / "eval")])
    assert r.exit_code == 0, r.output
    assert "attiqa-agiqa3k was trained on AGIQA-3K images" in " ".join(r.output.split()), r.output


def test_a_retrain_that_keeps_a_shipped_models_name_is_not_warned_about(agiqa_root, tmp_path):
    """Session 43: **was** any checkpoint whose card (or file) is named `attiqa-agiqa3k` taken for the
    shipped model: a user's own retrain saved under that name got "trained on AGIQA-3K images" from eval and
    agree alike. Now the weights decide when they are at hand: the file's SHA-256, or the tensors' alone
    (``tensors_sha256``: the card left out, so an export is still known, test above); the name only
    without weights to hash."""
    from attiqa.cli.app import app as attiqa_app
    from attiqa.io.checkpoints import load_checkpoint, save_checkpoint, tensors_sha256
    from attiqa.scorers.zoo import resolve_weights, shipped_model

    tensors, card = load_checkpoint(resolve_weights("attiqa-agiqa3k"))
    assert card["name"] == "attiqa-agiqa3k"
    first = sorted(k for k, v in tensors.items() if v.is_floating_point())[0]
    tensors[first] = tensors[first] + 0.01  # other weights: a retrain
    retrained = save_checkpoint(tmp_path / "attiqa-agiqa3k.safetensors", tensors, card, half=True)
    assert tensors_sha256(retrained) != tensors_sha256(resolve_weights("attiqa-agiqa3k"))
    _, warned = _agree_warnings(agiqa_root, tmp_path, f"classical,{retrained}")
    assert warned == []
    args = ["eval", "agiqa3k", "--root", str(agiqa_root), "-m", str(retrained), "-w", "0", "-q", "--no-cache"]
    r = runner.invoke(attiqa_app, [*args, "-o", str(tmp_path / "eval")])
    assert r.exit_code == 0, r.output
    assert "trained on" not in " ".join(r.output.split()), r.output
    assert shipped_model({"name": "attiqa-agiqa3k", "card_name": None})  # no weights hashed: the name


def test_an_import_killed_between_its_files_is_refused_until_it_is_run_again(
    agiqa_root, tmp_path, genbench_cli
):
    """**Was**: an import writes manifest.jsonl and prefs.csv as two atomic files; `kill -9` between them
    (here a re-import at --margin 1.5 over one at 0.5) left the new pairs with the old votes, and `genbench
    score` / `genbench agree` ran on them. Now the reading commands say it in one line until the same
    import, run again, has written them all."""
    from helpers import run_attiqa, signal_after

    from genbench.manifest import read_records

    def _voted(run):
        with open(run / "prefs.csv", newline="") as fh:
            return {r["pair_id"] for r in csv.DictReader(fh)}

    out = tmp_path / "run"
    assert genbench_cli("import-agiqa3k", agiqa_root, "--out", out).returncode == 0
    args = ["import-agiqa3k", agiqa_root, "--out", out, "--margin", "1.5"]
    hook = signal_after(tmp_path, "replace", "manifest.jsonl", 1, "SIGKILL", "genbench.cli")
    assert run_attiqa(*args, **hook).returncode == -9
    assert {r["pair_id"] for r in read_records(out)} != _voted(out)  # the new pairs, the old votes
    for cmd in (["score", out, "-m", "classical"], ["agree", out]):
        res = genbench_cli(*cmd)
        said = [ln for ln in res.stderr.splitlines() if ln.strip()]
        assert res.returncode == 2 and said == [
            f"error: the import into {out} did not finish: rerun the same import command"
        ], res.stderr
    assert not (out / "scores").exists()
    assert genbench_cli(*args).returncode == 0
    assert _voted(out) == {p.pair_id for p in load_pairs(out)} and len(_voted(out)) == 5
    assert genbench_cli("score", out, "-m", "classical").returncode == 0


def test_a_mos_outside_the_scale_or_no_usable_image_is_told_with_its_own_fix(agiqa_root, tmp_path):
    """**Was** a hand-edited data.csv's mos_quality 57.3 (0-5 scale) imported without a word, that image
    the preferred one of all its pairs; and with no image on disk, or no two sharing a prompt, the fix said
    was "lower --margin", which no margin helps. Now the cell is named, and each case gets its own fix."""
    table = agiqa_root / "data.csv"
    good = table.read_text()
    table.write_text(good.replace(",a cat,,,,0.9,", ",a cat,,,,57.3,"))
    with pytest.raises(AttiqaError, match=r"mos_quality 57.3 of AttnGAN_normal_001.jpg is outside .* 0-5"):
        import_agiqa3k(agiqa_root, tmp_path / "a")
    table.write_text(good)
    for image in (agiqa_root / "AGIQA-3K").iterdir():
        if image.name not in ("AttnGAN_normal_001.jpg", "glide_normal_002.jpg"):
            image.unlink()  # one image of each prompt left
    with pytest.raises(AttiqaError, match="no two of the 2 images on disk share a prompt") as err:
        import_agiqa3k(agiqa_root, tmp_path / "b")
    assert "--margin" not in str(err.value)
    for image in (agiqa_root / "AGIQA-3K").iterdir():
        image.unlink()
    with pytest.raises(AttiqaError, match="none of the score file's 7 images is on disk") as err:
        import_agiqa3k(agiqa_root, tmp_path / "c")
    assert "--margin" not in str(err.value)
    assert not any((tmp_path / n).exists() for n in "abc")
