"""The preference-study server (ATTIQA supplement §D.2): two images side by side, no prompt, pick the better.

Flask app over a run folder. Each rater sees the pairs in their own random order and with their own random
left/right placement (both fixed per rater by a hash, so a reload shows the same screen). The client never
names a file: images are addressed by pair id and side, so paths cannot be smuggled in; every input is
checked and answered with a JSON 4xx (unknown pair 404, replayed vote 409 naming the side kept,
malformed request 400).

Host check (ours, against DNS rebinding): a web page on another site cannot make a browser read this
server by pointing its own domain name at 127.0.0.1, because requests whose ``Host`` is a name other than
``localhost``, this machine's name or a name allowed with ``--allow-host`` are refused (403). IP
addresses are always accepted: a rebinding attack needs a domain name.

Images: only files inside the run's image folders (see :mod:`genbench.manifest`), with an image file
extension, are served; the check is repeated per request on the resolved path. A pair is shown only when
both its images decode (checked once per file version): a vote on a missing or half-written image says
nothing about quality. The page also asks to skip a pair whose image its browser could not show. A
rater's progress counts the pairs they can be shown; those left out are counted apart (``left_out``), so
the page says them from the first pair on.

Routes: ``GET /`` the page; ``GET /api/study``; ``GET /api/next?rater=R[&skip=PAIR...]``; ``POST /api/vote``
(``{"rater", "pair_id", "choice": "left"|"right"}``); ``GET /image/<pair_id>/<a|b>``; ``GET /api/progress``.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import ipaddress
import json
import logging
import re
import socket
from collections.abc import Callable, Iterable
from pathlib import Path
from urllib.parse import quote

from flask import Flask, Response, abort, jsonify, request, send_file
from werkzeug.exceptions import HTTPException

from attiqa.errors import AttiqaError, ImageLoadError
from attiqa.io.images import IMAGE_EXTENSIONS, load_image
from attiqa.progress import shown_name
from genbench.manifest import (
    SIDES,
    image_problem,
    image_roots,
    is_inside,
    load_pairs,
    missing_images,
    real_path,
    resolve,
)
from genbench.vote.store import VOTES_DB, DuplicateVote, VoteStore

STATIC = Path(__file__).resolve().parent / "static"
STUDY = Path(__file__).resolve().parents[1] / "data" / "study.json"
RATER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")


def _digest(*parts: str) -> bytes:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).digest()


def pair_order(pair_ids: list[str], rater: str, seed: str = "") -> list[str]:
    """The rater's own order of the pairs (stable across requests and restarts)."""
    return sorted(pair_ids, key=lambda pid: _digest(seed, "order", rater, pid))


def left_side(rater: str, pair_id: str, seed: str = "") -> str:
    """Which image ("a" or "b") this rater sees on the left for this pair."""
    return SIDES[_digest(seed, "side", rater, pair_id)[0] & 1]


def _hostname(host_header: str) -> str:
    """The name part of a ``Host`` header (no port, no IPv6 brackets), lower case, without a final dot."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    if host.count(":") == 1:
        host = host.split(":", 1)[0]
    return host.rstrip(".")


def host_allowed(host_header: str, names: Iterable[str]) -> bool:
    """Whether a request's ``Host`` may be answered: an IP address, or one of ``names``."""
    host = _hostname(host_header)
    if not host:
        return False
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return host in {n.lower().rstrip(".") for n in names}


def default_host_names(extra: Iterable[str] = ()) -> set[str]:
    """``localhost``, this machine's host names, and ``extra`` (``--allow-host``)."""
    names = {"localhost", *extra}
    for get in (socket.gethostname, socket.getfqdn):
        with contextlib.suppress(OSError):
            names.add(get())
    return {n.lower().rstrip(".") for n in names if n}


def create_app(
    run_dir: Path, db_path: Path | None = None, seed: str = "", allow_hosts: Iterable[str] = ()
) -> Flask:
    run_dir = Path(run_dir)
    pairs = {p.pair_id: p for p in load_pairs(run_dir)}
    missing = missing_images(run_dir, list(pairs.values()))  # none on disk: one line, no votes.sqlite made
    roots = image_roots(run_dir)
    host_names = default_host_names(allow_hosts)
    ids = list(pairs)
    store = VoteStore(db_path or run_dir / VOTES_DB)
    study = json.loads(STUDY.read_text(encoding="utf-8"))

    app = Flask(__name__, static_folder=str(STATIC), static_url_path="/static")
    app.config["MAX_CONTENT_LENGTH"] = 4096  # a vote is a few dozen bytes
    app.config["GENBENCH_STORE"] = store

    def rater_arg(value: object) -> str:
        if not isinstance(value, str) or not RATER_RE.match(value):
            abort(400, description="rater id: 1-64 letters, digits, '_', '.', '@' or '-'")
        return value

    def image_path(pair_id: str, side: str) -> Path | None:
        """The file of a pair's side, if it may be served (a manifest edited after start: None)."""
        path = real_path(resolve(run_dir, pairs[pair_id].image(side)))
        if path is None or not is_inside(path, roots) or path.suffix.lower() not in IMAGE_EXTENSIONS:
            return None
        return path

    # (path, mtime, size) or (path,) -> why it cannot be shown, "" if it can; the images missing at the start
    # are said once, below, not one warning each at a rater's first request (one put in place later has
    # another key: checked then)
    checked: dict[tuple, str] = {(real_path(p) or p,): f"{p}: file not found" for p in missing}
    gone = set(missing)
    # the pairs last found unshowable, for the progress's count without a look at every file per request
    # (a study of an ImageReward import holds ~17,000 pairs); kept up to date by unshowable() below
    unshown = {p.pair_id for p in pairs.values() if any(resolve(run_dir, p.image(s)) in gone for s in SIDES)}
    if missing:
        app.logger.warning(
            "%d of %d pairs are not shown to raters: an image is missing (e.g. %s)",
            len(unshown), len(pairs), shown_name(missing[0]),
        )  # fmt: skip

    def unshowable(pair_id: str) -> str:
        """Why this pair cannot be voted on ("" when both images decode)."""
        why = image_verdict(pair_id)
        if why:
            unshown.add(pair_id)
        else:
            unshown.discard(pair_id)
        return why

    def image_verdict(pair_id: str) -> str:
        """:func:`unshowable`'s reason, each version of a file decoded once."""
        for side in SIDES:
            path = image_path(pair_id, side)
            if path is None:
                return f"image_{side} is not servable"
            try:
                st = path.stat()
                key: tuple = (path, st.st_mtime_ns, st.st_size)
            except OSError:
                key = (path,)  # missing: load_image says so
            if key not in checked:
                try:
                    load_image(path)
                    checked[key] = ""
                except AttiqaError as exc:
                    checked[key] = str(exc)
                    # with the organiser's fix: a generated run's image is made again (one rule, as `score`)
                    said = image_problem(run_dir, exc) if isinstance(exc, ImageLoadError) else str(exc)
                    app.logger.warning("pair %s is not shown to raters: %s", pair_id, said)
            if checked[key]:
                return checked[key]
        return ""

    def progress(rater: str, skip: Iterable[str] = ()) -> tuple[dict, int]:
        """The rater's votes against the pairs they can be shown: a pair not yet voted on that was found
        unshowable (an image missing or damaged) or that their page could not show (``skip``) is left out
        of the total and counted apart ("0 / 96 pairs done" with 95 unshowable: a count that never ends)."""
        voted = store.voted_pairs(rater) & pairs.keys()
        left_out = len((unshown | set(skip)) & (pairs.keys() - voted))
        return {"done": len(voted), "total": len(ids) - left_out}, left_out

    @app.errorhandler(HTTPException)
    def _json_error(exc: HTTPException) -> tuple[Response, int]:
        assert exc.code is not None  # Flask hands an exception without a code back before calling handlers
        return jsonify(error=exc.description, status=exc.code), exc.code

    @app.errorhandler(AttiqaError)
    def _store_error(exc: AttiqaError) -> tuple[Response, int]:
        """The vote database failing under a running study (damaged, made unreadable): the organiser reads
        its one line, the rater is told to tell them — not a 500 and a traceback per request."""
        app.logger.error("%s", exc)
        return jsonify(error="the study cannot read its votes — please tell the study's organiser"), 503

    @app.before_request
    def _check_host() -> None:
        if not host_allowed(request.host, host_names):
            abort(
                403,
                description="unknown Host name — open the study by IP address or localhost, or "
                "start the server with --allow-host NAME",
            )

    @app.after_request
    def _headers(resp: Response) -> Response:
        resp.headers["Cache-Control"] = "no-store"
        resp.headers["X-Content-Type-Options"] = "nosniff"
        return resp

    @app.get("/")
    def index() -> Response:
        return send_file(STATIC / "index.html")

    @app.get("/favicon.ico")
    def favicon() -> tuple[str, int]:
        """No icon (the page names an empty inline one): a client asking anyway gets nothing, not a 404 in
        its console."""
        return "", 204

    @app.get("/api/study")
    def api_study() -> Response:
        return jsonify(title=study["title"], instructions=study["instructions"], pairs=len(ids))

    @app.get("/api/progress")
    def api_progress() -> Response:
        return jsonify(progress(rater_arg(request.args.get("rater")))[0])

    @app.get("/api/next")
    def api_next() -> Response:
        rater = rater_arg(request.args.get("rater"))
        voted = store.voted_pairs(rater)
        skip = set(request.args.getlist("skip"))  # the page could not show their images
        todo = [pid for pid in pair_order(ids, rater, seed) if pid not in voted]
        pid = next((p for p in todo if p not in skip and not unshowable(p)), None)
        prog, left_out = progress(rater, skip)  # after the search: the pairs it checked are known
        if pid is None:
            return jsonify(finished=True, progress=prog, left_out=len(todo))
        left = left_side(rater, pid, seed)
        right = "b" if left == "a" else "a"
        url = quote(pid, safe="")
        return jsonify(
            finished=False,
            pair_id=pid,
            left=f"/image/{url}/{left}",
            right=f"/image/{url}/{right}",
            progress=prog,
            left_out=left_out,
        )

    @app.post("/api/vote")
    def api_vote() -> tuple[Response, int]:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            abort(400, description="send a JSON object {rater, pair_id, choice}")
        rater = rater_arg(body.get("rater"))
        pid = body.get("pair_id")
        if not isinstance(pid, str) or pid not in pairs:
            abort(404, description="unknown pair id")
        choice = body.get("choice")
        if choice not in ("left", "right"):
            abort(400, description="choice must be 'left' or 'right'")
        left = left_side(rater, pid, seed)
        picked = left if choice == "left" else ("b" if left == "a" else "a")
        try:
            store.add(rater, pid, picked, left)
        except DuplicateVote:  # ``saved``: the side kept, so a vote sent again after a lost answer (the
            # server stopped between its commit and its reply) is known to the page as the one it gave
            kept = store.vote_of(rater, pid)
            saved = None if kept is None else ("left" if kept[0] == kept[1] else "right")
            error = "this rater has already voted on this pair"
            return jsonify(error=error, status=409, saved=saved), 409
        except AttiqaError as exc:  # the rater is told; the organiser reads why in the server's log
            app.logger.error("%s", exc)
            abort(503, description="the vote could not be saved — please tell the study's organiser")
        return jsonify(ok=True, progress=progress(rater)[0]), 201

    @app.get("/image/<path:pair_id>/<side>")  # path: an imported pair id may hold a '/'
    def image(pair_id: str, side: str) -> Response:
        if pair_id not in pairs or side not in SIDES:
            abort(404, description="unknown image")
        path = image_path(pair_id, side)
        if path is None:
            abort(404, description="unknown image")  # a manifest edited after start; same answer, no hint
        if not path.is_file():
            abort(404, description="image file missing on the server")
        return send_file(path, max_age=0)

    return app


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket listening on ``host``:``port``; one line naming the option to change when it cannot.
    The address family is werkzeug's choice for ``host`` (it wraps the socket as that family)."""
    from werkzeug.serving import select_address_family

    try:
        family, kind, proto, _, addr = socket.getaddrinfo(
            host, port, select_address_family(host, port), socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except (socket.gaierror, UnicodeError) as exc:
        reason = exc.strerror if isinstance(exc, socket.gaierror) else "not a host name"
        raise AttiqaError(
            f"--host {host}: not an address of this machine ({reason}) — e.g. 127.0.0.1 (this machine only) "
            "or 0.0.0.0 (every network)"
        ) from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as werkzeug: restart right after a stop
        sock.bind(addr)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            fix = "pass another --port (0: any free one)"
            raise AttiqaError(f"--port {port}: in use by another program — {fix}") from None
        raise AttiqaError(f"--host {host} --port {port}: cannot listen there ({exc.strerror})") from None
    return sock


def serve(
    run_dir: Path,
    host: str = "127.0.0.1",
    port: int = 8000,
    seed: str = "",
    on_ready: Callable[[int], None] | None = None,
    allow_hosts: Iterable[str] = (),
) -> None:
    """Serve until interrupted (threaded: each request in its own thread; the store is thread-safe). Ctrl-C /
    SIGTERM propagate as ``KeyboardInterrupt`` (werkzeug's ``serve_forever`` swallows it: the command ended
    silently with exit 0), so the command can say what was saved and exit 130 / 143."""
    import threading

    from werkzeug.serving import make_server

    app = create_app(run_dir, seed=seed, allow_hosts=allow_hosts)
    # werkzeug logs every request (4 lines a vote, with the rater's id): the organiser's terminal keeps
    # what needs them — a pair left out, a vote that could not be saved — and errors
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    with listening_socket(host, port) as sock:  # werkzeug's own bind prints its reason and exits
        server = make_server(host, port, app, threaded=True, fd=sock.fileno())  # a duplicate of it
    if on_ready:
        on_ready(server.port)  # the bound one (--port 0: any free port)
    loop = threading.Thread(target=server.serve_forever, name="genbench-vote", daemon=True)
    loop.start()
    try:
        while loop.is_alive():  # signals land in this (the main) thread
            loop.join(0.5)
    finally:
        server.shutdown()  # waits for the loop (at most its 0.5 s poll); it closes the socket
