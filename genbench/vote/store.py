"""Votes in SQLite, safe for several raters at once.

One row per (rater, pair): the UNIQUE constraint makes a replayed or double-clicked vote fail instead of
counting twice, and each insert is its own transaction, so concurrent requests can neither lose nor
duplicate a vote. WAL mode lets readers (progress, export) run while others write; writers wait for the
lock (``busy_timeout``) instead of failing. A connection is opened per operation (threads never share one).

Readers (``agree``, ``export-votes``) open it read-only: a finished study in a read-only folder (archived,
a colleague's) is read as it is, and a database passed with ``--prefs`` is never changed. The server
checks at its start that it can write, so a rater never meets a vote that cannot be saved.
"""

from __future__ import annotations

import csv
import io
import os
import sqlite3
import time
from contextlib import closing
from pathlib import Path

from attiqa.errors import AttiqaError
from attiqa.io.atomic import write_text_atomic
from attiqa.io.tables import safe_dict
from attiqa.progress import counted
from genbench.files import shell_arg

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
VOTES_DB = "votes.sqlite"  # a run's vote database, beside its manifest


class DuplicateVote(AttiqaError):
    """This rater has already voted on this pair."""


class VoteStore:
    def __init__(self, path: str | Path, timeout: float = 30.0, *, read_only: bool = False) -> None:
        self.path = Path(path)
        self.timeout = timeout
        self.read_only = read_only
        if read_only:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with closing(self._open()) as con:
                con.execute("PRAGMA journal_mode=WAL")
                con.executescript(SCHEMA)
                con.execute("BEGIN IMMEDIATE")
                try:  # a write that changes nothing: a read-only file or folder fails here, not at a vote
                    con.execute("DELETE FROM votes WHERE 0")
                finally:
                    con.execute("ROLLBACK")
        except sqlite3.OperationalError as exc:  # no permission, a full disk: the database itself is fine
            targets = [self.path.parent, *([self.path] if self.path.exists() else [])]
            raise AttiqaError(
                f"{self.path}: votes cannot be saved there ({exc}) — make it writable (chmod u+w "
                f"{' '.join(map(shell_arg, targets))}), or copy the run folder somewhere writable"
            ) from None
        except sqlite3.DatabaseError as exc:
            raise AttiqaError(
                f"{self.path}: not a usable vote database ({exc}) — its votes cannot be read: restore it "
                f"from a backup, or move it away (mv {shell_arg(self.path)} "
                f"{shell_arg(str(self.path) + '.damaged')}) and the study starts an empty one"
            ) from None

    def _open(self) -> sqlite3.Connection:
        if self.read_only:  # immutable: no lock or WAL index to write, for a folder nobody can write —
            # unless votes wait in the WAL (a server killed before its last checkpoint): immutable reads the
            # main file only and would leave them out without a word; SQLite reads them read-only with the
            # WAL index beside it, or says it cannot
            wal = self.path.with_name(self.path.name + "-wal")
            waiting = wal.exists() and wal.stat().st_size > 0
            frozen = "&immutable=1" if not waiting and not os.access(self.path.parent, os.W_OK) else ""
            uri = f"{self.path.resolve().as_uri()}?mode=ro{frozen}"
            con = sqlite3.connect(uri, timeout=self.timeout, isolation_level=None, uri=True)
        else:
            con = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
        con.execute(f"PRAGMA busy_timeout={int(self.timeout * 1000)}")
        con.row_factory = sqlite3.Row
        return con

    def _connect(self) -> sqlite3.Connection:
        try:
            return self._open()
        except sqlite3.Error as exc:
            raise AttiqaError(f"{self.path}: cannot open the vote database ({exc})") from None

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
            except sqlite3.DatabaseError as exc:  # a full disk, made read-only or damaged since the start
                raise AttiqaError(f"{self.path}: the vote could not be saved ({exc})") from None
            rowid = cur.lastrowid
            assert rowid is not None  # set by the INSERT
            return rowid

    def _rows(self, sql: str, args: tuple = ()) -> list[sqlite3.Row]:
        """``sql``'s rows; none from a database without the votes table (the server makes it; a reader
        does not); a file that is no database is one line."""
        with closing(self._connect()) as con:
            try:
                if not con.execute("SELECT 1 FROM sqlite_master WHERE name = 'votes'").fetchone():
                    return []
                return con.execute(sql, args).fetchall()
            except sqlite3.DatabaseError as exc:
                raise AttiqaError(
                    f"{self.path}: not a usable vote database ({exc}) — restore it from a backup; `genbench "
                    "agree --prefs` reads a votes.sqlite of `genbench vote` or a CSV (pair_id,choice)"
                ) from None

    def voted_pairs(self, rater: str) -> set[str]:
        return {r[0] for r in self._rows("SELECT pair_id FROM votes WHERE rater = ?", (rater,))}

    def vote_of(self, rater: str, pair_id: str) -> tuple[str, str] | None:
        """The rater's vote on the pair as (choice, left_side), None before they voted."""
        rows = self._rows(
            "SELECT choice, left_side FROM votes WHERE rater = ? AND pair_id = ?", (rater, pair_id)
        )
        return (rows[0][0], rows[0][1]) if rows else None

    def votes(self) -> list[dict]:
        return [dict(r) for r in self._rows(f"SELECT {', '.join(EXPORT_COLUMNS)} FROM votes ORDER BY id")]

    def summary(self) -> dict[str, int]:
        rows = self._rows("SELECT COUNT(*), COUNT(DISTINCT rater) FROM votes")
        n, raters = tuple(rows[0]) if rows else (0, 0)
        return {"votes": int(n), "raters": int(raters)}

    def export_csv(self, out: str | Path) -> int:
        rows = self.votes()
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=EXPORT_COLUMNS)
        w.writeheader()
        w.writerows(safe_dict(r) for r in rows)  # a rater's name is typed by anyone: no formulas
        write_text_atomic(out, buf.getvalue())
        return len(rows)


IMPORT_KEEPS = (
    "import as the study's pairs were imported (the same file and options, e.g. --margin / "
    "--same-generator) to keep them, or pass another --out for these pairs"
)


def check_votes_kept(
    run_dir: Path, pair_ids: set[str], fix: str = IMPORT_KEEPS, what: str = "import"
) -> None:
    """Refuse an import into ``run_dir`` whose pairs (``pair_ids``) leave out pairs people voted on there:
    a re-import with another ``--margin`` or ``--same-generator`` replaced the manifest without a word,
    and ``agree`` then refused the run's own votes as "not in the run's manifest — are the preferences for
    this run?". An import that keeps every voted pair (the same one again, a wider one) goes ahead; so
    does ``genbench run`` (``what="run"``, its own ``fix``), which a smaller --pairs shrank the same way."""
    db = Path(run_dir) / VOTES_DB
    if not db.is_file():
        return
    dropped = [v["pair_id"] for v in VoteStore(db, read_only=True).votes() if v["pair_id"] not in pair_ids]
    if dropped:
        raise AttiqaError(
            f"{db}: {counted(len(dropped), 'vote')} {'is' if len(dropped) == 1 else 'are'} on "
            f"{counted(len(set(dropped)), 'pair')} this {what} leaves out (e.g. {min(dropped)}) — they "
            f"would no longer count; {fix}"
        )
