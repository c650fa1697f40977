"""genbench: a resume checks its images against their recorded size and hash instead of decoding every one;
the importers and `score` / `agree` with hostile inputs; the vote app's flows in a real browser
(docs/robustness.md). Small fixtures: a tiny random Stable Diffusion, real photos."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from genbench.manifest import MANIFEST, read_records, write_manifest


@pytest.fixture(scope="module")
def sd(tmp_path_factory) -> Path:
    """A tiny random-weight Stable Diffusion saved as a local diffusers folder."""
    pytest.importorskip("diffusers")
    from genbench_helpers import build_tiny_sd

    return build_tiny_sd(tmp_path_factory.mktemp("tiny") / "sd")


def test_a_resume_checks_images_by_recorded_size_and_hash_not_by_decoding_them(tmp_path, sd):
    """**Was**: every `genbench run` again decoded each image of the run to find damaged ones (slow at
    FiveK / AGIQA scale on every resume). Now each pair's manifest record holds its images' size and SHA-256
    as written; a resume decodes only an image unlike its record (cut short, bytes overwritten) or without
    one (an earlier version's run), and a damaged one is still made again, the same bytes."""
    from genbench.generate import GenSettings, generate_run, load_pipeline
    from genbench.prompts import load_prompt_spec

    run = tmp_path / "run"
    pipe = load_pipeline(str(sd), "fp32", "cpu")

    def again():  # the same command again
        settings = GenSettings(model=str(sd), steps=1, width=32, height=32)
        return generate_run(run, load_prompt_spec(), settings, 3, pipeline=pipe)

    first = again()
    assert (first.made, first.decoded) == (6, 0)
    images = {p.name: p.read_bytes() for p in (run / "images").glob("*.png")}
    for r in read_records(run):
        for s in "ab":
            data = images[Path(r[f"image_{s}"]).name]
            assert (r[f"size_{s}"], r[f"content_{s}"]) == (
                len(data),
                f"sha256:{hashlib.sha256(data).hexdigest()}",
            )

    whole = again()  # nothing changed: nothing decoded, nothing made
    assert (whole.made, whole.kept, whole.decoded, whole.damaged) == (0, 6, 0, [])

    cut = run / "images" / "p0000_a.png"
    cut.write_bytes(images[cut.name][: len(images[cut.name]) // 2])  # a copy stopped midway
    hit = run / "images" / "p0001_b.png"
    data = bytearray(images[hit.name])
    data[len(data) // 2 : len(data) // 2 + 40] = bytes(40)  # 40 bytes of its pixel data zeroed, same size
    hit.write_bytes(bytes(data))
    records = read_records(run)  # p0002 as an earlier version recorded it: no size, no hash
    records[2] = {k: v for k, v in records[2].items() if not k.startswith(("size_", "content_"))}
    write_manifest(run, records)

    res = again()
    assert res.decoded == 4  # the cut and the overwritten images, and p0002's two without a record
    assert sorted(why.split(":")[0] for why in res.damaged) == ["images/p0000_a.png", "images/p0001_b.png"]
    assert (res.made, res.kept) == (2, 4)
    assert {p.name: p.read_bytes() for p in (run / "images").glob("*.png")} == images  # made again the same
    assert all("size_a" in r and "content_b" in r for r in read_records(run))  # p0002 recorded now
    assert again().decoded == 0


def test_a_resume_reads_a_manifest_that_does_not_parse_as_no_record(tmp_path, sd):
    """A manifest cut short by a disk full (it is written again on every batch) does not stop a resume: its
    images are decoded as an earlier version's would be, and the manifest is written whole again."""
    from genbench.generate import GenSettings, generate_run, load_pipeline
    from genbench.prompts import load_prompt_spec

    run = tmp_path / "run"
    settings = GenSettings(model=str(sd), steps=1, width=32, height=32)
    pipe = load_pipeline(str(sd), "fp32", "cpu")
    generate_run(run, load_prompt_spec(), settings, 2, pipeline=pipe)
    text = (run / MANIFEST).read_text()
    (run / MANIFEST).write_text(text[: len(text) // 2])
    res = generate_run(run, load_prompt_spec(), settings, 2, pipeline=pipe)
    assert (res.made, res.kept, res.decoded) == (0, 4, 4)
    assert [json.loads(x)["pair_id"] for x in (run / MANIFEST).read_text().splitlines()] == ["p0000", "p0001"]


def test_agree_leaves_out_votes_on_pairs_no_longer_in_the_manifest_and_says_so(
    tmp_path, photos, genbench_cli
):
    """**Was**: `genbench agree RUN` on a run whose prefs.csv held one vote on a pair no longer in the
    manifest (its image dropped, a smaller re-import) refused all the others: "1 voted pair id(s) are not
    in the run's manifest (e.g. gone) — are the preferences for this run?". Now those votes are left out
    and said, the rest measured; a file with no vote for the run is still refused."""
    from genbench_helpers import make_photo_run

    run = make_photo_run(tmp_path / "run", photos)
    assert genbench_cli("score", run, "-m", "classical", "-w", "0").returncode == 0
    votes = "astronaut,a\ncoffee,b\nchelsea,a\nrocket,b\ngone,a\ngone,b\n"
    (run / "prefs.csv").write_text("pair_id,choice\n" + votes)
    res = genbench_cli("agree", run, "--bootstrap", "200")
    assert res.returncode == 0, res.stderr
    assert "preferences: " in res.stderr and "(4 votes on 4 pairs)" in res.stderr, res.stderr
    assert "2 votes on 1 pair not in the run's manifest left out (e.g. gone)" in res.stderr, res.stderr
    report = json.loads((run / "agreement" / "agreement.json").read_text())
    assert report["settings"]["votes_left_out"] == 2
    assert (run / "agreement" / "agreement.csv").read_text().splitlines()[1].split(",")[1] == "4"

    (run / "prefs.csv").write_text("pair_id,choice\ngone,a\n")  # another run's votes: refused
    res = genbench_cli("agree", run, "--bootstrap", "200")
    assert res.returncode == 2 and "are the preferences for this run?" in res.stderr, res.stderr


def _agiqa_folder(root: Path, photos: dict, header: str = "mos_quality") -> Path:
    """AGIQA-3k's layout (data.csv + AGIQA-3K/) of real photos: two prompts, one a unicode prompt with a
    comma and quotes, one image alone under its prompt."""
    from PIL import Image

    (root / "AGIQA-3K").mkdir(parents=True)
    rows = [
        ("sd1.5_normal_001.jpg", "astronaut", "a cat", 1.0),
        ("sd1.5_lowstep_001.jpg", "coffee", "a cat", 3.0),
    ]
    rows += [
        ("xl2.2_normal_002.jpg", "chelsea", 'café ☕, 日本 "x"', 2.0),
        ("日本_002.jpg", "rocket", 'café ☕, 日本 "x"', 4.2),
    ]
    rows += [("glide_normal_003.jpg", "motorcycle_left", "alone", 2.0)]
    lines = [f"name,prompt,adj1,adj2,style,{header},std_quality,mos_align,std_align"]
    for name, photo, prompt, mos in rows:
        photos[photo].resize((64, 48), Image.BICUBIC).save(root / "AGIQA-3K" / name, quality=90)
        quoted = '"' + prompt.replace('"', '""') + '"'
        lines.append(f"{name},{quoted},,,,{mos},0.5,2.5,0.5")
    (root / "data.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def _imagereward_folder(root: Path, photos: dict) -> Path:
    """ImageReward's test format over real photos; item k1 lists x.png twice (``x.png``, ``./x.png``)."""
    from PIL import Image

    root.mkdir(parents=True)
    for name, photo in (("x", "astronaut"), ("y", "coffee"), ("z", "rocket")):
        photos[photo].resize((64, 48), Image.BICUBIC).save(root / f"{name}.png")
    items = [
        {
            "id": "k1",
            "prompt": "日本 café",
            "generations": ["x.png", "y.png", "./x.png"],
            "ranking": [1, 2, 3],
        },
        {"id": "k2", "prompt": "tie", "generations": ["y.png", "z.png"], "ranking": [1, 1]},
        {"id": "k3", "prompt": "ok", "generations": ["y.png", "z.png"], "ranking": [2, 1]},
        {"id": "k4", "prompt": "one", "generations": ["z.png"], "ranking": [1]},
    ]
    (root / "rankings.json").write_text(json.dumps(items, ensure_ascii=False), encoding="utf-8")
    return root / "rankings.json"


def test_an_imagereward_item_listing_one_image_twice_is_not_paired_with_itself(
    tmp_path, photos, genbench_cli
):
    """**Was**: an item whose generations named one image twice (``x.png``, ``./x.png``) became a pair of
    that image with itself, with a preference ("k1:0-2 … a": every metric ties on it, counted wrong), and
    its pairs with the other images twice. Now its later copies are left out and said; ties, unicode
    prompts and the other items are imported as before. And an item of one image (a well-formed prompt
    with nothing to compare) **was** counted in "1 malformed items skipped" (the counts' nouns always
    plural: "1 equal-rank pairs"); now "1 item of one image: no pair", "1 equal-rank pair"."""

    rankings = _imagereward_folder(tmp_path / "ir", photos)
    res = genbench_cli("import-imagereward", rankings, "--out", tmp_path / "run")
    assert res.returncode == 0, res.stderr
    assert (
        "run: 2 pairs from 3 prompts (1 equal-rank pair left out, 0 malformed items skipped, 1 item of one "
        "image: no pair)" in res.stderr
    )
    said = "1 generation repeats an image listed earlier in its item: left out (e.g. k1: generation 2 "
    assert said + "'./x.png' repeats generation 0)" in res.stderr, res.stderr
    records = read_records(tmp_path / "run")
    assert [r["pair_id"] for r in records] == ["k1:0-1", "k3:0-1"]
    assert all(r["image_a"] != r["image_b"] for r in records) and records[0]["prompt"] == "日本 café"
    assert (tmp_path / "run" / "prefs.csv").read_text().splitlines()[1:] == [
        "k1:0-1,imagereward-ranking,a",
        "k3:0-1,imagereward-ranking,b",
    ]


def test_an_import_into_a_folder_holding_pairs_of_another_source_is_refused(tmp_path, photos, genbench_cli):
    """**Was**: `genbench import-agiqa3k ROOT -o RUN` where RUN held an ImageReward import (or a hand-made
    manifest) replaced its pairs and prefs.csv without a word (only votes.sqlite's votes were checked). Now
    one line, nothing written; the same source again (another --margin) still goes ahead."""

    root = _agiqa_folder(tmp_path / "agiqa", photos)
    rankings = _imagereward_folder(tmp_path / "ir", photos)
    run = tmp_path / "run"
    assert genbench_cli("import-imagereward", rankings, "--out", run).returncode == 0
    before = {f: (run / f).read_bytes() for f in ("manifest.jsonl", "prefs.csv", "image_root.json")}
    res = genbench_cli("import-agiqa3k", root, "--out", run)
    assert res.returncode == 2, res.stderr
    assert res.stderr.strip() == (
        f"error: {run} holds 2 pairs (source: imagereward) — this import (source: agiqa3k) would replace "
        "them and their prefs.csv; pass another --out"
    )
    assert {f: (run / f).read_bytes() for f in before} == before

    other = tmp_path / "agiqa-run"
    assert genbench_cli("import-agiqa3k", root, "--out", other).returncode == 0
    res = genbench_cli("import-agiqa3k", root, "--out", other, "--margin", "0")  # the same source: goes on
    assert res.returncode == 0, res.stderr
    pairs = {r["pair_id"]: r["prompt"] for r in read_records(other)}
    assert pairs == {
        "sd1.5_lowstep_001|sd1.5_normal_001": "a cat",
        "xl2.2_normal_002|日本_002": 'café ☕, 日本 "x"',
    }  # the one-image prompt makes no pair


def test_an_agiqa3k_score_file_without_its_quality_column_gives_genbench_s_fix(
    tmp_path, photos, genbench_cli
):
    """**Was**: `genbench import-agiqa3k ROOT` on a score file whose mos_quality column was renamed (``MOS``)
    said "… — it holds mos_align: pass --target mos_align": `attiqa eval`'s option, which import-agiqa3k
    has not (and pairs by alignment would not be quality preferences). Now the fix is to name the column."""

    root = _agiqa_folder(tmp_path / "agiqa", photos, header="MOS")
    res = genbench_cli("import-agiqa3k", root, "--out", tmp_path / "run")
    assert res.returncode == 2
    line = res.stderr.strip()
    assert line.startswith(f"error: {root / 'data.csv'}: no 'mos_quality' column") and "\n" not in line, line
    assert line.endswith("— genbench pairs images by their quality MOS: name that column mos_quality in the "
                         "header, as in the official score file"), line  # fmt: skip
    assert "--target" not in line and not (tmp_path / "run").exists()


def test_import_agiqa3k_says_one_left_out_row_in_the_singular(tmp_path, photos, genbench_cli):
    """**Was**: "1 rows of the score file repeat an earlier row's image (the first kept): left out" (and
    "1 rows … have an empty prompt"); now "1 row … repeats", "1 row … has", plurals as before. (A repeat
    is an exact one since session 51's second round: another MOS is refused,
    test_genbench_agiqa3k_import_and_charts.py.)"""

    root = _agiqa_folder(tmp_path / "agiqa", photos)
    with open(root / "data.csv", "a", encoding="utf-8") as fh:
        fh.write("sd1.5_normal_001.jpg,a cat,,,,1.0,0.5,2.5,0.5\nnew_004.jpg,,,,,2.0,0.5,2.5,0.5\n")
    res = genbench_cli("import-agiqa3k", root, "--out", tmp_path / "run")
    assert res.returncode == 0, res.stderr
    assert "  1 row of the score file repeats an earlier row (same image, same MOS): left out" in res.stderr
    assert "  1 row of the score file has an empty prompt: left out" in res.stderr, res.stderr
