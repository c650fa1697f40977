"""genbench, session 54 round 2: what the vote server says of a vote sent again, and which preferences
`agree` measures against."""

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
