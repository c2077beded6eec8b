"""One run: (scenario, depth, seed, profile, dataset) -> run metadata and tables."""

import inspect
import os
import random
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from bench import instrument, provenance
from bench.adam import FusedAdam
from bench.data import Dataset
from bench.models import build_model
from bench.scenarios import NOT_CONFIG, Profile, Scenario

STEPS_PER_CALL = 64  # optimizer steps per compiled call: statistics reach the host once per call
EVAL_BATCH = 512
GRAD_BINS = np.linspace(-12, 2, 57)  # log10 |g| bin edges; values outside land in the end bins
WEIGHT_BINS = 40


@dataclass(frozen=True)
class RunSpec:
    scenario: Scenario
    depth: int
    seed: int
    profile: Profile
    control: str = ""  # "" or a key of scenarios.CONTROLS: the perturbation this control run applies

    @property
    def width(self) -> int:
        return self.profile.width or self.scenario.width

    @property
    def steps(self) -> int | None:
        """The cell's budget in optimizer steps; None: whole epochs."""
        return self.profile.budget(self.scenario, self.depth)[0]

    @property
    def train_samples(self) -> int | None:
        return self.profile.budget(self.scenario, self.depth)[1]

    def epochs(self, steps_per_epoch: int) -> int:
        return self.profile.epochs if self.steps is None else -(-self.steps // steps_per_epoch)

    def steps_in_epoch(self, epoch: int, steps_per_epoch: int) -> int:
        if self.steps is None:
            return steps_per_epoch
        return max(0, min(steps_per_epoch, self.steps - (epoch - 1) * steps_per_epoch))


def configure_threads(xla: bool = False) -> dict:
    """TensorFlow's thread pools for this process; call before TensorFlow runs its first op.

    A batch-32 step is hundreds of small ops: split across cores, each costs more than it gains.
    One thread per op and two independent ops at a time (half the cores per op on bigger machines)
    trained the MLPs ~25 % faster than TensorFlow's default on 2 cores, the conv ResNet no slower
    (nox -s benchmark). XLA runs one op at a time, so it keeps the default pools. The thread counts
    change float results in the last bits, so they are part of a run's provenance."""
    if not xla:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(max(1, len(os.sched_getaffinity(0)) // 2))
            tf.config.threading.set_inter_op_parallelism_threads(2)
        except RuntimeError:  # TensorFlow already started its pools: keep them (provenance records them)
            pass
    return provenance.threads()


def clear_session() -> None:
    """Keras's clear_session without the full garbage collection Keras 3 runs in it: that collection walks every
    live object, and a sweep's objects grow cell by cell (TensorFlow keeps each traced while-loop's graphs), so it
    took 0.3 s a run at the start of a quick sweep and 1.4 s at its end, a fifth of the sweep. Python's own
    collections still run; no number depends on when."""
    if "free_memory" in inspect.signature(keras.backend.clear_session).parameters:
        keras.backend.clear_session(free_memory=False)
    else:  # Keras 2 collects nothing there
        keras.backend.clear_session()


def seed_everything(seed: int) -> None:
    clear_session()
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def make_optimizer(scenario: Scenario, variables):
    optimizer = FusedAdam(
        learning_rate=scenario.learning_rate, clipnorm=scenario.clipnorm, global_clipnorm=scenario.global_clipnorm
    )
    optimizer.build(variables)
    return optimizer


def epoch_batches(rng: np.random.Generator, samples: int, batch: int) -> np.ndarray:
    """One epoch's shuffled batch indices [steps, batch]; the last partial batch is dropped."""
    steps = samples // batch
    return rng.permutation(samples)[: steps * batch].reshape(steps, batch).astype(np.int32)


def chunks(indices: np.ndarray):
    for start in range(0, len(indices), STEPS_PER_CALL):
        yield start, indices[start : start + STEPS_PER_CALL]


def side_by_side_chunks(rngs: list[np.random.Generator], samples: int, batch: int, steps: int | None = None) -> list:
    """One epoch (its first `steps` steps) of several runs, each with its own data order: per chunk, each
    run's (first step, indices). The whole epoch's order is drawn either way, so a cut changes no later epoch."""
    return list(zip(*(chunks(epoch_batches(rng, samples, batch)[:steps]) for rng in rngs)))


def first_nonfinite(step_stats: np.ndarray, layer_stats: np.ndarray) -> tuple[int | None, int | None]:
    """(step, layer) of the first non-finite value in a chunk; layer None if only the loss broke."""
    checked = [instrument.LAYER_STATS.index(c) for c in ("kernel_grad_norm", "kernel_norm", "delta_norm")]
    bad_layers = ~np.isfinite(layer_stats[:, :, checked]).all(axis=2)
    watched = [instrument.STEP_STATS.index(c) for c in ("loss", "batch_accuracy", "grad_norm")]
    bad_steps = ~np.isfinite(step_stats[:, watched]).all(axis=1) | bad_layers.any(axis=1)
    if not bad_steps.any():
        return None, None
    step = int(np.argmax(bad_steps))
    layer = int(np.argmax(bad_layers[step])) if bad_layers[step].any() else None
    return step, layer


def make_evaluate(probe: instrument.Probe):
    @tf.function(reduce_retracing=True)
    def batch_sums(x, y):
        loss, accuracy, _, _ = instrument.forward(probe, x, y, training=False)
        n = tf.cast(tf.shape(y)[0], tf.float32)
        return loss * n, accuracy * n

    def evaluate(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        batches = range(0, len(y), EVAL_BATCH)
        sums = np.array([batch_sums(x[i : i + EVAL_BATCH], y[i : i + EVAL_BATCH]) for i in batches])
        return tuple(sums.sum(axis=0) / len(y))

    return evaluate


def uniform_histogram(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """np.histogram(values, bins=edges) for evenly spaced edges (np.linspace's), in linear time: numpy's
    equal-width path, which places each value by arithmetic and then checks it against these very edges, so
    the counts are the same; bins=edges sorts the values first (a run's histograms were 0.1 s an epoch). Edges
    that path would not make (a kernel of zeros: all edges 0) are counted as given."""
    if np.isfinite(edges).all() and edges[0] < edges[-1]:
        counts, found = np.histogram(values, bins=len(edges) - 1, range=(edges[0], edges[-1]))
        if np.array_equal(found, edges):
            return counts
    return np.histogram(values, bins=edges)[0]


def make_histograms(probe: instrument.Probe, x: np.ndarray, y: np.ndarray):
    """Weight and log10 |kernel gradient| histograms per layer, gradients on one fixed probe batch."""
    kernels = [instrument.weights_of(layer)[0] for layer in probe.layers]

    @tf.function
    def kernel_grads():
        with tf.GradientTape() as tape:
            loss, _, _, _ = instrument.forward(probe, x, y, training=False)
        return tape.gradient(loss, kernels)

    def histograms(epoch: int) -> list[dict]:
        rows = []
        for i, (kernel, grad) in enumerate(zip(kernels, kernel_grads())):
            w = np.asarray(kernel).ravel()
            limit = float(np.nanmax(np.abs(w))) if np.isfinite(w).any() else 1.0
            weight_edges = np.linspace(-limit, limit, WEIGHT_BINS + 1)
            logs = np.log10(np.abs(grad.numpy().ravel()) + 1e-30).clip(GRAD_BINS[0], GRAD_BINS[-1])
            for quantity, values, edges in (("weight", w, weight_edges), ("log10_abs_grad", logs, GRAD_BINS)):
                counts = uniform_histogram(values[np.isfinite(values)], edges)
                rows += [
                    dict(epoch=epoch, layer=i, quantity=quantity, bin_left=lo, bin_right=hi, count=c)
                    for lo, hi, c in zip(edges[:-1], edges[1:], counts)
                ]
        return rows

    return histograms


def step_frames(probe, stats: tuple, first_step, steps_per_epoch, log_every, keep_last=False) -> dict:
    """Long-format step, layer and time rows for a block of consecutive steps, keeping logged steps.

    stats: the chunk's (step [K, S], layer [K, L, LS], time [K, T, TS]) statistics."""
    steps = first_step + np.arange(len(stats[0]))
    keep = (steps % log_every == 0) | (keep_last & (steps == steps[-1]))
    steps, (step_stats, layer_stats, time_stats) = steps[keep], (s[keep] for s in stats)
    epochs = steps // steps_per_epoch + 1
    step_frame = pd.DataFrame(step_stats, columns=instrument.STEP_STATS).assign(step=steps, epoch=epochs)
    step_frame["clipped"] = step_frame["clipped"] > 0.5
    n_layers, n_times = len(probe.layers), time_stats.shape[1]
    layer_frame = pd.DataFrame(layer_stats.reshape(-1, len(instrument.LAYER_STATS)), columns=instrument.LAYER_STATS)
    layer_frame = layer_frame.assign(
        step=np.repeat(steps, n_layers),
        epoch=np.repeat(epochs, n_layers),
        layer=np.tile(np.arange(n_layers), len(steps)),
        layer_name=np.tile(probe.names, len(steps)),
        layer_role=np.tile(probe.roles, len(steps)),
    )
    time_frame = pd.DataFrame(time_stats.reshape(-1, len(instrument.TIME_STATS)), columns=instrument.TIME_STATS)
    time_frame = time_frame.assign(step=np.repeat(steps, n_times), epoch=np.repeat(epochs, n_times),
                                   time_step=np.tile(np.arange(1, n_times + 1), len(steps)))
    return {"step": step_frame, "layer": layer_frame, "time": time_frame}


@dataclass
class Compiled:
    """A model and its compiled functions; the seeds of one cell reuse them with fresh weights."""

    model: keras.Model
    probe: instrument.Probe
    optimizer: keras.optimizers.Optimizer
    optimizer_start: list  # optimizer variables right after build: Adam's state at step 0
    train_chunk: object
    evaluate: object
    histograms: object
    xla: bool

    def reset(self, weights: list) -> None:
        self.model.set_weights(weights)
        for variable, value in zip(self.optimizer.variables, self.optimizer_start):
            variable.assign(value)


@dataclass
class Cell:
    """The compiled models of one cell (scenario, depth, data, batch, XLA), built on demand and reused."""

    key: tuple
    runs: list[Compiled] = field(default_factory=list)
    calls: dict = field(default_factory=dict)  # ids of some of the runs -> one call training them


_cell: list[Cell] = []  # one slot: the last cell's graphs

# Scenario fields read only when the initial weights are drawn (initial_weights): every run's model has its
# weights set from those (Compiled.reset), so scenarios that differ only in these train with the same graphs
INIT_ONLY = ("initializer", "init_std", "recurrent_gain", "forget_bias")


def graph_key(spec: RunSpec) -> tuple:
    """What decides a run's compiled graphs besides its data: its scenario's other fields, depth and width."""
    fields = tuple((k, v) for k, v in asdict(spec.scenario).items() if k not in (*NOT_CONFIG, *INIT_ONLY))
    return fields, spec.depth, spec.width, spec.profile.batch_size


def compile_runs(spec: RunSpec, data: Dataset, jit_compile: bool, count: int = 1) -> list[Compiled]:
    """`count` models of the spec's cell, each with its own optimizer and compiled functions."""
    jit_compile = jit_compile and spec.scenario.architecture != "resnet"  # no deterministic XLA MaxPool grad
    key = (graph_key(spec), id(data), jit_compile)  # sigmoid_large_init reuses sigmoid's graphs at a depth
    if not _cell or _cell[0].key != key:
        _cell[:] = [Cell(key)]
    cell = _cell[0]
    while len(cell.runs) < count:
        cell.runs.append(compile_model(spec, data, jit_compile))
    return cell.runs[:count]


def compile_run(spec: RunSpec, data: Dataset, jit_compile: bool) -> Compiled:
    return compile_runs(spec, data, jit_compile)[0]


def compile_model(spec: RunSpec, data: Dataset, jit_compile: bool, statistics: bool = True) -> Compiled:
    """A fresh model, its optimizer and compiled functions (statistics=False: the benchmark's plain loop)."""
    model = build_model(spec.scenario, spec.depth, data.image_shape, data.num_classes, spec.width)
    probe = instrument.make_probe(model)
    optimizer = make_optimizer(spec.scenario, model.trainable_variables)
    train_chunk = instrument.make_train_chunk(
        probe, optimizer, tf.constant(data.x_train), tf.constant(data.y_train),
        spec.scenario.clipnorm, spec.scenario.global_clipnorm, jit_compile, statistics,
    )
    batch = spec.profile.batch_size
    return Compiled(model, probe, optimizer, [v.numpy() for v in optimizer.variables], train_chunk,
                    make_evaluate(probe), make_histograms(probe, data.x_train[:batch], data.y_train[:batch]),
                    jit_compile)


def train_side_by_side(runs: list[Compiled]):
    """One call that trains several models a chunk each: a list of [K, B] indices -> a (step, layer) pair each.

    Their graphs are independent, so one model's ops fill the core another's leave idle (its forward pass
    runs one op at a time) and each model's numbers are the ones it gets trained alone."""
    if len(runs) == 1:
        return lambda indices: [runs[0].train_chunk(indices[0])]
    calls, ids = _cell[0].calls, tuple(id(run) for run in runs)
    if ids not in calls:
        calls[ids] = tf.function(lambda indices: [run.train_chunk(i) for run, i in zip(runs, indices)],
                                 reduce_retracing=True)
    return calls[ids]


def initial_weights(spec: RunSpec, data: Dataset) -> list:
    """The seed's initial weights, from a model built right after seeding (perturbed for a control run)."""
    seed_everything(spec.seed)
    with own_python_random(spec.seed):
        weights = build_model(spec.scenario, spec.depth, data.image_shape, data.num_classes, spec.width).get_weights()
    return one_ulp_apart(weights, spec.seed) if spec.control == "init_ulp" else weights


def one_ulp_apart(weights: list, seed: int) -> list:
    """The control init_ulp: each non-zero weight one ulp up or down (a coin per weight, seeded by the run's
    seed); zeros stay zero, as a rounding difference leaves an exact zero alone."""
    coins = np.random.default_rng([seed, 1])
    moved = []
    for w in weights:
        towards = np.where(coins.random(w.shape) < 0.5, -np.inf, np.inf).astype(w.dtype)
        moved.append(np.where(w != 0, np.nextafter(w, towards), w))
    return moved


@contextmanager
def own_python_random(seed: int):
    """Keras 3 draws the seed of each unseeded initializer from Python's global `random`, which other threads
    also draw from (a Dask worker's event loop: its heartbeat jitter): draw them from a generator of the
    run's own, the same sequence that `random.seed(seed)` gives the global one. Keras 2 draws from TF's RNG."""
    module = sys.modules.get("keras.src.random.seed_generator")
    if getattr(module, "python_random", None) is not random:
        yield
        return
    module.python_random = random.Random(seed)
    try:
        yield
    finally:
        module.python_random = random


@dataclass
class Training:
    """One run in progress: its spec, model, data order, and what it has recorded so far."""

    spec: RunSpec
    run: Compiled
    rng: np.random.Generator
    outcome: dict
    tables: dict
    losses: list = field(default_factory=list)  # this epoch's batch (loss, accuracy) pairs, a chunk each

    @property
    def diverged(self) -> bool:
        return self.outcome["status"] == "diverged"


def begin(spec: RunSpec, run: Compiled, weights: list, data: Dataset, side_by_side: int) -> Training:
    run.reset(weights)
    outcome = {"status": "completed", "diverged_step": None, "diverged_layer": None, "steps_run": 0,
               "steps_per_epoch": len(data.y_train) // spec.profile.batch_size, "xla": run.xla,
               "runs_side_by_side": side_by_side}
    tables = {"step": [], "layer": [], "time": [], "epoch": [], "histogram": run.histograms(0)}
    return Training(spec, run, np.random.default_rng(spec.seed), outcome, tables)


def record_chunk(t: Training, stats: tuple[np.ndarray, ...], epoch: int, start: int) -> None:
    """Append a chunk's step, layer and time rows, up to and including its first non-finite value."""
    steps_per_epoch = t.outcome["steps_per_epoch"]
    bad_step, bad_layer = first_nonfinite(*stats[:2])
    end = len(stats[0]) if bad_step is None else bad_step + 1
    first = (epoch - 1) * steps_per_epoch + start
    frames = step_frames(t.run.probe, tuple(s[:end] for s in stats), first, steps_per_epoch,
                         t.spec.profile.log_every, keep_last=bad_step is not None)
    for kind, frame in frames.items():
        t.tables[kind].append(frame)
    t.losses.append(stats[0][:end, :2])
    t.outcome["steps_run"] = first + end
    if bad_step is not None:
        t.outcome.update(status="diverged", diverged_step=first + bad_step,
                         diverged_layer=None if bad_layer is None else t.run.probe.names[bad_layer])


def train_epoch(trainings: list[Training], data: Dataset, epoch: int, steps: int) -> None:
    """`steps` steps of one epoch of each run, a compiled chunk at a time, side by side; a run stops at
    its first non-finite value."""
    batch = trainings[0].spec.profile.batch_size
    for position in side_by_side_chunks([t.rng for t in trainings], len(data.y_train), batch, steps):
        live = [(t, chunk) for t, chunk in zip(trainings, position) if not t.diverged]
        if not live:
            return
        results = train_side_by_side([t.run for t, _ in live])([tf.constant(indices) for _, (_, indices) in live])
        for (t, (start, _)), stats in zip(live, results):
            record_chunk(t, tuple(s.numpy() for s in stats), epoch, start)


def end_epoch(t: Training, data: Dataset, epoch: int) -> None:
    train_loss, train_accuracy = np.concatenate(t.losses).mean(axis=0)
    t.losses = []
    test_loss, test_accuracy = t.run.evaluate(data.x_test, data.y_test)
    t.tables["epoch"].append(dict(epoch=epoch, train_loss=train_loss, train_accuracy=train_accuracy,
                                  test_loss=test_loss, test_accuracy=test_accuracy))
    t.tables["histogram"] += t.run.histograms(epoch)


def results(t: Training) -> tuple[dict, dict[str, pd.DataFrame]]:
    frames = {kind: pd.concat(t.tables[kind], ignore_index=True) for kind in ("step", "layer", "time")}
    return t.outcome, {**frames, "epoch": pd.DataFrame(t.tables["epoch"]),
                       "histogram": pd.DataFrame(t.tables["histogram"])}


def train_together(specs: list[RunSpec], data: Dataset, jit_compile: bool = False) -> list[tuple[dict, dict]]:
    """Train runs of one cell side by side; each one's outcome and tables (store.COLUMNS kinds).

    Each run's numbers are the ones it gets trained alone; wall_time_s is the whole call's."""
    if len({(spec.scenario, spec.depth, spec.profile) for spec in specs}) != 1:  # so they share a budget too
        raise ValueError("runs trained together must share scenario, depth and profile")
    started = time.perf_counter()
    weights = [initial_weights(spec, data) for spec in specs]
    runs = compile_runs(specs[0], data, jit_compile, len(specs))
    trainings = [begin(spec, run, w, data, len(specs)) for spec, run, w in zip(specs, runs, weights)]
    steps_per_epoch = trainings[0].outcome["steps_per_epoch"]
    for epoch in range(1, specs[0].epochs(steps_per_epoch) + 1):
        live = [t for t in trainings if not t.diverged]
        if not live:
            break
        train_epoch(live, data, epoch, specs[0].steps_in_epoch(epoch, steps_per_epoch))
        for t in live:
            if not t.diverged:
                end_epoch(t, data, epoch)
    for t in trainings:
        t.outcome["wall_time_s"] = round(time.perf_counter() - started, 3)
    return [results(t) for t in trainings]


def train(spec: RunSpec, data: Dataset, jit_compile: bool = False) -> tuple[dict, dict[str, pd.DataFrame]]:
    """Train one run; returns its outcome and its tables (store.COLUMNS kinds)."""
    return train_together([spec], data, jit_compile)[0]
