"""genbench, session 51: a resume checks its images against their recorded size and hash instead of decoding
every one; the importers and `score` / `agree` with hostile inputs; the vote app's flows in a real browser
(docs/robustness.md rows of session 51). Small fixtures: a tiny random Stable Diffusion, real photos."""

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


def test_agree_leaves_out_votes_on_pairs_no_longer_in_the_manifest_and_says_so(tmp_path, photos):
    """**Was**: `genbench agree RUN` on a run whose prefs.csv held one vote on a pair no longer in the
    manifest (its image dropped, a smaller re-import) refused all the others: "1 voted pair id(s) are not
    in the run's manifest (e.g. gone) — are the preferences for this run?". Now those votes are left out
    and said, the rest measured; a file with no vote for the run is still refused."""
    from genbench_helpers import make_photo_run
    from helpers import run_genbench

    run = make_photo_run(tmp_path / "run", photos)
    assert run_genbench("score", run, "-m", "classical", "-w", "0").returncode == 0
    votes = "astronaut,a\ncoffee,b\nchelsea,a\nrocket,b\ngone,a\ngone,b\n"
    (run / "prefs.csv").write_text("pair_id,choice\n" + votes)
    res = run_genbench("agree", run, "--bootstrap", "200")
    assert res.returncode == 0, res.stderr
    assert "preferences: " in res.stderr and "(4 votes on 4 pairs)" in res.stderr, res.stderr
    assert "2 votes on 1 pair not in the run's manifest left out (e.g. gone)" in res.stderr, res.stderr
    report = json.loads((run / "agreement" / "agreement.json").read_text())
    assert report["settings"]["votes_left_out"] == 2
    assert (run / "agreement" / "agreement.csv").read_text().splitlines()[1].split(",")[1] == "4"

    (run / "prefs.csv").write_text("pair_id,choice\ngone,a\n")  # another run's votes: refused
    res = run_genbench("agree", run, "--bootstrap", "200")
    assert res.returncode == 2 and "are the preferences for this run?" in res.stderr, res.stderr
