"""genbench: what the vote server says of a vote sent again, and which preferences `agree` measures
against."""

from __future__ import annotations

import pytest

pytest.importorskip("flask")

from genbench_helpers import make_photo_run  # noqa: E402


def test_a_vote_sent_again_is_told_apart_from_another_tabs_vote(tmp_path, photos):
    """A vote whose answer was lost (the server killed between its commit and its reply) is sent again by
    the page: the 409 now names the side kept (``saved``), so the page knows its own vote counted and does
    not say "That pair already had your vote (from another tab …)"; a press for the other side still gets
    that line."""
    from genbench.vote.server import create_app

    client = create_app(make_photo_run(tmp_path / "run", photos)).test_client()
    vote = {"rater": "r1", "pair_id": "coffee", "choice": "right"}
    assert client.post("/api/vote", json=vote).status_code == 201
    again = client.post("/api/vote", json=vote)
    assert again.status_code == 409 and again.get_json()["saved"] == "right"
    other = client.post("/api/vote", json={**vote, "choice": "left"})
    assert other.status_code == 409 and other.get_json()["saved"] == "right"


def test_agree_on_an_agiqa3k_import_with_votes_says_which_preferences_it_measures_against(tmp_path):
    """**Was**: on an AGIQA-3k import that also got votes, `agree` said "preferences: RUN/votes.sqlite (2
    votes on 1 pair)" and, with ``--prefs RUN/prefs.csv``, "(6 votes on 6 pairs)": nothing said whether the
    accuracies were against people's votes or AGIQA-3k's MOS, and agreement.json kept a path only. Now
    the line says what the preferences are (and what the file left aside holds); agreement.json records it
    (``prefs_kind``, ``prefs_not_used``); ``--prefs`` chooses either."""
    import json

    from helpers import agiqa3k_folder
    from typer.testing import CliRunner

    from genbench.agiqa3k import import_agiqa3k
    from genbench.cli import app
    from genbench.manifest import load_pairs
    from genbench.vote.store import VoteStore

    run = tmp_path / "run"
    import_agiqa3k(agiqa3k_folder(tmp_path / "agiqa"), run)
    runner = CliRunner()
    assert runner.invoke(app, ["score", str(run), "-m", "classical", "-w", "0"]).exit_code == 0
    pair = load_pairs(run)[0].pair_id
    store = VoteStore(run / "votes.sqlite")
    store.add("al", pair, "b", "a")
    store.add("bo", pair, "a", "a")

    def agree(*prefs: str) -> tuple[str, dict]:
        res = runner.invoke(app, ["agree", str(run), "--bootstrap", "100", *prefs])
        assert res.exit_code == 0, res.output
        report = json.loads((run / "agreement" / "agreement.json").read_text())
        return " ".join(res.output.split()), report["settings"]

    said, settings = agree()
    assert f"preferences: {run / 'votes.sqlite'} (2 votes on 1 pair) — votes of 2 raters" in said, said
    assert f"--prefs {run / 'prefs.csv'} to measure against it (AGIQA-3k MOS, the higher preferred)" in said
    assert settings["prefs_kind"] == "votes of 2 raters"
    assert settings["prefs_not_used"] == str(run / "prefs.csv")

    said, settings = agree("--prefs", str(run / "prefs.csv"))
    assert "(6 votes on 6 pairs) — AGIQA-3k MOS, the higher preferred" in said and "not used" not in said
    assert (
        settings["prefs_kind"] == "AGIQA-3k MOS, the higher preferred" and settings["prefs_not_used"] is None
    )
