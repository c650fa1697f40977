"""Atomic file writes: write to a temporary sibling, fsync, then rename over the target.

A reader never sees a half-written file, and a killed process leaves the previous version intact.

A SIGKILL skips the cleanup, so a temporary file can stay behind. Its name says whose it is:
``.<target name>.<host tag>.<pid>.<random>.tmp``; :func:`remove_orphan_temps` (called where a resumable
job starts) deletes only such names, and only when their process is gone (same machine) or when nobody
has touched them for ``max_age`` seconds (another machine sharing the folder, or a temp from before
this naming).
"""

from __future__ import annotations

import contextlib
import enum
import errno
import hashlib
import json
import math
import os
import re
import shlex
import signal
import socket
import stat
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from attiqa.errors import AttiqaError
from attiqa.io.commands import Command
from attiqa.launch import launched_rank, launched_world_size

_HOST_TAG = hashlib.sha256(socket.gethostname().encode("utf-8", "surrogateescape")).hexdigest()[:8]
# ours with the owner's host tag and pid, or the older ".<name>.<random>.tmp" (random: mkstemp's 8 characters)
_TEMP_RE = re.compile(r"^\.(?P<name>.+?)\.(?:(?P<host>[0-9a-f]{8})\.(?P<pid>\d+)\.)?[a-z0-9_]{8}\.tmp$")
# a new output *folder* with one of these endings is a file name given to a folder option (`eval -o x.csv`)
FILE_SUFFIXES = (".csv", ".tsv", ".json", ".png", ".jpg", ".jpeg", ".safetensors", ".parquet", ".yaml")
ORPHAN_AGE = 3600.0  # seconds untouched after which a temp of unknown owner is surely abandoned


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def _temp_label(name: str) -> str:
    """The target's name as it appears in its temp's name: cut so that the temp's name stays within the
    usual 255-byte limit whenever the target's does (the temp adds ~32 bytes)."""
    raw = os.fsencode(name)
    return name if len(raw) <= 200 else os.fsdecode(raw[:200])


def resume_fix(folder: str | Path, what: str, fix: str, *, recursive: bool = False) -> str:
    """The advice for a read-only ``folder`` holding finished work to resume (``what``): make it writable
    first — ``fix`` alone ("choose another --out") would leave that work behind."""
    chmod = "chmod -R u+w" if recursive else "chmod u+w"
    return f"make it writable ({chmod} {shlex.quote(str(folder))}) to resume {what}, or {fix}"


def output_folder(
    folder: str | Path, option: str | None = None, fix: str | None = None, *, create: bool = True
) -> Path:
    """Create ``folder`` (and its parents) for writing, or fail with one line naming it, the cause (a file
    where a folder should be, no permission) and the fix (``fix``, else another ``option``, e.g. ``--out``)
    — called by a command before its work, and by every atomic write. ``create=False``: the same checks,
    nothing made — for a command whose later checks may still refuse (no empty folder left by a typo)."""
    folder = Path(folder) if str(folder) else Path(".")
    fix = fix or (f"choose another {option}" if option else "write somewhere else")
    if option and folder.suffix.lower() in FILE_SUFFIXES and not folder.exists():  # `eval -o preds.csv`
        raise AttiqaError(f"{folder}: {option} is the folder the files are written into, not a file — give "
                          f"a folder name, e.g. {folder.with_suffix('')}")  # fmt: skip
    nearest = next(p for p in (folder, *folder.parents, Path(".")) if p.exists() or p.is_symlink())
    if not nearest.is_dir():
        what = "a file" if nearest.exists() else "a broken link"
        raise AttiqaError(
            f"{folder}: cannot create the output folder ({nearest} is {what}, not a folder) — {fix}"
        )
    if not os.access(nearest, os.W_OK | os.X_OK):  # the folder that refuses: `-o RO/new/x.csv` names RO
        raise AttiqaError(f"{nearest}: not writable (permission denied) — {fix}")
    if not create:
        return folder
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise AttiqaError(f"{folder}: cannot create the output folder ({exc.strerror}) — {fix}") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise AttiqaError(f"{folder}: not writable (permission denied) — {fix}")
    return folder


def resumable_folder(folder: str | Path, option: str, what: str) -> None:
    """A folder holding a run to resume, and every folder inside it, writable — checked before any work,
    with :func:`resume_fix`'s advice (a read-only sub-folder was found by its first write, after the work)."""
    fix = resume_fix(folder, what, f"choose another {option}", recursive=True)
    for sub in [Path(folder), *sorted(p for p in Path(folder).rglob("*") if p.is_dir())]:
        output_folder(sub, option, fix, create=False)


SYMLINK_LOOP = "symlink loop (the link points back to itself)"  # the one wording, for images and raws too


def link_fault(path: str | Path) -> tuple[bool, str] | None:
    """For a link that cannot be followed, ``(True, target)`` when it loops back to itself, ``(False,
    target)`` when its target is not there; None for anything else (a file, a folder, a good link, nothing):
    the one test behind every "symlink loop" / "broken link" line, whatever reads or writes the path."""
    if not os.path.islink(path):
        return None
    try:
        os.stat(path)
    except OSError as exc:
        return exc.errno == errno.ELOOP, os.readlink(path)
    return None


def link_fault_words(path: str | Path) -> str | None:
    """:func:`link_fault` in the words every command uses (an input or an output alike): "a symlink loop
    (the link points back to itself)", "a broken link (to TARGET, which is not there)"; None otherwise."""
    fault = link_fault(path)
    if fault is None:
        return None
    loop, target = fault
    return f"a {SYMLINK_LOOP}" if loop else f"a broken link (to {target}, which is not there)"


def not_a_dangling_link(path: str | Path, option: str | None = None) -> None:
    """One line, before the work, when an output file is a link to nothing (or a symlink loop): writing
    through it made its target somewhere else or failed with "No such file or directory" for a folder that
    is not there, naming no path the user typed; an atomic write would replace the link itself."""
    why = link_fault_words(path)
    if why is None:
        return
    fix = f"give {option} another name" if option else "write somewhere else"
    raise AttiqaError(f"{path}: {why} — delete the link or {fix}")


def not_an_input(outputs: Iterable[str | Path], inputs: Iterable[str | Path], option: str) -> None:
    """One line, before the work, when an output would replace a file the command reads (``eval --csv
    d/predictions.csv -o d`` wrote its predictions over the scores it was evaluating)."""
    read = {os.path.realpath(p) for p in inputs}
    for out in outputs:
        if os.path.realpath(out) in read:
            raise AttiqaError(f"{out}: is also an input of this command — writing it would destroy it; "
                              f"choose another {option}")  # fmt: skip


def output_png(path: str | Path, option: str, *, create: bool = True) -> Path:
    """Check, before the work, an output that is written as a PNG (a contact sheet, a gallery): a ``.png``
    name, not a folder, in a folder that can be written — one line naming ``option`` otherwise.
    ``create=False``: its folder is checked, not made (the atomic write makes it, once the work is done)."""
    path = Path(path)
    if path.is_dir():
        raise AttiqaError(f"{path}: is a folder — give {option} a file name, e.g. {path / 'sheet.png'}")
    if path.suffix.lower() != ".png":
        raise AttiqaError(f"{path}: {option} is written as a PNG — give it a name ending in .png")
    not_a_dangling_link(path, option)
    output_folder(path.parent, option, create=create)
    return path


# The output locks this process holds: fd -> (st_dev, st_ino) of the file or folder locked. ``flock`` locks an
# open file description, which a fork shares with the child: the DataLoader's decode workers, forked while a
# lock is held (and kept for the life of the process), held it on after the run, and a second `score -o` of
# the same process was refused as "another process". Each child closes its copies as it starts (never
# LOCK_UN, which would release the parent's lock too); O_CLOEXEC keeps them from any exec'd program.
_HELD: dict[int, tuple[int, int]] = {}
# A fork waits while a lock is being taken: no fd is copied unregistered. Re-entrant: a clean-up run by the
# garbage collector inside the guarded block (an abandoned holder's) lets its lock go without a deadlock.
_HELD_GUARD = threading.RLock()


def _forget_held_in_child() -> None:
    for fd in _HELD:
        with contextlib.suppress(OSError):
            os.close(fd)
    _HELD.clear()
    _HELD_GUARD.release()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_HELD_GUARD.acquire, after_in_parent=_HELD_GUARD.release, after_in_child=_forget_held_in_child
    )


class LockFault(enum.Enum):
    """What makes the thing at a lock file's name unusable as one (:func:`_lock_fault`); its words and fix
    are :data:`_LOCK_FAULTS`'."""

    FOLDER = "folder"
    LINK = "link"
    FIFO = "fifo"
    NOT_REGULAR = "not regular"
    OTHER_USERS = "other user's"
    OWN_READ_ONLY = "own read-only"


# kind -> (what the lock file is, how it is removed, whether its owner's run is waited for first)
_LOCK_FAULTS: dict[LockFault, tuple[str, str, bool]] = {
    LockFault.FOLDER: ("a folder, not a lock file", "rm -r", False),
    LockFault.LINK: ("a link, not a lock file", "rm", False),
    LockFault.FIFO: ("a FIFO, not a lock file", "rm", False),
    LockFault.NOT_REGULAR: ("not a regular file", "rm", False),
    LockFault.OTHER_USERS: ("not yours to open (permission denied: another user's run?)", "rm", True),
    LockFault.OWN_READ_ONLY: ("yours but not writable (permission denied: made read-only?)", "rm", False),
}


def _unusable_lock(lock_file: Path, shown: Path, fault: LockFault) -> AttiqaError:
    """One line for a lock file that is there and cannot be one (a folder, a FIFO, a link, another user's
    under umask 077): writing on unlocked would let a second run write the output at once, unsaid."""
    what, rm, owner_first = _LOCK_FAULTS[fault]
    fix = f"remove it ({rm} {shlex.quote(str(lock_file))}), then run again"
    if owner_first:
        fix = f"once no run of its owner writes {shown}, {fix}"
    return AttiqaError(f"{lock_file}: the lock file of {shown} is {what} — {fix}")


def _lock_fault(lock_file: Path, exc: OSError | None) -> LockFault | None:
    """What makes the thing at ``lock_file`` unusable as a lock file, None for nothing there (a folder that
    cannot be written: unlocked, as before, its writes say why) or a regular file that merely failed."""
    try:
        st = os.lstat(lock_file)
    except OSError:
        return None
    if stat.S_ISDIR(st.st_mode):
        return LockFault.FOLDER
    if stat.S_ISLNK(st.st_mode):
        return LockFault.LINK
    if stat.S_ISFIFO(st.st_mode):
        return LockFault.FIFO
    if not stat.S_ISREG(st.st_mode):
        return LockFault.NOT_REGULAR
    if exc is not None and exc.errno in (errno.EACCES, errno.EPERM):
        if hasattr(os, "geteuid") and st.st_uid == os.geteuid():  # ours, made read-only (chmod -R a-w)
            return LockFault.OWN_READ_ONLY
        return LockFault.OTHER_USERS
    return None


# what a holder writes into its lock file: "DOING; COMMAND" ("writing; attiqa score"), or a bare "DOING" (a
# lock file of session 62, or a holder that names no command). Words only: another user's file is printed.
_HOLDER_RE = re.compile(
    r"(?P<doing>[a-z]+(?: [a-z]+){0,3})(?:; (?P<command>[a-z][a-z0-9-]*(?: [a-z][a-z0-9-]*){0,3}))?"
)


def _holder_record(doing: str, command: Command | None) -> bytes:
    return (doing if command is None else f"{doing}; {command.value}").encode()


def _from_the_table(command: object) -> None:
    """A holder's command is one of :class:`~attiqa.io.commands.Command`: a name spelled where the lock is
    taken ("attiqa scor") would be recorded, and no second run of the command would match it."""
    if command is not None and not isinstance(command, Command):
        raise TypeError(f"command={command!r}: give one of attiqa.io.commands.Command (add it there if new)")


def _holder(fd: int) -> tuple[str, str | None] | None:
    """What the holder of a lock file wrote it is doing ("training in") and, where it did, its command
    ("attiqa train"): an `eval -o RUN` met by a train in RUN said "another process is evaluating into it"."""
    try:
        said = os.pread(fd, 128, 0).decode("ascii")
    except (OSError, UnicodeDecodeError):
        return None
    m = _HOLDER_RE.fullmatch(said)
    return None if m is None else (m.group("doing"), m.group("command"))


def _busy(
    fd: int, st: os.stat_result, shown: Path, doing: str, fix: str, command: Command | None
) -> AttiqaError:
    """The line for a lock another holder has: in its holder's words, "(the same command still running?)"
    when that holder is a run of this command (by the commands recorded, else — an old lock file — by the
    verbs: `score -o x.csv` and `label -o x.csv` both write "writing")."""
    if (st.st_dev, st.st_ino) in _HELD.values():  # a library caller's writer not closed yet
        return AttiqaError(
            f"{shown}: this process is already {doing} it (an earlier writer of it is still open) — close "
            "that one first"
        )
    # a record that cannot be read (empty: its holder's write failed, or it is between taking and writing)
    # is taken for this command's own, as before the table: by name, not by the enum (never equal to a str)
    theirs, their_command = _holder(fd) or (doing, None if command is None else command.value)
    same = theirs == doing  # an old lock file, no command recorded: by the verbs
    if their_command is not None:
        same = command is not None and their_command == command.value
    again = " (the same command still running?)" if same else ""
    return AttiqaError(f"{shown}: another process is {theirs} it now{again} — {fix}")


def _open_lock(lock_file: Path, shown: Path, *, create: bool) -> tuple[int, os.stat_result] | None:
    """``lock_file`` opened for writing (made if ``create``), with the open file's identity; None where it
    cannot be opened (not there, a folder that cannot be written); one line for one that cannot be a lock
    file (:func:`_unusable_lock`)."""
    # Opened for writing: NFS emulates flock with a whole-file lock, which needs a file open for writing.
    # Not following a link; not waiting on a FIFO of that name (refused below).
    flags = os.O_RDWR | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(lock_file, flags | (os.O_CREAT if create else 0), 0o666)
    except OSError as exc:
        if (fault := _lock_fault(lock_file, exc)) is not None:
            raise _unusable_lock(lock_file, shown, fault) from None
        return None
    try:
        st = os.fstat(fd)  # the open file's identity: it does not change while the fd is open
        if not stat.S_ISREG(st.st_mode):
            raise _unusable_lock(lock_file, shown, _lock_fault(lock_file, None) or LockFault.NOT_REGULAR)
    except BaseException:
        os.close(fd)
        raise
    return fd, st


# A shared holder lets go by making its lock exclusive for the instant of removing the lock file
# (:func:`_let_go`): a shared one taken in that instant was refused ("another process is scoring it now"),
# two `genbench score` of other metrics, one ending as the other started (447 of 9000 holds, three processes
# taking and letting go in a loop). It tries again, briefly: a real exclusive holder (an import) holds for
# the length of its run and is still refused, 0.2 s later.
LEAVING_TRIES = 20
LEAVING_WAIT = 0.01


def _hold(
    lock_file: Path, shown: Path, doing: str, fix: str, command: Command | None, shared: bool = False
) -> int | None:
    """An advisory exclusive lock (``shared``: one that other shared holders may hold too, an exclusive one
    none) on a new open file description of ``lock_file`` (made if it is not there),
    registered in :data:`_HELD`; None where there are no locks (no ``fcntl``, a filesystem without
    ``flock``, a lock file that cannot be made): the output is then written unlocked, as before. A lock
    file there that cannot be one is one line (:func:`_unusable_lock`). A lock file replaced while it was
    being opened (its holder removes it as it lets go) is opened again."""
    try:
        import fcntl
    except ImportError:  # Windows
        return None
    leaving = LEAVING_TRIES if shared else 0
    for _ in range(100):  # a lock file replaced 100 times over: a filesystem whose inodes do not hold still
        with _HELD_GUARD:
            opened = _open_lock(lock_file, shown, create=True)
            if opened is None:
                return None
            fd, st = opened
            try:
                fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
                if not os.path.samestat(st, os.stat(lock_file)):
                    raise FileNotFoundError  # the holder removed it as it let go: the next one is the lock
                _HELD[fd] = (st.st_dev, st.st_ino)
                record = _holder_record(doing, command)
                # what it is doing, for a second command's line (never into a file that a hard link makes
                # another name of); not written again when there: a shared holder's fellows read it now
                if st.st_nlink == 1:
                    with contextlib.suppress(OSError):  # a record not written: the lock holds all the same
                        if os.pread(fd, len(record) + 1, 0) != record:
                            os.ftruncate(fd, 0)
                            os.pwrite(fd, record, 0)
            except BlockingIOError:
                if leaving:  # perhaps a fellow shared holder's instant of letting go (:func:`_let_go`)
                    leaving -= 1
                    os.close(fd)
                    time.sleep(LEAVING_WAIT)
                    continue
                busy = _busy(fd, st, shown, doing, fix, command)
                os.close(fd)
                raise busy from None
            except FileNotFoundError:
                os.close(fd)
                continue
            except OSError:
                os.close(fd)
                return None
            except BaseException:  # Ctrl-C / SIGTERM as it is taken, a lock file refused: no fd left open
                os.close(fd)
                raise
            return fd
    return None


def _probe(lock_file: Path, shown: Path, doing: str, fix: str, command: Command | None) -> None:
    """:func:`_hold`'s refusal, now, without holding and without making anything: a lock file that is not
    there is held by no one. Taken for an instant and let go (a holder starting in that instant is told
    "another process is DOING it": it is, the one about to hold it)."""
    try:
        import fcntl
    except ImportError:  # Windows
        return
    with _HELD_GUARD:
        opened = _open_lock(lock_file, shown, create=False)
        if opened is None:
            return
        fd, st = opened
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise _busy(fd, st, shown, doing, fix, command) from None
        except OSError:  # no flock here: unlocked, as the hold would be
            pass
        finally:
            os.close(fd)  # the instant's lock goes with it


def _let_go(fd: int | None, lock_file: Path) -> None:
    """The lock file removed while still held — no one takes a lock on a file going — by its last holder
    alone: a shared holder that cannot make its lock exclusive leaves it to the others still holding it
    (removed under them, the next holder made a new one and held it beside them)."""
    if fd is None:
        return
    import fcntl  # a lock was taken: there is fcntl

    with _HELD_GUARD:
        _HELD.pop(fd, None)
        with contextlib.suppress(OSError):  # BlockingIOError: another shared holder still holds it
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            lock_file.unlink()
        os.close(fd)


@contextlib.contextmanager
def _held_by(
    lock_file: Path,
    shown: Path,
    doing: str,
    fix: str,
    command: Command | None,
    made: Iterable[Path] = (),
    shared: bool = False,
) -> Iterator[None]:
    fd = None
    try:  # entered first: an interruption as the lock is taken still lets it go
        fd = _hold(lock_file, shown, doing, fix, command, shared)
        yield
    finally:
        _let_go(fd, lock_file)
        for folder in made:  # made for the hold and still empty (refused before its first write)
            with contextlib.suppress(OSError):
                folder.rmdir()


# the hidden lock file a held output folder holds inside it (:func:`folder_held`)
FOLDER_LOCK = ".attiqa.lock"
# what a second writer is told to do about a run that resumes (`score -o`, `label -o`, `isp-tune --out`)
LET_IT_FINISH = "let it finish (rerunning it then resumes what it left)"
OUTPUT_SUFFIXES = (".csv", ".tsv", ".json")  # a score file's types
OUT_FIX = "choose another --out"  # `attiqa score`'s advice for an output it cannot use
# what a second writer is told of an output written whole again by each run (`genbench agree`, the imports)
WAIT_OR_OUT = f"let it finish, or {OUT_FIX}"


def _lock_file_of(target: str | Path) -> Path:
    # beside the file the path reaches: `-o link.csv` and `-o` of its target are one output
    real = Path(os.path.realpath(target))
    return real.with_name(f".{real.name}.lock")


@contextlib.contextmanager
def output_held(
    target: str | Path, doing: str, fix: str, *, command: Command | None = None
) -> Iterator[None]:
    """Hold the output file ``target`` for the block, so that two processes never write it at once (two
    `attiqa score -o s.csv` started together each scored every image into it: every row twice): a second
    holder is one line, "TARGET: another process is DOING it now (the same command still running?) — FIX",
    in the holder's words; "the same command" when the holder's ``command`` ("attiqa score") is this one's.
    Held by a hidden lock file beside it, ``.NAME.lock`` (made and removed by the holder; a killed holder's
    is taken over), not by the output itself: a file renamed over the output (a JSON document, a merged
    torchrun file) stays held until the block ends. Keep the block up to the output's last rename. Its
    folder is made, as the block is entered, if it is not there (as the output's own first write would)."""
    _from_the_table(command)
    target = Path(target)
    output_folder(target.parent)
    with _held_by(_lock_file_of(target), target, doing, fix, command):
        yield


def refuse_if_held(target: str | Path, doing: str, fix: str, *, command: Command | None = None) -> None:
    """:func:`output_held`'s one line for ``target``, now, if another process holds it — nothing held and
    nothing made (no folder, no lock file): for a command that would otherwise find out only after a long
    load (`label -o`'s CLIP teacher, `score -o`'s model)."""
    _from_the_table(command)
    _probe(_lock_file_of(target), Path(target), doing, fix, command)


def resumed_busy_fix(fix: str = OUT_FIX) -> str:
    """The advice to a second writer of an output a rerun resumes (`score -o`, `bench --out`, `isp-tune
    --out`): let the first finish, then ``fix`` if it is :data:`OUT_FIX` (a caller's own — genbench's
    "delete it to score M again" — is not offered while another process writes the file)."""
    return LET_IT_FINISH + (f", or {fix}" if fix == OUT_FIX else "")


def refuse_if_resumed_held_once(
    target: str | Path, command: Command, *, in_group: bool, fix: str = OUT_FIX
) -> None:
    """:func:`refuse_if_resumed_held` by one process of a job, at one of the two places a command calls it
    (`score -o`, `label -o`): one process in its torch-free checks (``in_group`` False), before torch and
    the model load; under torchrun rank 0 alone once the process group has started (``in_group`` True) —
    every rank probing at once took the lock of each other. Elsewhere: nothing. The job's size and this
    process's rank are torchrun's, read here (:mod:`attiqa.launch`): no caller passes its own."""
    world = launched_world_size()
    if launched_rank() == 0 and in_group == (world > 1):
        refuse_if_resumed_held(target, command, fix)


def resumed_output_held(
    target: str | Path, command: Command, fix: str = OUT_FIX
) -> AbstractContextManager[None]:
    """:func:`output_held` for a file a rerun resumes, written row by row or part by part by ``command``
    (`attiqa score -o`, `attiqa label -o`, `genbench score`): the one place of their verb and advice."""
    return output_held(target, "writing", resumed_busy_fix(fix), command=command)


def refuse_if_resumed_held(target: str | Path, command: Command, fix: str = OUT_FIX) -> None:
    """:func:`refuse_if_held` in :func:`resumed_output_held`'s words."""
    refuse_if_held(target, "writing", resumed_busy_fix(fix), command=command)


@contextlib.contextmanager
def folder_held(
    folder: str | Path,
    doing: str,
    fix: str,
    *,
    command: Command | None = None,
    make: str | None = None,
    shared: bool = False,
) -> Iterator[None]:
    """:func:`output_held` for an existing output ``folder`` (a training's ``out_dir``, an eval's ``-o``),
    by a hidden lock file inside it, :data:`FOLDER_LOCK` (was the folder itself, opened read-only: NFS
    cannot lock that). Only there while held; a folder that cannot be written runs unlocked, as before
    (its writes, or the command's checks, say why). ``make``: the option naming it (``--out``) — a folder
    that is not there is made to be held, and removed again (with the parents made for it) when the block
    leaves it empty: a run refused before its first write (a model that cannot load) leaves none. Made as the
    block is entered, not when the holder is built: one built and never entered left an empty folder.
    ``shared``: held beside other shared holders, never beside an exclusive one (`genbench score` of one
    metric beside another's, neither beside an import rewriting the run)."""
    _from_the_table(command)
    made: list[Path] = []
    if make is not None:
        path = Path(folder) if str(folder) else Path(".")
        made = [p for p in (path, *path.parents) if not (p.exists() or p.is_symlink())]
        output_folder(path, make)
    real = Path(os.path.realpath(folder))
    with _held_by(real / FOLDER_LOCK, Path(folder), doing, fix, command, made, shared):
        yield


def refuse_if_folder_held(
    folder: str | Path, doing: str, fix: str, *, command: Command | None = None
) -> None:
    """:func:`folder_held`'s one line for ``folder``, now, if another process holds it — nothing held and
    nothing made: for a command that would otherwise find out only after a long load (`train
    exiqa`'s CLIP, `train exiqa-regressor`'s scorer)."""
    _from_the_table(command)
    _probe(Path(os.path.realpath(folder)) / FOLDER_LOCK, Path(folder), doing, fix, command)


@contextlib.contextmanager
def interrupts_held() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM for the few statements that commit an output and record it (the rename of
    a batch's image and its row in a label list, the fsync of a batch of scores and the count said at the
    end): a signal that arrives inside is raised, by its own handler, once the block is done — so an
    interruption never lands between the two (a file on disk that no record or count knows of). Outside
    the main thread (no handler can be set there) the block runs as it is. Keep the block short."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[tuple[int, Any]] = []
    saved: dict[int, Any] = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        handler = signal.getsignal(sig)
        if handler is not None and handler != signal.SIG_IGN:  # None: set outside Python, left alone
            saved[sig] = signal.signal(sig, lambda signum, frame: held.append((signum, frame)))
    try:
        yield
    finally:
        for restored, previous in saved.items():
            signal.signal(restored, previous)
        if held:
            signum, frame = held[0]
            own = saved[signum]
            if callable(own):
                own(signum, frame)  # KeyboardInterrupt, or the command's own (SIGTERM's Terminated)
            else:  # SIG_DFL: the default action, now
                signal.raise_signal(signum)


@contextlib.contextmanager
def atomic_path(target: str | Path, on_commit: Callable[[], object] | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; on success it is renamed onto ``target``.

    ``on_commit`` records the finished file (a row in a label list, a count) in the same step as the
    rename, with Ctrl-C / SIGTERM held between the two (:func:`interrupts_held`): the file is on disk
    if and only if it was recorded — short of a SIGKILL, which a resume reconciles from the disk."""
    target = Path(target)
    if target.is_dir():  # the rename would fail after the work, naming the temp file
        raise AttiqaError(f"{target}: is a folder — write to a file name instead")
    not_a_dangling_link(target)
    output_folder(target.parent)
    prefix = f".{_temp_label(target.name)}.{_HOST_TAG}.{os.getpid()}."
    try:
        fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=target.parent)
    except OSError as exc:  # the message names the file the user asked for, not our temp (`-o /sys/x.png`)
        raise OSError(exc.errno, exc.strerror, str(target)) from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        # mkstemp (and writers that replace the file) leave 0600; finished files get the usual mode
        os.chmod(tmp_path, 0o666 & ~_UMASK)
        with interrupts_held():
            os.replace(tmp_path, target)
            if on_commit is not None:
                on_commit()
    except OSError as exc:
        if exc.filename not in (tmp, str(tmp_path)):
            raise
        raise OSError(exc.errno, exc.strerror, str(target)) from None  # a full disk while writing, ...
    finally:
        with contextlib.suppress(OSError):
            tmp_path.unlink(missing_ok=True)


def _process_gone(pid: int) -> bool:
    if sys.platform == "win32":  # os.kill(pid, 0) would send Ctrl-C there: the owner is unknown
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # e.g. another user's process: alive
        return False
    return False


def remove_orphan_temps(
    folder: str | Path, targets: Iterable[str] | None = None, max_age: float = ORPHAN_AGE
) -> int:
    """Delete the temp files :func:`atomic_path` left in ``folder`` when its process was killed mid-write.

    Only names of our pattern are considered, and only orphans are deleted: the owning process (on this
    machine) is gone, or the file is older than ``max_age`` seconds (owner unknown). A live writer's
    temp — another command writing to the same folder — is never touched. ``targets``: only temps of
    these file names (for a folder the job shares with others, e.g. the one holding ``--out``).
    Returns how many were removed.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    wanted = None if targets is None else {_temp_label(t) for t in targets}
    n, now = 0, time.time()
    for stale in folder.glob(".*.tmp"):
        m = _TEMP_RE.match(stale.name)
        if m is None or (wanted is not None and m.group("name") not in wanted):
            continue
        if stale.is_symlink() or not stale.is_file():
            continue
        try:
            age = now - stale.stat().st_mtime
        except OSError:
            continue
        mine = m.group("host") == _HOST_TAG and m.group("pid") is not None
        if (mine and _process_gone(int(m.group("pid")))) or age > max_age:
            with contextlib.suppress(OSError):
                stale.unlink()
                n += 1
    return n


def write_bytes_atomic(target: str | Path, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(target: str | Path, text: str) -> None:
    write_bytes_atomic(target, text.encode("utf-8"))


def json_ready(obj: Any) -> Any:
    """``obj`` with every float that is not finite as None: JSON has no NaN or Infinity (``json.dumps``
    writes the bare tokens, which browsers', jq's and strict parsers refuse), so a number that has no value
    (a correlation over equal predictions) is null. Finite values are left as they are."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_ready(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_ready(v) for v in obj]
    return obj


def json_text(obj: Any) -> str:
    """``obj`` as the JSON files of the project are written (:func:`write_json_atomic`): non-finite floats
    as null (:func:`json_ready`); ``allow_nan=False``, so no path can write a bare NaN past it."""
    return json.dumps(json_ready(obj), indent=2, sort_keys=False, default=str, allow_nan=False) + "\n"


def write_json_atomic(target: str | Path, obj: Any) -> None:
    write_text_atomic(target, json_text(obj))


def check_output_path(out: str | Path, fix: str = OUT_FIX, *, create: bool = True) -> Path:
    """Fail before any work when ``out`` cannot be written: wrong extension, a folder, no permission
    (``fix``: the advice for the last two, e.g. another command's own in place of ``--out``).
    ``create=False``: its folder is checked, not made — for a check before settings that may still fail."""
    out = Path(out)
    if str(out) == "-" or (out.exists() and not out.is_dir() and not out.is_file()):  # `-o -`, /dev/stdout
        raise AttiqaError(f"{out}: not a file name — the scores go to a file, written row by row so a rerun "
                          "resumes it, not to a stream: give e.g. scores.csv")  # fmt: skip
    if out.is_dir():
        raise AttiqaError(f"{out}: is a folder — give a file name ending in .csv, .tsv or .json, "
                          f"e.g. {out / 'scores.csv'}")  # fmt: skip
    if not out.suffix:  # `-o scores` (a file meant) or `-o results` (into that folder meant)
        raise AttiqaError(f"{out}: has no file extension — give a file name ending in .csv, .tsv or .json, "
                          f"e.g. {out.with_name(out.name + '.csv')} (or {out / 'scores.csv'} to write into "
                          f"a folder {out.name})")  # fmt: skip
    if out.suffix.lower() not in OUTPUT_SUFFIXES:
        raise AttiqaError(f"{out}: unsupported output type {out.suffix} — give a file name ending in .csv, "
                          f".tsv or .json, e.g. {out.with_suffix('.csv')}")  # fmt: skip
    not_a_dangling_link(out, "--out")
    folder_fix = None if fix == OUT_FIX else fix
    if fix == OUT_FIX and out.is_file():  # finished rows to resume: "choose another --out" would lose them
        folder_fix = resume_fix(out.parent, out.name, fix)
    output_folder(out.parent, "--out", fix=folder_fix, create=create)
    if out.exists() and not os.access(out, os.W_OK):
        resume = f"chmod u+w {shlex.quote(str(out))} to resume it, or " if fix == OUT_FIX else ""
        raise AttiqaError(f"{out}: not writable (permission denied) — {resume}{fix}")
    return out
