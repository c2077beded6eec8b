"""The depth scan: the same network as build_model's, stored like a run, and held against the theory.

The scan runs on scikit-learn's bundled 8x8 digits (real data, offline) at the catalogue's width 256.
"""

import numpy as np
import pytest
import tensorflow as tf

from bench import data, scan, store
from bench.instrument import forward, make_probe
from bench.models import build_model
from bench.scenarios import SCENARIOS
from report import depth_scan

THEORY_SCENARIOS = ["sigmoid", "tanh", "relu_glorot", "relu_he"]


@pytest.fixture(scope="module")
def digits():
    return data.load("digits")


@pytest.fixture(scope="module")
def scanned(digits, tmp_path_factory):
    folder = tmp_path_factory.mktemp("scan")
    path, measured = scan.scan(digits, folder, "/CPU:0", names=THEORY_SCENARIOS)
    assert measured and path.parent.name == store.SCAN_FOLDER
    rows, metas = store.load_scans(folder)
    return folder, rows, metas[0]


@pytest.mark.parametrize("name", ["sigmoid", "relu_he_bn", "resmlp", "leaky_relu", "linear_large_init"])
def test_scan_network_is_build_model_s_network(name, digits):
    """δ and ‖∂L/∂W‖ of the scan's batched network equal those of the Keras model with the same weights."""
    scenario, depth, width = SCENARIOS[name], 4, 32
    model = build_model(scenario, depth, digits.image_shape, digits.num_classes, width)
    probe = make_probe(model)
    x, y = digits.x_train[:16], digits.y_train[:16]
    with tf.GradientTape() as tape:
        loss, _, zs, _ = forward(probe, tf.constant(x), tf.constant(y), training=True)
    kernels = [layer.kernel for layer in probe.layers]
    grads = tape.gradient(loss, [*zs, *kernels])
    expected_delta = [float(tf.norm(g)) for g in grads[: len(zs)]]
    expected_kernel = [float(tf.norm(g)) for g in grads[len(zs) :]]

    stacked = [tf.convert_to_tensor(k)[None] for k in kernels]
    stats = scan.step0(scenario, stacked[:-1], stacked[-1:], [depth], tf.constant(x.reshape(1, 16, -1)),
                       tf.constant(y[None]))[depth]
    np.testing.assert_allclose(stats["delta_norm"][0], expected_delta, rtol=2e-4)
    np.testing.assert_allclose(stats["kernel_grad_norm"][0], expected_kernel, rtol=2e-4)
    assert stats["loss"][0] == pytest.approx(float(loss), rel=1e-5)


def test_every_layer_and_seed_gets_its_own_draw():
    """An unseeded Keras 3 initializer returns the same values on every call: each layer needs its own."""
    hidden, outputs = scan.draw_kernels(SCENARIOS["relu_he"], [2, 3], 64, 32, 10, [0, 1])
    assert len(hidden) == 3 and len(outputs) == 2
    layers = [k.numpy() for k in hidden[1:]] + [k.numpy() for k in outputs]
    assert not np.allclose(layers[0], layers[1]) and not np.allclose(layers[2], layers[3])
    assert not np.allclose(hidden[1][0].numpy(), hidden[1][1].numpy())  # seeds differ
    again, _ = scan.draw_kernels(SCENARIOS["relu_he"], [2, 3], 64, 32, 10, [0, 1])
    np.testing.assert_array_equal(hidden[2].numpy(), again[2].numpy())  # and the seed fixes them


def test_scan_is_stored_with_provenance_and_resumes(scanned, digits):
    folder, rows, meta = scanned
    assert set(rows["scenario"]) == set(THEORY_SCENARIOS)
    assert sorted(rows["depth"].unique()) == list(scan.DEPTHS) and len(scan.DEPTHS) >= 12
    assert rows["seed"].nunique() == len(scan.SEEDS) >= 10
    assert meta["tf_version"] == tf.__version__ and meta["dataset"] == "digits" and meta["wall_time_s"] > 0
    hidden = rows[rows["layer_role"] == "hidden"].groupby(["scenario", "depth", "seed"]).size()
    assert (hidden.index.get_level_values("depth") == hidden.to_numpy()).all()  # depth L has L hidden layers
    path, measured = scan.scan(digits, folder, "/CPU:0", names=THEORY_SCENARIOS)
    assert not measured  # already there: not measured twice


def test_scan_measures_what_the_theory_predicts_within_3x(scanned):
    _, rows, meta = scanned
    table, figure_data = depth_scan.table(rows, meta)
    measured = figure_data[figure_data["source"] == "measured"].set_index(["scenario", "depth"])["median"]
    theory = figure_data[figure_data["source"] == "theory"].set_index(["scenario", "depth"])["median"]
    compared = 0
    for (name, depth), value in measured.items():
        predicted = theory.get((name, depth), np.nan)
        if depth >= 2 and np.isfinite(value) and value > 0 and np.isfinite(predicted) and predicted > 0:
            assert 1 / 3 <= value / predicted <= 3, (name, depth, value, predicted)
            compared += 1
    assert compared >= 4 * 9  # most depths of every scenario are measurable in float32
    assert theory.index.get_level_values("depth").nunique() == max(scan.DEPTHS)  # a curve at every depth


def test_model_selection_names_each_law(scanned):
    _, rows, meta = scanned
    laws = {r.scenario: r.measured for r in depth_scan.table(rows, meta)[0]}
    assert laws["sigmoid"].model == "exponential" and laws["sigmoid"].factor < 0.3
    assert laws["tanh"].model == "power law" and laws["tanh"].exponent < 0
    assert laws["relu_glorot"].model == "exponential"
    assert laws["relu_glorot"].factor_low <= 2**-0.5 <= laws["relu_glorot"].factor_high * 1.02
    assert laws["relu_he"].model == "flat"


def test_model_selection_on_exact_curves():
    depths = np.repeat(np.arange(1, 65), 2)
    seeds = np.tile([0, 1], 64)
    assert depth_scan.choose(depths, 0.5 ** (depths - 1.0), seeds).model == "exponential"
    assert depth_scan.choose(depths, depths ** -1.5, seeds).model == "power law"
    assert depth_scan.choose(depths, np.full(len(depths), 1.3), seeds).model == "flat"
    underflow = np.where(depths > 40, 0.0, 0.5 ** (depths - 1.0))
    assert depth_scan.choose(depths, underflow, seeds).unmeasurable == 2 * 24
