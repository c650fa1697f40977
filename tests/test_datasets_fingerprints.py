"""Dataset / row fingerprints (docs/robustness.md). One hash of "these rows under their root" serves the model
card (`eval`'s training-fit note) and a stage's resume record; cards and resume records of the older version
still work; a moved label.images folder resumes the pretraining; `eval folder` knows two CSVs under one root
apart; `--workers` says what each command does. Each test failed before its fix."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch
from helpers import LABEL_AND_PRETRAIN, tiny_train_config

from attiqa.datasets import get_dataset
from attiqa.io.checkpoints import (
    load_checkpoint,
    load_training_state,
    save_checkpoint,
    save_training_state,
)
from attiqa.training.data import PseudoLabelDataset, data_fingerprint, read_mos_split
from attiqa.training.trainer import state_path_for


def _said(res) -> str:
    return " ".join((res.stdout + res.stderr).split())


# -- what session 50's version wrote (its formulas, restated here: records and cards made by it) ------------


def _v1_dataset_rows(name: str, root: Path, records) -> str:
    """Session 50's ``IQADataset.fingerprint``: the name, then per record its path under the root and its
    sorted scores as JSON."""
    h = hashlib.sha256(name.encode("utf-8"))
    for rec in records:
        image = rec.image.relative_to(root) if rec.image.is_relative_to(root) else rec.image
        h.update(b"\0" + json.dumps([image.as_posix(), sorted(rec.values.items())]).encode())
    return h.hexdigest()


def _v1_record(source: str, paths, targets: torch.Tensor, *splits, root: str = "") -> dict[str, str]:
    """Session 50's ``data_fingerprint``: names, targets and split hashed together, once per digest."""

    def digest(names) -> str:
        h = hashlib.sha256()
        for n in names:
            h.update(n.encode() + b"\0")
        h.update(targets.detach().double().contiguous().numpy().tobytes())
        h.update(json.dumps([list(map(int, ix)) for ix in splits]).encode())
        return h.hexdigest()[:16]

    out = {"file": source, "fingerprint": digest(map(str, paths))}
    if root:
        base = Path(root).absolute()
        where = [Path(p).absolute() for p in paths]
        out["rows"] = digest(
            q.relative_to(base).as_posix() if q.is_relative_to(base) else str(q) for q in where
        )
    return out


def _as_session_50_left_it(stage_dir: Path, record: dict[str, str]) -> None:
    """The stage's resume record rewritten as session 50's version wrote it."""
    state = state_path_for(stage_dir / "last.safetensors")
    opt, extra, weights = load_training_state(state, with_model=True)
    extra["config"]["data"] = record
    save_training_state(state, opt, extra, model_state=weights)


# -- 1. one hash of the rows; an earlier version's card and resume record -----------------------------------


def test_one_rows_hash_and_a_card_of_session_50_still_gets_its_training_fit_note(
    tmp_path, cli, layout, dataset_config
):
    """**Was**: two hashes of "the same rows under their root" (the card's ``rows_sha256`` and the resume
    record's ``rows``). Now one (``datasets.base.rows_sha256``); the card names its version by its key
    (``rows_sha256_v2``), and a card of session 50 (``rows_sha256``, the old hash) is compared with the old
    hash: a moved copy still gets "these metrics are its training fit"; a wrong old hash gets no note."""
    root = layout(tmp_path, "kadid10k")
    assert cli("train", "--config", dataset_config(tmp_path, dataset="kadid10k", root=root)).returncode == 0
    ckpt = tmp_path / "run" / "finetune" / "last.safetensors"
    tensors, card = load_checkpoint(ckpt)
    assert "rows_sha256" not in card["dataset"] and card["dataset"]["rows_sha256_v2"]
    ds = get_dataset("kadid10k", root)
    old_hash = _v1_dataset_rows("kadid10k", ds.root, ds.read_records())
    assert old_hash != card["dataset"]["rows_sha256_v2"]  # the hash changed: an old card needs its own rule
    moved = tmp_path / "elsewhere" / "KADID"
    shutil.copytree(root, moved)
    shutil.rmtree(root)
    for i, value in enumerate([old_hash, "0" * 64]):
        old = {k: v for k, v in card["dataset"].items() if k != "rows_sha256_v2"}
        save_checkpoint(ckpt, tensors, {**card, "dataset": {**old, "rows_sha256": value}})
        out = tmp_path / f"ev{i}"
        res = cli("eval", "kadid10k", "--root", moved, "-m", ckpt, "-o", out, "-w", "0", "-q", "--no-cache")
        assert res.returncode == 0, res.stderr
        fit = [w for w in json.loads((out / "summary.json").read_text())["warnings"] if "training fit" in w]
        assert bool(fit) == (value == old_hash), fit


def test_a_run_of_session_50_resumes_moved_or_not_and_changed_data_is_still_refused(tmp_path, cli):
    """A fine-tuning started by session 50's version (its resume record: the old hashes) resumes after the
    data's hash changed: in place, and moved to another folder ("the dataset moved … same rows"); a changed
    score is refused with the one line it always had."""
    cfg = tiny_train_config(tmp_path)
    assert cli("train", "--config", cfg).returncode == 0
    csv = tmp_path / "set" / "mos.csv"
    split = read_mos_split(str(csv), "", 0.2, 0)
    old = _v1_record(str(csv), split.paths, split.mos, split.train, split.val, root=split.image_root)
    assert old["rows"] != split.fingerprint()["rows"]
    stage = tmp_path / "run" / "finetune"
    _as_session_50_left_it(stage, old)
    res = cli("train", "--config", cfg, "--resume", "--set", "finetune.epochs=2")
    assert res.returncode == 0, res.stderr
    assert '"epoch": 2' in (stage / "last.json").read_text()
    _as_session_50_left_it(stage, old)
    new = tmp_path / "moved" / "set"
    shutil.copytree(tmp_path / "set", new)
    shutil.rmtree(tmp_path / "set")
    res = cli("train", "--config", cfg, "--resume", "--set", f"finetune.csv={new / 'mos.csv'}",
              "--set", "finetune.epochs=3")  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert f"the dataset moved: {csv} -> {new / 'mos.csv'}, same rows" in _said(res), _said(res)
    _as_session_50_left_it(stage, {**old, "fingerprint": "0" * 16, "rows": "0" * 16})  # other data then
    res = cli("train", "--config", cfg, "--resume", "--set", f"finetune.csv={new / 'mos.csv'}",
              "--set", "finetune.epochs=4")  # fmt: skip
    assert res.returncode != 0
    errors = [x for x in res.stderr.splitlines() if x.startswith("error:")]
    assert errors == [
        f"error: {new / 'mos.csv'}: changed since the run in {stage} started (other images, scores or split "
        "than it trained on) — --resume continues that run: restore the file, or train over it with "
        "--no-resume (or choose another out_dir)"
    ]


# -- 2. the targets and the split hashed once ---------------------------------------------------------------


class _CountingSha256:
    """hashlib.sha256 that counts the bytes it is given (every instance into ``seen``)."""

    seen = 0

    def __init__(self, data: bytes = b"") -> None:
        self._h = hashlib.new("sha256")
        self.update(data)

    def update(self, data: bytes) -> None:
        _CountingSha256.seen += len(data)
        self._h.update(data)

    def hexdigest(self) -> str:
        return self._h.hexdigest()

    def digest(self) -> bytes:
        return self._h.digest()


def test_data_fingerprint_hashes_the_targets_once_also_with_a_root(tmp_path, monkeypatch):
    """**Was**: with ``root`` (every fine-tuning table), the targets and the split were hashed twice, once
    for ``fingerprint`` and once for ``rows``; now one digest of them serves both. Counted in the bytes given
    to SHA-256: five more target columns add their bytes once, not twice."""
    n = 20_000
    paths = [tmp_path / f"img{i}.png" for i in range(n)]
    monkeypatch.setattr(hashlib, "sha256", _CountingSha256)
    seen = []
    for columns in (5, 10):
        _CountingSha256.seen = 0
        out = data_fingerprint("t.csv", paths, torch.rand(n, columns), list(range(n)), root=str(tmp_path))
        assert set(out) >= {"fingerprint", "rows"}
        seen.append(_CountingSha256.seen)
    assert seen[1] - seen[0] == n * 5 * 8  # the five columns as float64, hashed once


# -- 3. a moved label.images folder -------------------------------------------------------------------------


def _pretrain_only(images: Path, *more: str) -> list[str]:
    return [*LABEL_AND_PRETRAIN, "--set", f"label.images=[{images}]", *more]


def test_a_moved_label_images_folder_resumes_the_pretraining(tmp_path, cli):
    """**Was**: the images folder of `label.images` moved elsewhere (same files) and the config pointed at
    the new place, `attiqa train --resume` refused: "labels.parquet: changed since the run … started — set
    label.images back" (the label table stores absolute paths, and the pretraining's record hashed them).
    Now the record's ``rows`` name each image under the folder holding them all: it resumes. A label table
    of other images is refused as before (before labelling, since the merge with trn51)."""
    cfg = tiny_train_config(tmp_path)
    images, new = tmp_path / "set" / "images", tmp_path / "new" / "photos"
    assert cli("train", "--config", cfg, *_pretrain_only(images)).returncode == 0
    shutil.copytree(images, new)
    shutil.rmtree(images)
    res = cli("train", "--config", cfg, *_pretrain_only(new, "--resume", "--set", "pretrain.epochs=2"))
    assert res.returncode == 0, res.stderr
    assert '"epoch": 2' in (tmp_path / "run" / "pretrain" / "last.json").read_text()
    (new / "img07.png").unlink()  # other images: refused
    res = cli("train", "--config", cfg, *_pretrain_only(new, "--resume", "--set", "pretrain.epochs=3"))
    assert res.returncode != 0
    # refused before labelling (trn51: `check_label_stage_resumable`), by the same names under their folder
    assert "other images than the run in" in res.stderr and "set label.images back" in res.stderr


def test_a_pretraining_of_session_50_resumes(tmp_path, cli):
    """A pretraining started by session 50's version (its record: the absolute paths' hash, no ``rows``)
    resumes in place after the record changed form."""
    cfg = tiny_train_config(tmp_path)
    images = tmp_path / "set" / "images"
    assert cli("train", "--config", cfg, *_pretrain_only(images)).returncode == 0
    labels = PseudoLabelDataset(tmp_path / "run" / "labels.parquet", lambda im: torch.zeros(1))
    _as_session_50_left_it(tmp_path / "run" / "pretrain", _v1_record(str(labels.labels_path), labels.paths,
                                                                      labels.targets))  # fmt: skip
    res = cli("train", "--config", cfg, *_pretrain_only(images, "--resume", "--set", "pretrain.epochs=2"))
    assert res.returncode == 0, res.stderr


# -- 4. `eval folder`: two CSVs under one root --------------------------------------------------------------


@pytest.fixture()
def two_tables(tmp_path: Path, photos) -> tuple[Path, Path, Path]:
    """A folder of five photos with two CSVs of other scores: mos.csv and other.csv."""
    root = tmp_path / "set"
    root.mkdir()
    a, b = ["image,mos"], ["image,mos"]
    for i, (name, img) in enumerate(photos.items()):
        img.resize((img.width // 4, img.height // 4)).save(root / f"{name}.jpg")
        a.append(f"{name}.jpg,{30 + 10 * i}")
        b.append(f"{name}.jpg,{80 - 10 * i}")
    (root / "mos.csv").write_text("\n".join(a) + "\n")
    (root / "other.csv").write_text("\n".join(b) + "\n")
    return root, root / "mos.csv", root / "other.csv"


def test_eval_folder_of_another_csv_under_the_same_root_says_it_replaces_the_earlier_eval(
    two_tables, tmp_path, cli
):
    """**Was**: `attiqa eval folder --root R --csv other.csv -o OUT` into the OUT of `--csv mos.csv` replaced
    its outputs without the "replacing … of an earlier eval" line (the root alone was compared); now the
    CSV (and the columns read) are part of what a summary records and compares. The same CSV again: no
    line."""
    root, first, second = two_tables
    out = tmp_path / "out"
    args = ("-m", "classical", "-o", out, "-w", "0", "-q", "--no-cache")
    assert cli("eval", "folder", "--root", root, "--csv", first, *args).returncode == 0
    assert json.loads((out / "summary.json").read_text())["csv"] == str(first)
    again = cli("eval", "folder", "--root", root, "--csv", first, *args)
    assert "replacing" not in _said(again)
    res = cli("eval", "folder", "--root", root, "--csv", second, *args)
    assert res.returncode == 0, res.stderr
    assert (
        f"{out}: replacing the predictions.csv, summary.json, scatter.png of an earlier eval, classical on "
        f"folder (mos, all, csv {first})"
    ) in _said(res), _said(res)
    summary = json.loads((out / "summary.json").read_text())  # as session 50 wrote it: no csv, no columns
    (out / "summary.json").write_text(
        json.dumps({k: v for k, v in summary.items() if k not in ("csv", "columns")})
    )
    again = cli("eval", "folder", "--root", root, "--csv", second, *args)
    assert again.returncode == 0 and "replacing" not in _said(again)  # its root compared, as then


# -- 5. --workers help per command --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "words"),
    [
        (["score"], "decoding the images to score"),
        (["eval"], "decoding the images of the dataset to score"),
        (["label"], "decoding the images the teacher labels"),
    ],
)
def test_workers_help_fits_each_command(cli, command, words):
    """**Was**: `attiqa score --help` / `eval --help` said the --workers default for "training: one per spare
    core" — neither trains (nor does any command with the option); now each says what its workers decode."""
    text = " ".join(cli(*command, "--help").stdout.split())
    assert words in text, text
    assert "training" not in text.split("--workers")[1].split("--")[0]
