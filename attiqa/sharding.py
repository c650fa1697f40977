"""One code path for a single process and for ``torchrun --nproc_per_node N``: the process group, and
scoring a list of images across its processes.

- The group is joined from torchrun's env vars (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT); gloo for
  CPU tensors, and NCCL for CUDA tensors where CUDA is (:func:`backend_for`). Without those env vars (or
  WORLD_SIZE=1) nothing is initialised and every helper is a no-op.
- Sharded scoring (``attiqa score``, ``attiqa eval``): every process works out the same list of images
  still to score, scores every N-th one (:meth:`Shards.share`, :func:`score_share`), and what they found
  meets on every process (:meth:`Shards.gather`); rank 0 alone writes the outputs and reports.

Training's DDP helpers (:mod:`attiqa.training.distributed`) build on these; inference needs none of them.
"""

from __future__ import annotations

import datetime
import itertools
import math
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import torch
import torch.distributed as dist

from attiqa.errors import AttiqaError, EveryProcessError, ImageLoadError, Said
from attiqa.interface import Scorer
from attiqa.launch import launched_local_rank, launched_rank, launched_world_size
from attiqa.progress import say_error
from attiqa.scoring import ScoreRun, score_paths

T = TypeVar("T")


@dataclass(frozen=True)
class DistState:
    rank: int
    world_size: int
    local_rank: int
    owns_group: bool  # we created the process group, so we destroy it in teardown()


def is_dist() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if is_dist() else 0


def world_size() -> int:
    return dist.get_world_size() if is_dist() else 1


def local_rank() -> int:
    return launched_local_rank() if is_dist() else 0


def is_main() -> bool:
    return rank() == 0


def barrier() -> None:
    """Wait for every process; a peer lost is :class:`PeerLost` (one line, not gloo's traceback)."""
    if is_dist():
        with collective():
            dist.barrier()


def gather_objects(obj: object) -> list:
    """Every rank's ``obj`` (picklable), in rank order, on every rank — also a barrier; ``[obj]`` alone. A
    peer lost is :class:`PeerLost` (``score`` and ``eval`` raised gloo's traceback where no torchrun agent
    stopped the survivor first)."""
    if not is_dist():
        return [obj]
    out: list = [None] * world_size()
    with collective():
        dist.all_gather_object(out, obj)
    return out


class PeerLost(AttiqaError):
    """A collective failed under torchrun: another process of the job is gone (killed, out of memory, stopped
    by an error of its own). ``what`` names it with the backend's first line; the training loop adds what is
    kept to resume from."""

    def __init__(self, why: str) -> None:
        self.what = f"another process of this torchrun job stopped ({why})"
        super().__init__(f"{self.what} — rerun the same command to continue")


@contextmanager
def collective() -> Iterator[None]:
    """Around collectives — training's (and a DDP backward pass, whose gradient all-reduce runs inside it),
    the label stage's barriers: under torchrun their RuntimeError (gloo's "Connection closed by peer",
    NCCL's errors) becomes :class:`PeerLost`, one line instead of a traceback. The backend's first line is
    kept in it, so an error of this process's own still shows what it was."""
    try:
        yield
    except RuntimeError as exc:
        if not is_dist():
            raise
        lines = str(exc).strip().splitlines()
        raise PeerLost(lines[0] if lines else type(exc).__name__) from None


@contextmanager
def alike_on_every_process(main_only: bool = False) -> Iterator[None]:
    """Around a command's checks that every process of a torchrun job makes, before it shares out the work:
    an :class:`AttiqaError` raised in them is said once, by rank 0, when every process met it with the same
    text (N processes printed it N times); when they differ — a file on one machine only, a LOCAL_RANK past
    the GPUs — each process that met one says its own, "rank R of N: …", and every process ends with exit
    2. Rank 0 alone said an error of rank 1's that it never met: rank 1's line was lost. Every process must
    reach the end of the block (one gather; no collective inside it). Alone: the error as an
    :class:`EveryProcessError`. ``main_only``: checks that only rank 0 makes (the writer's hold on its output,
    its probe of a run live there), so its error is the job's (:func:`line_to_say`)."""
    failure: AttiqaError | None = None
    try:
        yield
    except AttiqaError as exc:
        failure = exc
    if world_size() == 1:
        if failure is None:
            return
        if isinstance(failure, EveryProcessError):
            raise failure
        raise EveryProcessError(str(failure)) from failure
    texts = gather_objects(None if failure is None else str(failure))
    if all(t is None for t in texts):
        return
    line = line_to_say(texts, rank(), main_only)
    if line is not None:
        say_error(line)
    with suppress(PeerLost):  # no process ends before every line is out: torchrun's agent stops the rest
        barrier()  # at the first end
    raise Said(line or "") from failure


def line_to_say(texts: Sequence[str | None], me: int, main_only: bool = False) -> str | None:
    """The line process ``me`` says of the errors met in one :func:`alike_on_every_process` block
    (``texts``: each process's, in rank order; None where it met none): one text met by all, said by rank
    0; else each process that met one says its own as "rank R of N: …". ``main_only`` (checks only rank 0
    makes): rank 0's as it is, by rank 0 (was "rank 0 of 2: …", read as one process's trouble)."""
    n = len(texts)
    if len(set(texts)) == 1 or (main_only and texts[0] is not None and all(t is None for t in texts[1:])):
        return texts[0] if me == 0 else None
    mine = texts[me]
    return None if mine is None else f"rank {me} of {n}: {mine}"


def any_rank(flag: bool) -> bool:
    """Whether ``flag`` holds on some process: one all-reduce of a single number, cheaper than gathering
    what each process holds when most often none holds anything; ``flag`` alone."""
    if not is_dist():
        return flag
    t = torch.tensor([int(flag)])  # the group reduces CPU tensors by gloo on every machine (backend_for)
    with collective():
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


JOIN_TIMEOUT_ENV = "ATTIQA_JOIN_TIMEOUT"  # seconds the processes of a job wait for each other at the start
JOIN_TIMEOUT = 600.0  # torchrun's own rendezvous default (its --rdzv-conf join_timeout)
JOIN_TIMEOUT_MAX = 365 * 24 * 3600.0  # a year: far inside what timedelta and the store's milliseconds hold


def join_timeout() -> datetime.timedelta:
    """:data:`JOIN_TIMEOUT_ENV`'s seconds (at least 1). A bad value is one line from each node, said by its
    local rank 0 (torchrun gives its processes one environment): nan, inf or 1e20 were timedelta's
    traceback from every process, 0 or -5 a silent second. Local rank 0 as :func:`launched_local_rank` reads
    it (LOCAL_RANK " 0" or "00" read as text was no process's: the command ended with exit 2 and no word)."""
    raw = os.environ.get(JOIN_TIMEOUT_ENV, "")
    if not raw.strip():
        return datetime.timedelta(seconds=JOIN_TIMEOUT)
    try:
        seconds = float(raw)
    except ValueError:
        seconds = math.nan
    if not 0 < seconds <= JOIN_TIMEOUT_MAX:  # nan too
        text = (
            f"{JOIN_TIMEOUT_ENV}={raw!r}: not a number of seconds above 0 and at most "
            f"{JOIN_TIMEOUT_MAX:.0f} (a year) — e.g. 600, or unset it for {JOIN_TIMEOUT:g}, torchrun's own"
        )
        raise (AttiqaError if launched_local_rank() == 0 else Said)(text)
    return datetime.timedelta(seconds=max(seconds, 1.0))


@contextmanager
def signals_end_the_process() -> Iterator[None]:
    """SIGTERM and Ctrl-C at the signal's default for the block: the join waits in torch's C++ store, where
    the command's Python handlers never run (the process ignored both while waiting for peers that were
    not coming). Nothing is written before the join, so ending at once loses nothing."""
    import signal

    saved = {}
    try:
        for sig in (signal.SIGTERM, signal.SIGINT):
            saved[sig] = signal.signal(sig, signal.SIG_DFL)
    except ValueError:  # not the main thread: signals are not ours to set
        pass
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def wait_for_store(timeout: datetime.timedelta) -> None:
    """Until the job's store (rank 0's, or torchrun's agent's) takes connections, at most ``timeout``: a
    process of another rank waits here, quietly, not in torch's client (which logs each failed try with a
    C++ stack, 40 lines, before the error)."""
    import socket
    import time

    where = (os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]))
    deadline = time.monotonic() + timeout.total_seconds()
    while True:
        try:
            with socket.create_connection(where, timeout=1.0):
                return
        except OSError as exc:
            if time.monotonic() >= deadline:
                raise OSError(f"nothing answered at {where[0]}:{where[1]}") from exc
            time.sleep(0.2)


def backend_for(cuda: bool, nccl: bool) -> str:
    """The process group's backend, keyed by device: gloo for CPU tensors everywhere, NCCL for CUDA tensors
    where both are. NCCL alone (as before) has no CPU backend: on a GPU node, training with ``device: cpu``
    under torchrun failed at its first collective ("No backend type associated with device type cpu"),
    reported as another process lost."""
    return "cpu:gloo,cuda:nccl" if cuda and nccl else "gloo"


# One entry per process group :func:`init_distributed` made in this process (the store prefix's number).
_GROUPS_MADE = itertools.count(1)


def init_distributed(timeout_minutes: float = 30.0) -> DistState:
    """Join the torchrun process group if the env says so (idempotent; reuses an existing group). The
    join waits at most :func:`join_timeout` for the other processes (then one line); the group's
    collectives then wait ``timeout_minutes``."""
    if is_dist():
        return DistState(rank(), world_size(), local_rank(), owns_group=False)
    ws = launched_world_size()
    if ws <= 1:
        return DistState(0, 1, 0, owns_group=False)
    lr = launched_local_rank()  # checked: LOCAL_RANK=x under torchrun is one line
    # Before the group exists: DDP imports this module on its first use, and its functions' default
    # argument ``group=group.WORLD`` is evaluated at import — imported after init_process_group, it keeps the
    # group for the life of the interpreter. destroy_process_group then left gloo's threads running, and the
    # group was freed in the interpreter's teardown, where a rank now and then aborted ("terminate called
    # without an active exception", SIGABRT). Imported first, those defaults are None.
    import torch.distributed.nn.functional  # noqa: F401

    cuda = torch.cuda.is_available()
    backend = backend_for(cuda, dist.is_nccl_available())
    if cuda and lr < torch.cuda.device_count():  # a process past the GPUs runs on the CPU or is refused
        torch.cuda.set_device(lr)  # by attiqa.device.resolve_device, in one line (was set_device's traceback)
    timeout = datetime.timedelta(minutes=timeout_minutes)
    join = join_timeout()
    me = launched_rank()  # torchrun's RANK, checked with WORLD_SIZE (attiqa.launch), not its raw text
    with signals_end_the_process():
        try:  # the rendezvous init_process_group does itself, with the join's own timeout
            if me != 0:
                wait_for_store(join)
            store, r, n = next(dist.rendezvous("env://", timeout=join))
        except (RuntimeError, ValueError, OSError) as exc:  # DistStoreError: a RuntimeError
            where = f"{os.environ['MASTER_ADDR']}:{os.environ['MASTER_PORT']}"
            raise AttiqaError(
                f"rank {me} of {ws}: the other process(es) did not join within "
                f"{join.total_seconds():g} s at {where} ({str(exc).strip().splitlines()[0][:120]}) — start "
                "every process of the job (torchrun --nproc_per_node N -m attiqa.cli ... does), or unset "
                f"WORLD_SIZE to run one process; for a slow start set {JOIN_TIMEOUT_ENV} (seconds)"
            ) from None
        store.set_timeout(timeout)
        # as init_process_group keys its own rendezvous, but a prefix per group this process makes: a second
        # group (a library caller's pretrain() then finetune(), each making its own) read the first one's
        # addresses, left in the job's store, and gloo's connect was refused. Every rank makes its groups in
        # the same order (they are collective), so the numbers agree; a restarted job's processes (torchrun
        # --max-restarts, the same store) start from 1 again, hence the restart count too.
        restart = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
        store = dist.PrefixStore(f"default_pg/{restart}/{next(_GROUPS_MADE)}", store)
        dist.init_process_group(backend=backend, store=store, rank=r, world_size=n, timeout=timeout)
    return DistState(dist.get_rank(), dist.get_world_size(), lr, owns_group=True)


def teardown(state: DistState) -> None:
    """Destroy the group only if :func:`init_distributed` created it (a caller's group is left alone)."""
    if state.owns_group and is_dist():
        barrier()
        dist.destroy_process_group()


@contextmanager
def process_group(timeout_minutes: float = 30.0) -> Iterator[DistState]:
    """:func:`init_distributed` for the ``with`` block, then :func:`teardown` — except after an error,
    when a group this call created is destroyed without the closing barrier: a rank that failed must not
    wait for ranks that may never reach it."""
    state = init_distributed(timeout_minutes)
    ok = False
    try:
        yield state
        ok = True
    finally:
        if ok:
            teardown(state)
        elif state.owns_group and is_dist():
            dist.destroy_process_group()


@dataclass(frozen=True)
class Shards:
    """This process's place among torchrun's processes: rank 0 of 1 without torchrun."""

    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        """Rank 0: the one process that writes outputs and reports."""
        return self.rank == 0

    def share(self, items: Sequence[T]) -> list[T]:
        """Every ``world``-th item from this rank's position: the shares are disjoint and cover ``items``."""
        return list(items[self.rank :: self.world])

    def gather(self, obj: T) -> list[T]:
        """Every process's ``obj`` in rank order, on every process (a barrier too); ``[obj]`` alone."""
        return gather_objects(obj) if self.world > 1 else [obj]

    def sync(self) -> None:
        """Wait until every process got here (no-op alone)."""
        if self.world > 1:
            barrier()


@contextmanager
def sharded() -> Iterator[Shards]:
    """The torchrun process group, if there is one, for the ``with`` block. A day's timeout: at the end
    every process waits for the slowest one's share."""
    with process_group(timeout_minutes=24 * 60) as state:
        yield Shards(state.rank, state.world_size)


def score_share(
    shards: Shards,
    todo: Sequence[Path],
    scorer: Scorer,
    batch_size: int,
    num_workers: int | None,
    on_rows: Callable[[list[dict]], None] | None = None,
    keep_rows: int | None = None,
    progress: bool = True,
    kept: int = 0,
) -> ScoreRun:
    """Score this process's share of ``todo`` (all of it alone) with :func:`attiqa.scoring.score_paths`;
    the progress bar is drawn by rank 0 only, of its share, and says so ("23/23" after "46 to score" read
    as half the images lost). ``todo`` must be the same list on every process. ``kept``: this process's
    images of the job found finished before (eval's cache hits of its share; `score -o`'s rows of the
    file, its share of them), in the bar's count from its first frame: the shares of the kept and of the
    rest add up to every image."""
    from attiqa.progress import progress_task

    share = shards.share(todo)
    if not share:  # nothing to decode: no decode workers started
        return ScoreRun(tuple(scorer.columns))
    what = "scoring" if shards.world == 1 else f"scoring (rank 0 of {shards.world}: its share)"
    disable = not progress or not shards.main
    with progress_task(what, total=kept + len(share), disable=disable, kept=kept) as adv:
        return score_paths(
            share, scorer, batch_size, num_workers, on_batch=lambda n, f: adv(n + f), on_rows=on_rows,
            keep_rows=keep_rows,
        )  # fmt: skip


def in_input_order(failed: Sequence[ImageLoadError], paths: Sequence[str | Path]) -> list[ImageLoadError]:
    """Every process's failures (gathered in rank order) sorted as ``paths`` lists them, as one process
    reports them."""
    position = {str(p): i for i, p in enumerate(paths)}
    return sorted(failed, key=lambda e: position.get(e.path, len(position)))
