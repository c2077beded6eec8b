"""bench/models.py: every catalogue scenario's network is the one bench/scenarios.py describes — its weight layers,
their initialisers, its nonlinearity, depth, batch norm, residual paths and recurrent cell — and the recurrent
networks' time probe measures ∂loss/∂h_t."""

import re

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import layers

from bench.models import build_model, resnet_stages
from bench.scenarios import CATALOGUE, SCENARIOS

IMAGE = (8, 8, 1)
CLASSES = 10
FEEDFORWARD = [s for s in CATALOGUE if s.architecture in ("mlp", "resmlp")]
RECURRENT = [s for s in CATALOGUE if s.architecture == "rnn"]


def weight_layers(model: keras.Model, role: str) -> list:
    return [layer for layer in model.layers if re.fullmatch(f"{role}__[0-9]{{2}}", layer.name)]


def applied(activation: str, x: np.ndarray) -> np.ndarray:
    """What the scenario's activation does, computed here."""
    return {"sigmoid": lambda v: 1 / (1 + np.exp(-v)), "tanh": np.tanh, "linear": lambda v: v,
            "relu": lambda v: np.maximum(v, 0), "leaky_relu": lambda v: np.where(v > 0, v, 0.2 * v),
            "elu": lambda v: np.where(v > 0, v, np.expm1(v))}[activation](x)


@pytest.fixture(scope="module")
def feedforward():
    return {s.name: build_model(s, 3, IMAGE, CLASSES, width=64) for s in FEEDFORWARD}


@pytest.mark.parametrize("scenario", FEEDFORWARD, ids=lambda s: s.name)
def test_an_mlp_has_depth_hidden_dense_layers_each_followed_by_the_scenario_s_activation(feedforward, scenario):
    model = feedforward[scenario.name]
    hidden = weight_layers(model, "hidden")
    assert [layer.name for layer in hidden] == ["hidden__00", "hidden__01", "hidden__02"]
    (output,) = weight_layers(model, "output")
    assert all(isinstance(layer, layers.Dense) and layer.units == 64 for layer in hidden)
    assert output.units == CLASSES and model.layers[-1] is output
    x = np.linspace(-3, 3, 13, dtype="float32")[None, :]
    for layer in [*hidden, output]:  # no activation inside a weight layer: its output is the pre-activation z
        assert layer.get_config()["activation"] == "linear", layer.name
    for layer in hidden:
        act = model.get_layer(f"{layer.name}_act")
        np.testing.assert_allclose(act(x).numpy(), applied(scenario.activation, x), rtol=1e-5, atol=1e-6)
    assert model(np.zeros((2, *IMAGE), "float32")).shape == (2, CLASSES)


@pytest.mark.parametrize("scenario", FEEDFORWARD, ids=lambda s: s.name)
def test_batch_norm_sits_between_each_dense_layer_and_its_activation_exactly_when_the_scenario_says(
        feedforward, scenario):
    model = feedforward[scenario.name]
    norms = [layer for layer in model.layers if isinstance(layer, layers.BatchNormalization)]
    assert len(norms) == (3 if scenario.batch_norm else 0)
    for layer in weight_layers(model, "hidden"):
        act = model.get_layer(f"{layer.name}_act")
        before = model.get_layer(f"{layer.name}_bn") if scenario.batch_norm else layer
        assert act.input is before.output, layer.name
        if scenario.batch_norm:
            assert before.input is layer.output


@pytest.mark.parametrize("scenario", FEEDFORWARD, ids=lambda s: s.name)
def test_residual_blocks_add_their_input_exactly_in_a_residual_mlp(feedforward, scenario):
    model = feedforward[scenario.name]
    adds = [layer for layer in model.layers if isinstance(layer, layers.Add)]
    if scenario.architecture != "resmlp":
        assert adds == []
        return
    assert [a.name for a in adds] == ["add__01", "add__02"]
    stem = model.get_layer("hidden__00_act").output
    assert adds[0].input[0] is stem and adds[0].input[1] is model.get_layer("hidden__01_act").output
    assert adds[1].input[0] is adds[0].output


def expected_std(scenario, fan_in: int, fan_out: int) -> float:
    return {"glorot_uniform": np.sqrt(2 / (fan_in + fan_out)), "he_normal": np.sqrt(2 / fan_in),
            "normal": scenario.init_std}[scenario.initializer]


@pytest.mark.parametrize("scenario", FEEDFORWARD, ids=lambda s: s.name)
def test_hidden_weights_are_drawn_from_the_scenario_s_initialiser(scenario):
    model = build_model(scenario, 2, (16, 16, 1), CLASSES, width=256)
    kernel = model.get_layer("hidden__01").kernel.numpy()  # 256 x 256: std within a few percent
    assert kernel.std() == pytest.approx(expected_std(scenario, 256, 256), rel=0.03)
    if scenario.initializer == "glorot_uniform":  # uniform on ±sqrt(6 / (fan_in + fan_out))
        assert np.abs(kernel).max() <= np.sqrt(6 / 512) and np.abs(kernel).max() > 0.98 * np.sqrt(6 / 512)
    elif scenario.initializer == "normal":  # 65,536 draws of a normal reach beyond 3.5 standard deviations
        assert np.abs(kernel).max() > 3.5 * scenario.init_std
    else:  # He normal is truncated at two standard deviations of the normal it scales up (by 1 / 0.8796)
        assert np.abs(kernel).max() <= 2 / 0.8796 * expected_std(scenario, 256, 256) * 1.001
    first = model.get_layer("hidden__00").kernel.numpy()  # 256 inputs too
    assert first.std() == pytest.approx(expected_std(scenario, 256, 256), rel=0.03)
    assert not np.any(model.get_layer("hidden__01").bias.numpy())


def test_the_resnet_has_the_article_s_stages_and_a_projection_at_each_stride():
    assert resnet_stages(6) == [(64, 1), (64, 1), (128, 2), (128, 1), (256, 2), (256, 1)]
    assert resnet_stages(3) == [(64, 1), (128, 2), (256, 2)]
    scenario = SCENARIOS["resnet"]
    model = build_model(scenario, 3, IMAGE, CLASSES)
    hidden, shortcuts = weight_layers(model, "hidden"), weight_layers(model, "shortcut")
    assert len(hidden) == 1 + 2 * 3 and all(isinstance(c, layers.Conv2D) for c in hidden)
    assert [c.filters for c in hidden] == [64, 64, 64, 128, 128, 256, 256]
    assert [c.kernel_size for c in hidden] == [(7, 7), *[(3, 3)] * 6]
    assert [(c.filters, c.kernel_size, c.strides) for c in shortcuts] == [(128, (1, 1), (2, 2)),
                                                                          (256, (1, 1), (2, 2))]
    assert len([layer for layer in model.layers if isinstance(layer, layers.Add)]) == 3
    assert len([layer for layer in model.layers if isinstance(layer, layers.BatchNormalization)]) == 7
    assert all(isinstance(c.kernel_initializer, keras.initializers.HeNormal) for c in [*hidden, *shortcuts])
    assert model(np.zeros((2, *IMAGE), "float32")).shape == (2, CLASSES)


LENGTH, FEATURES = 5, 3


@pytest.fixture(scope="module")
def recurrent():
    return {s.name: build_model(s, LENGTH, (LENGTH, FEATURES), CLASSES, width=8) for s in RECURRENT}


def inputs(seed: int = 0, probe_scale: float = 0.0):
    rng = np.random.default_rng(seed)
    sequence = rng.normal(size=(4, LENGTH, FEATURES)).astype("float32")
    return sequence, (probe_scale * rng.normal(size=(4, LENGTH, 8))).astype("float32")


@pytest.mark.parametrize("scenario", RECURRENT, ids=lambda s: s.name)
def test_a_recurrent_network_has_the_scenario_s_cell_gain_and_forget_bias(recurrent, scenario):
    model = recurrent[scenario.name]
    assert [i.name for i in model.inputs] == ["sequence", "time_probe"]
    rnn = model.get_layer("recurrent__00")
    cell = rnn.cell.cell
    kind = {"simple": layers.SimpleRNNCell, "lstm": layers.LSTMCell, "gru": layers.GRUCell}[scenario.cell]
    assert type(cell) is kind and cell.units == 8
    if scenario.cell == "simple":
        x = np.linspace(-3, 3, 13, dtype="float32")
        np.testing.assert_allclose(cell.activation(x).numpy(), applied(scenario.activation, x), atol=1e-6)
        u = cell.recurrent_kernel.numpy()  # Orthogonal(gain): u^T u = gain^2 I
        np.testing.assert_allclose(u.T @ u, scenario.recurrent_gain**2 * np.eye(8), atol=1e-5)
    if scenario.cell == "lstm":
        bias = cell.bias.numpy()  # gate blocks i, f, c, o
        np.testing.assert_array_equal(bias[8:16], np.full(8, scenario.forget_bias, "float32"))
        assert not bias[:8].any() and not bias[16:].any()
    logits = model(inputs())
    assert logits.shape == (4, CLASSES)


@pytest.mark.parametrize("scenario", RECURRENT, ids=lambda s: s.name)
def test_the_time_probe_leaves_the_loss_alone_at_zero_and_its_gradient_is_dl_dh(recurrent, scenario):
    model = recurrent[scenario.name]
    sequence, zeros = inputs()
    _, noise = inputs(probe_scale=0.5)
    unprobed = model([sequence, zeros]).numpy()
    assert not np.allclose(unprobed, model([sequence, noise]).numpy())  # the probe is inside the recurrence...
    weights = tf.constant(np.random.default_rng(1).normal(size=(4, CLASSES)).astype("float32"))
    probe = tf.constant(zeros)
    with tf.GradientTape() as tape:
        tape.watch(probe)
        loss = tf.reduce_sum(model([tf.constant(sequence), probe]) * weights)
    grad = tape.gradient(loss, probe).numpy()
    output = model.get_layer("output__00").kernel.numpy()
    # ... and at the last step its gradient is ∂loss/∂h_T through the output layer alone
    np.testing.assert_allclose(grad[:, -1], weights.numpy() @ output.T, rtol=1e-4, atol=1e-6)
    assert np.abs(grad[:, 0]).sum() > 0  # the first step reaches the loss through every later one


def test_an_lstm_outputs_its_forget_gate_beside_the_state(recurrent):
    model = recurrent["lstm_forget_bias"]
    states = keras.Model(model.inputs, model.get_layer("recurrent__00").output)(inputs())
    assert states.shape == (4, LENGTH, 16)
    gate = states.numpy()[..., 8:]
    assert ((gate > 0) & (gate < 1)).all()
    assert gate.mean() > 0.85  # bias 3: σ(3) ≈ 0.95 at step 0, a gate that starts open
    plain = recurrent["lstm"]
    gate_1 = keras.Model(plain.inputs, plain.get_layer("recurrent__00").output)(inputs()).numpy()[..., 8:]
    assert gate_1.mean() < gate.mean()
