"""Helpers of the multi-process tests (torchrun with gloo): ports, launch environments, per-rank runs."""

from __future__ import annotations

import os

from helpers import run_attiqa, write_label_set


def launch_env(**env: str) -> dict[str, str]:
    """:func:`helpers.attiqa_env` with ``env`` as the only launch variables (none inherited)."""
    from helpers import attiqa_env

    out = attiqa_env({"OMP_NUM_THREADS": "1"})
    for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_RUN_ID"):
        out.pop(key, None)
    return {**out, **env}


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fill(fd: int) -> int:
    """Fill the pipe ``fd`` writes to until a write would block; returns the bytes written."""
    os.set_blocking(fd, False)
    n = 0
    try:
        while True:
            n += os.write(fd, b"#" * 4096)
    except BlockingIOError:
        pass
    try:
        while True:  # the last page's room too
            n += os.write(fd, b"#")
    except BlockingIOError:
        return n


PER_RANK_CWD = """
import os, sys

os.chdir(os.path.join(sys.argv[1], "rank" + os.environ.get("RANK", "0")))  # as if on another machine
sys.argv = ["attiqa", *sys.argv[2:]]
from attiqa.cli import main

main()
"""


def per_rank_run(tmp_path, *args: object):
    """``torchrun --nproc_per_node 2 attiqa ARGS``, each process in its own folder ``rank0/``, ``rank1/``
    (what one machine's disk holds and another's does not)."""
    script = tmp_path / "per_rank.py"
    script.write_text(PER_RANK_CWD)
    res = run_attiqa(tmp_path, *args, ranks=2, script=script, env={"OMP_NUM_THREADS": "1"})
    ours = res.stderr.split("torch/distributed/elastic")[0]
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    return res, ours, errors


CACHED_PRETRAIN = (
    "labels: labels/labels.parquet\nout_dir: run\n"
    "model: {backbone: tiny, pretrained_backbone: false, head_hidden: 8}\n"
    "pretrain: {epochs: 1, batch_size: 4, crop_size: 48, resize_shorter: 56, num_workers: 0, device: cpu, "
    "feature_cache: true, feature_cache_dir: cache}\n"
)


def labelled(folder, photos, readable: int):
    """A run config of cached pretraining and a label table of 4 images, of which ``readable`` decode."""
    write_label_set(folder / "labels", photos, shorter=56, factors=(0.6, 1.4))
    for png in sorted((folder / "labels" / "img").glob("*.png"))[readable:]:
        png.write_bytes(b"not a png: cut short on this machine")
    (folder / "run.yaml").write_text(CACHED_PRETRAIN)


def equal_columns(path, swap: bool) -> None:
    """The table at ``path`` with its contrast column set to its sharpness values (two attributes a teacher
    scored alike); ``swap``: those two columns written in the other order — the same rows and targets, the
    heads in another order."""
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    names = list(table.column_names)
    table = table.set_column(names.index("contrast"), "contrast", table.column("sharpness"))
    if swap:
        i, j = names.index("sharpness"), names.index("contrast")
        names[i], names[j] = names[j], names[i]
        table = table.select(names)
    pq.write_table(table, path)
