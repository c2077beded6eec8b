"""The depth scan: step-0 statistics of every MLP scenario over many depths and seeds.

No training: for each (scenario, depth, seed) the kernels are drawn by the Keras initializers the
model's layers use, and one batch of the run's dataset goes forward and back through build_model's
network in training mode (batch norm uses the batch's statistics, as in a train step), every seed
at once as a batched matmul. Building thousands of Keras models would take minutes; the network
here is the same function (tests/test_scan.py checks it against build_model's model, δ for δ).
A seed's network of depth L is the first L hidden layers of that seed's deepest network with an
output layer of its own: every (depth, seed) is a correct draw of a depth-L network, one forward
pass serves all depths, and the report's uncertainties come from resampling whole seeds.
Per hidden and output layer it records ‖δ‖ = ‖∂loss/∂z‖, ‖∂loss/∂W‖ and the RMS of the
pre-activation z (the forward spread, √q of the theory).

Scenarios that differ only in what happens after step 0 (optimizer, clipping, learning rate) share
their step-0 statistics; the scan measures each distinct network once, named by its first scenario
in catalogue order. Everything is float32, as in training: where ‖δ‖ falls below float32's range
it is recorded as 0, and the report says so instead of drawing it.
"""

import time
from dataclasses import asdict
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from bench import provenance, store
from bench.data import Dataset
from bench.models import initializer
from bench.scenarios import CATALOGUE, NOT_CONFIG, SCENARIOS, Scenario

DEPTHS = (1, 2, 3, 4, 6, 8, 11, 16, 21, 32, 48, 64)
SEEDS = tuple(range(10))
BATCH = 32  # samples per seed: one train batch, as at a run's step 0
VERSION = 2  # of the measurement: part of the scan's identity, so a changed method measures anew
STEP0_ONLY = ("learning_rate", "clipnorm", "global_clipnorm")  # Scenario fields that act after step 0


def network(scenario: Scenario) -> tuple:
    """What decides a scenario's network at step 0."""
    return tuple(v for k, v in asdict(scenario).items() if k not in (*NOT_CONFIG, *STEP0_ONLY))


def scenarios() -> dict[str, list[str]]:
    """MLP scenario measured -> every catalogue scenario that shares its step-0 network."""
    shared: dict[tuple, list[str]] = {}
    for scenario in CATALOGUE:
        if scenario.architecture in ("mlp", "resmlp"):
            shared.setdefault(network(scenario), []).append(scenario.name)
    return {names[0]: names for names in shared.values()}


ACTIVATIONS = {
    "sigmoid": tf.sigmoid, "tanh": tf.tanh, "relu": tf.nn.relu, "elu": tf.nn.elu, "linear": tf.identity,
    "leaky_relu": lambda x: tf.nn.leaky_relu(x, alpha=0.2),  # models.activate's slope
}  # fmt: skip
BN_EPSILON = 1e-3  # keras.layers.BatchNormalization's default


def draw_kernels(scenario: Scenario, depths, features: int, width: int, classes: int, seeds):
    """Per seed, the hidden kernels of the deepest network and one output kernel per depth, drawn by the
    layers' own Keras initializers (the scenario's; Keras's default glorot_uniform for the output).

    Returns (hidden, outputs): per layer (per depth) the seeds' kernels stacked [seeds, in, out]."""
    hidden_shapes = [(features, width), *[(width, width)] * (max(depths) - 1)]
    per_seed = []
    for seed in seeds:  # a new initializer per layer, as build_model makes: an unseeded Keras 3 initializer
        keras.utils.set_random_seed(seed)  # fixes its seed when it is made and returns the same values each call
        per_seed.append([initializer(scenario)(shape) for shape in hidden_shapes]
                        + [keras.initializers.GlorotUniform()((width, classes)) for _ in depths])
    stacked = [tf.stack(layer) for layer in zip(*per_seed)]
    return stacked[: len(hidden_shapes)], stacked[len(hidden_shapes) :]


def step0(scenario: Scenario, hidden: list, outputs: list, depths, x: tf.Tensor, y: tf.Tensor) -> dict:
    """build_model's network (zero biases, batch norm in training mode) for every seed at once.

    The network of depth L is the first L hidden layers followed by its own output layer, so one
    forward pass through the deepest serves every depth. hidden: [seeds, in, out] per layer; x
    [seeds, batch, features]; y [seeds, batch]. Returns per depth the statistics [seeds, L + 1]."""
    act = ACTIVATIONS[scenario.activation]
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([*hidden, *outputs])
        a, zs, activations = x, [], []
        for i, kernel in enumerate(hidden):
            z = tf.matmul(a, kernel)
            zs.append(z)
            if scenario.batch_norm:
                mean, variance = tf.nn.moments(z, axes=[1], keepdims=True)
                z = (z - mean) * tf.math.rsqrt(variance + BN_EPSILON)
            h = act(z)
            a = a + h if scenario.architecture == "resmlp" and i > 0 else h
            activations.append(a)
        heads = {}
        for depth, kernel in zip(depths, outputs):
            logits = tf.matmul(activations[depth - 1], kernel)
            losses = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits), axis=1)
            heads[depth] = (logits, kernel, losses, tf.reduce_sum(losses))  # each seed's gradient: its own loss's
    rms = np.stack([seed_rms(z) for z in zs], axis=1)
    stats = {}
    for depth, (logits, kernel, losses, total) in heads.items():
        grads = tape.gradient(total, [*zs[:depth], logits, *hidden[:depth], kernel])
        stats[depth] = {
            "delta_norm": seed_norms(grads[: depth + 1]),
            "kernel_grad_norm": seed_norms(grads[depth + 1 :]),
            "preactivation_rms": np.concatenate([rms[:, :depth], seed_rms(logits)[:, None]], axis=1),
            "loss": losses.numpy(),
        }  # fmt: skip
    del tape
    return stats


def seed_rms(t: tf.Tensor) -> np.ndarray:
    """[seeds] of the root mean square of t[seed]."""
    return np.sqrt(np.mean(np.square(t.numpy().astype(np.float64)), axis=(1, 2)))


def seed_norms(tensors) -> np.ndarray:
    """[seeds, layers] of ‖t[seed]‖, scaled by the largest entry first so tiny values do not square to zero."""
    columns = []
    for t in tensors:
        t = t.numpy().reshape(t.shape[0], -1).astype(np.float64)
        peak = np.abs(t).max(axis=1, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            scaled = np.where(peak > 0, t / peak, 0.0)
        columns.append(peak[:, 0] * np.sqrt(np.sum(np.square(scaled), axis=1)))
    return np.stack(columns, axis=1)


def batches(data: Dataset, seeds) -> tuple[tf.Tensor, tf.Tensor]:
    """One batch per seed, drawn from the training set by the seed: [seeds, batch, features], [seeds, batch]."""
    size = min(BATCH, len(data.y_train))
    picks = [np.random.default_rng(seed).choice(len(data.y_train), size=size, replace=False) for seed in seeds]
    x = np.stack([data.x_train[p].reshape(size, -1) for p in picks])
    return tf.constant(x), tf.constant(np.stack([data.y_train[p] for p in picks]))


def measure(scenario: Scenario, depths, seeds, data: Dataset, width: int | None = None) -> pd.DataFrame:
    """Long rows (depth, seed, layer) of one scenario, a fresh initialisation per seed."""
    hidden, outputs = draw_kernels(scenario, depths, data.features, width or scenario.width, data.num_classes, seeds)
    stats = step0(scenario, hidden, outputs, depths, *batches(data, seeds))
    frames = []
    for depth, values in stats.items():
        layers = depth + 1
        frames.append(pd.DataFrame({
            "scenario": scenario.name, "depth": depth, "seed": np.repeat(list(seeds), layers),
            "layer": np.tile(np.arange(layers), len(seeds)),
            "layer_role": np.tile(["hidden"] * depth + ["output"], len(seeds)),
            **{k: values[k].ravel() for k in ("delta_norm", "kernel_grad_norm", "preactivation_rms")},
            "loss": np.repeat(values["loss"], layers),
        }))  # fmt: skip
    return pd.concat(frames, ignore_index=True)


def config(data: Dataset, names, depths, seeds, width: int | None) -> dict:
    """What defines the scan's numbers; its hash names the file."""
    return {
        "kind": "depth_scan", "version": VERSION, "scenarios": list(names), "depths": list(depths),
        "seeds": list(seeds),
        "batch": BATCH, "width": width, "dataset": data.name, "train_samples": len(data.y_train),
        **provenance.versions(),
    }


def path_for(results: Path, cfg: dict) -> Path:
    return Path(results) / store.SCAN_FOLDER / f"scan-{cfg['dataset']}-{store.digest(cfg)}.parquet"


def scan(data: Dataset, results: Path, device: str, depths=DEPTHS, seeds=SEEDS, width: int | None = None,
         names: list[str] | None = None) -> tuple[Path, bool]:
    """Measure (or find already measured) the scan into results/scan/; returns (file, measured now)."""
    names = names or list(scenarios())
    cfg = config(data, names, depths, seeds, width)
    target = path_for(results, cfg)
    if target.exists():
        store.read_info(target, "scan", "depth scan")  # a damaged scan is named, not taken as measured
        return target, False
    started = time.perf_counter()
    with tf.device(device):
        frame = pd.concat(
            [measure(SCENARIOS[n], depths, seeds, data, width) for n in names],
            ignore_index=True,
        )
    meta = {**cfg, **provenance.provenance(device), "dataset_source": data.source,
            "input_features": data.features, "input_mean_square": float(np.mean(np.square(data.x_train))),
            "shared_by": scenarios(), "wall_time_s": round(time.perf_counter() - started, 3)}
    store.write_scan(target, meta, frame)
    return target, True
