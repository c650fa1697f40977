"""The output locks' command names and their timing (docs/robustness.md, "Kill -9 and the same command
again"): one table of the names a holder writes into its lock file; a holder that makes its folder only
once entered; `score -o` refused before its model loads; a lock taken between the probe and the hold is
still one line; `genbench run --out` and `select-prompts -o`, not held before, held as `bench --out` is."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from helpers import PAUSED_AFTER, attiqa_cmd, attiqa_env, one_line_error

SAME = "(the same command still running?)"
BUSY = f"another process is writing it now {SAME} — let it finish (rerunning it then resumes what it left)"


def _holding(targets: dict[str, str]) -> subprocess.Popen:
    """A real process holding each ``targets`` path by its call (a holder of attiqa.io.atomic on T, the path,
    with ``Command`` in scope) until its stdin closes; returned once it holds them all."""
    holder = "import sys\nfrom contextlib import ExitStack\nfrom attiqa.io.atomic import *\n"
    holder += "from attiqa.io.commands import Command\nwith ExitStack() as held:\n"
    for target, call in targets.items():
        holder += f"    T = {target!r}\n    held.enter_context({call})\n"
    holder += "    print('held', flush=True)\n    sys.stdin.read()"
    first = subprocess.Popen(
        [sys.executable, "-c", holder], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=attiqa_env({})
    )
    assert first.stdout is not None and first.stdout.readline() == b"held\n", "the holder never held"
    return first


def test_every_command_of_the_table_is_told_apart_by_a_second_holder(tmp_path):
    """**Was**: each holder spelled its command's name where it took the lock (`command="attiqa eval"`, ...,
    two constants for label and check): a name the lock file's record cannot hold, or spelled two ways, and
    a second run of that command was not asked "the same command still running?". Now one table,
    ``attiqa.io.commands.Command``: for each of its commands, held by a real process, a second of the same
    command is asked that and one of another command is not."""
    from attiqa.errors import AttiqaError
    from attiqa.io.atomic import refuse_if_held
    from attiqa.io.commands import Command

    names = [c.value for c in Command]
    assert len(set(names)) == len(names)
    targets = {c: tmp_path / f"{c.name.lower()}.csv" for c in Command}
    calls = {
        str(t): f"output_held(T, 'writing', 'wait', command=Command.{c.name})" for c, t in targets.items()
    }
    first = _holding(calls)
    try:
        for command, target in targets.items():
            assert (tmp_path / f".{target.name}.lock").read_bytes() == f"writing; {command.value}".encode()
            other = next(c for c in Command if c is not command)
            for second, same in ((command, True), (other, False)):
                with pytest.raises(AttiqaError) as refused:
                    refuse_if_held(target, "writing", "wait", command=second)
                said = f"{target}: another process is writing it now{' ' + SAME if same else ''} — wait"
                assert str(refused.value) == said, (command, second)
    finally:
        first.communicate(b"", timeout=60)


def test_a_command_name_from_outside_the_table_is_refused_where_the_lock_is_taken(tmp_path):
    """A lock holder given a name of its own (a string: `command="attiqa scor"`) **was** taken and recorded
    that name, which no second run of the command matches; now a TypeError naming the table as it is entered,
    nothing made."""
    from attiqa.io.atomic import folder_held, output_held, refuse_if_resumed_held

    out = tmp_path / "new" / "s.csv"
    for hold in (
        lambda: output_held(out, "writing", "wait", command="attiqa score"),  # type: ignore[arg-type]
        lambda: folder_held(out.parent, "writing", "wait", command="attiqa score", make="--out"),  # type: ignore[arg-type]
    ):
        with pytest.raises(TypeError, match="attiqa.io.commands.Command"), hold():
            pass
    with pytest.raises(TypeError, match="attiqa.io.commands.Command"):
        refuse_if_resumed_held(out, "attiqa score")  # type: ignore[arg-type]
    assert not (tmp_path / "new").exists()


def test_a_holder_built_but_never_entered_makes_no_folder(tmp_path):
    """**Was**: ``folder_held(OUT, make="--out")`` (and ``output_held`` of a file in a new folder) made the
    folder when the holder was built: one built and never entered (a refusal between the two, a caller that
    only keeps it) left an empty folder behind. Now made as it is entered (and removed when left empty)."""
    from attiqa.io.atomic import folder_held, output_held
    from attiqa.io.commands import Command

    out = tmp_path / "a" / "b"
    holders = [
        folder_held(out, "benchmarking in", "wait", command=Command.BENCH, make="--out"),
        output_held(tmp_path / "c" / "s.csv", "writing", "wait", command=Command.SCORE),
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    with holders[0]:
        assert (out / ".attiqa.lock").read_bytes() == b"benchmarking in; attiqa bench"
    assert not (tmp_path / "a").exists()
    with holders[1]:
        assert (tmp_path / "c" / ".s.csv.lock").is_file()
    assert list((tmp_path / "c").iterdir()) == []


def test_a_score_into_a_held_out_is_refused_before_its_model_loads(photo_dir, tmp_path, cli):
    """**Was**: `attiqa score -o s.csv` loaded its model (seconds for an ATTIQA checkpoint, minutes for a CLIP
    one on a cold disk) before it found s.csv held by another run. Now --out's lock is probed first, making
    nothing: a model whose weights cannot be read is not reached while another score writes s.csv; a new
    --out's folder is still not made by a refused run."""
    from attiqa.io.commands import Command

    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"cut short")  # read only when the model loads
    out = tmp_path / "s.csv"
    args = ("score", photo_dir, "-m", broken, "--workers", "0", "-q", "-o")
    first = _holding({str(out): f"resumed_output_held(T, Command.{Command.SCORE.name})"})
    try:
        second = cli(*args, out)
    finally:
        first.communicate(b"", timeout=60)
    assert one_line_error(second) == f"error: {out}: {BUSY}, or choose another --out"
    unread = cli(*args, tmp_path / "new" / "s.csv")  # nobody holds it: the model's own line, no folder
    assert "not a readable safetensors checkpoint" in one_line_error(unread)
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize(
    ("command", "seam", "name"),
    [("label", "attiqa.runner:label_teacher", "l.parquet"), ("score", "attiqa.scorers:load_scorer", "s.csv")],
)
def test_an_out_taken_between_the_probe_and_the_hold_is_still_one_line(
    photo_dir, tmp_path, command, seam, name
):
    """The probe before the load is a moment, not a hold: another run may take --out while this one loads
    its teacher or model. A real `label -o` / `score -o` paused once its load returned (its probe passed),
    --out then taken by this test's process: its own hold is refused in the same one line, nothing written
    into --out, no traceback."""
    from attiqa.io.atomic import resumed_output_held
    from attiqa.io.commands import Command

    out = tmp_path / name
    script, ready, go = tmp_path / "paused_after.py", tmp_path / "paused", tmp_path / "go_on"
    script.write_text(PAUSED_AFTER)
    args = ("label", photo_dir, "--out", out, "--batch-size", "2", "--workers", "0")
    if command == "score":
        args = ("score", photo_dir, "-m", "classical", "-o", out, "--workers", "0", "-q")
    cmd = attiqa_cmd(*args)
    env = {"PAUSE_AFTER": seam, "PAUSED": str(ready), "GO_ON": str(go), "ENTRY": "attiqa.cli"}
    proc = subprocess.Popen([sys.executable, str(script), *cmd[3:]], env=attiqa_env(env),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        while not ready.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert ready.exists(), proc.communicate(timeout=60)
        with resumed_output_held(out, Command[command.upper()]):
            go.touch()
            stdout, stderr = proc.communicate(timeout=300)
            assert not out.exists()
    finally:
        go.touch()
        if proc.poll() is None:
            proc.kill()
    res = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    assert one_line_error(res) == f"error: {out}: {BUSY}, or choose another --out"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_a_second_genbench_run_into_its_out_is_one_line(tmp_path, genbench_cli):
    """**Was**: two `genbench run --out RUN` at once (or a rerun to resume while the first generates) both
    made the missing images, each over the other's, and wrote run.json and the manifest in turn. Now RUN is
    held from before the run's checks read it to its last manifest write: the second is one line, RUN as
    the first leaves it; the first ends with every pair once and no lock file."""
    pytest.importorskip("diffusers")
    from genbench_helpers import build_tiny_sd
    from helpers import genbench_cmd, paused_after

    from genbench.manifest import load_pairs

    sd = build_tiny_sd(tmp_path / "sd")
    out = tmp_path / "run"
    args = ("run", "--model", sd, "--pairs", "2", "--steps", "2", "--width", "32", "--height", "32",
            "--batch-size", "1", "--out", out, "--device", "cpu")  # fmt: skip
    with paused_after(tmp_path, "genbench.generate:write_manifest", genbench_cmd(*args)):
        before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
        second = genbench_cli(*args)
        busy = f"another process is generating into it now {SAME} — let it finish (rerunning it then resumes "
        busy += "what it left), or choose another --out"
        assert one_line_error(second) == f"error: {out}: {busy}"
        assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert [p.pair_id for p in load_pairs(out)] == ["p0000", "p0001"]
    assert len(list((out / "images").glob("*.png"))) == 4 and not (out / ".attiqa.lock").exists()


def test_a_second_select_prompts_into_its_out_is_one_line(tmp_path, photos, tiny_dir, cli):
    """**Was**: two `attiqa select-prompts -o SEL` at once (or a rerun to change --select-by while the first
    runs) each encoded every photo into SEL's cache and wrote summary.csv and prompts.json in turn. Now SEL
    is held from before the teacher loads to its last file: the second is one line, SEL as the first leaves
    it; a refused run into a new SEL (a teacher that cannot load) leaves no folder."""
    from conftest import photo_folder
    from helpers import paused_after

    folder = photo_folder(tmp_path / "photos", photos, n=3, side=64)
    out = tmp_path / "sel"
    args = ("select-prompts", "-t", f"clip:{tiny_dir}", "-i", folder, "-o", out, "--work-size", "32",
            "--device", "cpu")  # fmt: skip
    with paused_after(tmp_path, "attiqa.prompts:write_summary_csv", attiqa_cmd(*args)):
        before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
        second = cli(*args, "--select-by", "distortion")
        busy = f"another process is selecting prompts in it now {SAME} — let it finish (rerunning it then "
        busy += "resumes what it left), or choose another --out"
        assert one_line_error(second) == f"error: {out}: {busy}"
        assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert (out / "prompts.json").is_file() and not (out / ".attiqa.lock").exists()
    unloadable = cli(*args[:2], f"clip:{tmp_path / 'no_clip'}", *args[3:5], "-o", tmp_path / "new")
    assert unloadable.returncode == 2 and not (tmp_path / "new").exists()


def test_a_lock_whose_record_cannot_be_read_is_still_taken_for_the_same_command(tmp_path):
    """A held lock file whose record cannot be read (empty: its holder's write of it failed — a full disk —
    or it is read between the holder's lock and its write) is taken for this command's own, as before the
    table. **Was** (the table's first version): the fallback compared the enum with the recorded name,
    never equal, and a second `score -o` was not asked "the same command still running?"."""
    from attiqa.errors import AttiqaError
    from attiqa.io.atomic import refuse_if_resumed_held
    from attiqa.io.commands import Command

    out = tmp_path / "s.csv"
    lock = tmp_path / ".s.csv.lock"
    lock.write_bytes(b"")
    holder = (
        f"import fcntl, os, sys\nfd = os.open({str(lock)!r}, os.O_RDWR)\nfcntl.flock(fd, fcntl.LOCK_EX)\n"
    )
    holder += "print('held', flush=True)\nsys.stdin.read()"
    first = subprocess.Popen([sys.executable, "-c", holder], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert first.stdout is not None and first.stdout.readline() == b"held\n"
        with pytest.raises(AttiqaError) as refused:
            refuse_if_resumed_held(out, Command.SCORE)
    finally:
        first.communicate(b"", timeout=60)
    assert str(refused.value) == f"{out}: {BUSY}, or choose another --out"


@pytest.mark.parametrize("typo", ["sheet", "model"])
def test_a_score_into_a_held_out_says_a_mistyped_option_first(photo_dir, tmp_path, cli, typo):
    """The probe of a held --out comes after the command's own option checks, as the hold did before it was
    probed early: `score -o HELD --sheet x.txt` (or `-m attiqa-defualt`) **was** told "another process is
    writing it", to meet the typo only once that run ended; now the typo's own line (the name's from
    ``refuse_unknown_scorer``, torch-free), nothing left beside --out."""
    from attiqa.io.commands import Command

    out = tmp_path / "s.csv"
    bad = ("--sheet", tmp_path / "x.txt") if typo == "sheet" else ("-m", "attiqa-defualt")
    first = _holding({str(out): f"resumed_output_held(T, Command.{Command.SCORE.name})"})
    try:
        second = cli(
            "score", photo_dir, "-q", "-o", out, *(("-m", "classical") if typo == "sheet" else ()), *bad
        )
    finally:
        first.communicate(b"", timeout=60)
    said = one_line_error(second)
    if typo == "sheet":
        assert (
            said
            == f"error: {tmp_path / 'x.txt'}: --sheet is written as a PNG — give it a name ending in .png"
        )
    else:
        assert said.startswith("error: unknown scorer 'attiqa-defualt'") and "see `attiqa models`" in said
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "photos") == []


def test_a_label_into_a_held_out_says_a_mistyped_teacher_first(photo_dir, tmp_path, cli):
    """`label -o HELD --teacher clasical` **was** told "another process is writing it" (the probe, since
    session 63, came before the teacher's name was read, at its load): the typo met only once the other run
    ended. Now the name is read with the checks, torch-free (``parse_teacher_spec``), before the probe."""
    from attiqa.io.commands import Command

    out = tmp_path / "l.parquet"
    first = _holding({str(out): f"resumed_output_held(T, Command.{Command.LABEL.name})"})
    try:
        second = cli("label", photo_dir, "-o", out, "--teacher", "clasical")
    finally:
        first.communicate(b"", timeout=60)
    assert one_line_error(second).startswith("error: unknown teacher 'clasical' (did you mean 'classical'")
