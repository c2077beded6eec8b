"""The grid of runs, deterministic shards, resume, progress and per-run summary lines."""

import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from bench import adam, claims, jobs, live, provenance, store, train
from bench import data as datasets
from bench.data import Dataset
from bench.errors import check_stopped
from bench.scenarios import NOT_CONFIG, Profile, Scenario
from bench.train import RunSpec, train_together

SIDE_BY_SIDE = 2  # runs of a cell trained together: 1.2x the samples/s of one at a time on 2 cores when measured
# first, 1.03x for the MLP in a later benchmark (one run's step keeps both cores busy); 3 no better
WAIT = 2.0  # seconds between two looks at the other processes of a --jobs sweep


def grid(profile: Profile, scenarios: list[Scenario], depths: list[int] | None, seeds: list[int] | None):
    """Every run, cell by cell (scenario, depth) with a cell's seeds adjacent so they share a graph."""
    return [
        RunSpec(scenario, depth, seed, profile)
        for scenario in scenarios
        for depth in (depths or profile.depths(scenario))
        for seed in (seeds if seeds is not None else profile.seeds)
    ]


def shard(runs: list[RunSpec], index: int, count: int) -> list[RunSpec]:
    """Shard `index` of `count` (1-based): whole cells, dealt round-robin in grid order."""
    cells = list(dict.fromkeys((r.scenario.name, r.depth) for r in runs))
    mine = set(cells[index - 1 :: count])
    return [r for r in runs if (r.scenario.name, r.depth) in mine]


def config(spec: RunSpec, data: Dataset, device_kind: str) -> dict:
    """Everything that defines a run's numbers; its hash names the result file."""
    return {
        "scenario": spec.scenario.name, "depth": spec.depth, "seed": spec.seed, "profile": spec.profile.name,
        "dataset": data.name, "train_samples": len(data.y_train), "test_samples": len(data.y_test),
        "epochs": spec.epochs(len(data.y_train) // spec.profile.batch_size), "steps": spec.steps,
        "batch_size": spec.profile.batch_size, "log_every": spec.profile.log_every,
        **{k: v for k, v in asdict(spec.scenario).items() if k not in NOT_CONFIG},
        "width": spec.width, "optimizer": adam.NAME, "device_kind": device_kind,
        "measurement_code": provenance.measurement_code(), **provenance.versions(),
        **({"control": spec.control} if spec.control else {}),
    }


def run_id(cfg: dict) -> str:
    return f"{cfg['scenario']}-d{cfg['depth']}-s{cfg['seed']}-{store.digest(cfg)}"


def controls_of(runs: list[RunSpec], data: Dataset, results: Path, device_kind: str, control: str) -> list[RunSpec]:
    """The control runs of those runs of the grid that are stored in `results` (store.CONTROLS_FOLDER holds them)."""
    stored = {path.stem for path in store.run_files(results)}
    return [replace(spec, control=control) for spec in runs
            if run_id(config(spec, for_spec(data, spec), device_kind)) in stored]


def delta_ratio(signal: pd.DataFrame, step: int) -> float:
    """‖δ first‖ / ‖δ last‖ at one step: hidden layers, or time steps h_1 / h_T of a recurrent network."""
    rows = signal[signal["step"] == step]
    with np.errstate(divide="ignore", invalid="ignore"):  # 0/0 when δ underflowed: the line says nan
        return float(rows["delta_norm"].iloc[0] / rows["delta_norm"].iloc[-1]) if len(rows) else float("nan")


def summary_line(run: dict, tables: dict[str, pd.DataFrame]) -> str:
    layer, epochs = tables["layer"], tables["epoch"]
    signal = tables["time"] if len(tables["time"]) else layer[layer["layer_role"] == "hidden"]
    accuracy = f"{epochs['test_accuracy'].iloc[-1]:.3f}" if len(epochs) else "n/a"
    ratios = f"{delta_ratio(signal, 0):.2e} -> {delta_ratio(signal, int(layer['step'].max())):.2e}"
    status = run["status"] if run["status"] != "diverged" else f"diverged at step {run['diverged_step']}"
    together = run.get("runs_side_by_side") or 1  # wall_time_s is then the time those runs shared
    shared = f" ({together} side by side)" if together > 1 else ""
    return (f"{run['scenario']:<22} depth {run['depth']:>3} seed {run['seed']:>2}  {status:<22} "
            f"test acc {accuracy}  δ first/last {ratios}  {run['wall_time_s']:.1f}s{shared}")


class Progress:
    """A one-line progress bar on a terminal; plain lines otherwise."""

    def __init__(self, total: int):
        self.total, self.done, self.trained_time, self.trained = total, 0, 0.0, 0
        self.tty = sys.stderr.isatty()

    def eta(self) -> str:
        if not self.trained:
            return "?"
        seconds = self.trained_time / self.trained * (self.total - self.done)
        return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"

    def start(self, group: list[RunSpec]) -> None:
        spec = group[0]
        seeds = ("seeds " if len(group) > 1 else "seed ") + ", ".join(str(s.seed) for s in group)
        self.show(f"{spec.scenario.name} depth {spec.depth} {seeds}")

    def show(self, doing: str) -> None:
        width = 20
        filled = width * self.done // max(self.total, 1)
        line = f"[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} {doing}  ETA {self.eta()}"
        print(f"\r{line:<100}" if self.tty else line, end="" if self.tty else "\n", file=sys.stderr, flush=True)

    def finish(self, seconds: float | None) -> None:
        self.done += 1
        if seconds is not None:
            self.trained_time, self.trained = self.trained_time + seconds, self.trained + 1
        if self.tty:
            print("\r" + " " * 100 + "\r", end="", file=sys.stderr, flush=True)


_subset: dict[tuple, Dataset] = {}  # one slot: train.compile_runs caches a cell's graphs by the dataset object


def for_spec(data: Dataset, spec: RunSpec) -> Dataset:
    """The training set a run's budget names: the first train_samples samples, or for a recurrent network
    the recall task at its sequence length (the same object each time)."""
    recurrent = spec.scenario.architecture == "rnn"
    if not recurrent and (spec.train_samples is None or spec.train_samples >= len(data.y_train)):
        return data
    key = (id(data), spec.train_samples, spec.depth if recurrent else None)
    if key not in _subset:
        _subset.clear()
        _subset[key] = (datasets.recall(spec.depth, spec.train_samples, spec.profile.test_samples or 2000)
                        if recurrent else replace(data, x_train=data.x_train[: spec.train_samples],
                                                  y_train=data.y_train[: spec.train_samples]))
    return _subset[key]


def trained_runs(specs: list[RunSpec], data: Dataset, device: str, xla: bool) -> list[tuple[dict, dict]]:
    """Train runs of one cell side by side under the device; (run metadata, tables) each."""
    import tensorflow as tf

    meta = provenance.provenance(device)
    data = for_spec(data, specs[0])
    with tf.device(device):
        trained = train_together(specs, data, xla)
    described = []
    for spec, (outcome, tables) in zip(specs, trained):
        cfg = config(spec, data, meta["device_kind"])
        run = {"run_id": run_id(cfg), **cfg, **meta, **outcome, "statistic_code": provenance.statistic_code(),
               "dataset_source": data.source,
               "dataset_note": data.note, "input_features": data.features,
               "input_mean_square": float(np.mean(np.square(data.x_train)))}
        described.append((run, tables))
    return described


def execute(specs: list[RunSpec], data: Dataset, results: Path, device: str, xla: bool) -> list[tuple[dict, dict]]:
    """Train runs of one cell side by side and store each; returns (run, tables) each."""
    stored = trained_runs(specs, data, device, xla)
    for run, tables in stored:
        store.write_run(results / f"{run['run_id']}.parquet", run, tables)
    return stored


def side_by_side(runs: list[RunSpec]) -> list[list[RunSpec]]:
    """Consecutive runs of one cell in groups of up to SIDE_BY_SIDE, trained together; the cells whose runs
    train with the same compiled graphs (train.graph_key: sigmoid and sigmoid_large_init at one depth) one
    after the other, so those graphs are traced and optimised once."""
    groups: list[list[RunSpec]] = []
    for spec in runs:
        last = groups[-1] if groups else []
        if last and len(last) < SIDE_BY_SIDE and (last[0].scenario, last[0].depth) == (spec.scenario, spec.depth):
            last.append(spec)
        else:
            groups.append([spec])
    first = {}
    for group in groups:
        first.setdefault(same_graphs(group[0]), len(first))
    return sorted(groups, key=lambda group: first[same_graphs(group[0])])  # stable: grid order otherwise


def same_graphs(spec: RunSpec) -> tuple:
    """Runs with equal keys train with the same graphs: the same network and optimizer on the same data."""
    return train.graph_key(spec), spec.steps, spec.train_samples


@dataclass
class Tally:
    """What a sweep did with its runs."""

    trained: int = 0
    stored: int = 0  # found in the folder (also those another sweep finished meanwhile)
    elsewhere: int = 0  # claimed by another live sweep sharing the folder
    by_others: int = 0  # of those trained, by the other processes of a --jobs sweep

    def __str__(self) -> str:
        jobs = f" ({self.by_others} of them by the other --jobs processes)" if self.by_others else ""
        other = f", {self.elsewhere} being trained by another sweep (run again after it to check)" \
            if self.elsewhere else ""
        return f"{self.trained} trained{jobs}, {self.stored} already stored{other}"


@dataclass
class Plan:
    """A sweep's runs: their file names, the ones still to train, progress and tally."""

    names: dict[int, str]  # id(spec) -> run id, the result file's stem
    pending: list[RunSpec]
    progress: Progress
    tally: Tally


def plan(runs: list[RunSpec], data: Dataset, results: Path, device_kind: str) -> Plan:
    """Which runs are stored already (resume) and which are still to train."""
    names = {id(spec): run_id(config(spec, for_spec(data, spec), device_kind)) for spec in runs}
    planned = Plan(names, [], Progress(len(runs)), Tally())
    for spec in runs:
        if (results / f"{names[id(spec)]}.parquet").exists():
            planned.progress.finish(None)
            planned.tally.stored += 1
        else:
            planned.pending.append(spec)
    return planned


def claim_run(planned: Plan, spec: RunSpec, results: Path) -> Path | None:
    """Claim a pending run: the claim, or None (counted) when another sweep holds it or stored it meanwhile."""
    name = planned.names[id(spec)]
    claim = claims.take(results, name)
    if claim and (results / f"{name}.parquet").exists():
        claims.release([claim])
        claim, planned.tally.stored = None, planned.tally.stored + 1
    elif claim is None:
        planned.tally.elsewhere += 1
    if claim is None:
        planned.progress.finish(None)
    return claim


def sweep(runs: list[RunSpec], data: Dataset, results: Path, device: str, xla: bool = False,
          site: live.Site | None = None, others: jobs.Others | None = None) -> Tally:
    """Train every run neither stored yet nor claimed by another sweep sharing the folder (site: rebuilt as runs
    are stored; others: the processes of a --jobs sweep, waited for)."""
    planned = plan(runs, data, results, provenance.device_kind(device))
    try:
        stored(planned, results, site)
        for unit in graph_units(side_by_side(planned.pending)):
            claimed = {id(spec): claim for group in unit for spec in group
                       if (claim := claim_run(planned, spec, results))}
            with claims.kept(list(claimed.values())):
                for specs in ([spec for spec in group if id(spec) in claimed] for group in unit):
                    if specs:
                        train_group(planned, specs, data, results, device, xla)
                        stored(planned, results, site)
                        check_stopped()  # a Ctrl-C that a library swallowed stops the sweep here
        while others and others.running():
            time.sleep(WAIT)
            stored(planned, results, site)
    finally:  # Ctrl-C between taking a claim and holding it
        claims.release_own(results)
        if others:
            others.stop()
        live.ended(results, site)
    if others:  # what this command's processes trained: the runs stored since it planned
        others.check()
        trained = sum((results / f"{planned.names[id(spec)]}.parquet").exists() for spec in planned.pending)
        planned.tally = Tally(trained, len(runs) - len(planned.pending), len(planned.pending) - trained,
                              trained - planned.tally.trained)
    if site:
        site.final()
    return planned.tally


def graph_units(groups: list[list[RunSpec]]) -> list[list[list[RunSpec]]]:
    """Consecutive groups that train with the same compiled graphs (same_graphs): a sweep claims such a unit whole,
    so that the processes of a --jobs sweep never trace the same graphs twice."""
    units: list[list[list[RunSpec]]] = []
    for group in groups:
        if units and same_graphs(units[-1][0][0]) == same_graphs(group[0]):
            units[-1].append(group)
        else:
            units.append([group])
    return units


def train_group(planned: Plan, specs: list[RunSpec], data: Dataset, results: Path, device: str, xla: bool) -> None:
    """Train claimed runs of one cell side by side, store them and say so."""
    planned.progress.start(specs)
    started = time.perf_counter()
    for run, tables in execute(specs, data, results, device, xla):
        planned.progress.finish((time.perf_counter() - started) / len(specs))
        print(summary_line(run, tables), flush=True)
    planned.tally.trained += len(specs)


def stored(planned: Plan, results: Path, site: live.Site | None) -> None:
    """Runs were stored: say how many of the grid's are (by any sweep) beside the folder, and rebuild the site if
    one is asked for."""
    done = sum((results / f"{name}.parquet").exists() for name in planned.names.values())
    live.report(results, done, planned.progress.total, site is not None)
    if site and done:
        site.refresh(done, planned.progress.total)
