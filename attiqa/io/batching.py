"""Batched, parallel image decoding that never lets one bad file stop a run.

Used by ``attiqa label``, ``attiqa score`` and the benchmarks; :func:`data_loader` makes every DataLoader of
the project (training's too). Workers decode and transform; a file
that fails to load comes back as an error record instead of an exception, so a batch command can skip
it, report it at the end, and keep every finished result.
"""

from __future__ import annotations

import atexit
import inspect
import os
import signal
import sys
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, get_worker_info

from attiqa.errors import ImageLoadError
from attiqa.io.cores import usable_cores
from attiqa.io.images import load_image

Transform = Callable[[Any], torch.Tensor]  # PIL image -> tensor
# one decoded file: (position, tensor, None), or (position, None, error) when it failed
LoadedItem = tuple[int, torch.Tensor | None, ImageLoadError | None]


@dataclass
class ImageBatch:
    """One decoded batch: positions in the input list, the stacked tensor, and the files that failed."""

    indices: list[int]
    tensor: torch.Tensor | None
    errors: list[ImageLoadError] = field(default_factory=list)


class _PathDataset(Dataset):
    def __init__(
        self, paths: Sequence[Path], transform: Transform, max_pixels: int | None, min_shorter: int | None
    ) -> None:
        self.paths = list(paths)
        self.transform = transform
        self.max_pixels = max_pixels
        self.min_shorter = min_shorter

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, item: int | tuple[int, Path]) -> LoadedItem:
        """``item``: a position in ``paths``, or (position, path) from a kept loader's call (its own list)."""
        i, path = item if isinstance(item, tuple) else (item, self.paths[item])
        try:
            kwargs = {} if self.max_pixels is None else {"max_pixels": self.max_pixels}
            img = load_image(path, min_shorter=self.min_shorter, **kwargs)
            return i, self.transform(img), None
        except ImageLoadError as exc:
            return i, None, exc
        except Exception as exc:  # noqa: BLE001 - a transform failure on one image must not kill a batch
            return i, None, ImageLoadError(path, f"cannot process image ({type(exc).__name__}: {exc})")


def stack_batch(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """``torch.stack(tensors)``, except that transform outputs stored channels-last (4-D tensors in
    ``torch.channels_last`` order: the scorer's crops, in the order its backbone wants) stay in that order:
    ``torch.stack`` returns a contiguous tensor, which the network would reorder back at once. Every other
    tensor is stacked as ``torch.stack`` does, so other scorers see the batches they always did.

    In a DataLoader worker the batch is written straight into shared memory (as torch's default collate
    does), saving the copy that sending it to the main process would make."""
    first = tensors[0]
    keep = (
        first.dim() == 4
        and not first.is_contiguous()
        and all(t.is_contiguous(memory_format=torch.channels_last) for t in tensors)
    )
    parts = [t.permute(0, 2, 3, 1) for t in tensors] if keep else list(tensors)
    out = torch.empty((len(parts), *parts[0].shape), dtype=first.dtype, device=first.device)
    if get_worker_info() is not None and out.device.type == "cpu":
        out.share_memory_()
    torch.stack(parts, out=out)
    return out.permute(0, 1, 4, 2, 3) if keep else out


def _collate(items: Sequence[LoadedItem]) -> ImageBatch:
    indices: list[int] = []
    tensors: list[torch.Tensor] = []
    errors: list[ImageLoadError] = []
    for i, t, err in items:
        if err is not None:
            errors.append(err)
        else:
            assert t is not None  # _PathDataset gives a tensor exactly when it gives no error
            indices.append(i)
            tensors.append(t)
    tensor = stack_batch(tensors) if tensors else None
    return ImageBatch(indices=indices, tensor=tensor, errors=errors)


def iter_image_batches(
    paths: Sequence[str | Path],
    transform: Transform,
    batch_size: int = 32,
    num_workers: int = 0,
    max_pixels: int | None = None,
    pin_memory: bool = False,
    min_shorter: int | None = None,
    decode_threads: int | None = None,
) -> Iterator[ImageBatch]:
    """Decode ``paths`` in order, ``batch_size`` at a time, with ``num_workers`` decoding processes.

    ``min_shorter``: the transform's target shorter edge, so big JPEGs decode at a reduced scale
    (see :func:`attiqa.io.images.load_image`); None decodes at full size.

    ``num_workers=0`` decodes in this process, each batch by ``decode_threads`` threads (default: torch's
    thread count) while the caller waits: the caller's model is not running then, so its cores are free
    (:func:`inference_num_workers`).

    Decode workers are kept for the next call with the same ``transform`` and settings (forked once per
    process, not per call: ``_KeptLoader``); they run the copy of ``transform`` made when they were forked,
    so after changing what ``transform`` does in place, call :func:`close_kept_workers`.
    """
    files = [Path(p) for p in paths]
    plan = batch_plan(len(files), batch_size, first=1 if num_workers > 0 else batch_size)
    threads = torch.get_num_threads() if decode_threads is None else max(1, decode_threads)
    if num_workers == 0 and threads > 1 and len(files) > 1:
        yield from _decode_in_threads(_PathDataset(files, transform, max_pixels, min_shorter), plan, threads)
        return
    kept = (
        _KeptLoader.take(transform, num_workers, max_pixels, min_shorter, pin_memory) if num_workers else None
    )
    if kept is not None:
        yield from kept.run([[(i, files[i]) for i in batch] for batch in plan])
        return
    yield from data_loader(
        _PathDataset(files, transform, max_pixels, min_shorter),
        batch_sampler=plan,
        num_workers=num_workers,
        collate_fn=_collate,
        pin_memory=pin_memory,
        prefetch_factor=4,
    )


def _decode_in_threads(dataset: _PathDataset, plan: list[list[int]], threads: int) -> Iterator[ImageBatch]:
    """Each batch decoded by ``threads`` threads of this process, between the caller's uses of the batches.

    A pool per call, not one kept per process as the decode workers are: making it and its threads costs a
    small share of a call that decodes even 2 photos (``experiments/speed/decode_pool_s44.py`` measures it),
    and no thread of it outlives the call into a later fork of decode workers."""
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="attiqa-decode") as pool:
        for batch in plan:
            yield _collate(list(pool.map(dataset.__getitem__, batch)))


def _torch_can_keep_workers() -> bool:
    """Whether this torch has the DataLoader internals :class:`_KeptLoader` steers (its worker-pid check and
    its iterator's own shutdown): they are not public API, so another torch without them gets a loader per
    call, as before kept workers, rather than an AttributeError mid-run."""
    from torch.utils.data import dataloader

    names = ("_set_worker_pids", "_remove_worker_pids")
    iterator = getattr(dataloader, "_MultiProcessingDataLoaderIter", None)
    return all(hasattr(torch._C, n) for n in names) and hasattr(iterator, "_shutdown_workers")


_KEEPABLE = _torch_can_keep_workers()


class _Plan:
    """A kept loader's batch sampler: the (position, path) batches of the call in progress."""

    def __init__(self) -> None:
        self.batches: list[list[tuple[int, Path]]] = []

    def __iter__(self) -> Iterator[list[tuple[int, Path]]]:
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


class _KeptLoader:
    """Decode workers kept across calls of :func:`iter_image_batches` (one set per process at a time).

    Why: a DataLoader per call forks its worker from the caller each time; once the caller's heap is big (a
    model has run: library callers and benchmarks that score several lists), the caller then re-faults that
    heap page by page during its next model calls, copy-on-write or zero-filled after
    :mod:`attiqa.allocator`'s trim before the fork (counted in experiments/speed/decode_results_s36.md). Kept
    workers are forked once, by the first call. Each call hands them its own list of (position, path)
    batches; the transform and decode settings are the workers' own, so another transform (another scorer)
    replaces them. A call made while they are busy (a nested or concurrent call) gets a loader of its own;
    a call that does not finish (interrupted, or its consumer stopped early) ends them, and so does the
    death of the transform's owner at the next call. They end with the process (torch's workers are
    daemonic, watch their parent, and exit quietly on SIGTERM: :func:`worker_init`)."""

    current: _KeptLoader | None = None
    lock = threading.Lock()

    def __init__(self, transform: Transform, settings: tuple, ref: Callable[[], Any]) -> None:
        num_workers, max_pixels, min_shorter, pin_memory = settings
        self.settings, self.ref, self.busy = settings, ref, False
        self.plan = _Plan()
        self.dataset = _PathDataset([], transform, max_pixels, min_shorter)
        self.loader = data_loader(
            self.dataset,
            batch_sampler=self.plan,
            num_workers=num_workers,
            collate_fn=_collate,
            pin_memory=pin_memory,
            prefetch_factor=4,
            persistent_workers=True,
        )

    @classmethod
    def take(cls, transform: Transform, *settings: Any) -> _KeptLoader | None:
        """The kept loader for ``transform`` and ``settings``, marked busy (made or replaced as needed); None
        when it is busy, ``transform`` cannot be referred to weakly or this torch lacks what kept workers
        steer (then the caller makes its own)."""
        if not _KEEPABLE:
            return None
        with cls.lock:
            kept = cls.current
            if kept is not None and kept.busy:
                return None
            if kept is not None and (
                kept.settings != settings or kept.ref() != transform or not kept.alive()
            ):
                kept.close()
                kept = None
            if kept is None:
                try:
                    ref = (
                        weakref.WeakMethod(transform)
                        if inspect.ismethod(transform)
                        else weakref.ref(transform)
                    )
                except TypeError:
                    return None
                kept = cls.current = cls(transform, settings, ref)
            kept.busy = True
            return kept

    def run(self, batches: list[list[tuple[int, Path]]]) -> Iterator[ImageBatch]:
        self.plan.batches = batches
        finished = False
        self.watch(True)
        try:
            yield from self.loader  # the first call starts the workers; later calls reset them
            finished = True
            self.dataset.transform = _forked_only  # the workers hold their own; keep no scorer alive here
            self.watch(False)
        finally:
            self.plan.batches = []
            with _KeptLoader.lock:
                self.busy = False
                if not finished:
                    self.close()

    def watch(self, on: bool) -> None:
        """torch's SIGCHLD check of the workers, on during a call only: it raises in the main process wherever
        that is when a worker dies, so a kept worker killed between calls (e.g. by the OOM killer) would
        raise in the caller's unrelated code; between calls a dead worker is replaced by the next call."""
        it = self.loader._iterator
        if it is None or getattr(it, "_worker_pids_set", on) == on:
            return  # no workers yet (the first call's iterator registers its own), or already so
        if on:
            torch._C._set_worker_pids(id(it), tuple(w.pid for w in it._workers))  # type: ignore[attr-defined]
        else:
            torch._C._remove_worker_pids(id(it))
        it._worker_pids_set = on  # type: ignore[attr-defined]  # what torch's own shutdown reads

    def alive(self) -> bool:
        workers = getattr(self.loader._iterator, "_workers", None)
        return workers is None or all(w.is_alive() for w in workers)

    def close(self) -> None:
        """End the workers now (torch's own shutdown: tell them, join, terminate stragglers)."""
        if _KeptLoader.current is self:
            _KeptLoader.current = None
        it, self.loader._iterator = self.loader._iterator, None
        if it is not None:
            it._shutdown_workers()  # type: ignore[attr-defined]  # the multi-process iterator's own


def _forked_only(_img: Any) -> torch.Tensor:
    raise AssertionError("a kept loader's transform runs in its workers only")


def close_kept_workers() -> None:
    """End the decode workers that :func:`iter_image_batches` keeps across calls (or the process does)."""
    with _KeptLoader.lock:
        if _KeptLoader.current is not None and not _KeptLoader.current.busy:
            _KeptLoader.current.close()


atexit.register(close_kept_workers)  # before torch's own exit hook, which turns its shutdown into a no-op


def data_loader(
    dataset: Dataset,
    batch_size: int | None = 1,
    *,
    num_workers: int = 0,
    prefetch_factor: int | None = None,
    **options: Any,
) -> DataLoader:
    """The project's one way to make a ``torch.utils.data.DataLoader`` (tests/test_architecture.py checks
    that no other module builds one), so no loader forgets :func:`worker_init`. ``prefetch_factor`` (batches
    each worker decodes ahead; torch's default 2 when None) counts only with workers, as torch allows;
    ``options`` are DataLoader's own (sampler, collate_fn, generator, ...)."""
    if num_workers > 0:
        _quiet_interrupted_storage_refs()
    return DataLoader(
        dataset,
        batch_size,
        num_workers=num_workers,
        prefetch_factor=prefetch_factor if num_workers > 0 else None,
        worker_init_fn=worker_init,
        **options,
    )


def batch_plan(n: int, batch_size: int, first: int = 1) -> list[list[int]]:
    """Positions ``0..n-1`` in order, in batches: the first of ``first`` images, then ``batch_size`` each.

    Why a small first batch with decode workers: the model waits for the first batch, and a worker
    decodes a full one (8 photos, ~0.15 s) while both cores could already score; one photo starts the
    model at once and the worker runs ahead from then on. Scores do not depend on the batching (beyond
    float rounding: a batch's size picks the kernels and the statistics' blocks)."""
    batch_size = max(1, batch_size)
    first = min(max(1, first), batch_size)
    if n <= 0:
        return []
    starts = [0, *range(first, n, batch_size)]
    return [list(range(s, e)) for s, e in zip(starts, [*starts[1:], n], strict=True)]


def worker_init(_worker_id: int) -> None:
    """Every DataLoader's ``worker_init_fn``: a worker ends quietly (exit status 0) on SIGTERM. A SIGTERM to
    the whole process group (Slurm's scancel, torchrun stopping its ranks, ``kill -- -PGID``) reaches the
    workers too, and a worker *killed* by a signal makes torch raise "DataLoader worker ... is killed by
    signal" in the main process while that is ending the command cleanly (finished work kept, exit 143).
    Not ignored: the main process's own shutdown terminates its workers and waits for them.

    Also quiet: the worker's file-descriptor server thread (multiprocessing's resource sharer, which hands
    a decoded batch's shared memory to the main process) when the main process hangs up mid-handover —
    the main process is ending, and the thread printed its ConnectionResetError's traceback through
    ``sys.excepthook`` (seen in a group SIGTERM). Any other error is printed as before."""
    signal.signal(signal.SIGTERM, _exit_quietly)
    sys.excepthook = _quiet_sharer_hangup


def _exit_quietly(_signum: int, _frame: object) -> None:
    os._exit(0)


def _quiet_sharer_hangup(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    frame, in_sharer = tb, False
    while frame is not None:
        in_sharer = in_sharer or frame.tb_frame.f_code.co_filename.endswith("resource_sharer.py")
        frame = frame.tb_next
    if not (in_sharer and issubclass(exc_type, (ConnectionError, EOFError))):
        sys.__excepthook__(exc_type, exc, tb)


def _quiet_interrupted_storage_refs() -> None:
    """In the main process of a loader with workers: a SIGTERM or Ctrl-C (``KeyboardInterrupt``, raised
    wherever the main process is) can land inside torch's ``StorageWeakRef.__init__`` while a decoded batch
    is received, between its two assignments; the half-built object's ``__del__`` then fails with
    ``AttributeError: _free_weak_ref``, which Python prints as "Exception ignored in ..." with a traceback
    while the command is ending cleanly (seen once in a group SIGTERM, session 34); the one weak reference
    it does not free belongs to a process that is ending. Only that exception from that method is dropped;
    every other unraisable exception goes to the hook that was there before."""
    global _unraisable_before
    if sys.unraisablehook is not _drop_half_built_storage_ref:
        _unraisable_before = sys.unraisablehook
        sys.unraisablehook = _drop_half_built_storage_ref


_unraisable_before: Callable[[Any], object] = sys.__unraisablehook__


def _drop_half_built_storage_ref(unraisable: Any) -> None:
    obj, exc = unraisable.object, unraisable.exc_value
    if not (
        isinstance(exc, AttributeError)
        and "_free_weak_ref" in str(exc)  # a slot never assigned (its .name is None)
        and getattr(obj, "__qualname__", "") == "StorageWeakRef.__del__"
        and getattr(obj, "__module__", "") == "torch.multiprocessing.reductions"
    ):
        _unraisable_before(unraisable)


def inference_num_workers(device: torch.device | str, given: int | None = None) -> int:
    """Decode workers for a model running inference on ``device``: ``given`` when the caller set it, else:

    On a GPU the CPU is idle during the forward pass: workers on the spare cores decode the next batches
    meanwhile. On the CPU the forward pass already runs on torch's threads; a worker beside them takes a
    core in the middle of its parallel regions, and each thread of the team then waits for the slowest (the
    decoding's CPU was paid about twice over; experiments/speed/serial_decode_results_s42.md). So on the CPU
    workers only on the cores torch's threads leave free, and none when they take every core: batches are
    then decoded in this process between forward passes, on the same number of threads."""
    if given is not None:
        return given
    if torch.device(device).type != "cpu":
        return default_num_workers()
    return max(0, min(8, usable_cores() - torch.get_num_threads()))


def default_num_workers() -> int:
    """Decode workers: one per spare core this process may use (:func:`usable_cores`: under ``taskset -c 0``
    or a one-core cpuset none, not one per core of the machine), at most 8 (0 = decode in this process)."""
    return max(0, min(8, usable_cores() - 1))
