"""Sweeps on a real Dask cluster (LocalCluster with worker processes): the same tables as a local sweep,
and a worker killed mid-run loses nothing."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from distributed import Client, LocalCluster

from bench import cluster, store, sweep
from bench.scenarios import PROFILES, SCENARIOS

SMOKE = PROFILES["smoke"]
ROOT = Path(__file__).resolve().parent.parent
SWEEP = ["sweep", "--profile", "smoke", "--scenarios", "sigmoid,relu_he,lstm", "--depths", "2", "--seeds", "0,1"]


def grid():
    """SWEEP's runs: a sigmoid MLP, a He-initialised ReLU MLP and an LSTM, two seeds each (a local sweep trains a
    cell's seeds side by side, a worker one at a time: the tables must not tell)."""
    return sweep.grid(SMOKE, [SCENARIOS["sigmoid"], SCENARIOS["relu_he"], SCENARIOS["lstm"]], [2], [0, 1])


def request(data) -> cluster.DataRequest:
    return cluster.DataRequest(data.name, None, SMOKE.train_samples, SMOKE.test_samples, cluster.fingerprint(data))


def tables(folder):
    results = store.load(folder)
    return {kind: results.table(kind).sort_values(list(results.table(kind).columns)).reset_index(drop=True)
            for kind in store.KINDS}


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory, synthetic):
    folder = tmp_path_factory.mktemp("local")
    sweep.sweep(grid(), synthetic, folder, "/CPU:0")
    return folder


@pytest.fixture(scope="module")
def two_workers():
    """One cluster for the module: its workers start (and import TensorFlow) once. A worker a test kills is restarted
    by its nanny."""
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as local:
        yield local


def test_a_worker_killed_mid_run_loses_nothing(tmp_path, synthetic, local_sweep, two_workers):
    client = Client(two_workers.scheduler_address, set_as_default=False)
    pids = client.run(os.getpid)
    killed = []

    def kill_a_busy_worker():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not killed:
            busy = [address for address, keys in client.processing().items() if keys and address in pids]
            if busy and len(store.run_files(tmp_path)) >= 2:  # mid-sweep: some runs are stored, others training
                os.kill(pids[busy[0]], signal.SIGKILL)
                killed.append(busy[0])
            time.sleep(0.05)

    killer = threading.Thread(target=kill_a_busy_worker)
    killer.start()
    tally = cluster.sweep_on_cluster(two_workers.scheduler_address, grid(), synthetic, request(synthetic), tmp_path,
                                     "/CPU:0")
    killer.join()
    client.close()
    assert killed, "no worker was killed mid-run"
    assert tally.trained == len(grid()) and len(store.run_files(tmp_path)) == len(grid())
    for kind, expected in tables(local_sweep).items():
        pd.testing.assert_frame_equal(tables(tmp_path)[kind], expected, check_exact=True, obj=kind)


def test_another_dataset_on_a_worker_is_refused_naming_it(tmp_path, synthetic, two_workers):
    wrong = cluster.DataRequest(synthetic.name, None, SMOKE.train_samples, SMOKE.test_samples, "0" * 16)
    with pytest.raises(cluster.ClusterError, match="its synthetic is not the client's"):
        cluster.sweep_on_cluster(two_workers.scheduler_address, grid()[:1], synthetic, wrong, tmp_path, "/CPU:0")
    assert store.run_files(tmp_path) == [] and not store.partial_folder(tmp_path).exists()


def test_an_unreachable_scheduler_is_one_line(tmp_path, capsys, monkeypatch):
    from bench.__main__ import main

    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT", "2s")  # nothing listens on port 1: waiting 20 s tells nothing more
    code = main(["sweep", "--profile", "smoke", "--scenarios", "sigmoid", "--depths", "2", "--results",
                 str(tmp_path), "--scheduler", "tcp://127.0.0.1:1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith("bench: error: cannot reach the Dask scheduler at tcp://127.0.0.1:1")


def test_workers_start_a_cluster_here_that_trains_the_local_sweeps_numbers(tmp_path, synthetic, local_sweep, capsys,
                                                                           two_workers):
    from bench.__main__ import main

    argv = ["sweep", *SWEEP[1:], "--dataset", "synthetic", "--results", str(tmp_path), "--workers", "2"]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "6 trained, 0 already stored" in err and "oneDNN" not in err and "distributed" not in err
    assert sorted(p.name for p in store.run_files(tmp_path)) == sorted(p.name for p in store.run_files(local_sweep))
    for kind, expected in tables(local_sweep).items():
        pd.testing.assert_frame_equal(tables(tmp_path)[kind], expected, check_exact=True, obj=kind)
    runs = store.load(tmp_path).runs
    assert runs["host"].notna().all() and (runs["runs_side_by_side"] == 1).all()
    assert not store.partial_folder(tmp_path).exists()  # claims released, no temporary file left
    again = cluster.sweep_on_cluster(two_workers.scheduler_address, grid(), synthetic, request(synthetic), tmp_path,
                                     "/CPU:0")
    assert (again.trained, again.stored) == (0, len(grid()))  # resume, here through a cluster already running


def start(*argv: str, **kwargs) -> subprocess.Popen:
    """A process as a terminal starts it: SIGINT not ignored (the tests may run in a shell's background), in a
    process group of its own, so that Ctrl-C can reach it and its children at once."""
    return subprocess.Popen([sys.executable, *map(str, argv)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL), **kwargs)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_ctrl_c_during_a_sweep_on_local_workers_is_one_line_and_keeps_what_finished(tmp_path):
    sweeping = start("-m", "bench", *SWEEP, "--results", tmp_path, "--workers", "1")  # a cluster of one worker
    sweeping.stdout.readline()  # the first run is stored
    os.killpg(sweeping.pid, signal.SIGINT)  # as Ctrl-C in a terminal: the sweep and its workers alike
    _, err = sweeping.communicate(timeout=60)
    assert sweeping.returncode == 130 and "Traceback" not in err, err
    assert err.strip().splitlines()[-1].startswith("bench: interrupted; finished runs are stored")
    assert 1 <= len(store.run_files(tmp_path)) < len(grid()) and not store.partial_folder(tmp_path).exists()


def test_a_scheduler_lost_mid_sweep_is_one_line_and_the_next_sweep_resumes(tmp_path):
    address = f"tcp://127.0.0.1:{free_port()}"
    dask = [start("-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":")[-1],
                  "--no-dashboard")]
    dask.append(start("-m", "distributed.cli.dask_worker", address, "--nthreads", "1", "--no-dashboard"))
    try:
        sweeping = start("-m", "bench", *SWEEP, "--results", tmp_path, "--scheduler", address)
        sweeping.stdout.readline()  # the first run is stored
        dask[0].kill()
        _, err = sweeping.communicate(timeout=120)
    finally:
        for process in dask:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
    assert sweeping.returncode == 2 and "Traceback" not in err and "tries" not in err, err
    stored = len(store.run_files(tmp_path))
    assert err.strip().splitlines()[-1] == (f"bench: error: lost the connection to the Dask scheduler at {address}; "
                                            f"the {stored} runs finished are stored: run the same command again "
                                            "to resume")
    assert 1 <= stored < len(grid()) and not store.partial_folder(tmp_path).exists()
