"""python -m bench.benchmark [--tiny] [--out DIR]: how fast gradbench is, measured side by side.

Interleaved and repeated (alternating order) so that machine noise shows as a range, in two processes:
one with gradbench's thread pools (as python -m bench trains), one with TensorFlow's defaults:
1. instrumented training against plain `model.fit` of the same model on the same data (samples/s);
2. the cost of the statistics: the same loop with statistics on and off;
3. the step time against a floor: the step's FLOPs over a matmul rate measured at the step's shapes;
4. the time and peak memory to build the site from 1x, 16x, 50x and 100x the quick profile's number of runs
   (replicated files), with no run summarised yet and with every summary cached, and the sites' size (MB: total,
   html, svg, figure data); the same of `report diff` of two such folders at the size nearest 10,000 runs;
5. the peak resident memory of a quick sweep (a subprocess) and the parquet bytes per run;
6. the depth scan's time and memory;
7. the runs per minute of one sweep grid trained by one and two local processes (`--jobs 2`) and through 1 and 2 Dask
   workers (`--workers`);
8. what the recorder (bench/recorder.py) costs a user's fit, against plain fit, for an MLP, a conv net and an LSTM.
Prints a table, writes <out>/benchmark.json and <out>/benchmark.html. It measures; it never fails on a timing.
"""

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

from bench import console

console.configure(show_everything=False)
console.import_tensorflow()  # quietly: no native banners on the console

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
import tensorflow as tf  # noqa: E402

from bench import data as datasets  # noqa: E402
from bench import provenance, sizes, store, sweep, train  # noqa: E402
from bench.models import build_model  # noqa: E402
from bench.scenarios import CATALOGUE, PROFILES, SCENARIOS  # noqa: E402
from bench.text import fmt  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
BATCH = 32
SCENARIO = SCENARIOS["sigmoid"]  # the article's vanishing-gradient MLP, trained with Adam
SEED_STRIDE = 1000  # a replicated run's seed: the original's + SEED_STRIDE x copy number


@dataclass(frozen=True)
class Settings:
    repeats: int  # timed repeats of every training measurement: single rounds differ by ±10 % on a shared 2-core VM
    train_samples: int  # one timed epoch: Fashion-MNIST's first n (generated 28x28 images when tiny)
    depth: int
    width: int
    matmul_loops: int  # iterations of the step's matmuls in one floor measurement
    sweep_profile: str  # profile of the footprint sweep, whose runs also seed the rendering
    sweep_scenarios: str
    sweep_depths: str | None  # None: the profile's depths
    render_scales: tuple[int, ...]  # multiples of the quick profile's number of runs
    render_repeats: int
    throughput_grid: tuple[str, ...]  # sweep arguments of the runs-per-minute grid
    throughput_repeats: int
    sweep_modes: tuple[str, ...]  # of SWEEP_MODES
    recorder_repeats: int  # fits of each model and variant of the recorder's cost
    recorder_epochs: int  # timed epochs of each such fit (after one untimed)
    tiny: bool = False


FULL = Settings(repeats=11, train_samples=4096, depth=11, width=256, matmul_loops=400, sweep_profile="quick",
                sweep_scenarios="sigmoid,linear,resnet", sweep_depths=None, render_scales=(1, 16, 50, 100),
                render_repeats=1,
                throughput_grid=("--scenarios", "sigmoid,relu_he,tanh", "--depths", "2,4,8", "--seeds", "0,1,2"),
                throughput_repeats=2, sweep_modes=("local", "jobs_2", "dask_1", "dask_2"), recorder_repeats=5,
                recorder_epochs=5)
TINY = Settings(repeats=2, train_samples=256, depth=2, width=32, matmul_loops=20, sweep_profile="smoke",
                sweep_scenarios="sigmoid", sweep_depths="3", render_scales=(1, 2), render_repeats=1,
                throughput_grid=("--scenarios", "sigmoid", "--depths", "2", "--seeds", "0,1"), throughput_repeats=1,
                sweep_modes=("local",), recorder_repeats=1, recorder_epochs=1,
                tiny=True)
SWEEP_MODES = {"local": [], "jobs_2": ["--jobs", "2"], "dask_1": ["--workers", "1"],
               "dask_2": ["--workers", "2"]}  # how a sweep trains


class BenchmarkError(Exception):
    """A measurement could not be made (not a slow one: timings never fail the benchmark)."""


# -- figures ---------------------------------------------------------------------------------------


@dataclass
class Figure:
    """One measured quantity over the repeats, with its target (a bound on the median) if it has one."""

    key: str
    section: str
    name: str
    unit: str
    values: list[float]
    bound: float | None = None
    higher_is_better: bool = True

    @property
    def target(self) -> str:
        return "" if self.bound is None else f"{'≥' if self.higher_is_better else '≤'} {fmt(self.bound)}"

    @property
    def met(self) -> bool | None:
        if self.bound is None:
            return None
        return self.median >= self.bound if self.higher_is_better else self.median <= self.bound

    @property
    def min(self) -> float:
        return float(np.min(self.values))

    @property
    def median(self) -> float:
        return float(np.median(self.values))

    @property
    def max(self) -> float:
        return float(np.max(self.values))

    def as_dict(self) -> dict:
        return dict(key=self.key, section=self.section, name=self.name, unit=self.unit, min=self.min,
                    median=self.median, max=self.max, values=[float(v) for v in self.values], target=self.target,
                    met=self.met)


# -- training: gradbench's loop, model.fit, and the matmul floor -----------------------------------


@dataclass
class Variant:
    """Something timed per repeat: `run` does one unit of work (an epoch) and returns its seconds."""

    run: Callable[[], float]
    reset: Callable[[], None] = lambda: None
    first_s: float = float("nan")  # the first call, with tracing and compiling
    seconds: list[float] = field(default_factory=list)


def training_data(settings: Settings) -> datasets.Dataset:
    """Fashion-MNIST's first n samples; generated 28x28 images when tiny or when it is not available."""
    if not settings.tiny:
        try:
            return datasets.load("fashion_mnist", train_samples=settings.train_samples, test_samples=BATCH)
        except datasets.DataError as err:
            print(f"benchmark: {err}; using generated 28x28 images", file=sys.stderr)
    rng = np.random.default_rng(0)
    x = rng.random((settings.train_samples, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, 10, settings.train_samples).astype(np.int32)
    return datasets.Dataset("generated", "uniform 28x28 images, seed 0", x, y, x[:BATCH], y[:BATCH], 10)


def run_spec(settings: Settings) -> train.RunSpec:
    profile = replace(PROFILES["quick"], width=settings.width, train_samples=settings.train_samples)
    return train.RunSpec(SCENARIO, settings.depth, 0, profile)


def gradbench_variant(runs: list[train.Compiled], data: datasets.Dataset, weights: list) -> Variant:
    """An epoch of gradbench's loop for each run, side by side: STEPS_PER_CALL steps per call, statistics
    fetched after each call. Its seconds are the epoch's over the number of runs: the time one run's epoch
    takes in the sweep, so that samples/s counts every run's samples."""
    rngs = [np.random.default_rng(seed) for seed in range(len(runs))]
    call = train.train_side_by_side(runs)

    def epoch() -> float:
        started = time.perf_counter()
        for position in train.side_by_side_chunks(rngs, len(data.y_train), BATCH):
            [t.numpy() for pair in call([tf.constant(indices) for _, indices in position]) for t in pair]
        return (time.perf_counter() - started) / len(runs)

    def reset() -> None:
        for run in runs:
            run.reset(weights)

    return Variant(epoch, reset)


class EpochTimer(keras.callbacks.Callback):
    """Seconds of the last epoch, from its first batch to its end (fit's per-call set-up excluded)."""

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds = time.perf_counter() - self.started


def fit_variant(spec: train.RunSpec, data: datasets.Dataset, weights: list) -> Variant:
    """The same model trained by plain model.fit: Adam, cross-entropy on logits, no metrics, verbose=0."""
    model = build_model(spec.scenario, spec.depth, data.image_shape, data.num_classes, spec.width)
    model.compile(optimizer=keras.optimizers.Adam(spec.scenario.learning_rate),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    timer = EpochTimer()

    def epoch() -> float:
        model.fit(data.x_train, data.y_train, batch_size=BATCH, epochs=1, shuffle=True, verbose=0, callbacks=[timer])
        return timer.seconds

    return Variant(epoch, lambda: model.set_weights(weights))


def step_flops(shapes: list[tuple[int, int]], batch: int) -> float:
    """Forward + backward ≈ 3x the forward matmuls: 6·B·Σ fan_in·fan_out."""
    return 6.0 * batch * sum(fan_in * fan_out for fan_in, fan_out in shapes)


def matmul_variant(shapes: list[tuple[int, int]], batch: int, loops: int) -> Variant:
    """The step's matmuls (forward, input gradient, weight gradient of every Dense layer), `loops` times."""
    rng = tf.random.Generator.from_seed(0)
    operands = [(rng.normal([batch, i]), rng.normal([i, o]), rng.normal([batch, o])) for i, o in shapes]

    @tf.function
    def loop():
        total = tf.constant(0.0)
        for _ in tf.range(loops):
            carry = total * 0.0  # a loop-carried input: nothing can be hoisted out of the loop
            for x, w, g in operands:
                x, g = x + carry, g + carry
                total += tf.matmul(x, w)[0, 0] + tf.matmul(g, w, transpose_b=True)[0, 0]
                total += tf.matmul(x, g, transpose_a=True)[0, 0]
        return total

    def timed() -> float:
        started = time.perf_counter()
        loop().numpy()
        return time.perf_counter() - started

    return Variant(timed)


def measure(variants: list[Variant], repeats: int, turn: Callable[[], None] = lambda: None) -> list[list[float]]:
    """A warm-up call each, then `repeats` rounds, alternating the order from round to round; `turn()` before the
    warm-up, before each round and at the end (a training child waits there for its turn: take_turns). Returns
    when each round started and ended (Unix time)."""
    turn()
    for variant in variants:
        variant.reset()
        variant.first_s = variant.run()
    rounds = []
    for round_ in range(repeats):
        turn()
        started = time.time()
        for variant in variants if round_ % 2 == 0 else variants[::-1]:
            variant.reset()
            variant.seconds.append(variant.run())
        rounds.append([started, time.time()])
    turn()
    return rounds


# -- training in two processes: gradbench's thread pools, and TensorFlow's defaults ------------------

# Thread pools are fixed when TensorFlow starts, so each configuration is measured in its own process:
# "gradbench" as python -m bench trains (train.configure_threads, XLA off); "default" with TensorFlow's
# default pools, as a plain model.fit and gradbench's --xla on run. Within a process the variants are
# interleaved; the two processes take turns, a round each, so that a round of one and the same round of the
# other (the sweep's and model.fit's, say) are measured seconds apart, not minutes: a shared VM's speed drifts.
CONFIGURATIONS = {
    "gradbench": ("instrumented", "side_by_side", "plain", "fit", "matmul"),  # one run first: it traces its own graph
    "default": ("instrumented_xla", "plain_xla", "instrumented", "fit", "matmul"),
}
LABELS = {  # (configuration, variant) -> its name in the table
    ("gradbench", "side_by_side"): f"gradbench sweep ({sweep.SIDE_BY_SIDE} runs side by side)",
    ("gradbench", "instrumented"): "gradbench, one run",
    ("default", "fit"): "model.fit, TF default threads",
    ("gradbench", "fit"): "model.fit, gradbench's threads",
    ("default", "instrumented_xla"): "gradbench --xla on",
    ("default", "instrumented"): "gradbench, TF default threads",
    ("gradbench", "plain"): "gradbench, statistics off",
    ("default", "plain_xla"): "gradbench --xla on, statistics off",
}


def make_variant(kind: str, spec: train.RunSpec, data: datasets.Dataset, weights: list, shapes: list,
                 loops: int) -> Variant:
    if kind == "fit":
        return fit_variant(spec, data, weights)
    if kind == "matmul":
        return matmul_variant(shapes, BATCH, loops)
    if kind == "side_by_side":
        return gradbench_variant(train.compile_runs(spec, data, False, sweep.SIDE_BY_SIDE), data, weights)
    jit = kind.endswith("_xla")
    run = (train.compile_run(spec, data, jit) if kind.startswith("instrumented")
           else train.compile_model(spec, data, jit, statistics=False))
    return gradbench_variant([run], data, weights)


def model_shapes(spec: train.RunSpec, data: datasets.Dataset) -> list[tuple[int, int]]:
    model = build_model(spec.scenario, spec.depth, data.image_shape, data.num_classes, spec.width)
    return [tuple(layer.kernel.shape) for layer in model.layers if isinstance(layer, keras.layers.Dense)]


def measure_configuration(settings: Settings, configuration: str, turn: Callable[[], None] = lambda: None) -> dict:
    """In this process: every variant of one configuration (turn: see measure); their seconds and the set-up, as
    JSON data."""
    if configuration == "gradbench":
        train.configure_threads()
    data, spec = training_data(settings), run_spec(settings)
    weights, shapes = train.initial_weights(spec, data), model_shapes(spec, data)
    variants = {kind: make_variant(kind, spec, data, weights, shapes, settings.matmul_loops)
                for kind in CONFIGURATIONS[configuration]}
    rounds = measure(list(variants.values()), settings.repeats, turn)
    return dict(
        seconds={k: v.seconds for k, v in variants.items()}, first_s={k: v.first_s for k, v in variants.items()},
        rounds=rounds,
        threads=provenance.threads(),
        setup=dict(dataset=data.name, dataset_source=data.source, steps=len(data.y_train) // BATCH, batch=BATCH,
                   scenario=SCENARIO.name, depth=spec.depth, width=spec.width, dense_shapes=shapes,
                   steps_per_call=train.STEPS_PER_CALL),
    )


READY, GO = "ready", "go"  # a training child's line when it waits for its turn, and the parent's answer


def take_turns() -> None:
    """A training child's turn (measure's `turn`): it says it is ready, then waits for the parent's go."""
    print(READY, flush=True)
    if sys.stdin.readline().strip() != GO:
        raise SystemExit("benchmark: the parent process is gone")


def start_child(settings: Settings, configuration: str, work: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "bench.benchmark", "--configuration", configuration, "--json",
               str(work / f"training-{configuration}.json"), "--repeats", str(settings.repeats),
               *(["--tiny"] if settings.tiny else [])]
    with (work / f"training-{configuration}.log").open("w") as log:
        return subprocess.Popen(command, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                                text=True)


def child_failed(configuration: str, work: Path) -> BenchmarkError:
    log = work / f"training-{configuration}.log"
    return BenchmarkError(f"training measurements ({configuration}) failed:\n{log.read_text()[-2000:]}")


def wait_ready(child: subprocess.Popen, configuration: str, work: Path) -> None:
    """Until the child says it is ready; a child that exits first is a BenchmarkError with its log's end."""
    for line in child.stdout:
        if line.strip() == READY:
            return
    child.wait()
    raise child_failed(configuration, work)


def measure_in_children(settings: Settings, work: Path) -> dict[str, dict]:
    """Every configuration in its own process, the processes taking turns: the warm-up, then each round (the
    order alternating), one process at a time."""
    children = {c: start_child(settings, c, work) for c in CONFIGURATIONS}
    try:
        for c, child in children.items():
            wait_ready(child, c, work)  # set up
        for step in range(settings.repeats + 1):
            for c in list(children) if step % 2 == 0 else list(children)[::-1]:
                children[c].stdin.write(f"{GO}\n")
                children[c].stdin.flush()
                wait_ready(children[c], c, work)
        for c, child in children.items():
            child.communicate(f"{GO}\n")  # it writes its seconds and exits
            if child.returncode != 0:
                raise child_failed(c, work)
    finally:
        for child in children.values():
            if child.poll() is None:
                child.kill()
    return {c: json.loads((work / f"training-{c}.json").read_text()) for c in CONFIGURATIONS}


def per_round(a: list[float], b: list[float]) -> list[float]:
    """a's seconds over b's, round by round."""
    return [x / y for x, y in zip(a, b, strict=True)]


# the targets of sections 1-3 for gradbench's own training (issue 24); the other variants keep the earlier ones
SWEEP_SPEEDUP = 3.0  # ≥: the sweep's samples/s over plain model.fit's
INSTRUMENTATION_COST = 5.0  # ≤ %: statistics on against off
FLOOR_RATIO = 2.0  # ≤: the instrumented step over the FLOP floor


def training_figures(gb: dict, df: dict, loops: int) -> list[Figure]:
    """Sections 1-3 from the two configurations (gb: gradbench's threads, df: TensorFlow's defaults)."""
    measured = {"gradbench": gb, "default": df}
    steps, flops = gb["setup"]["steps"], step_flops(gb["setup"]["dense_shapes"], BATCH)
    s1, fit = "1 · against plain fit", df["seconds"]["fit"]
    rows = [Figure(f"samples_per_s.{c}.{k}", s1, f"samples/s, {label}", "samples/s",
                   [steps * BATCH / s for s in measured[c]["seconds"][k]])
            for (c, k), label in LABELS.items() if not k.startswith("plain")]
    sweep_s = gb["seconds"]["side_by_side"]
    rows += [
        Figure("speedup_over_fit.gradbench", s1, "speed-up, gradbench sweep over model.fit (TF default threads)", "×",
               per_round(fit, sweep_s), bound=SWEEP_SPEEDUP),
        Figure("speedup_over_fit.one_run", s1, "speed-up, gradbench one run over model.fit (TF default threads)",
               "×", per_round(fit, gb["seconds"]["instrumented"]), bound=2.0),
        Figure("speedup_over_fit.same_threads", s1, "speed-up, gradbench sweep over model.fit (gradbench's threads)",
               "×", per_round(gb["seconds"]["fit"], sweep_s), bound=2.0),
        Figure("speedup_over_fit.xla", s1, "speed-up, gradbench --xla on over model.fit", "×",
               per_round(fit, df["seconds"]["instrumented_xla"]), bound=2.0),
    ]
    rows += [Figure(f"compile_s.{c}.{k}", s1, f"trace + compile, {label}", "s",
                    [measured[c]["first_s"][k] - float(np.median(measured[c]["seconds"][k]))])
             for (c, k), label in LABELS.items() if k != "side_by_side"]
    s2 = "2 · cost of instrumentation"
    rows += [Figure(f"instrumentation_cost.{key}", s2, f"statistics on vs off, {name}", "%",
                    [100 * (r - 1) for r in per_round(m["seconds"][on], m["seconds"][off])], bound=bound,
                    higher_is_better=False)
             for key, name, m, on, off, bound in (
                 ("gradbench", "gradbench", gb, "instrumented", "plain", INSTRUMENTATION_COST),
                 ("xla", "--xla on", df, "instrumented_xla", "plain_xla", 10.0))]
    return rows + floor_figures(gb, df, steps, flops, loops)


def floor_figures(gb: dict, df: dict, steps: int, flops: float, loops: int) -> list[Figure]:
    section = "3 · distance to the floor"
    rows = [Figure("step_mflop", section, "step FLOPs, 6·B·Σ fan_in·fan_out", "MFLOP", [flops / 1e6])]
    for name, what, m, variant, bound in (("gradbench", "gradbench", gb, "instrumented", FLOOR_RATIO),
                                          ("xla", "--xla on", df, "instrumented_xla", 3.0)):
        floor_ms = [1e3 * s / loops for s in m["seconds"]["matmul"]]
        step_ms = [1e3 * s / steps for s in m["seconds"][variant]]
        rows += [Figure(f"matmul_gflops.{name}", section, f"matmul rate at the step's shapes, {what}", "GFLOP/s",
                        [flops / 1e6 / ms for ms in floor_ms]),
                 Figure(f"floor_ms.{name}", section, f"floor: step FLOPs / matmul rate, {what}", "ms/step", floor_ms),
                 Figure(f"step_ms.{name}", section, f"step time, instrumented, {what}", "ms/step", step_ms),
                 Figure(f"floor_ratio.{name}", section, f"step time / floor, {what}", "×",
                        per_round(step_ms, floor_ms), bound=bound, higher_is_better=False)]
    return rows


def training(settings: Settings, work: Path) -> tuple[list[Figure], dict]:
    """Sections 1-3, each configuration in its own process; returns the figures and the set-up."""
    measured = measure_in_children(settings, work)
    gb, df = measured["gradbench"], measured["default"]
    setup = {**gb["setup"], "threads_gradbench": gb["threads"], "threads_default": df["threads"],
             "round_times": {c: m["rounds"] for c, m in measured.items()}}
    return training_figures(gb, df, settings.matmul_loops), setup


# -- footprint: a sweep in a subprocess ------------------------------------------------------------


def sweep_command(settings: Settings, results: Path) -> list[str]:
    depths = ["--depths", settings.sweep_depths] if settings.sweep_depths else []
    return [sys.executable, "-m", "bench", "sweep", "--profile", settings.sweep_profile, "--scenarios",
            settings.sweep_scenarios, *depths, "--seeds", "0", "--results", str(results)]


def descendants(root: int) -> list[int]:
    """The pids of a process's children, their children and so on (a site build's fork server and its workers)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as stat:
                parents[int(entry)] = int(stat.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    found = [root]
    for process in found:  # grows as it is read: each child found is searched for children in turn
        found += [child for child, parent in parents.items() if parent == process]
    return found[1:]


def tree_rss(root: int) -> int:
    """Resident bytes of a process and all its descendants (a site build draws in worker processes)."""
    total = 0
    for pid in [root, *descendants(root)]:
        try:
            with open(f"/proc/{pid}/statm") as statm:
                total += int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except OSError:
            continue
    return total


def run_measured(command: list[str], log: Path, env: dict | None = None) -> tuple[float, float]:
    """(peak resident MiB of the command's whole process tree, sampled every 50 ms; wall seconds), its output in
    `log`."""
    started, peak = time.perf_counter(), 0
    with log.open("w") as out:
        process = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                   env={**os.environ, **(env or {})})
        while process.poll() is None:
            peak = max(peak, tree_rss(process.pid))
            time.sleep(0.05)
    seconds = time.perf_counter() - started
    if process.returncode != 0:
        raise BenchmarkError(f"{' '.join(command)} exited with {process.returncode}; see {log}")
    return peak / 2**20, seconds


def footprint(settings: Settings, work: Path) -> tuple[list[Figure], Path, str]:
    """The figures, the sweep's results folder and its command."""
    results = work / "sweep-results"
    command = sweep_command(settings, results)
    peak_mib, seconds = run_measured(command, work / "sweep.log")
    files = store.run_files(results)
    if not files:
        raise BenchmarkError(f"the footprint sweep wrote no result files into {results}")
    section, what = "5 · footprint", f"{settings.sweep_profile} sweep ({len(files)} runs)"
    return [
        Figure("sweep_peak_rss_mib", section, f"peak resident memory, {what}", "MiB", [peak_mib], bound=2048.0,
               higher_is_better=False),
        Figure("sweep_wall_s", section, f"wall time with start-up, {what}", "s", [seconds]),
        Figure("parquet_kib_per_run", section, "parquet bytes per run", "KiB",
               [sum(f.stat().st_size for f in files) / len(files) / 1024]),
    ], results, " ".join(command[1:])


def throughput(settings: Settings, work: Path) -> list[Figure]:
    """Runs per minute of one grid trained by a local sweep of one and of two processes (`--jobs 2`) and through 1
    and 2 Dask workers on this machine (`--workers`), start-up included, the modes interleaved in each repeat."""
    rates: dict[str, list[float]] = {mode: [] for mode in settings.sweep_modes}
    for repeat in range(settings.throughput_repeats):
        for mode, extra in ((m, SWEEP_MODES[m]) for m in settings.sweep_modes):
            results = work / f"throughput-{mode}-{repeat}"
            command = [sys.executable, "-m", "bench", "sweep", "--profile", settings.sweep_profile,
                       *settings.throughput_grid, *extra, "--results", str(results)]
            _, seconds = run_measured(command, work / f"throughput-{mode}.log")
            rates[mode].append(len(store.run_files(results)) / seconds * 60)
    runs = len(store.run_files(results))
    what = {"local": "one process, a cell's seeds side by side", "jobs_2": "2 such processes (--jobs 2)",
            "dask_1": "1 Dask worker (--workers 1)",
            "dask_2": "2 Dask workers (--workers 2)"}
    return [Figure(f"sweep_runs_per_min_{mode}", "7 · sweep throughput",
                   f"{settings.sweep_profile} sweep of {runs} runs, {what[mode]}, start-up included", "runs/min",
                   values) for mode, values in rates.items()]


def depth_scan(settings: Settings, work: Path) -> list[Figure]:
    """The depth scan of the sweep's profile, start-up included and as the scan itself records it."""
    results = work / "scan-results"
    command = [sys.executable, "-m", "bench", "scan", "--profile", settings.sweep_profile, "--results", str(results)]
    peak_mib, seconds = run_measured(command, work / "scan.log")
    _, metas = store.load_scans(results)
    if not metas:
        raise BenchmarkError(f"the depth scan wrote nothing into {results}")
    meta, section = metas[0], "6 · depth scan"
    what = f"{len(meta['scenarios'])} networks × {len(meta['depths'])} depths × {len(meta['seeds'])} seeds"
    return [
        Figure("scan_s", section, f"depth scan, {what}", "s", [meta["wall_time_s"]], bound=60.0,
               higher_is_better=False),
        Figure("scan_wall_s", section, "the same with start-up and data loading", "s", [seconds]),
        Figure("scan_peak_rss_mib", section, "peak resident memory, depth scan", "MiB", [peak_mib]),
    ]


# -- rendering: build the site from replicated results ---------------------------------------------


def quick_run_count() -> int:
    return len(sweep.grid(PROFILES["quick"], list(CATALOGUE), None, None))


def replicate_file(table: pa.Table, target: Path, copy: int) -> None:
    """A copy of a run under a new run_id and seed, in the metadata and in the columns."""
    run = json.loads(table.schema.metadata[store.METADATA_KEY])["run"]
    run = {**run, "run_id": f"{run['run_id']}-x{copy}", "seed": int(run["seed"]) + SEED_STRIDE * copy}
    for name, value, kind in (("run_id", run["run_id"], pa.string()), ("seed", run["seed"], pa.int32())):
        index = table.schema.get_field_index(name)
        table = table.set_column(index, name, pa.array([value] * table.num_rows, kind))
    meta = json.dumps({"schema_version": store.SCHEMA_VERSION, "run": run}, sort_keys=True)
    store.write_atomically(table.replace_schema_metadata({store.METADATA_KEY: meta}),
                           target / f"{run['run_id']}.parquet")


def replicate(source: Path, target: Path, count: int) -> None:
    """`count` runs: the source's files, then copies of them round-robin."""
    files = store.run_files(source)
    tables = [pq.read_table(f) for f in files]
    target.mkdir(parents=True)
    for k in range(count):
        copy, index = divmod(k, len(files))
        if copy == 0:
            shutil.copyfile(files[index], target / files[index].name)
        else:
            replicate_file(tables[index], target, copy)


def time_report(arguments: list[str], out: Path, cache: Path) -> tuple[float, float]:
    """(peak resident MiB, seconds) of `python -m report ARGUMENTS --out OUT` into a new folder, in its own process
    as a user runs it, with its run summaries cached in `cache` (report/summaries.py)."""
    shutil.rmtree(out, ignore_errors=True)
    command = [sys.executable, "-m", "report", *arguments, "--out", str(out)]
    return run_measured(command, out.with_suffix(".log"), {"GRADBENCH_CACHE": str(cache)})


def diff_figures(settings: Settings, results: Path, work: Path) -> list[Figure]:
    """`report diff` of a replicated folder and a copy of it (hard links: the same files in another folder), first
    with no summary cached, then with both folders' summaries cached; bounded as the build at 10,000 runs."""
    twin = work / f"{results.name}-twin"
    shutil.copytree(results, twin, copy_function=os.link)
    cache, count = work / "cache-diff", len(store.run_files(results))
    measured = [time_report(["diff", str(results), str(twin)], work / "diff-site", cache) for _ in range(2)]
    shutil.rmtree(twin)
    shutil.rmtree(cache)
    rows = []
    for (peak_mib, seconds), state, what in zip(measured, ("cold", "cached"), ("no summary cached",
                                                                               "summaries cached")):
        name = f"report diff of two replicated folders, {count} runs each, {what}"
        rows += [Figure(f"diff_s.{state}", "4 · rendering", name, "s", [seconds], higher_is_better=False),
                 Figure(f"diff_peak_rss_mib.{state}", "4 · rendering", f"peak resident memory, {name}", "MiB",
                        [peak_mib], bound=None if settings.tiny else BUILD_MIB, higher_is_better=False)]
    return rows


def growth_exponent(runs: list[int], seconds: list[float]) -> float:
    """Slope of log(time) against log(runs)."""
    return float(np.polyfit(np.log(runs), np.log(seconds), 1)[0])


TEN_THOUSAND = 10_000  # the run count the site build's targets are set at (issue 13)
BUILD_MIB = 1536.0  # the bound of a build's (and a diff's) peak memory at that count


SITE_MB = 15.0  # the quick profile's published site, figures and their data included (issue 24)


def rendering(settings: Settings, source: Path, work: Path, real_source: bool = False) -> list[Figure]:
    """Section 4: site builds of multiples of the quick profile's run count (tiny: of the source's runs), each
    first with no summary cached, then again with every run's summary cached; both draw every figure. At the count
    nearest 10,000 runs, `report diff` of two such folders, likewise. Then the sites' sizes; the size target holds
    for a real quick folder (`real_source`), not the footprint sweep's few scenarios."""
    base = len(store.run_files(source)) if settings.tiny else quick_run_count()
    counts = [base * scale for scale in settings.render_scales]
    at_target = min(counts, key=lambda c: abs(c - TEN_THOUSAND))
    builds: dict[tuple[str, int], list[tuple[float, float]]] = {}
    diffs = []
    for count in counts:
        results = work / f"results-{count}"
        replicate(source, results, count)
        for round_ in range(settings.render_repeats):
            cache = work / f"cache-{count}-{round_}"
            for state in ("cold", "cached"):
                builds.setdefault((state, count), []).append(
                    time_report(["build", "--results", str(results)], work / f"site-{count}", cache))
            shutil.rmtree(cache)
        if count == at_target:
            diffs = diff_figures(settings, results, work)
        shutil.rmtree(results)
    section = "4 · rendering"
    rows = []
    for state, what in (("cold", "no summary cached"), ("cached", "summaries cached")):
        for scale, count in zip(settings.render_scales, counts, strict=True):
            seconds, peaks = [s for _, s in builds[state, count]], [m for m, _ in builds[state, count]]
            bounded = count == at_target and not settings.tiny  # ≤ 60 s cold and cached (issue 24)
            rows += [Figure(f"render_s.{state}.x{scale}", section, f"site build, {count} runs ({scale}×), {what}", "s",
                            seconds, bound=60.0 if bounded else None, higher_is_better=False),
                     Figure(f"render_peak_rss_mib.{state}.x{scale}", section,
                            f"peak resident memory of the build and its workers, {count} runs, {what}", "MiB", peaks,
                            bound=BUILD_MIB if count == at_target and not settings.tiny else None,
                            higher_is_better=False)]
        slopes = [growth_exponent(counts, [builds[state, c][r][1] for c in counts])
                  for r in range(settings.render_repeats)]
        rows.append(Figure(f"render_growth_exponent.{state}", section,
                           f"growth exponent, log time vs log runs, {what}", "", slopes, bound=1.1,
                           higher_is_better=False))
    return rows + diffs + site_sizes(settings, counts, work, real_source)


def site_sizes(settings: Settings, counts: list[int], work: Path, real_source: bool) -> list[Figure]:
    """The 1× site's megabytes in total and by kind, and the largest build's total (figures draw at most 5
    seeds a cell and long runs at the resolution they are drawn, so it barely grows)."""
    section, first, last = "4 · rendering", sizes.site_bytes(work / f"site-{counts[0]}"), counts[-1]
    bound = SITE_MB if real_source and not settings.tiny else None
    rows = [Figure("site_mb.total", section, f"site size, {counts[0]} runs (1×)", "MB", [first["total"] / 1e6],
                   bound=bound, higher_is_better=False)]
    rows += [Figure(f"site_mb.{kind}", section, f"of which {kind} files", "MB", [first[kind] / 1e6])
             for kind in ("html", "svg", "data")]
    largest = sizes.site_bytes(work / f"site-{last}")["total"] / 1e6
    return rows + [Figure(f"site_mb.total.x{settings.render_scales[-1]}", section, f"site size, {last} runs",
                          "MB", [largest])]


# -- provenance, table, JSON and page --------------------------------------------------------------


RECORDER_BOUNDS = {"1": 1.10, "10": 1.03}  # the catalogue's sigmoid MLP, at every step and every 10th (issue 23)
RECORDER = "8 · the recorder's cost"


def recorder(settings: Settings, work: Path) -> list[Figure]:
    """What a Recorder costs a fit (bench/recorder_cost.py). Fit against plain fit, per repeat, swung between 0.5× and
    1.9× on a shared 2-core VM; an instrumented step against a plain one interleaved in one fit does not, so the targets
    are set on the cost that ratio r implies at every N-th step, 1 + (r - 1) / N."""
    from bench import recorder_cost

    data = training_data(settings)
    steps, figures = settings.train_samples // BATCH, []
    for kind, build in recorder_cost.MODELS.items():
        extra = (settings.width, settings.depth) if kind == "mlp" else ()
        model = lambda build=build, extra=extra: build(data.image_shape, data.num_classes, *extra)  # noqa: E731
        x = recorder_cost.inputs_for(kind, data.x_train)
        ratio = recorder_cost.step_ratio(model, x, data.y_train, steps, settings.recorder_epochs)
        figures.append(Figure(f"recorder.{kind}_step_ratio", RECORDER,
                              f"{kind}: an instrumented step / a plain step, interleaved in one fit", "×", [ratio]))
        for every, bound in RECORDER_BOUNDS.items():
            what = "every step" if every == "1" else f"every {every}th step"
            figures.append(Figure(f"recorder.{kind}_cost_every_{every}", RECORDER,
                                  f"{kind}: cost of recording {what}, from that ratio", "×",
                                  [1 + (ratio - 1) / int(every)], bound if kind == "mlp" else None,
                                  higher_is_better=False))
        times = recorder_cost.measure(model, x, data.y_train, steps, settings.recorder_epochs,
                                      settings.recorder_repeats)
        for name, values in recorder_cost.ratios(times).items():
            every = name.split("=")[1]
            what = "every step" if every == "1" else f"every {every}th step"
            figures.append(Figure(f"recorder.{kind}_every_{every}", RECORDER,
                                  f"{kind}: fit recorded at {what} / plain fit, per repeat", "×", values))
    return figures


def machine() -> dict:
    return dict(cpu=provenance.cpu_model(), cores=os.cpu_count(), affinity=len(os.sched_getaffinity(0)),
                platform=platform.platform(), **provenance.versions(), git_commit=provenance.git_commit())


def load_average() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def table(figures: list[Figure]) -> str:
    width = max(len(f.name) for f in figures) + 2
    header = f"{'figure':<{width + 2}} {'unit':<10} {'min':>9} {'median':>9} {'max':>9}  {'target':<8} met"
    lines, section = [header, "-" * len(header)], None
    for f in figures:
        if f.section != section:
            section = f.section
            lines.append(section)
        met = "" if f.met is None else ("yes" if f.met else "NO")
        lines.append(f"  {f.name:<{width}} {f.unit:<10} {fmt(f.min):>9} {fmt(f.median):>9} {fmt(f.max):>9}  "
                     f"{f.target:<8} {met}")
    return "\n".join(lines)


def write_page(out: Path) -> Path:
    """<out>/benchmark.html from <out>/benchmark.json, rendered by report (bench never imports report)."""
    out = out.resolve()  # the command runs in the project's folder
    command = [sys.executable, "-m", "report", "benchmark-page", str(out / "benchmark.json"), "--out", str(out)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise BenchmarkError(f"{' '.join(command)} failed: {done.stderr.strip()}")
    return Path(done.stdout.strip())


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def section(name: str, durations: dict, measure_section: Callable, *args):
    """Run one section, noting its wall time (and telling a waiting user on stderr)."""
    print(f"benchmark: {name}...", file=sys.stderr, flush=True)
    started = time.perf_counter()
    result = measure_section(*args)
    durations[name] = round(time.perf_counter() - started, 1)
    return result


SECTIONS = ("training", "footprint", "rendering", "scan", "throughput", "recorder")


def measure_all(settings: Settings, render_from: Path | None, only: tuple[str, ...] = SECTIONS
                ) -> tuple[list[Figure], dict]:
    """The figures of these sections, in section order, and the settings they were measured with."""
    durations: dict[str, float] = {}
    figures, setup, footprint_rows, sweep_results, sweep_run = [], {}, [], None, None
    with tempfile.TemporaryDirectory(prefix="gradbench-benchmark-") as tmp:
        work = Path(tmp)
        if "training" in only:
            figures, setup = section("training", durations, training, settings, work)
        if "footprint" in only or ("rendering" in only and render_from is None):
            footprint_rows, sweep_results, sweep_run = section("footprint", durations, footprint, settings, work)
        if "rendering" in only:
            figures += section("rendering", durations, rendering, settings, render_from or sweep_results, work,
                               render_from is not None)
        if "scan" in only:
            figures += section("depth scan", durations, depth_scan, settings, work)
        if "throughput" in only:
            figures += section("sweep throughput", durations, throughput, settings, work)
        if "recorder" in only:
            figures += section("recorder", durations, recorder, settings, work)
    source = str(render_from) if render_from else f"the footprint sweep's {settings.sweep_profile} runs"
    return figures + footprint_rows, {**asdict(settings), **setup, "footprint_command": sweep_run,
                                      "render_source": source, "section_seconds": durations}


def run(settings: Settings, out: Path, render_from: Path | None = None, only: tuple[str, ...] = SECTIONS) -> dict:
    """The measurements of these sections; writes benchmark.json and benchmark.html into `out` and returns the
    report."""
    started = dict(started_at=now(), load_average_start=load_average(), command=" ".join(sys.argv))
    figures, used = measure_all(settings, render_from, only)
    meta = {**started, **machine(), "finished_at": now(), "load_average_end": load_average()}
    report = {"provenance": meta, "settings": used, "figures": [f.as_dict() for f in figures]}
    out.mkdir(parents=True, exist_ok=True)
    (out / "benchmark.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    write_page(out)
    print(table(figures))
    print(f"load average at start {meta['load_average_start']}, at end {meta['load_average_end']} "
          f"({meta['affinity']} cores); written {out / 'benchmark.json'} and {out / 'benchmark.html'}")
    return report


def sections(text: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    unknown = [n for n in names if n not in SECTIONS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown section {', '.join(unknown) or '(none)'}; "
                                         f"valid: {', '.join(SECTIONS)}")
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.benchmark", description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="tiny model and data, 2 repeats, smoke sweep (tests)")
    parser.add_argument("--out", type=Path, default=Path("site"), help="folder for benchmark.json/.html (site)")
    parser.add_argument("--repeats", type=int, help="timed repeats of the training measurements")
    parser.add_argument("--render-from", type=Path,
                        help="results folder to replicate for the rendering figures (default: the footprint sweep's)")
    parser.add_argument("--only", type=sections, default=SECTIONS,
                        help=f"comma-separated sections to measure (default: all): {', '.join(SECTIONS)}")
    parser.add_argument("--configuration", choices=CONFIGURATIONS, help=argparse.SUPPRESS)  # a training child
    parser.add_argument("--json", type=Path, help=argparse.SUPPRESS)  # where the child writes its seconds
    args = parser.parse_args(argv)
    settings = TINY if args.tiny else FULL
    if args.repeats:
        settings = replace(settings, repeats=args.repeats)
    if args.configuration:
        args.json.write_text(json.dumps(measure_configuration(settings, args.configuration, take_turns)))
        return 0
    try:
        run(settings, args.out, args.render_from, args.only)
    except (BenchmarkError, store.StoreError) as err:
        print(f"benchmark: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
