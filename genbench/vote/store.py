"""Votes in SQLite, safe for several raters at once.

One row per (rater, pair): the UNIQUE constraint makes a replayed or double-clicked vote fail instead of
counting twice, and each insert is its own transaction, so concurrent requests can neither lose nor
duplicate a vote. WAL mode lets readers (progress, export) run while others write; writers wait for the
lock (``busy_timeout``) instead of failing. A connection is opened per operation (threads never share one).
"""

from __future__ import annotations

import csv
import io
import sqlite3
import time
from contextlib import closing
from pathlib import Path

from attiqa.errors import AttiqaError
from attiqa.io.atomic import write_text_atomic
from attiqa.io.tables import safe_dict

SCHEMA = """
CREATE TABLE IF NOT EXISTS votes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    rater TEXT NOT NULL,
    pair_id TEXT NOT NULL,
    choice TEXT NOT NULL CHECK (choice IN ('a', 'b')),
    left_side TEXT NOT NULL CHECK (left_side IN ('a', 'b')),
    created_at REAL NOT NULL,
    UNIQUE (rater, pair_id)
);
"""
EXPORT_COLUMNS = ("pair_id", "rater", "choice", "left_side", "created_at")


class DuplicateVote(AttiqaError):
    """This rater has already voted on this pair."""


class VoteStore:
    def __init__(self, path: str | Path, timeout: float = 30.0) -> None:
        self.path = Path(path)
        self.timeout = timeout
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with closing(self._connect()) as con:
                con.execute("PRAGMA journal_mode=WAL")
                con.executescript(SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise AttiqaError(
                f"{self.path}: not a usable vote database ({exc}) — move it away or point to another file"
            ) from None

    def _connect(self) -> sqlite3.Connection:
        try:
            con = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
        except sqlite3.Error as exc:
            raise AttiqaError(f"{self.path}: cannot open the vote database ({exc})") from None
        con.execute(f"PRAGMA busy_timeout={int(self.timeout * 1000)}")
        con.row_factory = sqlite3.Row
        return con

    def add(self, rater: str, pair_id: str, choice: str, left_side: str) -> int:
        """Record one vote; :class:`DuplicateVote` if this rater already voted on this pair."""
        with closing(self._connect()) as con:
            try:
                cur = con.execute(
                    "INSERT INTO votes (rater, pair_id, choice, left_side, created_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (rater, pair_id, choice, left_side, time.time()),
                )
            except sqlite3.IntegrityError:
                raise DuplicateVote(f"rater {rater!r} has already voted on pair {pair_id!r}") from None
            rowid = cur.lastrowid
            assert rowid is not None  # set by the INSERT
            return rowid

    def voted_pairs(self, rater: str) -> set[str]:
        with closing(self._connect()) as con:
            return {r[0] for r in con.execute("SELECT pair_id FROM votes WHERE rater = ?", (rater,))}

    def votes(self) -> list[dict]:
        with closing(self._connect()) as con:
            rows = con.execute(f"SELECT {', '.join(EXPORT_COLUMNS)} FROM votes ORDER BY id").fetchall()
        return [dict(r) for r in rows]

    def summary(self) -> dict[str, int]:
        with closing(self._connect()) as con:
            n, raters = con.execute("SELECT COUNT(*), COUNT(DISTINCT rater) FROM votes").fetchone()
        return {"votes": int(n), "raters": int(raters)}

    def export_csv(self, out: str | Path) -> int:
        rows = self.votes()
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=EXPORT_COLUMNS)
        w.writeheader()
        w.writerows(safe_dict(r) for r in rows)  # a rater's name is typed by anyone: no formulas
        write_text_atomic(out, buf.getvalue())
        return len(rows)
