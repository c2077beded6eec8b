"""Sweeps on a Dask cluster (`--scheduler tcp://HOST:8786`): one task per missing run.

The client plans as a local sweep does (grid, resume, claims, progress). Each run it claims becomes a task;
a worker loads the dataset itself (gradbench and the data must be installed there; no shared filesystem is
needed), checks it is the client's (a fingerprint of the arrays), trains the run alone as `python -m bench
run` would, under the same thread settings, and returns the run's parquet bytes. The client checks them and
writes them atomically into the results folder as they arrive. A worker lost mid-run: the scheduler runs
the task again elsewhere; runs already written stay. dask-jobqueue (SLURM, PBS, …), dask-kubernetes and
`dask ssh` start the same scheduler and workers.
"""

import hashlib
import logging
import os
import signal
import socket
import sys
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench import claims, console, live, provenance, store, sweep
from bench import data as datasets
from bench.errors import UserError, one_line
from bench.train import RunSpec

RETRIES = 2  # a task whose worker raised is tried this many more times (a lost worker's task is rescheduled anyway)
CONNECT_TIMEOUT = "20s"


class ClusterError(UserError):
    """The cluster cannot be used as asked."""


@dataclass(frozen=True)
class DataRequest:
    """What a worker loads: the client's dataset, by name, checked by its fingerprint."""

    name: str
    data_dir: str | None  # the client's --data-dir, if any (the worker's default folders otherwise)
    train_samples: int | None
    test_samples: int | None
    fingerprint: str


def fingerprint(data: datasets.Dataset) -> str:
    """A hash of the arrays (0.4 s for the whole of MNIST; once per task, whose run takes far longer)."""
    digest = hashlib.sha256()
    for array in (data.x_train, data.y_train, data.x_test, data.y_test):
        digest.update(array.tobytes())
    return digest.hexdigest()[:16]


_one_at_a_time = threading.Lock()  # seeds and TensorFlow's session are per process: one run at a time


def train_on_worker(spec: RunSpec, request: DataRequest, device_kind: str, xla: bool) -> bytes:
    """On a worker: load the data, train one run, return its result file's bytes."""
    with _one_at_a_time:
        console.import_tensorflow()  # quietly, before configure_threads starts its pools
        from bench import train

        train.configure_threads(xla)
        data = datasets.load(request.name, request.data_dir, request.train_samples, request.test_samples)
        if fingerprint(data) != request.fingerprint:
            raise ClusterError(f"{socket.gethostname()}: its {request.name} is not the client's "
                               f"(fingerprint {fingerprint(data)}, expected {request.fingerprint}); install the "
                               "same dataset files there or pass --data-dir")
        device = provenance.resolve_device(device_kind)
        (run, tables), = sweep.trained_runs([spec], data, device, xla)
        return store.run_bytes(run, tables)


@contextmanager
def scheduler(address: str | None, workers: int | None):
    """The scheduler to send runs to: `address`, or a LocalCluster of `workers` single-threaded worker processes
    on this machine, started for the sweep and stopped after it."""
    if address:
        if workers:
            raise ClusterError("--workers starts a cluster on this machine; with --scheduler, start workers with "
                               "'dask worker ADDRESS' instead")
        yield address
        return
    if not console.verbose:  # the workers inherit this: their start-up and shutdown lines are hidden too
        os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "critical")
    try:
        from distributed import LocalCluster
    except ImportError:
        raise ClusterError("--workers needs dask.distributed: pip install distributed") from None
    quiet_dask()
    # the workers start with SIGINT ignored, which they inherit: Ctrl-C reaches the whole process group, and only
    # this process should act on it, by closing the cluster, rather than each worker printing a traceback
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        local = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                             preload=[] if console.verbose else ["bench.console"])
    finally:
        signal.signal(signal.SIGINT, before)
    with local:
        yield local.scheduler_address


def quiet_dask() -> None:
    """Unless --verbose, what goes wrong on the cluster is said in gradbench's one line, not in Dask's logs (a lost
    scheduler, a closing worker's heartbeat, a Ctrl-C inside a Dask call each log a traceback)."""
    if console.verbose:
        return
    for name in [n for n in logging.root.manager.loggerDict if n.startswith(("distributed", "tornado"))]:
        logging.getLogger(name).setLevel(logging.CRITICAL)


def connect(address: str):
    try:
        from distributed import Client
    except ImportError:
        raise ClusterError("--scheduler needs dask.distributed: pip install distributed") from None
    quiet_dask()
    try:
        return Client(address, timeout=CONNECT_TIMEOUT, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as err:
        raise ClusterError(f"cannot reach the Dask scheduler at {address} ({one_line(err)}); start one with "
                           "'dask scheduler' and workers with 'dask worker ADDRESS', or drop --scheduler") from None


def sweep_on_cluster(address: str, runs: list[RunSpec], data: datasets.Dataset, request: DataRequest,
                     results: Path, device: str, xla: bool = False, site: live.Site | None = None) -> sweep.Tally:
    """The local sweep's plan, each claimed run trained by a worker of the scheduler at `address` (site: rebuilt
    as runs are stored)."""
    from distributed import as_completed

    device_kind = provenance.device_kind(device)
    code = provenance.code()
    plan = sweep.plan(runs, data, results, device_kind)
    client = connect(address)
    held: list[Path] = []
    futures = {}
    try:
        sweep.stored(plan, results, site)
        workers = len(client.scheduler_info()["workers"])
        print(f"{len(plan.pending)} runs to {address} ({workers} workers now)", file=sys.stderr)
        with claims.kept(held), client.as_current():
            for spec in plan.pending:
                claim = sweep.claim_run(plan, spec, results)
                if claim is None:
                    continue
                held.append(claim)
                future = client.submit(train_on_worker, spec, request, device_kind, xla, retries=RETRIES,
                                       pure=False, key=f"gradbench-{plan.names[id(spec)]}")
                futures[future] = (spec, claim)
            plan.progress.show(f"{len(futures)} runs on the cluster")
            for future in as_completed(futures):
                spec, claim = futures[future]
                path = results / f"{plan.names[id(spec)]}.parquet"
                try:
                    raw = future.result()
                except UserError:
                    raise
                except Exception as err:
                    if client.status != "running":  # the scheduler is gone: no run of ours failed
                        raise ClusterError(f"lost the connection to the Dask scheduler at {address}; the "
                                           f"{plan.tally.trained} runs finished are stored: run the same command "
                                           "again to resume") from None
                    # the run's own failure, after its retries: say which run
                    raise ClusterError(f"{path.stem}: failed on the cluster after {RETRIES + 1} tries "
                                       f"({type(err).__name__}: {one_line(err)})") from None
                run, tables = store.store_run_bytes(raw, path, code)
                claims.release([claim])
                held.remove(claim)
                plan.progress.finish(run["wall_time_s"])
                plan.tally.trained += 1
                print(sweep.summary_line(run, tables) + f"  on {run['host']}", flush=True)
                sweep.stored(plan, results, site)
                plan.progress.show(f"{len(futures) - plan.tally.trained} runs on the cluster")
    finally:
        for future in futures:
            future.cancel()
        client.close()
        claims.release_own(results)  # Ctrl-C between taking a claim and holding it
        live.ended(results, site)
    if site:
        site.final()
    return plan.tally

