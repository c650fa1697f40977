"""The paper's protocols (Tables 2, 3, 4, 6) end to end with the tiny backbone on ~30 real photos degraded
at known levels: checks the machinery (files, table layout, split sizes, medians, resume), not the numbers.
"""

from __future__ import annotations

import csv
import json
import statistics
import time
from pathlib import Path

import pytest
from PIL import Image

from attiqa.bench_setup import bench_dataset, load_base_config
from attiqa.bench_splits import fraction_splits, random_splits
from attiqa.datasets import get_dataset
from attiqa.distortions import apply_distortion
from attiqa.errors import AttiqaError, ConfigError
from attiqa.evaluation.cache import ScoreCache
from attiqa.io.checkpoints import read_card
from attiqa.protocols import run_protocol

LEVELS = range(6)  # 0 = undistorted .. 5


def write_degraded_set(
    folder: Path, photos: dict[str, Image.Image], distortion: str, mos_of, split=None
) -> Path:
    """5 photos x 6 levels = 30 images; MOS = mos_of(level). ``split(content_index)`` adds a split column."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for c, (name, img) in enumerate(photos.items()):
        s = 56 / min(img.size)
        small = img.resize((round(img.width * s), round(img.height * s)), Image.BICUBIC)
        for lv in LEVELS:
            rel = f"{name}_{distortion}{lv}.png"
            apply_distortion(small, distortion, lv, seed=c).save(folder / rel)
            row = {"image": rel, "mos": f"{mos_of(lv):.4f}"}
            if split:
                row["split"] = split(c)
            rows.append(row)
    with open(folder / "mos.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return folder / "mos.csv"


@pytest.fixture(scope="module")
def blur_csv(tmp_path_factory, photos) -> Path:
    return write_degraded_set(
        tmp_path_factory.mktemp("blur"), photos, "gaussian_blur", lambda lv: 4.6 - 0.8 * lv
    )


@pytest.fixture(scope="module")
def noise_csv(tmp_path_factory, photos) -> Path:
    return write_degraded_set(
        tmp_path_factory.mktemp("noise"), photos, "gaussian_noise", lambda lv: 90 - 15 * lv
    )


@pytest.fixture(scope="module")
def base_yaml(tmp_path_factory) -> Path:
    """A whole run config; the protocol takes its finetune: section (same schema as `attiqa train`)."""
    p = tmp_path_factory.mktemp("cfg") / "run.yaml"
    p.write_text(
        "out_dir: ignored\n"
        "finetune:\n"
        "  backbone: tiny\n  pretrained_backbone: false\n  head_hidden: 16\n  mos_hidden: 16\n"
        "  epochs: 2\n  batch_size: 8\n  lr: 0.003\n  resize_shorter: 48\n  crop_size: 40\n"
        "  num_workers: 0\n  device: cpu\n"
    )
    return p


def md_rows(md: str) -> list[list[str]]:
    return [
        [c.strip() for c in ln.strip().strip("|").split("|")] for ln in md.splitlines() if ln.startswith("|")
    ]


def test_base_config_reads_the_finetune_section_and_rejects_typos(base_yaml, tmp_path):
    cfg = load_base_config(base_yaml)
    assert cfg.backbone == "tiny" and cfg.epochs == 2 and cfg.crop_size == 40 and not cfg.freeze_backbone
    bad = tmp_path / "bad.yaml"
    bad.write_text("epochs: 2\ncrop_sise: 40\n")
    with pytest.raises(AttiqaError, match="crop_size"):
        load_base_config(bad)
    # the file named once and apart from the key (was "bad.yaml.lr: ..."), as load_config names it
    bad.write_text("finetune:\n  lr: -1\n")
    with pytest.raises(ConfigError) as err:
        load_base_config(bad)
    assert str(err.value) == f"{bad}: finetune.lr: must be > 0, got -1.0" and err.value.where == str(bad)
    with pytest.raises(ConfigError, match=r"^base config: lr: must be > 0"):
        load_base_config({"lr": -1})


def test_split_generators_sizes_and_determinism():
    sp = random_splits(30, 3, seed=7)
    assert [len(s.train) for s in sp] == [24] * 3 and [len(s.test) for s in sp] == [6] * 3
    assert all(set(s.train).isdisjoint(s.test) and len(set(s.train) | set(s.test)) == 30 for s in sp)
    assert len({s.test for s in sp}) == 3  # different seeds, different splits
    assert random_splits(30, 3, seed=7) == sp
    ten = fraction_splits(30, 0.1, 2, seed=0)
    assert [len(s.train) for s in ten] == [3, 3] and [len(s.test) for s in ten] == [27, 27]
    with pytest.raises(AttiqaError):
        fraction_splits(30, 1.5, 1, 0)


def test_single_dataset_protocol_table2(blur_csv, base_yaml, tmp_path):
    ds = get_dataset("folder", blur_csv.parent)
    out = tmp_path / "bench"
    res = run_protocol("single", [bench_dataset(ds, "Blur")], base_yaml, out, repeats=3, method="tiny")
    assert len(res.runs) == 3
    for i, r in enumerate(res.runs):
        assert (r["n_train"], r["n_test"], r["split_kind"], r["seed"]) == (24, 6, "random", i)
        assert r["epoch"] == 2 and len(r["history"]) == 2
        rows = list(
            csv.DictReader((out / "single" / "Blur" / r["split"] / "split.csv").read_text().splitlines())
        )
        assert sum(x["split"] == "train" for x in rows) == 24 and sum(x["split"] == "test" for x in rows) == 6
        assert all(Path(x["image"]).is_absolute() for x in rows)
        assert not list((out / "single" / "Blur" / r["split"] / "finetune").glob("*.safetensors"))
    # the reported number is the median of the runs' last-epoch test SROCC
    assert res.summary["Blur"]["srocc"] == pytest.approx(statistics.median(r["srocc"] for r in res.runs))
    assert res.summary["Blur"]["plcc"] == pytest.approx(statistics.median(r["plcc"] for r in res.runs))
    rows = md_rows((out / "single.md").read_text())
    assert rows[0] == ["Methods", "Blur", ""] and rows[1] == ["---", "---", "---"]
    assert rows[2] == ["", "SROCC", "PLCC"] and rows[3][0] == "tiny"
    assert float(rows[3][1]) == pytest.approx(res.summary["Blur"]["srocc"], abs=5e-4)
    assert float(rows[3][2]) == pytest.approx(res.summary["Blur"]["plcc"], abs=5e-4)
    assert (out / "single.md").read_text().startswith("## Table 2")
    doc = json.loads((out / "single.json").read_text())
    assert doc["protocol"] == "single" and len(doc["runs"]) == 3 and doc["base_config"]["backbone"] == "tiny"
    assert doc["summary"]["Blur"]["runs"] == 3

    # rerunning the same command resumes: nothing is retrained
    stamps = [(out / "single" / "Blur" / r["split"] / "run.json").stat().st_mtime_ns for r in res.runs]
    t0 = time.perf_counter()
    again = run_protocol("single", [bench_dataset(ds, "Blur")], base_yaml, out, repeats=3, method="tiny")
    assert time.perf_counter() - t0 < 5
    assert [
        (out / "single" / "Blur" / r["split"] / "run.json").stat().st_mtime_ns for r in res.runs
    ] == stamps
    assert again.summary == res.summary


def test_official_split_column_is_used_for_single(tmp_path, photos, base_yaml):
    csv_path = write_degraded_set(
        tmp_path / "d",
        photos,
        "contrast",
        lambda lv: 5 - lv * 0.5,
        split=lambda c: "test" if c == 4 else "train",
    )
    res = run_protocol("single", [get_dataset("folder", csv_path)], base_yaml, tmp_path / "o", repeats=5)
    assert len(res.runs) == 1 and res.runs[0]["split_kind"] == "official"
    assert (res.runs[0]["n_train"], res.runs[0]["n_test"]) == (24, 6)
    assert res.method == "tiny (no attribute pretraining)"


def test_data_efficient_protocol_table4(blur_csv, base_yaml, tmp_path):
    ds = get_dataset("folder", blur_csv)
    res = run_protocol(
        "data-efficient", [bench_dataset(ds, "Blur")], base_yaml, tmp_path, repeats=2, fractions=(0.1, 0.2)
    )
    assert [(r["fraction"], r["n_train"], r["n_test"]) for r in res.runs] == [
        (0.1, 3, 27), (0.1, 3, 27), (0.2, 6, 24), (0.2, 6, 24)
    ]  # fmt: skip
    assert set(res.summary["Blur"]) == {"10%", "20%"}
    for pct, fr in (("10%", 0.1), ("20%", 0.2)):
        runs = [r["srocc"] for r in res.runs if r["fraction"] == fr]
        assert res.summary["Blur"][pct]["srocc"] == pytest.approx(statistics.median(runs))
    rows = md_rows((tmp_path / "data-efficient.md").read_text())
    assert rows[0][:2] == ["Methods", "Blur"] and rows[2][1:] == ["10%", "20%"] and len(rows[3]) == 3


def test_cross_dataset_protocol_table3(blur_csv, noise_csv, base_yaml, tmp_path, monkeypatch):
    monkeypatch.setenv("ATTIQA_CACHE", str(tmp_path / "cache"))
    a = bench_dataset(get_dataset("folder", blur_csv), "Blur")
    b = bench_dataset(get_dataset("folder", noise_csv), "Noise")
    res = run_protocol("cross", [a, b], base_yaml, tmp_path / "out", eval_workers=0)
    tmp_path = tmp_path / "out"
    assert len(res.runs) == 2  # one training per train DB
    assert set(res.summary) == {"Blur", "Noise"}
    assert set(res.summary["Blur"]) == {"Noise"} and set(res.summary["Noise"]) == {"Blur"}
    for r in res.runs:
        other = "Noise" if r["dataset"] == "Blur" else "Blur"
        assert r["cross"][other]["n"] == 30  # tested on ALL images of the other dataset
        assert -1 <= r["cross"][other]["srocc"] <= 1
        assert (
            tmp_path / "cross" / r["dataset"] / r["split"] / "cross" / other / "predictions.csv"
        ).is_file()
    rows = md_rows((tmp_path / "cross.md").read_text())
    assert rows[0] == ["Train DB", "Blur", "Noise"] and rows[2] == ["Test DB", "Noise", "Blur"]
    srocc = {r["dataset"]: r["cross"] for r in res.runs}
    assert float(rows[3][1]) == pytest.approx(srocc["Blur"]["Noise"]["srocc"], abs=5e-4)
    # the scores went to `attiqa eval`'s cache (session 35; was OUT/scores.sqlite, whatever ATTIQA_CACHE said)
    with ScoreCache(tmp_path.parent / "cache" / "eval_scores.sqlite") as cache:
        assert cache.count() == 60  # each trained model on the 30 images of the other dataset
    assert not (tmp_path / "scores.sqlite").exists()


def test_bench_cross_no_cache_as_eval(blur_csv, noise_csv, base_yaml, tmp_path):
    """``attiqa bench cross --no-cache`` as ``attiqa eval --no-cache``: no score cache anywhere. **Was**
    (session 34): no such option (exit 2); the bench always kept ``OUT/scores.sqlite``."""
    from helpers import run_attiqa

    data = ["-d", f"Blur:folder={blur_csv}", "-d", f"Noise:folder={noise_csv}"]
    out, cache = tmp_path / "out", tmp_path / "cache"
    res = run_attiqa("bench", "cross", *data, "-c", base_yaml, "-o", out, "--no-cache", "-q",
                     env={"ATTIQA_CACHE": str(cache), "OMP_NUM_THREADS": "1"})  # fmt: skip
    assert res.returncode == 0, res.stderr
    doc = json.loads((out / "cross.json").read_text())
    assert {r["dataset"]: sorted(r["cross"]) for r in doc["runs"]} == {"Blur": ["Noise"], "Noise": ["Blur"]}
    assert not (cache / "eval_scores.sqlite").exists() and not list(out.rglob("*.sqlite"))


def test_linear_probe_freezes_the_backbone_table6(blur_csv, base_yaml, tmp_path):
    ds = get_dataset("folder", blur_csv)
    res = run_protocol("linear-probe", [ds], base_yaml, tmp_path, repeats=1, keep_checkpoints=True)
    card = read_card(res.runs[0]["checkpoint"])
    assert card["linear_probe"] is True and card["config"]["freeze_backbone"] is True
    rows = md_rows((tmp_path / "linear-probe.md").read_text())
    assert rows[0][1] == blur_csv.parent.name and rows[2][1:] == ["SROCC", "PLCC"]  # its folder, not "mos"


def test_protocol_errors_come_before_any_training(blur_csv, base_yaml, tmp_path):
    ds = get_dataset("folder", blur_csv)
    with pytest.raises(AttiqaError, match="did you mean 'cross'"):
        run_protocol("crosss", [ds], base_yaml, tmp_path)
    with pytest.raises(AttiqaError, match="at least two"):
        run_protocol("cross", [ds], base_yaml, tmp_path)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "mos.csv").write_text("image,mos\n" + "".join(f"gone{i}.png,{i}\n" for i in range(12)))
    with pytest.raises(AttiqaError, match="12 of 12 images are missing") as exc:
        run_protocol("single", [get_dataset("folder", broken)], base_yaml, tmp_path / "o", repeats=1)
    assert "gone0.png" in str(exc.value) and "expected layout" in str(exc.value)
    assert not (tmp_path / "o").exists()


# ----------------------------------------------------------------------------------------------------------
# Group-aware splits (issue 15 §2) and the split handed over in memory (issue 17)


@pytest.fixture(scope="module")
def kadid_root(tmp_path_factory, photos) -> Path:
    """A KADID-10k layout (dmos.csv: dist_img, ref_img, dmos) from 5 real reference photos x 6 blur
    levels: what the adapter reads, with the reference image of each item in its metadata."""
    root = tmp_path_factory.mktemp("kadid")
    (root / "images").mkdir()
    rows = ["dist_img,ref_img,dmos,var"]
    for r, img in enumerate(photos.values(), start=1):
        s = 56 / min(img.size)
        small = img.resize((round(img.width * s), round(img.height * s)), Image.BICUBIC)
        small.save(root / "images" / f"I{r:02d}.png")
        for lv in range(1, 7):
            apply_distortion(small, "gaussian_blur", lv - 1, seed=r).save(
                root / "images" / f"I{r:02d}_01_{lv:02d}.png"
            )
            rows.append(f"I{r:02d}_01_{lv:02d}.png,I{r:02d}.png,{5 - 0.6 * lv:.2f},0.1")
    (root / "dmos.csv").write_text("\n".join(rows) + "\n")
    return root


def test_group_aware_splits_put_no_reference_on_both_sides(kadid_root):
    from attiqa.bench_splits import group_keys

    ds = get_dataset("kadid10k", kadid_root)
    groups = group_keys(ds, "auto")  # KADID's natural group: the reference image
    assert groups is not None and len(set(groups)) == 5
    for sp in random_splits(len(ds), 10, seed=0, groups=groups) + fraction_splits(len(ds), 0.4, 5, 0, groups):
        train, test = {groups[i] for i in sp.train}, {groups[i] for i in sp.test}
        assert train and test and not train & test, sp.name
        assert sorted(sp.train + sp.test) == list(range(len(ds)))
    image_wise = random_splits(len(ds), 10, seed=0)  # what `--group-by none` (and the old code) did
    assert any({groups[i] for i in sp.train} & {groups[i] for i in sp.test} for sp in image_wise)
    assert group_keys(ds, None) is None
    with pytest.raises(AttiqaError, match="no 'prompt' to group by .*ref.*--group-by none"):
        group_keys(ds, "prompt")


def agiqa1k_scores_only(root: Path, prompts: int, size: tuple[int, int] = (16, 16)) -> None:
    """AGIQA-1k as its repository's score file holds it (``Image,Score``: no prompts), 2 images a prompt."""
    names = [f"deepai_{k}_{k + 1}_0_{j}.jpg" for k in range(prompts) for j in range(2)]
    (root / "file").mkdir()
    for i, name in enumerate(names):
        Image.new("RGB", size, (25 * i, 90, 160)).save(root / "file" / name)
    (root / "AIGC_all.csv").write_text(
        "Image,Score\n" + "".join(f"{n},{1 + i / 3:.2f}\n" for i, n in enumerate(names))
    )


def test_auto_grouping_of_a_dataset_whose_file_has_no_groups_splits_image_wise_and_says_so(tmp_path, capsys):
    """AGIQA-1k's ``Image,Score`` file holds no prompts: ``--group-by auto`` (the default) refused the dataset
    ("1080 of 1080 items have no 'prompt'"); now it splits image-wise and says why, while asking for
    ``--group-by prompt`` outright still refuses."""
    from attiqa.bench_splits import group_keys

    agiqa1k_scores_only(tmp_path, 3)
    ds = get_dataset("agiqa1k", tmp_path)
    assert group_keys(ds, "auto") is None
    out = " ".join(capsys.readouterr().err.split())  # the console's warnings go to stderr, wrapped
    assert "agiqa1k" in out and "no item has a 'prompt' to group by" in out and "image-wise" in out
    with pytest.raises(AttiqaError, match="6 of 6 items have no 'prompt' to group by .*--group-by none"):
        group_keys(ds, "prompt")


def test_a_grouped_protocol_trains_in_memory_and_tests_on_unseen_references(kadid_root, base_yaml, tmp_path):
    ds = get_dataset("kadid10k", kadid_root)
    res = run_protocol("single", [ds], base_yaml, tmp_path, repeats=2, keep_checkpoints=True)
    items = ds.items
    for r in res.runs:
        assert r["split_kind"] == "group" and (r["n_train"], r["n_test"]) == (24, 6)
        record = list(csv.DictReader((tmp_path / "single" / "KADID-10k" / r["split"] / "split.csv").open()))
        refs = {side: {next(it.meta["ref"] for it in items if str(it.image) == x["image"]) for x in record
                       if x["split"] == side} for side in ("train", "test")}  # fmt: skip
        assert len(refs["test"]) == 1 and not refs["train"] & refs["test"]
        card = read_card(r["checkpoint"])  # trained on the split in memory, not on a CSV
        assert card["dataset"]["csv"] == f"kadid10k:{kadid_root}" and card["config"]["csv"] == ""
        assert card["dataset"]["n_train"] == 24 and card["dataset"]["split"].startswith(r["split"])
    assert "group splits" in res.table


def _tiny_init(path: Path, seed: int) -> Path:
    """A pretrained-checkpoint stand-in (tiny backbone, weights from ``seed``) written to ``path``."""
    import torch

    from attiqa.models import AttiqaModel, create_backbone, save_model

    torch.manual_seed(seed)
    model = AttiqaModel(create_backbone("tiny"), head_hidden=16, mos_hidden=8)
    return save_model(model, path, card={"name": "tiny"})


def test_a_rerun_after_the_init_checkpoint_was_retrained_trains_again(blur_csv, base_yaml, tmp_path):
    """A finished run is reused only for the same weights: after the pretrained checkpoint was trained again
    at the same path, the same command gives what a fresh bench of the new checkpoint gives. **Was**: the
    run's fingerprint held the checkpoint's path, so the old checkpoint's numbers came back."""
    ds = bench_dataset(get_dataset("folder", blur_csv), "Blur")
    init = tmp_path / "pretrain" / "model.safetensors"
    init.parent.mkdir()
    _tiny_init(init, seed=0)
    old = run_protocol("single", [ds], base_yaml, tmp_path / "out", init_checkpoint=init, repeats=1)
    _tiny_init(init, seed=1)  # `attiqa train` again, same out_dir
    again = run_protocol("single", [ds], base_yaml, tmp_path / "out", init_checkpoint=init, repeats=1)
    fresh = run_protocol("single", [ds], base_yaml, tmp_path / "fresh", init_checkpoint=init, repeats=1)

    def numbers(res):  # every epoch's loss and test metrics (not its wall time)
        return [{k: v for k, v in h.items() if k != "seconds"} for h in res.runs[0]["history"]]

    assert numbers(fresh) != numbers(old)  # the new weights train differently
    assert numbers(again) == numbers(fresh) and again.summary == fresh.summary


def test_a_rerun_after_the_score_file_was_corrected_trains_again(blur_csv, base_yaml, tmp_path):
    """The same for a corrected MOS (same images, same split): **was** the old MOS's numbers."""
    import shutil

    root = tmp_path / "data"
    shutil.copytree(blur_csv.parent, root)
    score_file = root / "mos.csv"
    rows = score_file.read_text().splitlines()

    def bench(out: Path):
        return run_protocol("single", [get_dataset("folder", score_file)], base_yaml, out, repeats=1)

    old = bench(tmp_path / "out")
    fixed = [rows[0]] + [f"{r.split(',')[0]},{10 - float(r.split(',')[1]):.4f}" for r in rows[1:]]
    score_file.write_text("\n".join(fixed) + "\n")  # the MOS were on a reversed scale
    again, fresh = bench(tmp_path / "out"), bench(tmp_path / "new")
    assert fresh.summary["data"]["srocc"] != old.summary["data"]["srocc"]  # labelled by its folder
    assert again.summary == fresh.summary


def test_a_folder_dataset_with_the_default_mos_csv_is_labelled_by_its_folder(tmp_path):
    """`attiqa bench single -d folder=clive-dev` headed its table column "mos" (the stem of the adapter's
    default mos.csv), and `bench cross -d folder=A -d folder=B` was refused: "datasets need distinct
    labels, got mos, mos". The folder's name labels it now; another CSV name still labels by its stem."""
    for name in ("clive-dev", "biq"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "mos.csv").write_text("image,mos\na.png,1\nb.png,2\n")
    (tmp_path / "biq" / "val.csv").write_text("image,mos\na.png,1\nb.png,2\n")
    assert bench_dataset(get_dataset("folder", tmp_path / "clive-dev")).label == "clive-dev"
    assert bench_dataset(get_dataset("folder", tmp_path / "biq" / "mos.csv")).label == "biq"
    assert bench_dataset(get_dataset("folder", tmp_path / "biq" / "val.csv")).label == "val"


@pytest.mark.slow
def test_select_best_with_a_ridge_head_records_the_epoch_and_says_what_was_selected(blur_csv, tmp_path):
    """**Was** (noted in session 41): `bench --select best` with a ridge head recorded `"epoch": null` — the
    epoch was found by matching the best metrics against the history, and the ridge head (added after
    training) makes the best checkpoint's combined metrics appear in no entry; the note said "the best test
    SROCC" though the epoch is chosen by the MOS MLP's alone. Now the trainer's own best epoch, and the run
    and the table say what was selected."""
    cfg = {"backbone": "efficientnet_lite0_ms", "pretrained_backbone": True, "head_hidden": 16,
           "mos_hidden": 16, "epochs": 3, "batch_size": 8, "lr": 0.03, "resize_shorter": 48, "crop_size": 40,
           "num_workers": 0, "device": "cpu", "feature_cache": True, "feature_cache_dir": str(tmp_path / "c"),
           "ridge_taps": "depthwise", "ridge_weight": 0.9}  # fmt: skip
    ds = bench_dataset(get_dataset("folder", blur_csv.parent), "Blur")
    res = run_protocol("data-efficient", [ds], cfg, tmp_path / "o", fractions=[0.5], repeats=1, select="best")
    run = res.runs[0]
    mlp = [h for h in run["history"] if not h.get("ridge")]
    best = max(mlp, key=lambda h: h["srocc"])["epoch"]  # the first of the best: as the trainer keeps it
    assert run["history"][-1]["ridge"] and best < mlp[-1]["epoch"]  # a best epoch before the last
    assert run["epoch"] == best and run["selected"] == (
        f"epoch {best}: the best test SROCC of the MOS MLP (optimistic), scored with the ridge head fitted "
        "after training"
    )
    saved = json.loads((tmp_path / "o" / "data-efficient.json").read_text())["runs"][0]
    assert saved["epoch"] == best
    note = " ".join(res.table.split())
    assert "epoch with the best test SROCC of the MOS MLP (optimistic), with the ridge head fitted" in note


@pytest.mark.serial(reason="two torchrun ranks need both cores")
def test_attiqa_train_under_torchrun_says_image_wise_splits_once(tmp_path, dataset_config):
    """``finetune.dataset: agiqa1k`` from its repository's score file (no prompts) under `torchrun
    --nproc_per_node 2`: **was** "no item has a 'prompt' to group by — image-wise splits" once per process
    (every rank plans the split); now rank 0 says it, as the other split lines."""
    from helpers import run_attiqa

    agiqa1k_scores_only(tmp_path, 5, (48, 40))
    cfg = dataset_config(tmp_path, dataset="agiqa1k", root=tmp_path)
    res = run_attiqa("train", "--config", cfg, ranks=2, env={"OMP_NUM_THREADS": "1", "COLUMNS": "200"})
    assert res.returncode == 0, res.stderr[-3000:]
    said = " ".join((res.stdout + res.stderr).split())
    assert said.count("no item has a 'prompt' to group by") == 1, said[-3000:]
