"""build_model(scenario, depth): the scenario's network from standard Keras layers.

Every weight layer (Dense/Conv2D) has no activation of its own, so its output is the
pre-activation z whose gradient δ = ∂loss/∂z the instrumentation records. The layer that
applies the nonlinearity after it is named `<weight layer>_act`; instrument.py finds it by
that name to measure saturated or dead units on its output. The model outputs logits.

A recurrent network (architecture "rnn") has two inputs: the sequence, and a `time_probe` of zeros
[T, width] that is added to the hidden state h_t at every step, inside the recurrence. The loss does
not change, but the gradient with respect to the probe is ∂loss/∂h_t through all later steps: the
temporal δ. The LSTM's recurrent layer also outputs its forget gate beside h_t.
"""

import keras
import tensorflow as tf
from keras import layers

from bench.scenarios import Scenario

ROLE_SEPARATOR = "__"  # layer names are "<role>__<index>", e.g. hidden__03, output__00


def initializer(scenario: Scenario):
    if scenario.initializer == "normal":
        return keras.initializers.RandomNormal(stddev=scenario.init_std)
    return keras.initializers.get(scenario.initializer)


def weight_name(role: str, index: int) -> str:
    return f"{role}{ROLE_SEPARATOR}{index:02d}"


def activate(x, name: str, activation: str):
    """The nonlinearity after a weight layer, as its own named layer."""
    if activation == "leaky_relu":  # LeakyReLU's own default slope on Keras 2 and 3 differs: fix it
        return layers.LeakyReLU(0.2, name=f"{name}_act")(x)
    return layers.Activation(activation, name=f"{name}_act")(x)


def dense_unit(x, scenario: Scenario, index: int, width: int):
    """Dense -> [BN] -> activation; returns the activated output."""
    name = weight_name("hidden", index)
    x = layers.Dense(width, kernel_initializer=initializer(scenario), name=name)(x)
    if scenario.batch_norm:
        x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return activate(x, name, scenario.activation)


def mlp(x, scenario: Scenario, depth: int, width: int):
    for i in range(depth):
        x = dense_unit(x, scenario, i, width)
    return x


def resmlp(x, scenario: Scenario, depth: int, width: int):
    """A Dense stem to `width`, then depth-1 blocks x + ReLU(BN(Dense(x)))."""
    x = dense_unit(x, scenario, 0, width)
    for i in range(1, depth):
        x = layers.Add(name=f"add__{i:02d}")([x, dense_unit(x, scenario, i, width)])
    return x


def conv(x, scenario: Scenario, index: int, filters: int, size: int, strides: int, role: str = "hidden"):
    name = weight_name(role, index)
    return layers.Conv2D(
        filters, size, strides=strides, padding="same", kernel_initializer=initializer(scenario), name=name
    )(x)


def resnet_stages(depth: int) -> list[tuple[int, int]]:
    """(filters, strides) per block: depth blocks over three stages of 64, 128, 256 filters.

    depth 6 gives the article's 64, 64, 128/2, 128, 256/2, 256."""
    per_stage = [depth // 3 + (1 if s < depth % 3 else 0) for s in range(3)]
    blocks = []
    for stage, count in enumerate(per_stage):
        blocks += [(64 * 2**stage, 2 if (stage and not b) else 1) for b in range(count)]
    return blocks


def resnet_block(x, scenario: Scenario, index: int, filters: int, strides: int):
    """conv -> act -> BN -> conv -> act -> BN, plus the input (1x1 conv when strided), -> act."""
    skip = x
    y = x
    for part, stride in ((0, strides), (1, 1)):
        i = 2 * index + part + 1
        y = conv(y, scenario, i, filters, 3, stride)
        y = activate(y, weight_name("hidden", i), scenario.activation)
        y = layers.BatchNormalization(name=f"bn__{i:02d}")(y)
    if strides != 1:
        skip = conv(x, scenario, index, filters, 1, strides, role="shortcut")
    y = layers.Add(name=f"add__{index:02d}")([y, skip])
    return layers.Activation(scenario.activation, name=f"block__{index:02d}_out")(y)


def resnet(x, scenario: Scenario, depth: int):
    x = conv(x, scenario, 0, 64, 7, 2)
    x = activate(x, weight_name("hidden", 0), scenario.activation)
    x = layers.BatchNormalization(name="bn__00")(x)
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="pool")(x)
    for index, (filters, strides) in enumerate(resnet_stages(depth)):
        x = resnet_block(x, scenario, index, filters, strides)
    return layers.Flatten(name="flatten")(x)


class ProbedCell(keras.layers.Layer):
    """A Keras RNN cell whose new state h_t has the probe's step added (and, for an LSTM, whose output is
    [h_t, forget gate f_t]). inputs: [x_t, probe_t] concatenated; `features` is x_t's width. TensorFlow
    ops, not keras.ops, so that Keras 2 (TF ≤ 2.15) builds it too."""

    def __init__(self, cell, features: int, **kwargs):
        super().__init__(**kwargs)
        self.cell, self.features = cell, features
        self.state_size = cell.state_size
        self.gated = isinstance(cell, layers.LSTMCell)
        self.output_size = cell.units * (2 if self.gated else 1)

    def build(self, input_shape):
        self.cell.build((input_shape[0], self.features))
        self.built = True

    def forget_gate(self, x, h):
        """f_t = σ(x W_f + h U_f + b_f): Keras orders an LSTM's gate blocks i, f, c, o."""
        units, cell = self.cell.units, self.cell
        block = slice(units, 2 * units)
        return tf.sigmoid(x @ cell.kernel[:, block] + h @ cell.recurrent_kernel[:, block] + cell.bias[block])

    def call(self, inputs, states, training=None):
        x, probe = inputs[:, : self.features], inputs[:, self.features :]
        output, new_states = self.cell(x, states, training=training)
        h = output + probe
        nested = isinstance(new_states, (list, tuple))
        new_states = [h, *new_states[1:]] if nested else h
        if self.gated:
            return tf.concat([h, self.forget_gate(x, states[0])], axis=-1), new_states
        return h, new_states


def forget_bias(value: float):
    """An LSTM bias initializer: zeros but the forget gate's block (Keras's order i, f, c, o), set to value."""

    def initialize(shape, dtype=None):
        units = shape[0] // 4
        return tf.concat([tf.zeros([units]), tf.fill([units], value), tf.zeros([2 * units])], axis=0)

    return initialize


RECURRENT_CELLS = {"simple": layers.SimpleRNNCell, "lstm": layers.LSTMCell, "gru": layers.GRUCell}


def recurrent(scenario: Scenario, length: int, features: int, classes: int, width: int) -> keras.Model:
    """sequence [T, features] and time_probe [T, width] -> logits from the last hidden state h_T."""
    sequence = keras.Input(shape=(length, features), name="sequence")
    probe = keras.Input(shape=(length, width), name="time_probe")
    options = {"recurrent_initializer": keras.initializers.Orthogonal(scenario.recurrent_gain)}
    if scenario.cell == "simple":
        options["activation"] = scenario.activation
    if scenario.cell == "lstm" and scenario.forget_bias != 1.0:
        options.update(unit_forget_bias=False, bias_initializer=forget_bias(scenario.forget_bias))
    cell = ProbedCell(RECURRENT_CELLS[scenario.cell](width, **options), features)
    both = layers.Concatenate(name="with_probe")([sequence, probe])
    states = layers.RNN(cell, return_sequences=True, name=weight_name("recurrent", 0))(both)
    last = layers.Lambda(lambda s: s[:, -1, :width], name="last_state")(states)
    logits = layers.Dense(classes, name=weight_name("output", 0))(last)
    return keras.Model([sequence, probe], logits, name=f"{scenario.name}_{length}")


def build_model(scenario: Scenario, depth: int, image_shape: tuple, classes: int, width: int | None = None):
    """The scenario's network; `width` overrides the scenario's (smoke profile only)."""
    width = width or scenario.width
    if scenario.architecture == "rnn":
        return recurrent(scenario, image_shape[0], image_shape[1], classes, width)
    inputs = keras.Input(shape=image_shape, name="image")
    if scenario.architecture == "resnet":
        x = resnet(inputs, scenario, depth)
    else:
        x = layers.Flatten(name="flatten")(inputs)
        x = (resmlp if scenario.architecture == "resmlp" else mlp)(x, scenario, depth, width)
    # the output layer keeps Keras's default init, as in the article
    logits = layers.Dense(classes, name=weight_name("output", 0))(x)
    return keras.Model(inputs, logits, name=f"{scenario.name}_{depth}")
