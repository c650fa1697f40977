"""genbench vote with the server away for a while: a real Chromium, a real `genbench vote` process stopped
(SIGKILL) and started again on its port."""

from __future__ import annotations

import sqlite3

import pytest

pytest.importorskip("flask")
pytest.importorskip("selenium", reason="selenium is not installed (pip install selenium)")

from genbench_helpers import (  # noqa: E402
    VoteServer,
    chromium,
    log_in,
    make_photo_run,
    showing,
    state,
    until,
    votes_of,
    wait_for_pair,
)


def _killed_after_a_vote(run, tmp_path, browser, rater: str) -> VoteServer:
    """The server after ``rater`` voted on one pair and it was killed (SIGKILL), the next pair on screen."""
    server = VoteServer(run, tmp_path / "server.log")
    log_in(browser, server, rater)
    _key(browser, "ARROW_LEFT")
    wait_for_pair(browser, "1 / 5")
    server.proc.kill()
    server.proc.wait()
    server.stop()
    return server


def _vote_while_away(run, tmp_path, browser, rater: str, key: str) -> tuple[VoteServer, str]:
    """:func:`_killed_after_a_vote`, then ``key`` pressed on the pair on screen until the page says it
    retries; the stopped server and that pair."""
    server = _killed_after_a_vote(run, tmp_path, browser, rater)
    pair = showing(browser)["pair"]
    _key(browser, key)
    until(browser, lambda d: "trying again in" in showing(d)["status"])
    return server, pair


def _key(browser, key: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    browser.find_element(By.TAG_NAME, "body").send_keys(getattr(Keys, key))


def test_a_vote_given_while_the_server_is_away_is_sent_by_itself_once_it_is_back(tmp_path, photos, browser):
    """**Was**: a vote given while the server was down was dropped ("nothing was saved — try again"), and
    the page stayed on the error until the rater pressed again (session 46's test of that, "the same key
    votes once it is back", is replaced by this one: a press meant as that retry now votes on nothing). Now
    the page keeps the vote, says it retries (with a growing delay), and sends it once the server is back:
    no key pressed, the vote on disk once, the next pair on screen."""
    run = make_photo_run(tmp_path / "run", photos)
    server, pair = _vote_while_away(run, tmp_path, browser, "patient", "ARROW_RIGHT")
    try:
        status = showing(browser)["status"]
        assert "cannot be reached" in status and "Your vote (right) is kept on this page" in status
        _key(browser, "ARROW_LEFT")  # a press while it waits tries again; it is no second vote
        server = VoteServer(run, tmp_path / "server2.log", port=server.port)
        wait_for_pair(browser, "2 / 5")  # no key pressed after the restart
        assert showing(browser)["status"] == "" and state(browser) == "voting"
        votes = votes_of(run, "patient")
        assert len(votes) == 2 and votes[1] == pair
        with sqlite3.connect(run / "votes.sqlite") as con:
            ((choice, left),) = con.execute(
                "SELECT choice, left_side FROM votes WHERE rater='patient' AND pair_id=?", (pair,)
            )
        assert choice != left  # the right image, as pressed
    finally:
        server.stop()


def test_the_page_asks_for_its_next_pair_again_by_itself(tmp_path, photos, browser):
    """**Was**: a failed ``/api/next`` (the server away as the page loaded its pair) left the page on the
    error until the rater reloaded. Now it says it tries again and shows the pair once the server is back."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    run = make_photo_run(tmp_path / "run", photos)
    server = _killed_after_a_vote(run, tmp_path, browser, "alice")
    try:
        browser.find_element(By.ID, "switch").click()  # alice again, at the login: her next pair is asked
        until(browser, lambda d: state(d) == "login")
        browser.find_element(By.ID, "rater").send_keys("alice", Keys.ENTER)
        until(browser, lambda d: "Trying again in" in showing(d)["status"])
        assert "your votes so far are saved" in showing(browser)["status"]
        assert state(browser) == "login"  # the study is not on offer while it waits
        server = VoteServer(run, tmp_path / "server2.log", port=server.port)
        until(browser, lambda d: state(d) == "voting")
        wait_for_pair(browser, "1 / 5")
        assert showing(browser)["status"] == ""
        _key(browser, "ARROW_LEFT")
        wait_for_pair(browser, "2 / 5")
        assert len(votes_of(run, "alice")) == 2
    finally:
        server.stop()


def test_a_vote_waiting_over_a_reload_is_sent_when_the_page_comes_back(tmp_path, photos, browser):
    """A vote given while the server was away, then the page reloaded before the server was back (the
    browser's own error page): the tab keeps the vote and sends it when the study page loads again."""
    run = make_photo_run(tmp_path / "run", photos)
    server, pair = _vote_while_away(run, tmp_path, browser, "reloader", "ARROW_LEFT")
    try:
        browser.refresh()  # the server is down: the browser's error page
        server = VoteServer(run, tmp_path / "server2.log", port=server.port)
        browser.get(server.url + "/")
        wait_for_pair(browser, "2 / 5")
        assert votes_of(run, "reloader")[1:] == [pair] and showing(browser)["pair"] != pair
    finally:
        server.stop()


@pytest.mark.slow  # two browsers, a server started twice, three commands: ~45 s on the 2-core machine
def test_two_raters_through_a_killed_server_keep_every_vote_once(tmp_path, photos, browser, genbench_cli):
    """Two raters in two browsers (their own profiles), the server killed (SIGKILL) after 2 and 1 votes and
    started again; each presses once while it is away. Every vote is on disk once (the SQLite file whole,
    ``PRAGMA integrity_check``), `export-votes` writes each once and `agree` counts them once, from the
    database and from the export alike; the report's JSON is whole."""
    import csv
    import json

    run = make_photo_run(tmp_path / "run", photos)
    server = VoteServer(run, tmp_path / "server.log")
    try:
        with chromium() as other:
            log_in(browser, server, "r1")
            log_in(other, server, "r2")
            for done in (1, 2):
                _key(browser, "ARROW_LEFT" if done % 2 else "ARROW_RIGHT")
                wait_for_pair(browser, f"{done} / 5")
            _key(other, "ARROW_RIGHT")
            wait_for_pair(other, "1 / 5")
            server.proc.kill()
            server.proc.wait()
            server.stop()
            for driver in (browser, other):  # a vote each while it is away
                _key(driver, "ARROW_LEFT")
                until(driver, lambda d: "trying again in" in showing(d)["status"])
            server = VoteServer(run, tmp_path / "server2.log", port=server.port)
            for driver, done in ((browser, 3), (other, 2)):
                until(driver, lambda d, done=done: showing(d)["progress"].startswith(f"{done} / 5"))
            for driver, start in ((browser, 4), (other, 3)):  # the rest of the study
                for done in range(start, 6):
                    until(driver, lambda d: state(d) == "voting")
                    _key(driver, "ARROW_LEFT" if done % 2 else "ARROW_RIGHT")
                    until(
                        driver,
                        lambda d, done=done: (
                            showing(d)["progress"].startswith(f"{done} / 5") or state(d) == "finished"
                        ),
                    )
                until(driver, lambda d: state(d) == "finished")
    finally:
        server.stop()
    ids = sorted(r["pair_id"] for r in __import__("genbench.manifest").manifest.read_records(run))
    assert sorted(votes_of(run, "r1")) == sorted(votes_of(run, "r2")) == ids
    with sqlite3.connect(run / "votes.sqlite") as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

    res = genbench_cli("export-votes", run)
    assert res.returncode == 0 and "10 votes from 2 raters" in res.stderr, res.stderr
    with open(run / "votes.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert sorted((r["rater"], r["pair_id"]) for r in rows) == [(r, p) for r in ("r1", "r2") for p in ids]
    assert genbench_cli("score", run, "--metrics", "classical").returncode == 0
    for k, prefs in enumerate(([], ["--prefs", run / "votes.csv"])):
        out = tmp_path / f"agree{k}"
        res = genbench_cli("agree", run, *prefs, "--bootstrap", "100", "-o", out)
        assert res.returncode == 0 and "(10 votes on 5 pairs)" in res.stderr, res.stderr
        assert "repeated vote" not in res.stderr
        report = json.loads((out / "agreement.json").read_text())
        assert report["settings"]["repeated_votes_left_out"] == 0


def test_a_kept_vote_the_restarted_server_refuses_is_said_as_not_saved(tmp_path, photos, browser):
    """A vote kept while the server was away, on a pair the study no longer holds when it is back (its
    manifest rewritten meanwhile): the page says the vote was not saved — not dropped in silence — and
    goes on with a pair the server offers."""
    from genbench.manifest import read_records, write_manifest

    run = make_photo_run(tmp_path / "run", photos)
    server, pair = _vote_while_away(run, tmp_path, browser, "moved", "ARROW_LEFT")
    write_manifest(run, [r for r in read_records(run) if r["pair_id"] != pair])
    try:
        server = VoteServer(run, tmp_path / "server2.log", port=server.port)
        until(browser, lambda d: "not saved" in showing(d)["status"])
        assert showing(browser)["status"] == "Your last vote was not saved: unknown pair id."
        wait_for_pair(browser, "1 / 4")
        assert showing(browser)["pair"] != pair and pair not in votes_of(run, "moved")
    finally:
        server.stop()
