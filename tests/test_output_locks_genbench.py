"""The outputs of session 64's closing note still written without a lock (docs/robustness.md, "Kill -9 and
the same command again"): `genbench agree`'s report, `genbench import-imagereward` / `import-agiqa3k`'s run
folder, `attiqa train exiqa-regressor`'s regressor. Each race is a real first process paused inside its
writes (:func:`helpers.paused_after`) and a second run of the same command meanwhile."""

from __future__ import annotations

import json
from pathlib import Path

from helpers import attiqa_cmd, genbench_cmd, one_line_error, paused_after

SAME = "(the same command still running?)"


def _agiqa_root(root: Path, photos: dict) -> Path:
    """AGIQA-3k's layout (data.csv + AGIQA-3K/) of four real photos under two prompts: at --margin 0 two
    pairs, at --margin 2.1 one."""
    from PIL import Image

    (root / "AGIQA-3K").mkdir(parents=True)
    rows = [("a_1.jpg", "astronaut", "p1", 1.0), ("b_1.jpg", "coffee", "p1", 3.0),
            ("a_2.jpg", "chelsea", "p2", 2.0), ("b_2.jpg", "rocket", "p2", 4.2)]  # fmt: skip
    lines = ["name,prompt,adj1,adj2,style,mos_quality,std_quality,mos_align,std_align"]
    for name, photo, prompt, mos in rows:
        photos[photo].resize((64, 48), Image.BICUBIC).save(root / "AGIQA-3K" / name, quality=90)
        lines.append(f"{name},{prompt},,,,{mos},0.5,2.5,0.5")
    (root / "data.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def _rankings(root: Path, photos: dict, order: list[int]) -> Path:
    """An ImageReward test-format file of one item over three real photos ranked ``order``."""
    from PIL import Image

    root.mkdir(parents=True, exist_ok=True)
    for name, photo in (("x", "astronaut"), ("y", "coffee"), ("z", "rocket")):
        photos[photo].resize((64, 48), Image.BICUBIC).save(root / f"{name}.png")
    item = {"id": "k1", "prompt": "p", "generations": ["x.png", "y.png", "z.png"], "ranking": order}
    path = root / f"rankings_{''.join(map(str, order))}.json"
    path.write_text(json.dumps([item]), encoding="utf-8")
    return path


def test_a_second_agiqa3k_import_into_a_run_being_imported_is_one_line(tmp_path, photos, genbench_cli):
    """**Was**: two `genbench import-agiqa3k ROOT --out RUN` at once with another --margin each wrote the
    run's files over the other's: the first's prefs.csv beside the second's manifest (2 preferences for 1
    pair). Now the second is one line naming RUN, the holder and the fix; RUN is the first's, whole."""
    root = _agiqa_root(tmp_path / "agiqa", photos)
    run = tmp_path / "run"
    cmd = genbench_cmd("import-agiqa3k", root, "--out", run, "--margin", "0")
    with paused_after(tmp_path, "genbench.manifest:write_bytes_atomic", cmd):  # its manifest is written
        second = genbench_cli("import-agiqa3k", root, "--out", run, "--margin", "2.1")
        busy = f"another process is importing into it now {SAME} — let it finish, or choose another --out"
        assert one_line_error(second) == f"error: {run}: {busy}"
    pairs = (run / "manifest.jsonl").read_text().splitlines()
    assert len(pairs) == 2 and len((run / "prefs.csv").read_text().splitlines()) == 1 + 2
    assert json.loads((run / "import.json").read_text())["pairs"] == 2
    assert not (run / ".attiqa.lock").exists()


def test_a_second_imagereward_import_into_a_run_being_imported_is_one_line(tmp_path, photos, genbench_cli):
    """**Was**: a second `genbench import-imagereward` into the run folder a first was writing went ahead
    (last wins, its prefs.csv possibly beside the other's manifest). Now one line; an AGIQA-3k import into
    it meanwhile is told which command holds it, without "the same command"."""
    first_file = _rankings(tmp_path / "ir", photos, [1, 2, 3])
    run = tmp_path / "run"
    cmd = genbench_cmd("import-imagereward", first_file, "--out", run)
    with paused_after(tmp_path, "genbench.manifest:write_bytes_atomic", cmd):
        before = {p.name: p.read_bytes() for p in run.iterdir()}
        second = genbench_cli(
            "import-imagereward", _rankings(tmp_path / "ir", photos, [3, 2, 1]), "--out", run
        )
        busy = "another process is importing into it now"
        fix = "let it finish, or choose another --out"
        assert one_line_error(second) == f"error: {run}: {busy} {SAME} — {fix}"
        other = genbench_cli("import-agiqa3k", _agiqa_root(tmp_path / "agiqa", photos), "--out", run)
        assert one_line_error(other) == f"error: {run}: {busy} — {fix}"
        assert {p.name: p.read_bytes() for p in run.iterdir()} == before
    assert (run / "prefs.csv").read_text().splitlines()[1:] == [
        "k1:0-1,imagereward-ranking,a",
        "k1:0-2,imagereward-ranking,a",
        "k1:1-2,imagereward-ranking,a",
    ]


def test_a_second_agree_into_a_report_being_written_is_one_line(tmp_path, scored_photo_run, genbench_cli):
    """**Was**: two `genbench agree RUN` at once with other settings (--bootstrap, --model-ties) each wrote
    RUN/agreement/ over the other's: one run's agreement.csv beside the other's agreement.json. Now the
    second is one line; the report is the first's, whole, and no lock file is left."""
    from genbench_helpers import copied_run

    from genbench.manifest import read_records

    run = copied_run(scored_photo_run, tmp_path / "run")
    prefs = "".join(f"{r['pair_id']},{r['sharp']}\n" for r in read_records(run))
    (run / "prefs.csv").write_text("pair_id,choice\n" + prefs)
    report = run / "agreement"
    cmd = genbench_cmd("agree", run, "--bootstrap", "100")
    with paused_after(tmp_path, "genbench.agreement:write_text_atomic", cmd):  # agreement.csv written
        second = genbench_cli("agree", run, "--bootstrap", "200", "--model-ties", "half")
        busy = (
            f"another process is writing a report into it now {SAME} — let it finish, or choose another --out"
        )
        assert one_line_error(second) == f"error: {report}: {busy}"
    settings = json.loads((report / "agreement.json").read_text())["settings"]
    assert settings["bootstrap"] == 100 and settings["model_ties"] == "wrong"
    assert not (report / ".attiqa.lock").exists()


def test_a_second_agree_while_the_first_bootstraps_is_one_line_at_once(
    tmp_path, scored_photo_run, genbench_cli
):
    """**Was** (review of session 65): the report folder was probed before the votes and held for the files
    alone — a second `genbench agree RUN` started while a first bootstrapped passed the probe and wrote its
    report; the first, started first, then ran to its end and was refused, its whole bootstrap lost. Now the
    folder is held from the probe to the end: the second is one line at once, the report is the first's."""
    from genbench_helpers import copied_run

    from genbench.manifest import read_records

    run = copied_run(scored_photo_run, tmp_path / "run")
    prefs = "".join(f"{r['pair_id']},{r['sharp']}\n" for r in read_records(run))
    (run / "prefs.csv").write_text("pair_id,choice\n" + prefs)
    report = run / "agreement"
    cmd = genbench_cmd("agree", run, "--bootstrap", "100")
    with paused_after(tmp_path, "genbench.agreement:metric_agreement", cmd):  # in its bootstrap
        second = genbench_cli("agree", run, "--bootstrap", "200", "--model-ties", "half")
        busy = (
            f"another process is writing a report into it now {SAME} — let it finish, or choose another --out"
        )
        assert one_line_error(second) == f"error: {report}: {busy}"
        assert [p.name for p in report.iterdir()] == [".attiqa.lock"]  # nothing of the second's
    settings = json.loads((report / "agreement.json").read_text())["settings"]
    assert settings["bootstrap"] == 100 and settings["model_ties"] == "wrong"
    assert not (report / ".attiqa.lock").exists()


def test_a_second_exiqa_regressor_fit_into_a_run_being_fitted_is_one_line(exiqa_set, tiny_dir, tmp_path, cli):
    """**Was**: two `attiqa train exiqa-regressor RUN` at once (another --mos, --epochs) each saved
    RUN/regressor.safetensors and its .json card: the last wins, or one's weights beside the other's card.
    Now the second is one line naming the run folder (held as `attiqa train exiqa -o RUN` holds it); the
    first's regressor is written whole."""
    data, mos = exiqa_set
    run = tmp_path / "run"
    trained = cli("train", "exiqa", data, "-o", run, "--clip", tiny_dir, "--epochs", "1",
                  "--warmup-epochs", "0", "--batch-size", "8", "--prompts", "2")  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    fit = ("train-exiqa-regressor", run, "--mos", mos, "--epochs")
    with paused_after(tmp_path, "attiqa.exiqa.regressor:attribute_features", attiqa_cmd(*fit, 3)):
        second = cli(*fit, 5)
        target = run / "regressor.safetensors"
        busy = f"another process is fitting a regressor in it now {SAME} — let it finish, then run this fit "
        busy += "again"
        assert one_line_error(second) == f"error: {run}: {busy}"
        assert not target.exists()
    assert json.loads((run / "regressor.json").read_text())["epochs"] == 3
    assert not (run / ".attiqa.lock").exists()


def test_a_score_of_a_run_being_imported_and_an_import_into_a_run_being_scored_are_one_line(
    tmp_path, photos, genbench_cli
):
    """**Was**: `genbench score RUN` while `genbench import-agiqa3k ROOT --out RUN` wrote RUN read the run
    half-written (the new manifest beside the old image root and prefs.csv) and scored it; an import into a
    run whose scores were being written rewrote its manifest under them. Each held another lock (RUN/
    .attiqa.lock; scores/METRIC.csv's). Now each is one line naming RUN, its holder and the fix."""
    root = _agiqa_root(tmp_path / "agiqa", photos)
    run = tmp_path / "run"
    cmd = genbench_cmd("import-agiqa3k", root, "--out", run, "--margin", "0")
    with paused_after(tmp_path, "genbench.manifest:write_bytes_atomic", cmd):  # its manifest is written
        second = genbench_cli("score", run, "-m", "classical")
        busy = "another process is importing into it now — let it finish, then run this score again"
        assert one_line_error(second) == f"error: {run}: {busy}"
        assert not (run / "scores").exists()
    scoring = genbench_cmd("score", run, "-m", "classical", "--batch-size", "1")
    (tmp_path / "then").mkdir()  # the second pause's own marks
    with paused_after(tmp_path / "then", "attiqa.scoring:ScoreWriter.add", scoring):  # a row written
        again = genbench_cli("import-agiqa3k", root, "--out", run, "--margin", "2.1")
        busy = "another process is scoring it now — let it finish, or choose another --out"
        assert (
            one_line_error(again) == f"error: {run}: {busy}"
        )  # RUN held by the score (was: its metric's file)
    assert len((run / "manifest.jsonl").read_text().splitlines()) == 2  # the first import's pairs
    assert len((run / "scores" / "classical.csv").read_text().splitlines()) == 1 + 4


def test_an_import_while_a_score_is_between_two_metrics_is_one_line(tmp_path, photos, genbench_cli):
    """**Was** (session 66): `genbench score` probed RUN's lock once, then held each metric's file in turn:
    an import started between two metrics (or between the probe and the first metric's hold) found no
    holder and rewrote the manifest under the score, to exit 0. Now the score holds RUN itself from its
    checks to its last metric — shared, so that scores of other metrics still run together (below)."""
    root = _agiqa_root(tmp_path / "agiqa", photos)
    run = tmp_path / "run"
    assert genbench_cli("import-agiqa3k", root, "--out", run, "--margin", "0").returncode == 0
    manifest = (run / "manifest.jsonl").read_bytes()
    scoring = genbench_cmd("score", run, "-m", "classical,attiqa-default", "--workers", "0")
    with paused_after(tmp_path, "genbench.cli:_score_metric", scoring):  # classical done, its file let go
        again = genbench_cli("import-agiqa3k", root, "--out", run, "--margin", "2.1")
        busy = "another process is scoring it now — let it finish, or choose another --out"
        assert one_line_error(again) == f"error: {run}: {busy}"
        assert (run / "manifest.jsonl").read_bytes() == manifest
    for metric in ("classical", "attiqa-default"):  # the score's two metrics, over the manifest it read
        assert len((run / "scores" / f"{metric}.csv").read_text().splitlines()) == 1 + 4
    assert not (run / ".attiqa.lock").exists()


def test_two_scores_of_other_metrics_into_one_run_still_run_together(tmp_path, photos, genbench_cli):
    """`genbench score RUN -m classical` and `genbench score RUN -m attiqa-default` at once: each holds its
    metric's file (session 60) and RUN shared: the second is not refused, and both files are whole."""
    from genbench_helpers import make_photo_run

    run = make_photo_run(tmp_path / "run", photos)
    first = genbench_cmd("score", run, "-m", "classical", "--workers", "0", "--batch-size", "1")
    with paused_after(tmp_path, "attiqa.scoring:ScoreWriter.add", first):  # a row written, RUN held
        second = genbench_cli("score", run, "-m", "attiqa-default", "--workers", "0")
        assert second.returncode == 0, second.stderr
        assert (run / ".attiqa.lock").exists()  # the first still holds RUN
    for metric in ("classical", "attiqa-default"):
        names = [line.split(",")[0] for line in (run / "scores" / f"{metric}.csv").read_text().splitlines()]
        assert len(names) == 1 + 10 and len(set(names)) == len(names)
    assert not (run / ".attiqa.lock").exists()
