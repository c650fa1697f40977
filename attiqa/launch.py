"""torchrun's environment, read torch-free: the one reader of WORLD_SIZE and RANK, so a command's checks can
ask whether this is one process before torch is imported (:func:`attiqa.cli._common.one_process`) and the
process group (:func:`attiqa.sharding.init_distributed`) reads the same value, checked."""

from __future__ import annotations

import os

from attiqa.errors import AttiqaError

LAUNCH_VARS = ("RANK", "MASTER_ADDR", "MASTER_PORT")  # what torchrun sets beside WORLD_SIZE (env://)


def world_size_text() -> str:
    """WORLD_SIZE as set, stripped; ``"1"`` when unset or empty (one process)."""
    return os.environ.get("WORLD_SIZE", "1").strip() or "1"


def launched_world_size() -> int:
    """WORLD_SIZE from the environment, checked: set alone (a job script's export, a shell left from a
    launcher) it was torch's 20-line ValueError about RANK; now one line naming the two fixes."""
    raw = world_size_text()
    one = "unset WORLD_SIZE to run one process"
    try:
        ws = int(raw)
    except ValueError:
        raise AttiqaError(f"WORLD_SIZE={raw!r} is not a number of processes — {one}") from None
    missing = [v for v in LAUNCH_VARS if not os.environ.get(v)]
    if ws > 1 and missing:
        raise AttiqaError(
            f"WORLD_SIZE={ws} is set but not {', '.join(missing)}, which torchrun sets for each process it "
            f"starts — start the command with torchrun --nproc_per_node {ws} -m attiqa.cli ..., or {one}"
        )
    raw_rank = os.environ.get("RANK", "0").strip()
    if ws > 1 and not (raw_rank.isdigit() and int(raw_rank) < ws):
        raise AttiqaError(
            f"RANK={raw_rank!r} with WORLD_SIZE={ws}: each process needs a rank from 0 to {ws - 1} — start "
            f"the command with torchrun --nproc_per_node {ws} -m attiqa.cli ... (it numbers them), or {one}"
        )
    return ws


def launched_rank() -> int:
    """This process's rank: RANK under torchrun (checked with WORLD_SIZE: :func:`launched_world_size`), 0 for
    one process, as :func:`attiqa.sharding.rank` says — a RANK left in a shell by a launcher is not this
    process's (``RANK=1 attiqa label`` labelled from the second image on; ``RANK=x``: a traceback)."""
    return int(os.environ["RANK"].strip()) if launched_world_size() > 1 else 0


def launched_local_rank() -> int:
    """This process's rank on its machine: LOCAL_RANK under torchrun (checked: a number below
    WORLD_SIZE; unset is 0), 0 for one process — a LOCAL_RANK left in a shell is not this process's, which
    uses its device's default (``LOCAL_RANK=1 attiqa score`` took the second GPU; ``x``: a traceback)."""
    ws = launched_world_size()
    if ws <= 1:
        return 0
    raw = os.environ.get("LOCAL_RANK", "0").strip() or "0"
    if not (raw.isdigit() and int(raw) < ws):
        raise AttiqaError(
            f"LOCAL_RANK={raw!r} with WORLD_SIZE={ws}: each process needs its rank on its machine, from 0 to "
            f"{ws - 1} — start the command with torchrun --nproc_per_node {ws} -m attiqa.cli ... (it numbers "
            "them), or unset WORLD_SIZE to run one process"
        )
    return int(raw)
