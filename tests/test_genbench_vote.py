"""genbench vote: the real server process — validation (clean 4xx), images by pair id only (no path
traversal), and many raters voting at once over real HTTP without losing or duplicating a vote."""

from __future__ import annotations

import csv
import http.client
import json
import sqlite3
from concurrent.futures import ThreadPoolExecutor

import pytest

pytest.importorskip("flask")

from genbench_helpers import VoteServer, make_photo_run  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from genbench.cli import app  # noqa: E402
from genbench.vote.server import left_side  # noqa: E402


@pytest.fixture(scope="module")
def server(tmp_path_factory, photos):
    base = tmp_path_factory.mktemp("vote")
    run = make_photo_run(base / "run", photos)
    srv = VoteServer(run, base / "server.log")
    srv.run = run
    yield srv
    srv.stop()


def request(srv, method: str, path: str, body: bytes | dict | None = None) -> tuple[int, bytes, str]:
    con = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
    headers = {}
    if isinstance(body, dict):
        body = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    elif body is not None:
        headers["Content-Type"] = "application/json"
    con.request(method, path, body=body, headers=headers)  # the path goes out exactly as written
    resp = con.getresponse()
    data = resp.read()
    con.close()
    return resp.status, data, resp.getheader("Content-Type", "")


def test_page_study_and_next(server):
    status, page, ctype = request(server, "GET", "/")
    assert status == 200 and "text/html" in ctype and b"/static/app.js" in page
    status, body, _ = request(server, "GET", "/api/study")
    study = json.loads(body)
    assert study["pairs"] == 5 and "choose a better one with good image quality" in study["instructions"][1]
    status, body, _ = request(server, "GET", "/api/next?rater=alice")
    nxt = json.loads(body)
    assert status == 200 and not nxt["finished"] and nxt["progress"] == {"done": 0, "total": 5}
    pid = nxt["pair_id"]
    assert nxt["left"] == f"/image/{pid}/{left_side('alice', pid)}" and nxt["left"] != nxt["right"]
    assert b"prompt" not in body  # raters never see the prompt
    status, png, ctype = request(server, "GET", nxt["left"])
    assert status == 200 and ctype == "image/png"
    assert png == (server.run / "images" / f"{pid}_{left_side('alice', pid)}.png").read_bytes()


@pytest.mark.parametrize(
    "method, path, body, code",
    [
        ("POST", "/api/vote", {"rater": "bob", "pair_id": "no-such-pair", "choice": "left"}, 404),
        ("POST", "/api/vote", {"rater": "bob", "pair_id": "astronaut", "choice": "up"}, 400),
        ("POST", "/api/vote", {"rater": "../etc", "pair_id": "astronaut", "choice": "left"}, 400),
        ("POST", "/api/vote", {"rater": "bob", "pair_id": ["astronaut"], "choice": "left"}, 404),
        ("POST", "/api/vote", b"{not json", 400),
        ("POST", "/api/vote", b'{"rater": "' + b"x" * 10000 + b'"}', 413),
        ("GET", "/api/next", None, 400),
        ("GET", "/api/next?rater=%00bad", None, 400),
        ("GET", "/image/astronaut/c", None, 404),
        ("GET", "/image/..%2F..%2F..%2Fetc%2Fpasswd/a", None, 404),
        ("GET", "/image/astronaut/..%2F..%2Fmanifest.jsonl", None, 404),
        ("GET", "/image/../../manifest.jsonl", None, 404),
        ("GET", "/static/../server.py", None, 404),
        ("GET", "/static/..%2Fserver.py", None, 404),
        ("GET", "/static/%2e%2e/%2e%2e/data/study.json", None, 404),
        ("GET", "/votes.sqlite", None, 404),
    ],
)
def test_bad_requests_get_clean_4xx(server, method, path, body, code):
    status, data, ctype = request(server, method, path, body)
    assert status == code
    for leak in (b"Traceback", b"root:", b"image_a", b"def create_app", b"instructions"):
        assert leak not in data  # no stack trace, no file content
    if ctype.startswith("application/json"):
        assert json.loads(data)["status"] == code


def test_replayed_vote_is_refused(server):
    vote = {"rater": "carol", "pair_id": "coffee", "choice": "right"}
    assert request(server, "POST", "/api/vote", vote)[0] == 201
    status, body, _ = request(server, "POST", "/api/vote", vote)
    assert status == 409 and "already voted" in json.loads(body)["error"]
    status, body, _ = request(server, "POST", "/api/vote", {**vote, "choice": "left"})  # changing one's mind
    assert status == 409
    with sqlite3.connect(server.run / "votes.sqlite") as con:
        rows = con.execute("SELECT choice, left_side FROM votes WHERE rater='carol'").fetchall()
    expected = "b" if left_side("carol", "coffee") == "a" else "a"  # 'right' = the image not on the left
    assert rows == [(expected, left_side("carol", "coffee"))]


def test_concurrent_raters_lose_and_duplicate_nothing(server, tmp_path):
    raters = [f"rater{i}" for i in range(8)]
    pair_ids = ["astronaut", "coffee", "chelsea", "rocket", "motorcycle_left"]
    jobs = [
        {"rater": r, "pair_id": p, "choice": "left" if (i + j) % 3 else "right"}
        for i, r in enumerate(raters)
        for j, p in enumerate(pair_ids)
    ]
    sent = jobs * 3  # every vote sent three times at once: one must count, two must be refused
    with ThreadPoolExecutor(max_workers=24) as pool:
        codes = list(pool.map(lambda v: request(server, "POST", "/api/vote", v)[0], sent))
    assert codes.count(201) == len(jobs) and codes.count(409) == 2 * len(jobs)
    with sqlite3.connect(server.run / "votes.sqlite") as con:
        rows = con.execute("SELECT rater, pair_id, choice FROM votes WHERE rater LIKE 'rater%'").fetchall()
    assert len(rows) == len(set((r, p) for r, p, _ in rows)) == len(jobs)
    for rater, pid, choice in rows:
        job = next(j for j in jobs if j["rater"] == rater and j["pair_id"] == pid)
        left = left_side(rater, pid)
        assert choice == (left if job["choice"] == "left" else ("b" if left == "a" else "a"))
    assert {left_side(r, p) for r in raters for p in pair_ids} == {"a", "b"}  # placement is randomised
    status, body, _ = request(server, "GET", "/api/next?rater=rater0")
    assert json.loads(body)["finished"] is True

    out = tmp_path / "votes.csv"
    res = CliRunner().invoke(app, ["export-votes", str(server.run), "--out", str(out)])
    assert res.exit_code == 0, res.output
    with open(out, newline="") as fh:
        exported = list(csv.DictReader(fh))
    assert sum(r["rater"].startswith("rater") for r in exported) == len(jobs)
    assert set(exported[0]) == {"pair_id", "rater", "choice", "left_side", "created_at"}

    # the study's database feeds `genbench agree` directly
    runner = CliRunner()
    assert runner.invoke(app, ["score", str(server.run), "-m", "classical", "--workers", "0"]).exit_code == 0
    res = runner.invoke(
        app, ["agree", str(server.run), "--bootstrap", "200", "--out", str(tmp_path / "agree")]
    )
    assert res.exit_code == 0, res.output
    with open(tmp_path / "agree" / "per_pair.csv", newline="") as fh:
        per_pair = {r["pair_id"]: r for r in csv.DictReader(fh)}
    a_votes = sum(r["choice"] == "a" and r["pair_id"] == "astronaut" for r in exported)
    assert int(per_pair["astronaut"]["votes_a"]) == a_votes


def test_imported_pair_ids_with_odd_characters_are_served(tmp_path, photos):
    from genbench.manifest import write_manifest
    from genbench.vote.server import create_app

    img = next(iter(photos.values())).resize((64, 64))
    img.save(tmp_path / "x.png")
    img.rotate(90).save(tmp_path / "y.png")
    pid = "005658-0040:0-1 #?"
    write_manifest(tmp_path, [{"pair_id": pid, "image_a": str(tmp_path / "x.png"), "image_b": "y.png"}])
    client = create_app(tmp_path).test_client()
    nxt = client.get("/api/next?rater=dave").get_json()
    assert nxt["pair_id"] == pid and "%3A" in nxt["left"] and "%23" in nxt["left"]
    assert client.get(nxt["left"]).status_code == 200 and client.get(nxt["right"]).status_code == 200
    assert (
        client.post("/api/vote", json={"rater": "dave", "pair_id": pid, "choice": "left"}).status_code == 201
    )


def test_exported_votes_are_formula_safe_and_read_back_exactly(tmp_path):
    """A rater's name is typed by anyone who opens the study page: `=HYPERLINK(...)` must not become a
    formula when the exported CSV is opened in a spreadsheet, and must read back as typed."""
    from genbench.agreement import read_votes_csv
    from genbench.vote.store import VoteStore

    store = VoteStore(tmp_path / "votes.sqlite")
    evil = '=HYPERLINK("http://x.invalid","click")'
    store.add(evil, "-pair1", "a", "a")
    store.add("ann", "pair2", "b", "a")
    out = tmp_path / "votes.csv"
    assert store.export_csv(out) == 2
    with open(out, newline="") as fh:
        cells = [c for row in csv.reader(fh) for c in row]
    assert not any(c[:1] in ("=", "+", "-", "@") for c in cells)
    votes = read_votes_csv(out)
    assert {(v.rater, v.pair_id, v.choice) for v in votes} == {(evil, "-pair1", "a"), ("ann", "pair2", "b")}


def test_a_port_in_use_or_an_unknown_host_is_one_line(tmp_path, photos):
    """**Was** (session 34): werkzeug's own two lines ("Address already in use" / "Port N is in use by another
    program ...", or "Name or service not known"), exit code 1, no word of --host; now one line naming the
    option to change, exit code 2 (run_app)."""
    import socket

    from attiqa.errors import AttiqaError

    run = make_photo_run(tmp_path / "run", photos)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        res = CliRunner().invoke(app, ["vote", str(run), "--port", str(port)])
    assert isinstance(res.exception, AttiqaError), res.output
    assert (
        str(res.exception)
        == f"--port {port}: in use by another program — pass another --port (0: any free one)"
    )
    res = CliRunner().invoke(app, ["vote", str(run), "--host", "no-such-host.invalid", "--port", "0"])
    assert isinstance(res.exception, AttiqaError), res.output
    assert "warning" not in res.output  # was: "anyone who can reach this machine can vote" first
    assert str(res.exception).startswith("--host no-such-host.invalid: not an address of this machine (")


def test_the_printed_study_address_opens_in_a_browser():
    """**Was** (session 34): `--host ::1` printed http://::1:8000/, which no browser opens."""
    from genbench.cli import study_url

    assert study_url("::1", 8000) == "http://[::1]:8000/" and study_url("::", 80) == "http://[::1]:80/"
    assert study_url("0.0.0.0", 8000) == "http://127.0.0.1:8000/"
    assert study_url("localhost", 1) == "http://localhost:1/"


@pytest.mark.parametrize("sig, code", [("SIGINT", 130), ("SIGTERM", 143)])
def test_stopping_the_study_says_what_was_saved_and_how_to_resume(tmp_path, photos, sig, code):
    """**Was** (session 35): Ctrl-C (or SIGTERM) ended `genbench vote` silently with exit 0 — werkzeug's
    serve_forever swallows the interruption. Now the exit code of the other long commands (130 / 143), the
    votes kept and the command that continues the study; a rerun serves the same database."""
    import signal

    run = make_photo_run(tmp_path / "my run", photos)
    srv = VoteServer(run, tmp_path / "server.log")
    try:
        vote = {"rater": "erin", "pair_id": "rocket", "choice": "left"}
        assert request(srv, "POST", "/api/vote", vote)[0] == 201
        srv.proc.send_signal(getattr(signal, sig))
        assert srv.proc.wait(30) == code
    finally:
        srv.stop()
    log = " ".join(srv.log.read_text().split())
    assert "Traceback" not in log and log.count("interrupted") == 0, log
    assert f"stopped: 1 vote from 1 rater saved in {run / 'votes.sqlite'}" in log
    assert f"`genbench vote '{run}'` continues the study" in log  # quoted: the folder has a space
    again = VoteServer(run, tmp_path / "again.log")  # following the advice
    try:
        status, body, _ = request(again, "GET", "/api/next?rater=erin")
        assert status == 200 and json.loads(body)["progress"] == {"done": 1, "total": 5}
    finally:
        again.stop()


def test_a_read_only_study_is_refused_at_the_start_and_read_by_agree(tmp_path, photos):
    """**Was** (session 46), as a user without root's override: `genbench vote` on a run whose votes.sqlite
    is read-only said "serving 5 pairs" and answered every vote 500 ("The server encountered an internal
    error", a traceback in its log); on a read-only run folder it said "cannot open the vote database
    (unable to open database file)" or "not a usable vote database … — move it away"; and `genbench agree`
    / `export-votes` of a finished study in a read-only folder refused the same way. Now `vote` stops at
    the start in one line saying what to make writable; `agree` and `export-votes` read the votes."""
    from helpers import run_genbench

    from genbench.manifest import load_pairs
    from genbench.vote.store import VoteStore

    run = make_photo_run(tmp_path / "run", photos)
    run.chmod(0o555)
    try:
        res = run_genbench("vote", run, "--port", "0", unprivileged=True)
        assert res.returncode == 2 and res.stderr.splitlines() == [
            f"error: {run}/votes.sqlite: votes cannot be saved there (unable to open database file) — make "
            f"it writable (chmod u+w {run}), or copy the run folder somewhere writable"
        ], res.stderr
    finally:
        run.chmod(0o755)

    store = VoteStore(run / "votes.sqlite")
    for k, pair in enumerate(load_pairs(run)):
        store.add("ro", pair.pair_id, "ab"[k % 2], "a")
    assert CliRunner().invoke(app, ["score", str(run), "-m", "classical", "--workers", "0"]).exit_code == 0
    (run / "votes.sqlite").chmod(0o444)
    res = run_genbench("vote", run, "--port", "0", unprivileged=True)
    assert res.returncode == 2 and "serving" not in res.stderr, res.stderr
    assert res.stderr.splitlines() == [
        f"error: {run}/votes.sqlite: votes cannot be saved there (attempt to write a readonly database) — "
        f"make it writable (chmod u+w {run} {run}/votes.sqlite), or copy the run folder somewhere writable"
    ]

    for folder in (run / "scores", run):
        folder.chmod(0o555)
    try:
        res = run_genbench("agree", run, "-o", tmp_path / "report", "--bootstrap", "100", unprivileged=True)
        assert res.returncode == 0 and "(5 votes on 5 pairs)" in res.stderr, res.stderr
        res = run_genbench("export-votes", run, "-o", tmp_path / "votes.csv", unprivileged=True)
        assert res.returncode == 0 and "5 votes from 1 rater" in res.stderr, res.stderr
    finally:
        for folder in (run, run / "scores"):
            folder.chmod(0o755)


def test_the_organisers_terminal_is_not_a_request_log(tmp_path, photos):
    """**Was** (session 46): werkzeug printed a line per request — 4 per vote (next, two images, the vote),
    each with the rater's id: 196 lines for 32 votes, in which "pair P is not shown to raters" would be
    lost. Now the terminal says what the organiser acts on: the address, pairs left out, the stop."""
    run = make_photo_run(tmp_path / "run", photos)
    (run / "images" / "astronaut_a.png").unlink()
    server = VoteServer(run, tmp_path / "server.log")
    try:
        for _ in range(4):
            nxt = json.loads(request(server, "GET", "/api/next?rater=quiet")[1])
            for side in ("left", "right"):
                assert request(server, "GET", nxt[side])[0] == 200
            vote = {"rater": "quiet", "pair_id": nxt["pair_id"], "choice": "left"}
            assert request(server, "POST", "/api/vote", vote)[0] == 201
        assert json.loads(request(server, "GET", "/api/next?rater=quiet")[1])["left_out"] == 1
    finally:
        server.stop()
    lines = (tmp_path / "server.log").read_text().splitlines()
    assert lines[1].startswith("serving 5 pairs on http://127.0.0.1:") and lines[-1].startswith(
        "stopped: 4 votes"
    )
    # session 48: an image missing at the start is counted in one line there, not logged at first use
    assert len(lines) == 3 and "1 of 5 pairs are not shown to raters: an image is missing" in lines[0], lines


def test_votes_a_killed_server_left_in_the_wal_are_read_from_a_read_only_study(tmp_path, photos):
    """**Was** (session 46's read-only reading): a study whose server was killed keeps its last votes in
    ``votes.sqlite-wal`` until the next checkpoint; with its folder made read-only, `export-votes` and `agree`
    opened the database immutable and read the main file only — "0 votes" here, without a word. Now the
    WAL's votes are read."""
    import subprocess
    import sys

    from helpers import attiqa_env, run_genbench

    run = make_photo_run(tmp_path / "run", photos)
    killed = (  # votes through the store while another connection holds the WAL open, then killed
        "import os, sqlite3, sys\n"
        "from genbench.manifest import load_pairs\n"
        "from genbench.vote.store import VoteStore\n"
        "store = VoteStore(sys.argv[1] + '/votes.sqlite')\n"
        "held = sqlite3.connect(sys.argv[1] + '/votes.sqlite')\n"
        "held.execute('SELECT count(*) FROM votes').fetchall()\n"
        "for k, pair in enumerate(load_pairs(sys.argv[1])):\n"
        "    store.add('late', pair.pair_id, 'ab'[k % 2], 'a')\n"
        "os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", killed, str(run)], env=attiqa_env(), check=True, timeout=120)
    assert (run / "votes.sqlite-wal").stat().st_size > 0
    run.chmod(0o555)
    try:
        res = run_genbench("export-votes", run, "-o", tmp_path / "votes.csv", unprivileged=True)
        assert res.returncode == 0 and "5 votes from 1 rater" in res.stderr, res.stderr
    finally:
        run.chmod(0o755)
