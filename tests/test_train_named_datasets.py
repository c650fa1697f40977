"""`attiqa train --config`, `attiqa bench` and `attiqa eval` on the named datasets in their official download
layouts (docs/robustness.md). The datasets are the fixtures (`dataset_layouts.LAYOUTS`); the network is the
tiny random one. Each test failed before its fix."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import TINY
from dataset_layouts import LAYOUTS, pic

from attiqa.bench_splits import group_keys
from attiqa.config import load_config
from attiqa.datasets import get_dataset
from attiqa.errors import AttiqaError
from attiqa.protocols import dataset_split


def test_a_run_config_fine_tunes_on_a_named_dataset_split_by_its_groups(
    tmp_path, cli, layout, dataset_config
):
    """`finetune: {dataset: kadid, root: KADID}` **was** "unknown key 'dataset'" (a user had to rewrite the
    official dmos.csv as image,mos — and got an image-wise split, every reference on both sides); now the
    adapter reads it, the split is bench's (grouped by reference), the card says dataset and split, and
    `attiqa eval kadid10k --root ROOT --model CKPT` runs on the checkpoint."""
    root = layout(tmp_path, "kadid10k")
    cfg = dataset_config(tmp_path, dataset="kadid", root=root)
    fc = load_config(cfg).finetune
    assert fc is not None and fc.dataset == "kadid10k"
    data = dataset_split(fc)
    refs = [get_dataset("kadid10k", root).items[0].meta["ref"]]  # the adapter's group key
    by_image = {str(it.image): it.meta["ref"] for it in get_dataset("kadid10k", root)}
    train_refs = {by_image[str(data.paths[i])] for i in data.train}
    held_refs = {by_image[str(data.paths[i])] for i in data.val}
    assert refs and train_refs and held_refs and not train_refs & held_refs
    res = cli("train", "--config", cfg)
    assert res.returncode == 0, res.stderr
    card = json.loads((tmp_path / "run" / "finetune" / "last.json").read_text())
    assert card["dataset"]["csv"] == f"kadid10k:{root}" and "group by auto" in card["dataset"]["split"]
    assert card["dataset"]["n_train"] + card["dataset"]["n_val"] == 6
    ckpt = tmp_path / "run" / "finetune" / "last.safetensors"
    res = cli(
        "eval", "kadid10k", "--root", root, "-m", ckpt, "-o", tmp_path / "ev", "-w", "0", "-q", "--no-cache"
    )
    assert res.returncode == 0, res.stderr
    assert json.loads((tmp_path / "ev" / "summary.json").read_text())["n"] == 6


@pytest.mark.parametrize("case", ["koniq10k", "spaq", "agiqa3k", "agiqa3k-xlsx", "pipal-readme", "clive"])
def test_each_official_layout_gives_a_run_config_its_split(tmp_path, case, layout, dataset_config):
    """KonIQ, SPAQ, CLIVE image-wise; AGIQA-3k by prompt, PIPAL by reference: no group on both sides."""
    root = layout(tmp_path, case)
    name = LAYOUTS[case][0]
    if case == "pipal-readme":  # its fixture repeats images across references: copies share a group
        for k, p in enumerate(sorted((root / "training" / "Distortion").rglob("*.bmp"))):
            pic(p, 20 + k)
    fc = load_config(dataset_config(tmp_path, dataset=name, root=root, val_fraction=0.34)).finetune
    assert fc is not None
    data = dataset_split(fc)
    assert data.source == f"{name}:{root}" and data.train and data.val
    keys = group_keys(get_dataset(name, root), "auto")
    if keys is not None:
        group = dict(zip((str(it.image) for it in get_dataset(name, root)), keys, strict=True))
        sides = [{group[str(data.paths[i])] for i in side} for side in (data.train, data.val)]
        assert not sides[0] & sides[1] and "group by auto" in data.kind
    else:
        assert "random" in data.kind


def test_flive_in_a_run_config_takes_its_official_split(tmp_path, layout, dataset_config):
    """FLIVE's labels640.csv / labels=640_padded.csv split, as `attiqa bench` takes it (paper §4.1); the
    fixture holds out one image, so it is refused, naming the split."""
    root = layout(tmp_path, "flive")
    fc = load_config(dataset_config(tmp_path, dataset="flive", root=root)).finetune
    assert fc is not None
    with pytest.raises(AttiqaError, match=r"the official split of its 7 images gives 4 to train on and 1"):
        dataset_split(fc)


@pytest.mark.parametrize(
    ("settings", "said"),
    [
        (
            {"dataset": "kadid1ok", "root": "ROOT"},
            "finetune.dataset: unknown dataset 'kadid1ok' (did you mean 'kadid10k'?)",
        ),
        ({"dataset": "kadid10k"}, "finetune.root: no root given"),
        ({"dataset": "kadid10k", "root": "ROOT/nowhere"}, "finetune.root: ROOT/nowhere is not a folder"),
        ({"dataset": "kadid10k", "root": "ROOT", "csv": "ROOT/dmos.csv"}, "both given — keep one of them"),
        ({"dataset": "folder", "root": "ROOT"}, "set finetune.csv to it instead"),
    ],
)
def test_a_dataset_setting_that_cannot_work_is_one_line_when_the_config_is_read(
    tmp_path, cli, settings, said, layout, dataset_config
):
    root = layout(tmp_path, "kadid10k")
    cfg = dataset_config(tmp_path, **{k: str(v).replace("ROOT", str(root)) for k, v in settings.items()})
    res = cli("train", "--config", cfg)
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.returncode == 2 and len(lines) == 1, res.stderr
    assert said.replace("ROOT", str(root)) in lines[0] and "run.yaml" in lines[0]
    assert not (tmp_path / "run").exists()


def grown_koniq(layout: Callable[[Path, str], Path], tmp_path: Path, name: str, extra: int) -> Path:
    """Session 48's KonIQ layout with ``extra`` more photos in both score files (its 6 leave one to test on
    in an 80/20 split; bench needs 2)."""
    root = layout(tmp_path, "koniq10k")
    root = root.rename(tmp_path / name)
    for file in ("koniq10k_distributions_sets.csv", "koniq10k_scores_and_distributions.csv"):
        with open(root / file, newline="") as fh:
            rows = list(csv.reader(fh))
        for k in range(extra):
            row = list(rows[1 + k % (len(rows) - 1)])
            row[0] = f"x{k}.jpg"
            if file.endswith("sets.csv"):
                row[7] = f"{float(row[7]) + 0.37 * (k + 1):.2f}"
            rows.append(row)
        with open(root / file, "w", newline="") as fh:
            csv.writer(fh).writerows(rows)
    for k in range(extra):
        pic(root / "1024x768" / f"x{k}.jpg", 50 + k)
    return root


@pytest.fixture()
def tiny_yaml(tmp_path: Path) -> Path:
    p = tmp_path / "ft.yaml"
    p.write_text("backbone: tiny\npretrained_backbone: false\nhead_hidden: 8\n" +
                 "".join(f"{k}: {v}\n" for k, v in TINY.items()))  # fmt: skip
    return p


def test_a_cross_rerun_with_another_test_dataset_tests_on_it(tmp_path, cli, tiny_yaml, layout):
    """`attiqa bench cross -d A -d B`, then the same with `-d C` added: **was** a KeyError traceback (A's
    finished run.json, tested on B only, was reused for the table's A→C cell); a test set whose score file
    changed was likewise reported with the old numbers. Now a finished run is reused only for the same
    test sets; the same command again reuses every run."""
    kadid = layout(tmp_path, "kadid10k")
    k1, k2 = grown_koniq(layout, tmp_path, "k1", 8), grown_koniq(layout, tmp_path, "k2", 10)
    out = tmp_path / "bench"
    args = ["bench", "cross", "-d", f"kadid10k={kadid}", "-d", f"koniq10k={k1}", "-c", tiny_yaml, "-q"]
    args += ["-o", out]
    assert cli(*args).returncode == 0
    res = cli(*args, "-d", f"k2:koniq10k={k2}")
    assert res.returncode == 0, res.stderr
    table = json.loads((out / "cross.json").read_text())["summary"]
    assert set(table["KADID-10k"]) == {"KonIQ", "k2"} and table["KADID-10k"]["k2"]["srocc"] is not None
    runs = sorted(out.glob("cross/*/split00/run.json"))
    before = [p.stat().st_mtime_ns for p in runs]
    assert cli(*args, "-d", f"k2:koniq10k={k2}").returncode == 0
    assert [p.stat().st_mtime_ns for p in runs] == before


def test_a_group_key_the_dataset_lacks_names_the_close_key_and_the_setting_that_chose_it(
    tmp_path, cli, tiny_yaml, layout, dataset_config
):
    """`--group-by reference` (the help's word for KADID's group) and a run config's `group_by: reference`:
    **was** "… no 'reference' to group by (their metadata: distortion, level, ref, var); use --group-by none"
    — for the config, an option `attiqa train` does not take; now "(did you mean 'ref'?)" and the config's
    own setting."""
    root = layout(tmp_path, "kadid10k")
    res = cli("bench", "single", "-d", f"kadid10k={root}", "-c", tiny_yaml, "-o", tmp_path / "b",
              "--group-by", "reference")  # fmt: skip
    assert (
        res.returncode == 2 and "(did you mean 'ref'?)" in res.stderr and "use --group-by none" in res.stderr
    )
    res = cli(
        "train", "--config", dataset_config(tmp_path, dataset="kadid10k", root=root, group_by="reference")
    )
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.returncode == 2 and len(lines) == 1, res.stderr
    assert "(did you mean 'ref'?)" in lines[0] and "use finetune.group_by: none" in lines[0]
    assert not (tmp_path / "run").exists()


def test_group_by_is_read_alike_by_bench_and_train(tmp_path, cli, tiny_yaml, layout, dataset_config):
    """**Was**: `attiqa bench --group-by NONE` split image-wise but a run config's `group_by: NONE` was read
    as a metadata key ("no 'NONE' to group by"), and `--group-by AUTO` as a key by both; an empty value was
    "no '' to group by". Now one rule (`config.read_group_by`): auto and none in any case, a key as written,
    an empty value the same one line naming the setting."""
    root = layout(tmp_path, "kadid10k")
    with open(root / "dmos.csv", newline="") as fh:  # one reference image: grouped by it, no split exists
        rows = list(csv.reader(fh))
    with open(root / "dmos.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([rows[0], *([r[0], "I01.png", *r[2:]] for r in rows[1:])])
    one_ref = "all 6 items share one 'ref'"

    def bench(group_by: str) -> list[str]:
        res = cli("bench", "single", "-d", f"kadid10k={root}", "-c", tiny_yaml, "-o", tmp_path / "b",
                  "--group-by", group_by)  # fmt: skip
        assert res.returncode == 2, res.stderr
        return [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]

    def train(group_by: str) -> list[str]:
        cfg = dataset_config(tmp_path, dataset="kadid10k", root=root, group_by=group_by)
        res = cli("train", "--config", cfg)
        assert res.returncode == 2, res.stderr
        return [ln for ln in res.stderr.splitlines() if ln.strip()]

    for word in ("AUTO", "Auto"):
        assert one_ref in bench(word)[0] and one_ref in train(word)[0]
    for word in ("NONE", "None"):
        assert "split split00 (random, seed 0) of its 6 images" in bench(word)[0]  # image-wise: 5 and 1
        assert "the random split of its 6 images" in train(word)[0]
    words = "an empty value — give auto (each dataset's reference image or prompt), none (image-wise splits)"
    assert bench("")[0].startswith(f"error: --group-by: {words}")
    (said,) = train('""')
    assert said.startswith("error:") and f"finetune.group_by: {words}" in said
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("name", "case", "file"),
    [
        ("koniq10k", "spaq", "Annotations/MOS and Image attribute scores.xlsx"),
        ("kadid10k", "pipal", "Train_Label/A0001.txt"),
        ("clive", "flive", "database/labels_image.csv"),
        ("flive", "agiqa3k", "data.csv"),
    ],
)
def test_a_root_laid_out_as_another_dataset_is_named_as_such(
    tmp_path, cli, name, case, file, layout, dataset_config
):
    """`attiqa eval koniq10k --root SPAQ/` (and a run config's `dataset: koniq10k` with that root): **was**
    "score file not found under SPAQ/ (looked for …) — expected layout: …", which reads as a broken
    download; now the line says whose layout it is."""
    root = layout(tmp_path, case)
    res = cli("eval", name, "--root", root, "-m", "classical", "-o", tmp_path / "ev", "-q")
    said = f"{root} is laid out as {LAYOUTS[case][0]} ({file} is there): name that dataset"
    assert res.returncode == 2 and said in res.stderr.splitlines()[0], res.stderr
    res = cli("train", "--config", dataset_config(tmp_path, dataset=name, root=root))
    assert res.returncode == 2 and said in res.stderr.splitlines()[0], res.stderr
    assert not (tmp_path / "run").exists() and not (tmp_path / "ev").exists()


@pytest.mark.slow
def test_ctrl_c_to_a_no_resume_run_does_not_offer_the_run_it_trains_over(tmp_path, cli):
    """`attiqa train -c run.yaml --no-resume` over a finished run, Ctrl-C before its first epoch: **was**
    "interrupted: finetune after epoch 1 kept …; rerun the same command with --resume to continue" — the
    earlier run's checkpoint, which --resume then continued with the new settings (the one being trained
    over); now "interrupted before an epoch finished; rerun the same command to continue"."""
    from helpers import run_attiqa, signal_after, tiny_train_config

    cfg = tiny_train_config(tmp_path, epochs=1)
    assert cli("train", "-c", cfg).returncode == 0  # the finished run (in this process)
    ctrl_c = signal_after(tmp_path, "replace", "config.json", 1, "SIGINT", "attiqa.cli")
    cut = run_attiqa("train", "-c", cfg, "--no-resume", **ctrl_c)
    assert cut.returncode == 130, cut.stderr[-3000:]
    said = [" ".join(x.split()) for x in cut.stderr.splitlines() if x.startswith("interrupted")]
    assert said == ["interrupted before an epoch finished; rerun the same command to continue"]


def test_a_run_config_fits_the_dataset_score_it_names_and_the_card_says_which(
    tmp_path, cli, layout, dataset_config
):
    """AGIQA-3k's alignment MOS (`finetune.target: mos_align`, as `attiqa bench --target`): **was** no way to
    name it (nor the dataset); now fitted and recorded in the card; a typo is one line with the close
    name, and a target without a dataset is refused."""
    root = layout(tmp_path, "agiqa3k")
    cfg = dataset_config(tmp_path, dataset="agiqa3k", root=root, target="mos_align", val_fraction=0.34)
    assert cli("train", "--config", cfg).returncode == 0
    card = json.loads((tmp_path / "run" / "finetune" / "last.json").read_text())
    align = sorted(x.mos for x in get_dataset("agiqa3k", root, target="mos_align"))
    assert card["dataset"]["target"] == "mos_align" and align[0] <= card["mos_range"][0] < align[-1]
    res = cli("train", "--config", cfg, "--set", "finetune.target=mos_algin", "--no-resume")
    assert res.returncode == 2 and "'mos_algin' is not a score of agiqa3k" in res.stderr, res.stderr
    assert "(did you mean 'mos_align'?)" in res.stderr
    res = cli(
        "train", "--config", cfg, "--set", 'finetune.dataset=""', "--set", f"finetune.csv={root}/data.csv"
    )
    assert res.returncode == 2 and "finetune.target: chooses a score of finetune.dataset" in res.stderr


def test_eval_of_a_checkpoint_on_the_dataset_its_card_names_says_it_is_its_training_fit(
    tmp_path, cli, layout, dataset_config
):
    """The fixture's KADID-10k scores on a 0.1 grid, as a coarse rating scale gives: the MOS-range rule
    ("holds the two images that bound the MOS it was trained on") says nothing there on purpose, so
    `attiqa eval kadid10k` of a model `attiqa train` fine-tuned on that copy **was** without a word that
    4 of its 6 images were trained on; now the card's dataset says so. Another dataset: no note."""
    root = layout(tmp_path, "kadid10k")
    assert cli("train", "--config", dataset_config(tmp_path, dataset="kadid10k", root=root)).returncode == 0
    ckpt = tmp_path / "run" / "finetune" / "last.safetensors"
    for name, case in (("kadid10k", root), ("agiqa3k", layout(tmp_path, "agiqa3k"))):
        out = tmp_path / f"ev-{name}"
        res = cli("eval", name, "--root", case, "-m", ckpt, "-o", out, "-w", "0", "-q", "--no-cache")
        assert res.returncode == 0, res.stderr
        warned = json.loads((out / "summary.json").read_text())["warnings"]
        if name == "kadid10k":
            assert any("fine-tuned on images of this KADID-10k table" in w for w in warned), warned
            assert any("training fit" in w for w in warned)
        else:
            assert not any("training fit" in w for w in warned), warned


def test_a_bench_table_of_datasets_split_two_ways_says_which_is_which(tmp_path, cli, tiny_yaml, layout):
    """KADID-10k (grouped by reference) and KonIQ (image-wise) in one `bench single` table: its note **was**
    "(group, random splits; …)" — which dataset was split how unsaid; cross's note said nothing of splits.
    Now "splits: KADID-10k group, KonIQ random"."""
    kadid, koniq = layout(tmp_path, "kadid10k"), grown_koniq(layout, tmp_path, "k1", 8)
    for protocol in ("single", "cross"):
        out = tmp_path / protocol
        res = cli("bench", protocol, "-d", f"kadid10k={kadid}", "-d", f"koniq10k={koniq}", "-c", tiny_yaml,
                  "-o", out, "-q", "--repeats", "1")  # fmt: skip
        assert res.returncode == 0, res.stderr
        assert "(splits: KADID-10k group, KonIQ random" in (out / f"{protocol}.md").read_text()


def test_rows_without_a_score_are_said_by_bench_and_train_as_eval_says_them(
    tmp_path, cli, tiny_yaml, layout, dataset_config
):
    """A KonIQ score file with one empty MOS cell (a spreadsheet's gap): `eval` says "1 row(s) without a
    finite mos … left out"; `bench` and a run config's `finetune.dataset` **were** silent (the row was
    left out of training without a word); now they say it in the same words."""
    root = grown_koniq(layout, tmp_path, "k1", 8)
    for file in ("koniq10k_distributions_sets.csv", "koniq10k_scores_and_distributions.csv"):
        with open(root / file, newline="") as fh:
            rows = list(csv.reader(fh))
        rows[2][7] = ""
        if file.endswith("distributions.csv"):
            rows[2][9] = ""  # MOS_zscore
        with open(root / file, "w", newline="") as fh:
            csv.writer(fh).writerows(rows)
    said = f"koniq10k ({root}): 1 row(s) without a finite mos (empty, NaN or inf) left out"
    res = cli("bench", "single", "-d", f"koniq10k={root}", "-c", tiny_yaml, "-o", tmp_path / "b", "-q",
              "--repeats", "1")  # fmt: skip
    assert res.returncode == 0 and said in " ".join(res.stderr.split()), res.stderr
    res = cli("train", "--config", dataset_config(tmp_path, dataset="koniq10k", root=root))
    assert res.returncode == 0 and said in " ".join(res.stderr.split()), res.stderr
