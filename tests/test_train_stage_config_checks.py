"""`attiqa train` and `attiqa bench` (docs/robustness.md): tiny configs, the tiny random network. Each test
failed before its fix."""

from __future__ import annotations

import pytest
from helpers import LABEL_AND_PRETRAIN, renamed_copies, tiny_train_config


@pytest.mark.parametrize(
    "setting", ["finetune.seed=-1", "finetune.split_seed=-1", "finetune.seed=99999999999999999999"]
)
def test_a_seed_out_of_range_is_one_line_before_any_work(tmp_path, cli, setting):
    """A negative seed (or one past 2**32 - 1) **was** read, the run folder made, and then numpy's
    "expected non-negative integer" (torch's "Overflow when unpacking long long") as a traceback from the
    split; now the config's line, as `--seed` of the commands says it, and no run folder."""
    cfg = tiny_train_config(tmp_path)
    res = cli("train", "--config", cfg, "--set", setting)
    assert res.returncode == 2, res.stderr
    key = setting.partition("=")[0]
    assert f"{key}: must be in [0, 4294967295]" in res.stderr and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("text", "where", "fix"),
    [
        ("finetune:\n  epochs: [1\n  lr: 0.1\n", "while parsing a flow sequence from line 2", ""),
        ("finetune:\n\tepochs: 1\n", "at line 2, column 1", "indent with spaces, not tabs"),
        ("finetune:\n  epochs: 1\n lr: 0.1\n", "line 3", ""),
    ],
)
def test_a_yaml_syntax_error_says_where_and_what(tmp_path, cli, text, where, fix):
    """**Was** "not valid YAML (while scanning for the next token)": the parser's context only, no line,
    nothing on what it found (a tab); now the line and column of the problem and what it is, with the fix
    for a tab."""
    cfg = tmp_path / "run.yaml"
    cfg.write_text(text)
    res = cli("train", "--config", cfg)
    assert res.returncode == 2
    line = res.stderr.strip()
    assert len(line.splitlines()) == 1 and "run.yaml" in line and where in line and fix in line, line


@pytest.mark.parametrize("stage", ["finetune", "pretrain"])
def test_a_feature_cache_folder_that_cannot_be_written_is_refused_before_any_work(tmp_path, cli, stage):
    """`feature_cache_dir` naming a file (or a folder under one) **was** found only when the stage first
    wrote a feature: the run folder and its config.json made, earlier stages (labelling, pretraining) run,
    then "…/tiny-4e67…: Not a directory — check the path"; now one line naming the key, before the run
    folder is made."""
    cfg = tiny_train_config(tmp_path)
    (tmp_path / "afile").write_text("not a folder")
    args = [
        "--set",
        "finetune.feature_cache=true",
        "--set",
        f"finetune.feature_cache_dir={tmp_path / 'afile' / 'x'}",
    ]
    if stage == "pretrain":
        labels = tmp_path / "labels.parquet"
        import pyarrow as pa
        import pyarrow.parquet as pq

        from attiqa.attributes import ATTRIBUTES

        images = [str(p) for p in sorted((tmp_path / "set" / "images").glob("*.png"))]
        pq.write_table(
            pa.table({"image": images, **{a: [i / 8 for i in range(8)] for a in ATTRIBUTES}}), labels
        )
        args = [
            "--set",
            f"labels={labels}",
            "--set",
            "pretrain={epochs: 1, batch_size: 4, resize_shorter: 40, crop_size: 32, num_workers: 0, "
            f"device: cpu, feature_cache: true, feature_cache_dir: {tmp_path / 'afile'}}}",
        ]
    res = cli("train", "--config", cfg, *args)
    assert res.returncode == 2, res.stderr
    assert f"{stage}.feature_cache_dir" in res.stderr and "afile is a file" in res.stderr, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_a_narrowed_label_stage_pretrains_on_its_own_images_only(tmp_path, cli):
    """`label.images: [photos, junk]`, then the same config with `[photos]` and --no-resume (or --resume
    before pretraining had a checkpoint): the run's labels.parquet **was** kept whole — the new run labelled
    nothing ("8 kept from an earlier run") and pretrained on all 12 rows, junk/'s 4 among them, without a
    word; now the label table of a run holds the config's images only, and the rows left out are said."""
    cfg = tiny_train_config(tmp_path)
    junk = renamed_copies(tmp_path)  # other names
    images = tmp_path / "set" / "images"
    common = LABEL_AND_PRETRAIN
    res = cli("train", "--config", cfg, *common, "--set", f"label.images=[{images}, {junk}]")
    assert res.returncode == 0, res.stderr
    res = cli("train", "--config", cfg, *common, "--set", f"label.images=[{images}]", "--no-resume")
    assert res.returncode == 0, res.stderr
    import pyarrow.parquet as pq

    from attiqa.io.checkpoints import read_card

    table = pq.read_table(tmp_path / "run" / "labels.parquet").column("image").to_pylist()
    assert len(table) == 8 and not any("junk" in p for p in table)
    assert read_card(tmp_path / "run" / "pretrain" / "model.safetensors")["labels"]["rows"] == 8
    said = " ".join((res.stdout + res.stderr).split())
    assert "4 labelled image(s) not in label.images left out" in said, said


@pytest.mark.parametrize(
    ("setting", "key"),
    [
        ("degrade={{sources: [{images}], out: {afile}}}", "degrade.out"),
        ("degrade={{sources: [{images}], out: {afile}/sub}}", "degrade.out"),
        ("label={{images: [{images}], out: {afile}/labels.parquet}}", "label.out"),
    ],
)
def test_a_stage_output_under_a_file_is_refused_before_any_work(tmp_path, cli, setting, key):
    """`degrade.out` naming a file (or a folder under one), `label.out` under a file: **was** the run folder
    and config.json made (for label.out the teacher loaded too), then "…/afile/x.parquet.parts: Not a
    directory — check the path"; now one line naming the key, and no run folder."""
    cfg = tiny_train_config(tmp_path)
    afile = tmp_path / "afile"
    afile.write_text("not a folder")
    images = tmp_path / "set" / "images"
    # without finetune: (a fine-tuning without pretraining skips the stages that only make its labels)
    res = cli(
        "train",
        "--config",
        cfg,
        "--set",
        setting.format(images=images, afile=afile),
        "--set",
        "finetune=null",
    )
    assert res.returncode == 2, res.stderr
    line = res.stderr.strip()
    assert line.startswith(f"error: {key}: ") and "afile is a file, not a folder" in line, line
    assert len(line.splitlines()) == 1 and not (tmp_path / "run").exists()


@pytest.mark.parametrize(("key", "stage"), [("labels", "label"), ("pretrained_checkpoint", "pretrain")])
def test_a_file_standing_in_for_a_stage_beside_that_stage_is_refused(tmp_path, cli, key, stage):
    """`labels: mine.parquet` with a `label:` section (or `pretrained_checkpoint:` with a `pretrain:` one)
    **was** never read: the run labelled (pretrained) anew without a word, the user's file left aside; now
    one line naming both and the fix."""
    cfg = tiny_train_config(tmp_path)
    given = tmp_path / "set" / "mos.csv"  # any existing file: the key is refused before it is read
    sections = {
        "label": f"label={{images: [{tmp_path / 'set' / 'images'}]}}",
        "pretrain": "pretrain={epochs: 1, batch_size: 4, resize_shorter: 40, crop_size: 32, device: cpu}",
    }
    res = cli(
        "train",
        "--config",
        cfg,
        "--set",
        f"{key}={given}",
        "--set",
        sections[stage],
        "--set",
        "finetune=null",
    )
    assert res.returncode == 2, res.stderr
    line = res.stderr.strip()
    assert (
        f"{key}: {given} would not be read — the {stage}: section" in line and f"--set {stage}=null" in line
    )
    assert len(line.splitlines()) == 1 and not (tmp_path / "run").exists()


@pytest.mark.parametrize("command", ["label", "train"])
def test_a_label_table_of_other_columns_is_refused_before_labelling(tmp_path, cli, command):
    """`attiqa label photos -o mine.parquet` (or a run's label.out) where mine.parquet is a table of other
    columns without attiqa's metadata (pandas' `image,sharpness`, an older tool's): **was** every photo
    labelled, then pyarrow's "Target schema's field names are not matching …" as a traceback at the merge —
    on every rerun; now one line before the teacher runs, the table as it was."""
    from helpers import label_table

    cfg = tiny_train_config(tmp_path)
    images = tmp_path / "set" / "images"
    table = label_table(tmp_path / "mine.parquet")
    before = table.read_bytes()
    if command == "label":
        res = cli("label", images, "-o", table, "-w", "0")
    else:
        label = f"label={{images: [{images}], out: {table}, num_workers: 0}}"
        res = cli("train", "--config", cfg, "--set", label, "--set", "finetune=null")
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr
    line = res.stderr.strip().splitlines()[-1]  # (train: after its "teacher: classical" line)
    assert f"{table}: exists with columns image, sharpness" in line and "choose another --out" in line, line
    assert table.read_bytes() == before and not (tmp_path / "mine.parquet.parts").exists()


@pytest.mark.parametrize("where", ["model", "finetune"])
def test_a_missing_backbone_weights_file_is_refused_when_the_config_is_read(tmp_path, cli, where):
    """`backbone_weights: nothere.pth` (in `model:`, or an older config's stage) **was** found when the stage
    built the network: the run folder and config.json made (after labelling and pretraining, for a
    fine-tuning without pretraining); now one line naming the key, as for the other input files."""
    cfg = tiny_train_config(tmp_path)
    if where == "finetune":  # an older config: the network in the stage
        net = "  backbone: tiny\n  pretrained_backbone: false\n  head_hidden: 8\n"
        cfg.write_text(
            cfg.read_text().replace("model:\n" + net, "").replace("finetune:\n", "finetune:\n" + net)
        )
    res = cli("train", "--config", cfg, "--set", f"{where}.backbone_weights=nothere.pth")
    assert res.returncode == 2, res.stderr
    line = res.stderr.strip()
    assert line.startswith(f"error: {cfg}: {where}.backbone_weights: nothere.pth not found"), line
    assert len(line.splitlines()) == 1 and not (tmp_path / "run").exists()


def test_a_model_named_where_the_network_section_goes_says_what_model_is(tmp_path, cli):
    """`model: attiqa-default` (a model's name where the network's settings go) **was** "model: expected a
    mapping of settings, got str" — which settings, and how to start from a trained model, unsaid."""
    cfg = tiny_train_config(tmp_path)
    res = cli("train", "--config", cfg, "--set", "model=attiqa-default")
    assert res.returncode == 2
    line = res.stderr.strip()
    assert "model: expected a mapping of settings, got str — model: sets the network (backbone," in line, line
    assert "set pretrained_checkpoint: FILE.safetensors" in line and len(line.splitlines()) == 1


@pytest.mark.slow
@pytest.mark.serial(reason="two torchrun ranks need both cores")
def test_torchrun_fine_tunes_a_named_dataset_with_one_split_and_one_writer(
    tmp_path, layout, dataset_config, cli
):
    """`torchrun --nproc_per_node 2 … train` with `finetune: {dataset: kadid10k, root: …}` (gloo, session
    48's official-layout fixture): both processes make the same grouped split as one process does, end with
    the same weights, and only rank 0 writes the checkpoints (ok when tried in session 50; held here)."""
    import json

    from helpers import run_attiqa

    root = layout(tmp_path, "kadid10k")
    cfg = dataset_config(tmp_path, dataset="kadid10k", root=root, val_fraction=0.34, epochs=2)
    env = {"OMP_NUM_THREADS": "1"}
    one = cli("train", "-c", cfg, "--out-dir", tmp_path / "one")  # one process: this one
    assert one.returncode == 0, one.stderr
    two = run_attiqa("train", "-c", cfg, "--out-dir", tmp_path / "two", ranks=2,
                     env={**env, "ATTIQA_DEBUG_HASH_DIR": str(tmp_path / "hashes")})  # fmt: skip
    assert two.returncode == 0, two.stderr[-4000:]
    r0, r1 = (json.loads((tmp_path / "hashes" / f"rank{r}.json").read_text()) for r in (0, 1))
    assert r0["hash"] == r1["hash"] and r1["files"] == [] and r0["files"]
    cards = [json.loads((tmp_path / run / "finetune" / "last.json").read_text()) for run in ("one", "two")]
    assert cards[0]["dataset"] == cards[1]["dataset"] and "group by auto" in cards[1]["dataset"]["split"]
    assert cards[1]["world_size"] == 2 and cards[0]["metrics"]["n"] == cards[1]["metrics"]["n"]
    assert (two.stdout + two.stderr).count("finetuned:") == 1  # the report once, not once a process


@pytest.mark.parametrize(
    ("setting", "said"),
    [("degrade={sources: []}", "degrade.sources: empty"), ("out_dir=''", "out_dir: empty")],
)
def test_an_empty_degrade_source_list_or_out_dir_is_one_line(tmp_path, cli, setting, said):
    """`degrade: {sources: []}` **was** run: nothing degraded, an empty graded folder added to the label
    stage's images; `out_dir: ""` **was** the working folder, every other run below it listed as "an earlier
    run" of this one. Now one line each before any work (a degrade stage that runs: without finetune:, a
    fine-tuning without pretraining skips it, its inputs unchecked)."""
    cfg = tiny_train_config(tmp_path)
    res = cli("train", "--config", cfg, "--set", setting, "--set", "finetune=null")
    assert res.returncode == 2, res.stderr
    line = res.stderr.strip()
    assert said in line and len(line.splitlines()) == 1, line
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("setting", ["label.prompts=prompts.json", "label.clip_scale=2"])
def test_a_clip_setting_beside_the_classical_teacher_is_one_line(tmp_path, cli, setting):
    """`label: {teacher: classical, prompts: prompts.json}` (or `clip_scale: 2`) **was** run without a word:
    the classical teacher reads neither, so the labels were not the ones the user set up; now one line."""
    cfg = tiny_train_config(tmp_path)
    (tmp_path / "prompts.json").write_text("{}")
    images = tmp_path / "set" / "images"
    res = cli("train", "--config", cfg, "--set", f"label={{images: [{images}]}}", "--set", setting)
    assert res.returncode == 2, res.stderr
    line = res.stderr.strip()
    key = setting.partition("=")[0]
    assert (
        f"{key}: only the clip teacher reads it (teacher: classical)" in line and len(line.splitlines()) == 1
    )
    assert not (tmp_path / "run").exists()
