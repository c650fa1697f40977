"""genbench agree with two preference sources: the file left aside is described, not loaded to be described,
and a damaged one does not end the measurement against the votes that are used."""

from __future__ import annotations

import json
from pathlib import Path

from genbench_helpers import make_photo_run
from helpers import agiqa3k_folder
from typer.testing import CliRunner

from genbench.cli import app
from genbench.manifest import load_pairs
from genbench.vote.store import VoteStore

runner = CliRunner()


def _agree(run: Path) -> tuple[int, str, dict]:
    res = runner.invoke(app, ["agree", str(run), "--bootstrap", "100"])
    path = run / "agreement" / "agreement.json"
    report = json.loads(path.read_text()) if res.exit_code == 0 else {}
    return res.exit_code, " ".join(res.output.split()), report.get("settings", {})


def _voted(run: Path) -> None:
    """Two raters' votes on the run's first pair, scored with the weight-free scorer."""
    assert runner.invoke(app, ["score", str(run), "-m", "classical", "-w", "0"]).exit_code == 0
    pair = load_pairs(run)[0].pair_id
    store = VoteStore(run / "votes.sqlite")
    store.add("al", pair, "b", "a")
    store.add("bo", pair, "a", "a")


def test_a_damaged_imported_prefs_csv_left_aside_does_not_end_agree(tmp_path):
    """**Was**: an AGIQA-3k import that people also voted on, its prefs.csv then damaged (a line whose choice
    is not a or b): `agree` on the votes — which does not use prefs.csv — ended on "prefs.csv:8: choice must
    be a or b", since the file left aside was loaded whole only to say what it holds. Now what it holds is
    known from the import's pairs (it is written with them): the measurement runs and names the file."""
    from genbench.agiqa3k import import_agiqa3k

    run = tmp_path / "run"
    import_agiqa3k(agiqa3k_folder(tmp_path / "agiqa"), run)
    _voted(run)
    with open(run / "prefs.csv", "a", encoding="utf-8") as fh:
        fh.write("p0001,agiqa3k-mos,maybe\n")
    code, said, settings = _agree(run)
    assert code == 0, said
    assert f"--prefs {run / 'prefs.csv'} to measure against it (AGIQA-3k MOS, the higher preferred)" in said
    assert settings["prefs_kind"] == "votes of 2 raters"
    assert settings["prefs_not_used"] == str(run / "prefs.csv")


def test_a_hand_placed_prefs_csv_left_aside_is_read_and_a_damaged_one_named(tmp_path, photos):
    """A prefs.csv put by hand beside a run's votes (not an import's): what it holds is read from it —
    "votes of 1 rater" — and when it cannot be read, the line that names it says why; `agree` on the votes
    goes on (it ended on the file's error)."""
    run = make_photo_run(tmp_path / "run", photos)
    _voted(run)
    pair = load_pairs(run)[1].pair_id
    (run / "prefs.csv").write_text(f"pair_id,choice,rater\n{pair},a,cy\n", encoding="utf-8")
    code, said, _ = _agree(run)
    assert code == 0 and "to measure against it (votes of 1 rater)" in said, said
    (run / "prefs.csv").write_text(f"pair_id,choice,rater\n{pair},maybe,cy\n", encoding="utf-8")
    code, said, settings = _agree(run)
    assert code == 0, said
    assert f"to measure against it (not readable: {run / 'prefs.csv'}:2: choice must be a or b" in said
    assert settings["prefs_kind"] == "votes of 2 raters"
