"""Where a run's human preferences come from: a CSV (pair_id,choice[,rater]) or the vote database."""

from __future__ import annotations

from pathlib import Path

from attiqa.errors import AttiqaError
from attiqa.io.atomic import not_an_input, output_folder
from attiqa.progress import counted
from genbench.agiqa3k import RATER as AGIQA3K_RATER
from genbench.agreement import Vote, read_votes_csv
from genbench.files import shell_arg
from genbench.imagereward import PREFS
from genbench.imagereward import RATER as IMAGEREWARD_RATER
from genbench.manifest import (
    AGIQA3K_SOURCE,
    IMAGE_ROOT_FILE,
    IMAGEREWARD_SOURCE,
    MANIFEST,
    MANIFEST_CSV,
    Pair,
)
from genbench.vote.store import VOTES_DB

VOTE_DB_SUFFIXES = (".sqlite", ".db", ".sqlite3")


def is_vote_database(path: Path) -> bool:
    """Whether a preferences file is read as a vote database (by its suffix), else as a CSV: the one place
    that decides it, for the reading and for `agree`'s words on a file without a vote (a CSV's header alone
    named `.txt` or without a suffix was told "collect some with genbench vote", the words of a database)."""
    return Path(path).suffix.lower() in VOTE_DB_SUFFIXES


def load_votes(run_dir: Path, prefs: Path | None = None) -> tuple[list[Vote], Path]:
    """Votes from ``prefs`` (CSV or SQLite), else ``RUN/votes.sqlite``, else ``RUN/prefs.csv``. A vote
    database without a vote (`genbench vote` started, nobody voted) does not hide an imported prefs.csv."""
    run_dir = Path(run_dir)
    if prefs is None:
        db, table = run_dir / VOTES_DB, run_dir / PREFS
        if db.exists():
            votes = _read(db)
            if votes or not table.exists():
                return votes, db
        if not table.exists():
            raise AttiqaError(
                f"{run_dir}: no {VOTES_DB} or {PREFS} — collect votes with "
                f"`genbench vote {shell_arg(run_dir)}` or pass --prefs FILE (CSV with pair_id,choice)"
            )
        prefs = table
    prefs = Path(prefs)
    if not prefs.exists():
        raise AttiqaError(f"{prefs}: no such file — pass a CSV (pair_id,choice) or a votes.sqlite")
    return _read(prefs), prefs


def unused_prefs(run_dir: Path, prefs: Path | None, source: Path) -> Path | None:
    """The run's imported ``prefs.csv`` when :func:`load_votes` chose its vote database over it (no
    ``--prefs``, someone voted): the import's preferences are then left aside, which is said, not silent."""
    table = Path(run_dir) / PREFS
    return table if prefs is None and source.name == VOTES_DB and table.is_file() else None


def prefs_kind(votes: list[Vote]) -> str:
    """What the preferences are — an import's (AGIQA-3k's MOS, ImageReward's rankings: one "vote" a pair
    under a rater of its own) or people's votes — for ``agree``'s line and report: on an imported run that
    also got votes, "6 votes on 6 pairs" did not say which of the two the accuracies were measured against."""
    return raters_kind({v.rater for v in votes})


def aside_kind(table: Path, pairs: list[Pair]) -> str:
    """:func:`prefs_kind` of the ``prefs.csv`` :func:`unused_prefs` left aside, read only when the run's
    pairs do not tell: an import writes its prefs.csv with its manifest, as one commit, all under its own
    rater (a whole import's file was loaded only for this, and a damaged one ended `agree` on the votes it
    did use). A hand-placed file is read; one that cannot be says so here, in the line that names it."""
    by_source = {AGIQA3K_SOURCE: AGIQA3K_RATER, IMAGEREWARD_SOURCE: IMAGEREWARD_RATER}
    sources = {str(p.record.get("source")) for p in pairs}
    if len(sources) == 1 and (source := sources.pop()) in by_source:
        return raters_kind({by_source[source]})
    try:
        return prefs_kind(_read(table))
    except AttiqaError as err:
        return f"not readable: {err}"


def raters_kind(raters: set[str]) -> str:
    """:func:`prefs_kind`'s words for the raters ``raters``: an import's own rater named by its source, any
    other counted as people."""
    imported = {
        AGIQA3K_RATER: "AGIQA-3k MOS, the higher preferred",
        IMAGEREWARD_RATER: "ImageReward rankings, the better-ranked preferred",
    }
    people = raters - imported.keys()
    kinds = [imported[r] for r in sorted(raters & imported.keys())]
    if people:
        kinds.append(f"votes of {counted(len(people), 'rater')}" if people != {""} else "votes")
    return " + ".join(kinds)


def _read(path: Path) -> list[Vote]:
    if is_vote_database(path):
        from genbench.vote.store import VoteStore

        return [Vote(v["pair_id"], v["choice"], v["rater"]) for v in VoteStore(path, read_only=True).votes()]
    return read_votes_csv(path)


def export_path(run_dir: Path, out: Path | None) -> Path:
    """``export-votes``' CSV (default ``RUN/votes.csv``), checked before it is written: a ``.csv`` file name
    (not a database), and none of the files the run's commands read — ``-o RUN/votes.sqlite`` replaced every
    vote with their CSV (and ended in a traceback), ``-o RUN/manifest.jsonl`` the pairs."""
    run_dir = Path(run_dir)
    target = Path(out) if out is not None else run_dir / "votes.csv"
    if target.is_dir():
        raise AttiqaError(f"{target}: is a folder — give --out a file name, e.g. {target / 'votes.csv'}")
    if target.suffix.lower() != ".csv":  # `-o votes.tsv` / `.xlsx` / `votes` got commas all the same
        db = is_vote_database(target)
        what = ", not a database —" if db else " — give it a name ending in .csv,"
        raise AttiqaError(f"{target}: --out is written as CSV{what} e.g. {target.with_suffix('.csv')}")
    run_files = (VOTES_DB, PREFS, MANIFEST, MANIFEST_CSV, IMAGE_ROOT_FILE)
    not_an_input([target], [run_dir / f for f in run_files], "--out (default: RUN/votes.csv)")
    output_folder(target.parent, "--out")
    return target
