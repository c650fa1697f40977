"""`attiqa export`, `models`, `bench`, `demo`, `degrade` / `make-distorted` run as a user would, with hostile
and edge inputs (docs/robustness.md)."""

from __future__ import annotations

import torch
from conftest import photo_folder
from helpers import tiny_attiqa_checkpoint
from PIL import Image
from safetensors.torch import save_file

import attiqa
from attiqa.io.checkpoints import load_checkpoint, save_checkpoint


def test_export_refuses_a_safetensors_file_that_is_not_an_attiqa_model(tmp_path, cli):
    """**Was**: `attiqa export other.safetensors m.safetensors` of a safetensors file without an ATTIQA card
    (another program's weights), or of one whose card does not describe its tensors, wrote the copy and
    printed its SHA-256 as a model's; `attiqa score -m` of the copy then refused it. Now one line, nothing
    written."""
    foreign = tmp_path / "foreign.safetensors"
    save_file({"layer.weight": torch.ones(4, 4)}, str(foreign))
    tensors, card = load_checkpoint(tiny_attiqa_checkpoint(tmp_path))
    del tensors["heads.sharpness.fc1.weight"]
    cut = save_checkpoint(tmp_path / "cut.safetensors", tensors, card)
    for src, why in (
        (foreign, "checkpoint has no ATTIQA model card"),
        (cut, "tensor heads.sharpness.fc1.weight is missing"),
    ):
        dst = tmp_path / f"copy_{src.stem}.safetensors"
        res = cli("export", src, dst)
        assert res.returncode == 2, res.stdout
        assert res.stderr.startswith(f"error: {src}: ") and why in res.stderr, res.stderr
        assert len(res.stderr.strip().splitlines()) == 1, res.stderr
        assert not dst.exists() and not dst.with_suffix(".json").exists()
    good = tmp_path / "copy.safetensors"
    assert cli("export", tmp_path / "tiny.safetensors", good).returncode == 0
    assert attiqa.load_scorer(good).columns[0] == "mos"  # a model is still exported


def _on_a_terminal(columns: int, *args: str) -> str:
    """``attiqa ARGS`` run on a real pseudo-terminal ``columns`` wide; its output without colour codes."""
    from helpers import attiqa_cmd, on_a_terminal

    return on_a_terminal(attiqa_cmd(*args), columns)


def test_models_on_an_80_column_terminal_keeps_each_name_whole():
    """**Was**: on a terminal of 80 columns (or 100) the table's name column folded the names one types after
    --model ("attiqa-zer" / "oshot"), its needs column "attiqa-zeroshot:FOL" / "DER", its descriptions
    "hand-crafte" / "d". Now a terminal too narrow for the table gets the piped listing, wrapped at words."""
    from attiqa.scorers import list_scorers

    text = _on_a_terminal(80, "models")
    lines = text.splitlines()
    assert all(len(ln) <= 80 for ln in lines), max(lines, key=len)
    for info in list_scorers():
        assert any(ln.startswith(f"{info.name}  ({info.kind}") for ln in lines), (info.name, text)
        wrapped = " ".join(" ".join(lines).split())
        assert f"needs: {info.needs}" in wrapped and info.description in wrapped
    wide = _on_a_terminal(200, "models")
    assert "┃ name" in wide and "classical  (classical" not in wide  # a wide terminal keeps the table
    # 120 columns: the table's descriptions would be 18 cells wide (79 lines against the listing's 32, the
    # review of session 58): the listing (attiqa.cli._common.PROSE_FLOOR); 140: the one whole-word rule of
    # every table (attiqa.cli.table_widths) finds columns that hold each word, a path broken after a "/"
    text = _on_a_terminal(120, "models")
    assert "┃ name" not in text and "classical  (classical" in text, text
    assert len(text.splitlines()) < 40, text
    text = _on_a_terminal(140, "models")
    lines = text.splitlines()
    assert "┃ name" in text and all(len(ln) <= 140 for ln in lines), text
    for info in list_scorers():
        for cell in (info.name, info.needs, info.description):
            for word in cell.split():
                assert all(any(part in ln for ln in lines) for part in word.replace("/", "/\n").split()), word


def test_make_distorted_resumes_when_run_from_another_folder(tmp_path, photos, cli, monkeypatch):
    """**Was**: `attiqa make-distorted photos -o md` stopped, then resumed as `make-distorted data/photos -o
    data/md` from the folder above (or with absolute paths: a job script) refused: "md/meta.json: made with
    other settings (sources ['photos/astronaut.png', …], now ['data/photos/astronaut.png', …])" — the same
    files, recorded as the command spelled them. Now recorded as absolute paths; a folder's meta.json of the
    older kind resumes from where it was made (and is brought up to date), not from elsewhere."""
    import json

    data = tmp_path / "data"
    photo_folder(data / "photos", photos, n=2, side=40)
    args = ("--rounds", "2", "--distortions", "gaussian_blur,contrast")
    monkeypatch.chdir(data)
    first = cli("make-distorted", "photos", "-o", "md", *args)
    assert first.returncode == 0 and "4 written, 0 already there" in first.stderr, first.stderr
    made = {p: p.read_bytes() for p in (data / "md" / "images").rglob("*.png")}
    monkeypatch.chdir(tmp_path)
    for src, out in (("data/photos", "data/md"), (str(data / "photos"), str(data / "md"))):
        again = cli("make-distorted", src, "-o", out, *args)
        assert again.returncode == 0 and "0 written, 4 already there" in again.stderr, again.stderr
    assert {p: p.read_bytes() for p in (data / "md" / "images").rglob("*.png")} == made
    meta = data / "md" / "meta.json"  # as an older attiqa wrote it: the sources as given, from data/
    old = json.loads(meta.read_text())
    meta.write_text(
        json.dumps({**old, "sources": [f"photos/{p.name}" for p in sorted((data / "photos").iterdir())]})
    )
    elsewhere = cli("make-distorted", "data/photos", "-o", "data/md", *args)
    assert elsewhere.returncode == 2 and "other sources" in elsewhere.stderr  # relative to where it was made
    monkeypatch.chdir(data)
    assert "0 written, 4 already there" in cli("make-distorted", "photos", "-o", "md", *args).stderr
    assert json.loads(meta.read_text()) == old


def test_bench_on_a_dataset_whose_scores_are_all_equal_says_so(tmp_path, photos, cli):
    """**Was**: `attiqa bench single -d folder=ROOT` on a score file whose every MOS is 50 (a column filled
    down by a spreadsheet) said "all 2 held-out MOS values are 50 — … (hold out other rows)": a fix no split
    can follow. Now one line saying every row has the same score, before any folder is made."""

    root = photo_folder(tmp_path / "eq", photos, n=5, side=40)
    for p in list(root.iterdir()):  # 10 images: a split holds 2 out
        Image.open(p).rotate(90).save(p.with_name(f"r_{p.name}"))
    names = sorted(p.name for p in root.iterdir())
    (root / "mos.csv").write_text("image,mos\n" + "".join(f"{n},50\n" for n in names))
    cfg = tmp_path / "ft.yaml"
    cfg.write_text(
        "finetune:\n  backbone: tiny\n  pretrained_backbone: false\n  num_workers: 0\n  device: cpu\n"
    )
    out = tmp_path / "bench"
    res = cli("bench", "single", "-d", f"folder={root}", "-c", cfg, "-o", out, "--epochs", "1", "-q")
    assert res.returncode == 2, res.stderr
    said = " ".join(res.stderr.split())
    assert (
        f"eq ({root}): all {len(names)} rows have the same mos (50) — " in said and "held-out" not in said
    ), said
    assert not out.exists()


def test_degrade_make_distorted_and_demo_make_a_damaged_earlier_image_again(tmp_path, photos, cli):
    """**Was**: an image of an earlier `degrade`, `make-distorted` or `demo` run emptied or cut short on disk
    (a copy stopped midway, a full disk) was kept as "already there" for good: the pretraining / ExIQA set
    held an unreadable file every later command skipped, the demo scored 10 of its 11 photos. Now a rerun
    makes it again (the same bytes as the first time) and `degrade` / `make-distorted` say so."""

    src = photo_folder(tmp_path / "photos", photos, n=2, side=48)
    deg, md, demo = tmp_path / "deg", tmp_path / "md", tmp_path / "demo"
    degrade = ("degrade", src, "-o", deg, "--distortions", "gaussian_blur", "--levels", "1,3")
    distort = ("make-distorted", src, "-o", md, "--rounds", "1", "--distortions", "gaussian_blur,contrast")
    for args in (degrade, distort, ("demo", "-o", demo, "-m", "classical")):
        assert cli(*args).returncode == 0
    made = {p: p.read_bytes() for p in tmp_path.rglob("*.png") if "photos" not in p.parts}
    emptied, cut = sorted(deg.glob("*__*.png"))[0], sorted((md / "images").rglob("*.png"))[0]
    photo = demo / "images" / "coffee.png"
    emptied.write_bytes(b"")
    cut.write_bytes(made[cut][: len(made[cut]) // 2])
    photo.write_bytes(made[photo][:100])
    for args, path, why in ((degrade, emptied, "an empty file"), (distort, cut, "cut short")):
        res = cli(*args)
        said = " ".join(res.stderr.split())
        assert res.returncode == 0 and f"1 damaged image(s) on disk made again (e.g. {path}: {why}" in said, (
            said
        )
    res = cli("demo", "-o", demo, "-m", "classical")
    assert res.returncode == 0 and "11 image(s) scored" in res.stderr + res.stdout, res.stderr
    assert {p: p.read_bytes() for p in made} == made


def test_bench_refuses_an_image_listed_twice_with_two_scores(tmp_path, photos, cli):
    """**Was**: `attiqa bench single -d folder=ROOT` on a score file naming one photo twice, with MOS 90 and
    10 (two raters' sheets pasted together), fine-tuned and tabled without a word — `eval` on the same file
    refused it, and so did `attiqa train` with it as `finetune.csv`. Now one line, before any work."""

    root = photo_folder(tmp_path / "dup", photos, n=5, side=40)
    for p in list(root.iterdir()):
        Image.open(p).rotate(90).save(p.with_name(f"r_{p.name}"))
    names = sorted(p.name for p in root.iterdir())
    rows = "".join(f"{n},{10 + 5 * i}\n" for i, n in enumerate(names))
    (root / "mos.csv").write_text(f"image,mos\n{rows}{names[0]},90\n")
    cfg = tmp_path / "ft.yaml"
    cfg.write_text(
        "finetune:\n  backbone: tiny\n  pretrained_backbone: false\n  num_workers: 0\n  device: cpu\n"
    )
    out = tmp_path / "bench"
    res = cli("bench", "single", "-d", f"folder={root}", "-c", cfg, "-o", out, "--epochs", "1", "-q")
    said = " ".join(res.stderr.split())
    assert res.returncode == 2, said
    assert (
        f"{root / 'mos.csv'} (mos): 1 image(s) have two different scores, e.g. {root / names[0]} "
        f"(10 on line 2 and 90 on line {len(names) + 2})" in said
    )
    assert not out.exists()


def test_bench_cross_names_a_test_set_holding_the_training_sets_images(tmp_path, photos, cli):
    """**Was**: `attiqa bench cross -d a:folder=A -d b:folder=B` where B holds copies of A's photos (one
    folder benched under two names, a subset of a public set) tabled a -> b as cross-dataset generalisation
    without a word, though the model trained on a had seen those images. Now a line names each such pair."""

    a = photo_folder(tmp_path / "a", photos, n=5, side=40)
    for p in list(a.iterdir()):
        Image.open(p).rotate(90).save(p.with_name(f"r_{p.name}"))
    names = sorted(p.name for p in a.iterdir())
    (a / "mos.csv").write_text("image,mos\n" + "".join(f"{n},{10 + 5 * i}\n" for i, n in enumerate(names)))
    b = photo_folder(tmp_path / "b", photos, n=5, side=32)  # other pixels: 3 copies of a's photos added
    for n in names[:3]:
        (b / f"copy_{n}").write_bytes((a / n).read_bytes())
    b_names = sorted(p.name for p in b.iterdir())
    (b / "mos.csv").write_text("image,mos\n" + "".join(f"{n},{3 * i}\n" for i, n in enumerate(b_names)))
    cfg = tmp_path / "ft.yaml"
    cfg.write_text(
        "finetune:\n  backbone: tiny\n  pretrained_backbone: false\n  num_workers: 0\n  device: cpu\n"
    )
    args = ("-c", cfg, "--epochs", "1", "-q", "--no-cache")
    res = cli("bench", "cross", "-d", f"a:folder={a}", "-d", f"b:folder={b}", "-o", tmp_path / "x", *args)
    said = " ".join(res.stderr.split())
    assert res.returncode == 0, said
    assert "cross: 3 of b's 8 images are byte-identical to images of a, which the model trained on a" in said
    assert "cross: 3 of a's 10 images are byte-identical to images of b" in said  # and the other way round


def test_demo_lists_a_photo_it_could_not_read(tmp_path, cli):
    """**Was**: `attiqa demo` with one of its photos unreadable (no read permission: a folder copied from
    another user) said "10 image(s) scored" of its 11 and nothing of the eleventh, against the rule of every
    scoring command (each skipped file listed with the fix). Now listed. Run without root's override."""
    from helpers import run_attiqa

    demo = tmp_path / "demo"
    assert cli("demo", "-o", demo, "-m", "classical").returncode == 0  # in this process: faster
    photo = demo / "images" / "coffee.png"
    photo.chmod(0)
    res = run_attiqa("demo", "-o", demo, "-m", "classical", unprivileged=True)
    said = " ".join((res.stdout + res.stderr).split())
    assert res.returncode == 0, said
    assert "10 image(s) scored" in said and f"skipped 1 file(s) that could not be read: {photo}: " in said, (
        said
    )


def test_degrade_and_bench_help_keep_their_examples_whole_at_80_columns():
    """**Was** at 80 columns (a terminal's or a pipe's width): degrade's --distortions default cut to
    "gaussian_blur,contrast,brigh…" (one word wider than the help column is cut, not wrapped), bench's --data
    example to "mine:folder=/data…". Now both whole (bench's --keep-checkpoints name is still cut: noted)."""
    from helpers import run_attiqa

    from attiqa.distortions.defaults import DEFAULT_GRADED

    for columns in ("80", ""):
        degrade = run_attiqa("degrade", "--help", env={"COLUMNS": columns}).stdout
        assert "…" not in degrade and " ".join(degrade.split()).count("iso_noise") == 1, degrade
        flat = " ".join(w for w in degrade.replace("│", " ").split())
        assert f"default: {', '.join(DEFAULT_GRADED)}." in flat, flat
        bench = run_attiqa("bench", "--help", env={"COLUMNS": columns}).stdout
        assert "or mine:folder=DIR (DIR/mos.csv)" in " ".join(bench.replace("│", " ").split()), bench
