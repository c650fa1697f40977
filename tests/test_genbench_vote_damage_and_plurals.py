"""genbench: what `genbench vote` tells the organiser of a generated run's damaged image, counts said in words
(docs/robustness.md rows)."""

from __future__ import annotations

import http.client
import json
from pathlib import Path

import pytest
from genbench_helpers import VoteServer, build_tiny_sd

pytest.importorskip("flask")

REMAKE = "rerun `genbench run` with this run's options (run.json) to make it again"


@pytest.fixture(scope="module")
def sd(tmp_path_factory) -> Path:
    """A tiny random-weight Stable Diffusion saved as a local diffusers folder."""
    pytest.importorskip("diffusers")
    return build_tiny_sd(tmp_path_factory.mktemp("tiny") / "sd")


def _next(server: VoteServer, rater: str, skip: str = "") -> dict:
    con = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    con.request("GET", f"/api/next?rater={rater}" + (f"&skip={skip}" if skip else ""))
    body = json.loads(con.getresponse().read())
    con.close()
    return body


def test_vote_tells_how_to_make_a_generated_runs_damaged_image_again(tmp_path, sd):
    """**Was**: `genbench vote RUN` of a generated run with an image cut short logged "pair P is not shown
    to raters: …/p0001_b.png: cannot decode image (…) — re-export or re-download it, or leave it out", a
    photo's fix (`genbench score` gave the run's own since session 50). Now the one rule of both
    (:func:`genbench.manifest.image_problem`): `genbench run` makes it again. The real server, a run made by
    the real (tiny) pipeline."""
    from genbench.generate import GenSettings, generate_run, load_pipeline
    from genbench.prompts import load_prompt_spec

    run = tmp_path / "run"
    settings = GenSettings(model=str(sd), steps=1, width=32, height=32)
    generate_run(run, load_prompt_spec(), settings, 2, pipeline=load_pipeline(str(sd), "fp32", "cpu"))
    damaged = run / "images" / "p0001_b.png"
    damaged.write_bytes(damaged.read_bytes()[:60])
    server = VoteServer(run, tmp_path / "server.log")
    try:
        first = _next(server, "r1")  # the good pair (the damaged one checked on the way, or next)
        assert first["finished"] is False
        assert _next(server, "r1", skip=first["pair_id"]) == {  # every pair's images checked by now
            "finished": True,
            "progress": {"done": 0, "total": 0},  # session 53: the total counts the pairs it can show
            "left_out": 2,
        }
    finally:
        server.stop()
    said = [ln for ln in (tmp_path / "server.log").read_text().splitlines() if "not shown to raters" in ln]
    assert len(said) == 1 and f"{damaged}: " in said[0] and said[0].endswith(f" — {REMAKE}"), said


def test_counts_are_said_with_their_noun_in_the_right_number(tmp_path, photos):
    """**Was** "1 votes from 1 raters" (`export-votes`, `vote`'s stop), "(1 votes on 1 pairs)" (`agree`),
    "1 pairs from 1 prompts" (`import-imagereward`), "1 votes are on 1 pairs this import leaves out".
    Now one helper, :func:`attiqa.progress.counted`, for every count genbench prints with its noun. The real
    command on a one-vote study."""
    from genbench_helpers import make_photo_run
    from typer.testing import CliRunner

    from attiqa.progress import counted
    from genbench.cli import app
    from genbench.manifest import load_pairs
    from genbench.vote.store import VoteStore

    assert [counted(n, "rater") for n in (0, 1, 2)] == ["0 raters", "1 rater", "2 raters"]
    assert counted(1, "entry", "entries") == "1 entry" and counted(3, "entry", "entries") == "3 entries"
    run = make_photo_run(tmp_path / "run", photos)
    VoteStore(run / "votes.sqlite").add("only-rater", load_pairs(run)[0].pair_id, "a", "a")
    r = CliRunner().invoke(app, ["export-votes", str(run)])
    assert r.exit_code == 0, r.output
    assert ": 1 vote from 1 rater" in " ".join(r.output.split()) and "raters" not in r.output
