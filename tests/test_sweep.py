"""Sweeps: shards partition the grid, an interrupted sweep resumes, stored files read back."""

import os
import socket
import subprocess
import time

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bench import adam, claims, closure, store, sweep, train
from bench.scenarios import CATALOGUE, PROFILES, SCENARIOS

SMOKE = PROFILES["smoke"]


def test_shards_partition_the_grid_by_cell():
    runs = sweep.grid(PROFILES["quick"], list(CATALOGUE), None, None)
    shards = [sweep.shard(runs, i, 4) for i in range(1, 5)]
    assert sorted(map(id, sum(shards, []))) == sorted(map(id, runs))
    cells = [{(r.scenario.name, r.depth) for r in s} for s in shards]
    assert all(not (a & b) for i, a in enumerate(cells) for b in cells[i + 1 :])
    assert sweep.shard(runs, 2, 4) == shards[1]  # deterministic


def test_interrupted_sweep_resumes_writing_each_run_once(tmp_path, synthetic, monkeypatch):
    runs = sweep.grid(SMOKE, [SCENARIOS["sigmoid"], SCENARIOS["linear"]], [2], [0, 1])
    real_train, calls = sweep.train_together, []

    def interrupted_on_second(specs, data, jit):
        calls.append([(spec.scenario.name, spec.seed) for spec in specs])
        if len(calls) == 2:
            raise KeyboardInterrupt  # what Ctrl-C raises in the middle of training
        return real_train(specs, data, jit)

    monkeypatch.setattr(sweep, "train_together", interrupted_on_second)
    with pytest.raises(KeyboardInterrupt):
        sweep.sweep(runs, synthetic, tmp_path, "/CPU:0")
    stored = {p.name: p.stat().st_mtime_ns for p in store.run_files(tmp_path)}
    assert calls == [[("sigmoid", 0), ("sigmoid", 1)], [("linear", 0), ("linear", 1)]]  # a cell's seeds together
    assert len(stored) == 2 and not [p for p in tmp_path.iterdir() if p.suffix != ".parquet"]
    assert not store.partial_folder(tmp_path).exists()  # the interrupted group's claims are released
    monkeypatch.setattr(sweep, "train_together", real_train)
    assert sweep.sweep(runs, synthetic, tmp_path, "/CPU:0").trained == 2
    after = {p.name: p.stat().st_mtime_ns for p in store.run_files(tmp_path)}
    assert len(after) == 4 and all(after[name] == mtime for name, mtime in stored.items())
    assert sweep.sweep(runs, synthetic, tmp_path, "/CPU:0").trained == 0


def test_a_stop_a_library_swallowed_ends_the_sweep_after_the_group_it_came_in(tmp_path, synthetic, monkeypatch):
    from bench import errors

    runs = sweep.grid(SMOKE, [SCENARIOS["sigmoid"], SCENARIOS["linear"]], [2], [0, 1])
    real_train = sweep.train_together

    def stopped_in_a_callback(specs, data, jit):
        errors.STOPPED.append(2)  # stop() ran, its KeyboardInterrupt was dropped (an `except:`, a __del__)
        return real_train(specs, data, jit)

    monkeypatch.setattr(errors, "STOPPED", [])
    monkeypatch.setattr(sweep, "train_together", stopped_in_a_callback)
    with pytest.raises(KeyboardInterrupt):
        sweep.sweep(runs, synthetic, tmp_path, "/CPU:0")
    assert [p.name.split("-")[0] for p in store.run_files(tmp_path)] == ["sigmoid", "sigmoid"]
    assert not store.partial_folder(tmp_path).exists()


def test_a_run_line_says_when_its_seconds_were_shared_side_by_side(smoke_results):
    results = store.load(smoke_results)
    run = results.runs.iloc[0].to_dict()
    tables = {kind: frame[frame["run_id"] == run["run_id"]]
              for kind, frame in (("layer", results.layer), ("epoch", results.epoch), ("time", results.time))}
    seconds = f"{run['wall_time_s']:.1f}s"
    assert run["runs_side_by_side"] == 2
    assert sweep.summary_line(run, tables).endswith(f"  {seconds} (2 side by side)")
    assert sweep.summary_line({**run, "runs_side_by_side": 1}, tables).endswith(f"  {seconds}")


def test_store_round_trip_and_provenance(smoke_results):
    results = store.load(smoke_results)
    assert len(results.runs) == 8 and set(results.runs["status"]) <= {"completed", "diverged"}
    run = results.runs.iloc[0]
    for key in ("tf_version", "keras_version", "python_version", "numpy_version", "device", "git_commit",
                "started_at", "wall_time_s", "dataset_source", "determinism"):
        assert run[key] not in (None, ""), key
    threads = train.configure_threads()  # conftest configured them as python -m bench does
    assert threads == {"intra_op_threads": max(1, len(os.sched_getaffinity(0)) // 2), "inter_op_threads": 2}
    assert (results.runs["intra_op_threads"] == threads["intra_op_threads"]).all()
    assert (results.runs["inter_op_threads"] == 2).all() and not results.runs["xla"].any()
    assert (results.runs["runs_side_by_side"] == 2).all()  # each cell's two seeds trained together
    assert (results.runs["optimizer"] == adam.NAME).all()
    feedforward = [kind for kind in store.KINDS if kind != "time"]  # time: recurrent nets only
    for kind in feedforward:
        frame = results.table(kind)
        assert set(frame["run_id"]) == set(results.runs["run_id"]), kind
    assert results.time.empty and list(results.time.columns) == [*store.RUN_KEYS, *store.COLUMNS["time"]]
    one = pq.read_table(store.run_files(smoke_results)[0]).to_pandas()
    assert set(one["kind"]) == set(feedforward)


def test_foreign_and_old_files_are_refused(tmp_path, smoke_results):
    (tmp_path / "notes.parquet").write_text("not parquet")
    with pytest.raises(store.StoreError, match="not a readable parquet"):
        store.load(tmp_path)
    pq.write_table(pa.table({"a": [1]}), tmp_path / "notes.parquet")
    with pytest.raises(store.StoreError, match="not a gradbench result"):
        store.load(tmp_path)
    table = pq.read_table(store.run_files(smoke_results)[0])
    meta = table.schema.metadata[store.METADATA_KEY].replace(
        f'"schema_version": {store.SCHEMA_VERSION}'.encode(), b'"schema_version": 0')
    os.remove(tmp_path / "notes.parquet")
    pq.write_table(table.replace_schema_metadata({store.METADATA_KEY: meta}), tmp_path / "old.parquet")
    with pytest.raises(store.StoreError, match="schema version 0"):
        store.load(tmp_path)


def test_whole_folder_reads_as_one_dataset(smoke_results):
    frame = pq.read_table(smoke_results).to_pandas()
    layer = frame[frame["kind"] == "layer"]
    assert layer.groupby("run_id").size().nunique() == 1 and len(pd.unique(layer["scenario"])) == 4


def test_temporary_files_live_beside_the_folder_and_dead_writers_leftovers_are_removed(tmp_path, smoke_results):
    import subprocess
    import sys

    folder = tmp_path / "results"
    source = store.run_files(smoke_results)[0]
    store.write_atomically(pq.read_table(source), folder / source.name)
    assert [p.name for p in folder.iterdir()] == [source.name] and not store.partial_folder(folder).exists()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)  # a process that has exited: its pid names no live writer
    partial = store.partial_folder(folder)
    partial.mkdir()
    killed, legacy = partial / f"b.parquet.{pid}.tmp", folder / f".c.parquet.{pid}.tmp"
    live = partial / f"d.parquet.{os.getpid()}.tmp"  # a writer still at work
    for path in (killed, legacy, live):
        path.write_bytes(b"half a file")
    store.check_folder(folder)  # what every sweep and scan does first
    assert not killed.exists() and not legacy.exists() and live.exists()
    assert [p.name for p in store.run_files(folder)] == [source.name]


def test_the_measurement_code_version_ignores_wording_and_follows_code():
    from bench import provenance

    source = 'def f(x):\n    """Twice x."""\n    return 2 * x  # doubled\n'
    reworded = 'def f(x):\n    """Two times x, said otherwise."""\n    # a new comment\n    return 2 * x\n'
    assert closure.code_of(source) == closure.code_of(reworded)
    assert closure.code_of(source) != closure.code_of(source.replace("2 * x", "3 * x"))
    assert len(provenance.measurement_code()) == 12


def test_a_sweep_refuses_to_resume_runs_measured_by_other_code(tmp_path, smoke_results):
    import json
    import subprocess
    import sys

    table = pq.read_table(store.run_files(smoke_results)[0])
    info = json.loads(table.schema.metadata[store.METADATA_KEY])
    assert info["run"]["measurement_code"]  # every run records it, and it is part of the run's identity
    info["run"]["measurement_code"] = "0123456789ab"
    folder = tmp_path / "results"
    folder.mkdir()
    store.write_atomically(table.replace_schema_metadata({store.METADATA_KEY: json.dumps(info)}),
                           folder / "old.parquet")
    done = subprocess.run([sys.executable, "-m", "bench", "sweep", "--profile", "smoke", "--scenarios", "sigmoid",
                           "--results", str(folder)], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert "measured by other gradbench code (0123456789ab" in done.stderr.strip().splitlines()[-1]
    assert [p.name for p in folder.iterdir()] == ["old.parquet"]  # nothing trained, nothing removed


def test_runs_claimed_by_a_live_sweep_are_left_to_it_and_a_dead_sweeps_claims_are_taken_over(tmp_path, synthetic):
    runs = sweep.grid(SMOKE, [SCENARIOS["sigmoid"]], [2], [0, 1, 2])
    names = [sweep.run_id(sweep.config(spec, synthetic, "cpu")) for spec in runs]
    live = subprocess.Popen(["sleep", "60"])
    dead = subprocess.Popen(["true"])
    dead.wait()
    try:
        for name, pid in zip(names, (live.pid, dead.pid)):
            claims.path_of(tmp_path, name).parent.mkdir(exist_ok=True)
            claims.path_of(tmp_path, name).write_text(f"{socket.gethostname()} {pid}\n")
        far = claims.path_of(tmp_path, names[2])
        far.write_text(f"another-host {live.pid}\n")  # a machine that stopped refreshing its claim
        os.utime(far, (time.time() - claims.STALE_AFTER - 1,) * 2)
        tally = sweep.sweep(runs, synthetic, tmp_path, "/CPU:0")
        assert (tally.trained, tally.stored, tally.elsewhere) == (2, 0, 1)
        assert sorted(p.stem for p in store.run_files(tmp_path)) == sorted(names[1:])
        assert [p.name for p in store.partial_folder(tmp_path).iterdir()] == [f"{names[0]}.claim"]  # not ours
        assert "1 being trained by another sweep" in str(tally)
    finally:
        live.kill()
        live.wait()
    assert claims.take(tmp_path, names[0]) is not None  # its holder died
