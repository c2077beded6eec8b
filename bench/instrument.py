"""Per-layer statistics computed inside the compiled train step.

`make_train_chunk` returns a tf.function that runs K optimizer steps in one call (a
graph while-loop) and returns every step's statistics stacked, so the host sees the
device once per K steps. δ is taken with the same tape as the weight gradients: the
probe model exposes each weight layer's output z, and tape.gradient(loss, z) is ∂loss/∂z.
A recurrent network's temporal δ, ∂loss/∂h_t, is the gradient with respect to its time probe
(bench/models.py), a zero input added to h_t inside the recurrence.
"""

import math
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from bench.models import ROLE_SEPARATOR

LAYER_STATS = ("kernel_grad_norm", "bias_grad_norm", "kernel_norm", "update_ratio", "delta_norm",
               "inactive_fraction", "recurrent_grad_norm")
TIME_STATS = ("delta_norm", "forget_gate")  # recurrent networks, per time step: ‖∂loss/∂h_t‖, mean f_t
STEP_STATS = ("loss", "batch_accuracy", "grad_norm", "grad_norm_clipped", "clipped")
SATURATION = 0.01  # a sigmoid/tanh unit is saturated where its derivative is below 1 % of the maximum
# ... read on its output y, as |y - centre| > bound: tanh' = 1 - y^2 < c  <=>  |y| > sqrt(1 - c);
# sigmoid' = y(1 - y) < c/4  <=>  |y - 1/2| > sqrt(1 - c)/2
SATURATED_OUTPUT = {"tanh": (0.0, math.sqrt(1 - SATURATION)), "sigmoid": (0.5, math.sqrt(1 - SATURATION) / 2)}
RELU_FAMILY = ("relu", "leaky_relu", "elu")  # their output is positive exactly where their input is


@dataclass(frozen=True)
class Probe:
    """The model's weight layers and the tensors the statistics need."""

    model: keras.Model  # outputs: logits, each weight layer's z, each nonlinearity's output
    layers: tuple  # Dense/Conv2D/RNN layers, forward order
    activations: tuple  # per weight layer: the activation name, or None where none follows it
    time_width: int = 0  # recurrent networks: the hidden state's width (the time probe's), else 0
    gated: bool = False  # the recurrent layer's output is [h_t, forget gate f_t] (LSTM)

    @property
    def names(self) -> list[str]:
        return [layer.name for layer in self.layers]

    @property
    def roles(self) -> list[str]:
        return [name.split(ROLE_SEPARATOR)[0] for name in self.names]


def activation_after(model: keras.Model, layer) -> tuple[str | None, object]:
    """(activation name, its output tensor) of the nonlinearity that follows a weight layer.

    Its output, not its input: a statistic that reads the input keeps TensorFlow from fusing the nonlinearity
    into the layer's matmul (the input is then needed on its own)."""
    try:
        act = model.get_layer(f"{layer.name}_act")
    except ValueError:
        return None, layer.output
    name = "leaky_relu" if isinstance(act, keras.layers.LeakyReLU) else act.get_config()["activation"]
    return (None if name == "linear" else name), act.output


WEIGHT_LAYERS = (keras.layers.Dense, keras.layers.Conv2D, keras.layers.RNN)


def make_probe(model: keras.Model) -> Probe:
    weight_layers = tuple(x for x in model.layers if isinstance(x, WEIGHT_LAYERS))
    found = [activation_after(model, layer) for layer in weight_layers]
    outputs = [model.output, *(layer.output for layer in weight_layers), *(tensor for _, tensor in found)]
    cells = [layer.cell for layer in weight_layers if isinstance(layer, keras.layers.RNN)]
    width, gated = (cells[0].cell.units, cells[0].gated) if cells else (0, False)
    inputs = model.inputs if cells else model.inputs[0]
    return Probe(keras.Model(inputs, outputs), weight_layers, tuple(name for name, _ in found), width, gated)


def weights_of(layer) -> tuple:
    """(kernel, bias or None, recurrent kernel or None) of a weight layer (a recurrent layer's through its cell)."""
    owner = layer.cell.cell if isinstance(layer, keras.layers.RNN) else layer
    return owner.kernel, owner.bias, getattr(owner, "recurrent_kernel", None)


def inactive_fraction(activation: str | None, y: tf.Tensor) -> tf.Tensor:
    """Per layer of y [layers, batch, ..., units], the layers' outputs of one activation stacked: the fraction of
    saturated entries (sigmoid, tanh), or of dead units, inactive on the whole batch (ReLU family)."""
    if activation in SATURATED_OUTPUT:
        centre, bound = SATURATED_OUTPUT[activation]
        return tf.reduce_mean(tf.cast(tf.abs(y - centre) > bound, tf.float32), axis=range(1, y.shape.rank))
    if activation in RELU_FAMILY:
        alive = tf.reduce_any(tf.reshape(y, [tf.shape(y)[0], -1, y.shape[-1]]) > 0, axis=1)
        return 1 - tf.reduce_mean(tf.cast(alive, tf.float32), axis=1)
    return tf.fill([y.shape[0]], float("nan"))


def inactive_fractions(activations, outputs) -> tf.Tensor:
    """inactive_fraction of each layer, as one vector: layers of one activation and shape are measured together."""
    groups = {}
    for i, (activation, y) in enumerate(zip(activations, outputs)):
        groups.setdefault((activation, tuple(y.shape)), []).append(i)
    fractions = [inactive_fraction(activation, tf.stack([outputs[i] for i in layers]))
                 for (activation, _), layers in groups.items()]
    order = [i for layers in groups.values() for i in layers]
    return tf.gather(tf.concat(fractions, 0), np.argsort(order))


def norms(tensors) -> tf.Tensor:
    """Euclidean norm of each tensor, as one vector: one op a tensor, L2Loss (Σ t²/2, one pass, no temporary)."""
    return tf.sqrt(2 * tf.stack([tf.raw_ops.L2Loss(t=t) for t in tensors]))


def distances(after, before) -> tf.Tensor:
    """‖a - b‖ for each pair, as one vector."""
    return norms([a - b for a, b in zip(after, before)])


def clipping(norms: tf.Tensor, clipnorm, global_clipnorm) -> tuple[tf.Tensor, tf.Tensor]:
    """Global norm after the optimizer's clipping, and whether clipping changed anything.

    Keras clips each tensor to `clipnorm` on its own, or all together to `global_clipnorm`."""
    total = tf.norm(norms)
    if clipnorm is not None:
        return tf.norm(tf.minimum(norms, clipnorm)), tf.reduce_any(norms > clipnorm)
    if global_clipnorm is not None:
        return tf.minimum(total, global_clipnorm), total > global_clipnorm
    return total, tf.constant(False)


def time_probe(probe: Probe, x) -> tf.Tensor | None:
    """The zero input whose gradient is ∂loss/∂h_t (recurrent networks; None otherwise)."""
    return tf.zeros([tf.shape(x)[0], tf.shape(x)[1], probe.time_width]) if probe.time_width else None


def forward(probe: Probe, x, y, training: bool, zeros=None):
    """Loss, accuracy, z per weight layer and nonlinearity outputs for one batch (`zeros`: the time probe)."""
    n = len(probe.layers)
    if probe.time_width:
        x = tf.convert_to_tensor(x)
        x = [x, time_probe(probe, x) if zeros is None else zeros]
    outputs = probe.model(x, training=training)
    logits, zs, act_outputs = outputs[0], outputs[1 : n + 1], outputs[n + 1 :]
    loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
    accuracy = tf.reduce_mean(tf.cast(tf.equal(tf.argmax(logits, -1, output_type=y.dtype), y), tf.float32))
    return loss, accuracy, zs, act_outputs


def make_train_chunk(probe: Probe, optimizer, x_train, y_train, clipnorm=None, global_clipnorm=None,
                     jit_compile: bool = False, statistics: bool = True):
    """A compiled function: batch indices [K, B] -> (step stats [K, len(STEP_STATS)], layer stats
    [K, L, len(LAYER_STATS)], time stats [K, T, len(TIME_STATS)] (T = 0 but for recurrent networks)).

    statistics=False trains the same way and records loss and accuracy only (for the benchmark)."""
    variables = probe.model.trainable_variables
    kernels, biases, recurrents = zip(*(weights_of(layer) for layer in probe.layers))
    position = {id(v): i for i, v in enumerate(variables)}
    # per layer, the positions of its kernel, bias and recurrent kernel in the gradient norms; len(variables): none
    grad_at = [[position[id(t)] if t is not None else len(variables) for t in tensors]
               for tensors in (kernels, biases, recurrents)]
    nan = tf.constant(float("nan"))
    in_step = [name for name in LAYER_STATS if name != "update_ratio"]  # the update is measured a step later

    def read_kernels():
        return [tf.convert_to_tensor(k) for k in kernels]

    def layer_rows(grad_norms, deltas, act_outputs, before) -> tf.Tensor:
        """[L, len(in_step)]: the layer statistics but the update ratio, built by name, stacked in that order."""
        kernel_grad, bias_grad, recurrent_grad = tf.unstack(tf.gather(tf.concat([grad_norms, [nan]], 0), grad_at))
        columns = {
            "kernel_grad_norm": kernel_grad,
            "bias_grad_norm": bias_grad,
            "kernel_norm": norms(before),
            "delta_norm": norms(deltas),
            "inactive_fraction": inactive_fractions(probe.activations, act_outputs),
            "recurrent_grad_norm": recurrent_grad,
        }
        return tf.stack([columns[name] for name in in_step], axis=1)

    def with_update_ratio(rows, update_norms) -> tf.Tensor:
        """[K, L, len(LAYER_STATS)]: the rows with ‖W_after - W_before‖ / ‖W_before‖ in its place."""
        ratio = update_norms / rows[:, :, in_step.index("kernel_norm")]
        at = LAYER_STATS.index("update_ratio")
        return tf.concat([rows[:, :, :at], ratio[:, :, None], rows[:, :, at:]], axis=2)

    def time_rows(zeros_grad, zs) -> tf.Tensor:
        """[T, len(TIME_STATS)]: ‖∂loss/∂h_t‖ over the batch, and the LSTM's mean forget gate (else NaN)."""
        if not probe.time_width:
            return tf.zeros([0, len(TIME_STATS)])
        delta = tf.sqrt(tf.reduce_sum(tf.square(zeros_grad), axis=[0, 2]))
        gate = tf.reduce_mean(zs[0][:, :, probe.time_width :], axis=[0, 2]) if probe.gated else delta * nan
        return tf.stack([delta, gate], axis=1)

    def instrumented_step(x, y):
        before = read_kernels()  # read first, so what depends on it runs alongside the forward pass
        zeros = time_probe(probe, x)
        with tf.GradientTape() as tape:
            if zeros is not None:
                tape.watch(zeros)
            loss, accuracy, zs, act_outputs = forward(probe, x, y, training=True, zeros=zeros)
        grads = tape.gradient(loss, [*variables, *zs, *([zeros] if zeros is not None else [])])
        var_grads, deltas = grads[: len(variables)], grads[len(variables) : len(variables) + len(zs)]
        grad_norms = norms(var_grads)
        clipped_norm, clipped = clipping(grad_norms, clipnorm, global_clipnorm)
        optimizer.apply_gradients(zip(var_grads, variables))
        step_row = tf.stack([loss, accuracy, tf.norm(grad_norms), clipped_norm, tf.cast(clipped, tf.float32)])
        times = time_rows(grads[-1] if zeros is not None else None, zs)
        return step_row, layer_rows(grad_norms, deltas, act_outputs, before), times, before

    def plain_step(x, y):
        with tf.GradientTape() as tape:
            loss, accuracy, _, _ = forward(probe, x, y, training=True)
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return tf.stack([loss, accuracy, nan, nan, 0.0]), None, None, []

    step = instrumented_step if statistics else plain_step

    @tf.function(jit_compile=jit_compile, reduce_retracing=True)
    def train_chunk(batch_indices):
        k = tf.shape(batch_indices)[0]
        steps, layers, times, updates = (tf.TensorArray(tf.float32, size=k) for _ in range(4))
        previous = read_kernels() if statistics else []
        for i in tf.range(k):
            indices = batch_indices[i]
            step_row, layer_row, time_row, before = step(tf.gather(x_train, indices), tf.gather(y_train, indices))
            steps = steps.write(i, step_row)
            if statistics:  # step i-1's update, W_i - W_(i-1): measured here, it overlaps step i's forward pass
                layers, times = layers.write(i, layer_row), times.write(i, time_row)
                updates = updates.write(i, distances(before, previous))
                previous = before
        if not statistics:
            return steps.stack(), tf.zeros([k, len(kernels), len(LAYER_STATS)]), tf.zeros([k, 0, len(TIME_STATS)])
        update_norms = tf.concat([updates.stack()[1:], distances(read_kernels(), previous)[None]], axis=0)
        return steps.stack(), with_update_ratio(layers.stack(), update_norms), times.stack()

    return train_chunk
