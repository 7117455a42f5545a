"""The parallel write: the pool that runs `shard.write_shard` over a conversion's shards.

joblib's process pool by default (started in the background while the client plans), any
joblib backend a caller's `parallel_config` names, or a dask cluster (--backend dask,
--scheduler). Each worker writes whole shards; results come back as they finish.
"""
from __future__ import annotations

import contextlib
import logging
import os
import threading
from typing import Callable, Iterator

import joblib

from .errors import OptionError, TfrecordkitError
from .options import WriteOptions
from .shard import ShardResult, ShardTask, _ready, _reusable, write_shard

log = logging.getLogger(__name__)

_SCHEDULER_TIMEOUT_S = 10    # connecting to --scheduler; the dask default waits 30 s


@contextlib.contextmanager
def parallel_backend(opts: WriteOptions) -> Iterator[None]:
    """Applies --backend/--scheduler; with neither, a caller's joblib.parallel_config rules."""
    if opts.backend is None:
        yield
        return
    if opts.backend != "dask":
        with joblib.parallel_config(backend=opts.backend):
            yield
        return
    try:
        from dask.distributed import Client, default_client
    except ImportError:
        raise OptionError("backend='dask' needs dask.distributed; install it with "
                          "`pip install 'tfrecordkit[dask]'`.") from None
    client = None
    if opts.scheduler:
        try:
            client = Client(opts.scheduler, timeout=_SCHEDULER_TIMEOUT_S)
        except (OSError, ValueError, TypeError) as e:
            raise TfrecordkitError(f"Could not connect to the dask scheduler at "
                                   f"{opts.scheduler!r} ({e}); check --scheduler and that the "
                                   "scheduler is running.") from None
    else:
        try:
            default_client()
        except ValueError:
            raise OptionError("backend='dask' needs a scheduler address (--scheduler "
                              "tcp://host:8786) or a running dask.distributed Client.") from None
    try:
        with joblib.parallel_config(backend="dask"):
            yield
    finally:
        if client is not None:
            client.close()


_starting: threading.Thread | None = None   # the pool start-up under way, if any


def start_workers(jobs: int | None, backend: str | None) -> None:
    """Starts joblib's process pool in the background while the client reads and plans.

    Each loky worker is a fresh Python that imports tfrecordkit (a few tenths of a second);
    started here, that overlaps reading the table, listing files and planning shards rather
    than following them (about 1.2x on a 6000-image job on two cores). Only joblib's own
    process pool is started (the default, or --backend loky): a caller's parallel_config
    naming another backend, dask and `jobs=1` are left alone.
    """
    global _starting
    if jobs == 1 or backend not in (None, "loky") or (_starting and _starting.is_alive()):
        return
    from joblib.parallel import get_active_backend

    if backend is None and type(get_active_backend()[0]).__name__ != "LokyBackend":
        return
    n_jobs = jobs if jobs is not None else -1

    def start() -> None:
        try:
            joblib.Parallel(n_jobs=n_jobs)(
                joblib.delayed(_ready)(os.getpid()) for _ in range(joblib.effective_n_jobs(n_jobs)))
        except Exception as e:  # the conversion's own Parallel reports a broken pool
            log.debug("starting the worker processes early failed: %s", e)

    _starting = threading.Thread(target=start, name="tfrecordkit-start-workers", daemon=True)
    _starting.start()


def _dask_active() -> bool:
    """Whether joblib's active backend (ours or a caller's parallel_config) is dask."""
    from joblib.parallel import get_active_backend

    return type(get_active_backend()[0]).__name__.startswith("Dask")


def run_shards(tasks: list[ShardTask], opts: WriteOptions, total_rows: int,
               with_rows: Callable[[ShardTask], ShardTask]) -> list[ShardResult]:
    """Writes the shards in parallel (each worker whole shards), with a progress bar; a
    shard already complete from an interrupted run (`--resume`) is kept, not written."""
    # Plain tqdm: tqdm.auto warns in notebooks without ipywidgets.
    from tqdm import tqdm

    results, todo = [], []
    for task in tasks:
        reused = _reusable(task) if opts.resume else None
        (results if reused else todo).append(reused or task)
    if opts.resume and results:
        log.info("resume: kept %d complete shards, writing %d", len(results), len(todo))
    done_rows = sum(r.records + len(r.skipped) for r in results)
    n_jobs = opts.jobs if opts.jobs is not None else -1
    with tqdm(total=total_rows, initial=done_rows, unit="img", desc="convert",
              disable=not opts.progress, dynamic_ncols=True) as bar:
        # On dask even one shard goes to the cluster: its workers may be the ones that
        # should read the sources and write the output.
        if (len(todo) == 1 or opts.jobs == 1) and not _dask_active():
            outputs = (write_shard(with_rows(t)) for t in todo)
        else:
            if _starting is not None:
                _starting.join()   # the same pool: its workers are up, or nearly
            parallel = joblib.Parallel(n_jobs=n_jobs, return_as="generator_unordered")
            outputs = parallel(joblib.delayed(write_shard)(with_rows(t)) for t in todo)
        for result in outputs:
            results.append(result)
            bar.update(result.records + len(result.skipped))
    return results
