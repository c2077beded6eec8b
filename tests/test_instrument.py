"""Oracle: the statistics of the compiled train step against an independent numpy backprop."""

from dataclasses import replace

import numpy as np
import pytest
import tensorflow as tf

from bench import instrument, train
from bench.models import build_model
from bench.scenarios import PROFILES, SCENARIOS

SMOKE = PROFILES["smoke"]


def numpy_backprop(weights, x, y, activation):
    """Loss, per-layer δ = dL/dz, kernel and bias gradients and outputs φ(z) (the last: z) of a Dense MLP, by hand."""
    phi, dphi = {
        "sigmoid": (lambda z: 1 / (1 + np.exp(-z)), lambda z: np.exp(-z) / (1 + np.exp(-z)) ** 2),
        "linear": (lambda z: z, lambda z: np.ones_like(z)),
    }[activation]
    a, zs, inputs = x.reshape(len(x), -1).astype(np.float64), [], []
    pairs = list(zip(weights[::2], weights[1::2]))
    for i, (w, b) in enumerate(pairs):
        inputs.append(a)
        zs.append(a @ w + b)
        a = phi(zs[-1]) if i < len(pairs) - 1 else zs[-1]
    p = np.exp(a - a.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    loss = -np.mean(np.log(p[np.arange(len(y)), y]))
    delta = (p - np.eye(p.shape[1])[y]) / len(y)
    deltas, kernel_grads, bias_grads = [], [], []
    for i in reversed(range(len(pairs))):
        deltas.insert(0, delta)
        kernel_grads.insert(0, inputs[i].T @ delta)
        bias_grads.insert(0, delta.sum(0))
        if i:
            delta = (delta @ pairs[i][0].T) * dphi(zs[i - 1])
    return loss, deltas, kernel_grads, bias_grads, [*inputs[1:], a]


def one_step(scenario, synthetic, depth=4):
    """Run one compiled step; return weights before, weights after, step and layer statistics."""
    spec = train.RunSpec(scenario, depth, 0, SMOKE)
    run = train.compile_run(spec, synthetic, jit_compile=False)
    run.reset(train.initial_weights(spec, synthetic))
    before = [w.astype(np.float64) for w in run.model.get_weights()]
    indices = np.arange(SMOKE.batch_size, dtype=np.int32)[None]
    step_stats, layer_stats, _ = (t.numpy() for t in run.train_chunk(tf.constant(indices)))
    after = [w.astype(np.float64) for w in run.model.get_weights()]
    return before, after, step_stats[0], layer_stats[0], indices[0]


@pytest.mark.parametrize("name", ["sigmoid", "linear_clipnorm"])
def test_layer_statistics_match_numpy_backprop(name, synthetic):
    scenario = SCENARIOS[name]
    before, after, steps, layers, batch = one_step(scenario, synthetic)
    x, y = synthetic.x_train[batch], synthetic.y_train[batch]
    loss, deltas, kernel_grads, bias_grads, outputs = numpy_backprop(before, x, y, scenario.activation)
    stat = {s: layers[:, i] for i, s in enumerate(instrument.LAYER_STATS)}
    np.testing.assert_allclose(steps[0], loss, rtol=1e-5)
    np.testing.assert_allclose(stat["delta_norm"], [np.linalg.norm(d) for d in deltas], rtol=1e-4)
    np.testing.assert_allclose(stat["kernel_grad_norm"], [np.linalg.norm(g) for g in kernel_grads], rtol=1e-4)
    np.testing.assert_allclose(stat["bias_grad_norm"], [np.linalg.norm(g) for g in bias_grads], rtol=1e-4)
    np.testing.assert_allclose(stat["kernel_norm"], [np.linalg.norm(w) for w in before[::2]], rtol=1e-5)
    updates = [np.linalg.norm(a - b) / np.linalg.norm(b) for a, b in zip(after[::2], before[::2])]
    np.testing.assert_allclose(stat["update_ratio"], updates, rtol=1e-3)
    np.testing.assert_allclose(stat["activation_rms"], [np.sqrt(np.mean(o**2)) for o in outputs], rtol=1e-4)


def test_a_chunk_of_steps_records_what_one_call_per_step_records(synthetic):
    """Each step's update is measured in the next loop iteration (the last one after the loop): no shift."""
    spec = train.RunSpec(SCENARIOS["sigmoid"], 3, 0, SMOKE)
    run, weights = train.compile_run(spec, synthetic, jit_compile=False), train.initial_weights(spec, synthetic)
    indices = np.arange(3 * SMOKE.batch_size, dtype=np.int32).reshape(3, SMOKE.batch_size)
    run.reset(weights)
    together = [t.numpy() for t in run.train_chunk(tf.constant(indices))]
    run.reset(weights)
    apart = [[t.numpy() for t in run.train_chunk(tf.constant(indices[i : i + 1]))] for i in range(3)]
    for kind in (0, 1):
        np.testing.assert_allclose(together[kind], np.concatenate([a[kind] for a in apart]), rtol=1e-6)
    ratios = together[1][:, :, instrument.LAYER_STATS.index("update_ratio")]
    assert np.all(ratios > 0) and not np.allclose(ratios[0], ratios[1])


@pytest.mark.parametrize("name", ["sigmoid", "relu_he"])
def test_statistics_leave_the_training_arithmetic_alone(name, synthetic):
    """Trained with statistics on or off, a model gets the same losses and weights, bit for bit: measuring reads
    the nonlinearity's output, so TensorFlow still fuses it into the matmul as it does without statistics."""
    spec = train.RunSpec(SCENARIOS[name], 3, 0, SMOKE)
    weights = train.initial_weights(spec, synthetic)
    indices = tf.constant(np.arange(4 * SMOKE.batch_size, dtype=np.int32).reshape(4, SMOKE.batch_size))
    trained = []
    for statistics in (True, False):
        run = train.compile_model(spec, synthetic, jit_compile=False, statistics=statistics)
        run.reset(weights)
        trained.append([run.train_chunk(indices)[0].numpy()[:, 0], *run.model.get_weights()])
    for on, off in zip(*trained):
        np.testing.assert_array_equal(on, off)


def test_clipping_statistics_match_keras_clipping(synthetic):
    """grad_norm_clipped is the global norm of what Adam(clipnorm=1) really applies."""
    scenario = SCENARIOS["linear_clipnorm"]
    before, _, steps, _, batch = one_step(scenario, synthetic)
    _, _, kernel_grads, bias_grads, _ = numpy_backprop(before, synthetic.x_train[batch], synthetic.y_train[batch],
                                                       "linear")
    norms = np.array([np.linalg.norm(g) for pair in zip(kernel_grads, bias_grads) for g in pair])
    clipped = [tf.clip_by_norm(tf.constant(n, tf.float64)[None], scenario.clipnorm).numpy()[0] for n in norms]
    step = dict(zip(instrument.STEP_STATS, steps))
    np.testing.assert_allclose(step["grad_norm"], np.linalg.norm(norms), rtol=1e-4)
    np.testing.assert_allclose(step["grad_norm_clipped"], np.linalg.norm(clipped), rtol=1e-4)
    assert bool(step["clipped"]) == bool((norms > scenario.clipnorm).any())


def test_probe_finds_every_weight_layer_and_its_nonlinearity():
    model = build_model(replace(SCENARIOS["resnet"]), 3, (8, 8, 1), 10)
    probe = instrument.make_probe(model)
    assert probe.roles.count("output") == 1 and probe.roles.count("shortcut") == 2
    assert probe.roles.count("hidden") == 1 + 2 * 3
    assert all(a == "relu" for a, r in zip(probe.activations, probe.roles) if r == "hidden")
