"""One run: (scenario, depth, seed, profile, dataset) -> run metadata and tables."""

import os
import time
from dataclasses import dataclass

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from bench import instrument, provenance
from bench.adam import FusedAdam
from bench.data import Dataset
from bench.models import build_model
from bench.scenarios import Profile, Scenario

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

    @property
    def width(self) -> int:
        return self.profile.width or self.scenario.width


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


def seed_everything(seed: int) -> None:
    keras.backend.clear_session()
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


def first_nonfinite(step_stats: np.ndarray, layer_stats: np.ndarray) -> tuple[int | None, int | None]:
    """(step, layer) of the first non-finite value in a chunk; layer None if only the loss broke."""
    checked = [instrument.LAYER_STATS.index(c) for c in ("kernel_grad_norm", "kernel_norm", "delta_norm")]
    bad_layers = ~np.isfinite(layer_stats[:, :, checked]).all(axis=2)
    bad_steps = ~np.isfinite(step_stats[:, :3]).all(axis=1) | bad_layers.any(axis=1)
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


def make_histograms(probe: instrument.Probe, x: np.ndarray, y: np.ndarray):
    """Weight and log10 |kernel gradient| histograms per layer, gradients on one fixed probe batch."""
    kernels = [layer.kernel for layer in probe.layers]

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
                counts, _ = np.histogram(values[np.isfinite(values)], bins=edges)
                rows += [
                    dict(epoch=epoch, layer=i, quantity=quantity, bin_left=lo, bin_right=hi, count=c)
                    for lo, hi, c in zip(edges[:-1], edges[1:], counts)
                ]
        return rows

    return histograms


def step_frames(probe, step_stats, layer_stats, first_step, steps_per_epoch, log_every, keep_last=False):
    """Long-format step and layer rows for a block of consecutive steps, keeping logged steps."""
    steps = first_step + np.arange(len(step_stats))
    keep = (steps % log_every == 0) | (keep_last & (steps == steps[-1]))
    steps, step_stats, layer_stats = steps[keep], step_stats[keep], layer_stats[keep]
    epochs = steps // steps_per_epoch + 1
    step_frame = pd.DataFrame(step_stats, columns=instrument.STEP_STATS).assign(step=steps, epoch=epochs)
    step_frame["clipped"] = step_frame["clipped"] > 0.5
    n_layers = len(probe.layers)
    layer_frame = pd.DataFrame(layer_stats.reshape(-1, len(instrument.LAYER_STATS)), columns=instrument.LAYER_STATS)
    layer_frame = layer_frame.assign(
        step=np.repeat(steps, n_layers),
        epoch=np.repeat(epochs, n_layers),
        layer=np.tile(np.arange(n_layers), len(steps)),
        layer_name=np.tile(probe.names, len(steps)),
        layer_role=np.tile(probe.roles, len(steps)),
    )
    return step_frame, layer_frame


@dataclass
class Compiled:
    """A model and its compiled functions; the seeds of one cell reuse them with fresh weights."""

    key: tuple
    model: keras.Model
    probe: instrument.Probe
    optimizer: keras.optimizers.Optimizer
    optimizer_start: list  # optimizer variables right after build: Adam's state at step 0
    train_chunk: object
    evaluate: object
    histograms: object

    @property
    def xla(self) -> bool:
        return self.key[-1]

    def reset(self, weights: list) -> None:
        self.model.set_weights(weights)
        for variable, value in zip(self.optimizer.variables, self.optimizer_start):
            variable.assign(value)


_compiled: list[Compiled] = []  # one slot: the last cell's graph


def compile_run(spec: RunSpec, data: Dataset, jit_compile: bool) -> Compiled:
    """Build and trace once per (scenario, depth, data, batch, XLA); later seeds reuse the graph."""
    jit_compile = jit_compile and spec.scenario.architecture != "resnet"  # no deterministic XLA MaxPool grad
    key = (spec.scenario, spec.depth, spec.width, spec.profile.batch_size, id(data), jit_compile)
    if _compiled and _compiled[0].key == key:
        return _compiled[0]
    model = build_model(spec.scenario, spec.depth, data.image_shape, data.num_classes, spec.width)
    probe = instrument.make_probe(model)
    optimizer = make_optimizer(spec.scenario, model.trainable_variables)
    train_chunk = instrument.make_train_chunk(
        probe, optimizer, tf.constant(data.x_train), tf.constant(data.y_train),
        spec.scenario.clipnorm, spec.scenario.global_clipnorm, jit_compile,
    )
    batch = spec.profile.batch_size
    compiled = Compiled(key, model, probe, optimizer, [v.numpy() for v in optimizer.variables], train_chunk,
                        make_evaluate(probe), make_histograms(probe, data.x_train[:batch], data.y_train[:batch]))
    _compiled[:] = [compiled]
    return compiled


def initial_weights(spec: RunSpec, data: Dataset) -> list:
    """The seed's initial weights, from a model built right after seeding."""
    seed_everything(spec.seed)
    return build_model(spec.scenario, spec.depth, data.image_shape, data.num_classes, spec.width).get_weights()


def train_epoch(run: Compiled, spec: RunSpec, data: Dataset, rng, epoch: int, tables: dict, outcome: dict):
    """One epoch, a compiled chunk at a time; stops at the first non-finite value.

    Appends step and layer rows to `tables`; returns the epoch's batch (loss, accuracy) pairs."""
    steps_per_epoch = outcome["steps_per_epoch"]
    losses = []
    for start, indices in chunks(epoch_batches(rng, len(data.y_train), spec.profile.batch_size)):
        step_stats, layer_stats = (t.numpy() for t in run.train_chunk(tf.constant(indices)))
        bad_step, bad_layer = first_nonfinite(step_stats, layer_stats)
        end = len(step_stats) if bad_step is None else bad_step + 1
        first = (epoch - 1) * steps_per_epoch + start
        step_frame, layer_frame = step_frames(run.probe, step_stats[:end], layer_stats[:end], first,
                                              steps_per_epoch, spec.profile.log_every, keep_last=bad_step is not None)
        tables["step"].append(step_frame)
        tables["layer"].append(layer_frame)
        losses.append(step_stats[:end, :2])
        outcome["steps_run"] = first + end
        if bad_step is not None:
            outcome.update(status="diverged", diverged_step=first + bad_step,
                           diverged_layer=None if bad_layer is None else run.probe.names[bad_layer])
            break
    return np.concatenate(losses)


def train(spec: RunSpec, data: Dataset, jit_compile: bool = False) -> tuple[dict, dict[str, pd.DataFrame]]:
    """Train one run; returns its outcome and its tables (store.COLUMNS kinds)."""
    started = time.perf_counter()
    weights = initial_weights(spec, data)
    run = compile_run(spec, data, jit_compile)
    run.reset(weights)
    rng = np.random.default_rng(spec.seed)
    tables = {"step": [], "layer": [], "epoch": [], "histogram": run.histograms(0)}
    outcome = {"status": "completed", "diverged_step": None, "diverged_layer": None, "steps_run": 0,
               "steps_per_epoch": len(data.y_train) // spec.profile.batch_size, "xla": run.xla}
    for epoch in range(1, spec.profile.epochs + 1):
        losses = train_epoch(run, spec, data, rng, epoch, tables, outcome)
        if outcome["status"] == "diverged":
            break
        train_loss, train_accuracy = losses.mean(axis=0)
        test_loss, test_accuracy = run.evaluate(data.x_test, data.y_test)
        tables["epoch"].append(dict(epoch=epoch, train_loss=train_loss, train_accuracy=train_accuracy,
                                    test_loss=test_loss, test_accuracy=test_accuracy))
        tables["histogram"] += run.histograms(epoch)
    outcome["wall_time_s"] = round(time.perf_counter() - started, 3)
    frames = {kind: pd.concat(tables[kind], ignore_index=True) for kind in ("step", "layer")}
    return outcome, {**frames, "epoch": pd.DataFrame(tables["epoch"]), "histogram": pd.DataFrame(tables["histogram"])}
