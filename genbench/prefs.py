"""Where a run's human preferences come from: a CSV (pair_id,choice[,rater]) or the vote database."""

from __future__ import annotations

from pathlib import Path

from attiqa.errors import AttiqaError
from genbench.agreement import Vote, read_votes_csv
from genbench.imagereward import PREFS

VOTES_DB = "votes.sqlite"


def load_votes(run_dir: Path, prefs: Path | None = None) -> tuple[list[Vote], Path]:
    """Votes from ``prefs`` (CSV or SQLite), else ``RUN/votes.sqlite``, else ``RUN/prefs.csv``."""
    run_dir = Path(run_dir)
    if prefs is None:
        for cand in (run_dir / VOTES_DB, run_dir / PREFS):
            if cand.exists():
                prefs = cand
                break
        else:
            raise AttiqaError(
                f"{run_dir}: no {VOTES_DB} or {PREFS} — collect votes with `genbench vote {run_dir}` "
                "or pass --prefs FILE (CSV with pair_id,choice)"
            )
    prefs = Path(prefs)
    if not prefs.exists():
        raise AttiqaError(f"{prefs}: no such file — pass a CSV (pair_id,choice) or a votes.sqlite")
    if prefs.suffix.lower() in (".sqlite", ".db", ".sqlite3"):
        from genbench.vote.store import VoteStore

        return [Vote(v["pair_id"], v["choice"], v["rater"]) for v in VoteStore(prefs).votes()], prefs
    return read_votes_csv(prefs), prefs
