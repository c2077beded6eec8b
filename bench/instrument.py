"""Per-layer statistics computed inside the compiled train step (DESIGN §4).

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
import tensorflow as tf

from bench.models import ROLE_SEPARATOR

LAYER_STATS = ("kernel_grad_norm", "bias_grad_norm", "kernel_norm", "update_ratio", "delta_norm",
               "inactive_fraction", "recurrent_grad_norm")
TIME_STATS = ("delta_norm", "forget_gate")  # recurrent networks, per time step: ‖∂loss/∂h_t‖, mean f_t
STEP_STATS = ("loss", "batch_accuracy", "grad_norm", "grad_norm_clipped", "clipped")
SATURATION = 0.01  # a sigmoid/tanh unit is saturated where its derivative is below 1 % of the maximum
# ... that is where |input| exceeds: 1 - tanh(a)^2 < c  <=>  |a| > atanh(sqrt(1 - c)); sigmoid(a) = (1 + tanh(a/2)) / 2
SATURATED_INPUT = {"tanh": math.atanh(math.sqrt(1 - SATURATION)), "sigmoid": 2 * math.atanh(math.sqrt(1 - SATURATION))}


@dataclass(frozen=True)
class Probe:
    """The model's weight layers and the tensors the statistics need."""

    model: keras.Model  # outputs: logits, each weight layer's z, each nonlinearity's input
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
    """(activation name, its input tensor) of the nonlinearity that follows a weight layer."""
    try:
        act = model.get_layer(f"{layer.name}_act")
    except ValueError:
        return None, layer.output
    name = "leaky_relu" if isinstance(act, keras.layers.LeakyReLU) else act.get_config()["activation"]
    return (None if name == "linear" else name), act.input


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


def inactive_fraction(activation: str | None, a: tf.Tensor) -> tf.Tensor:
    """Saturated entries (sigmoid, tanh) or dead units, inactive on the whole batch (ReLU family)."""
    if activation in ("sigmoid", "tanh"):
        return tf.reduce_mean(tf.cast(tf.abs(a) > SATURATED_INPUT[activation], tf.float32))
    if activation in ("relu", "leaky_relu", "elu"):
        alive = tf.reduce_any(tf.reshape(a, [-1, a.shape[-1]]) > 0, axis=0)
        return 1 - tf.reduce_mean(tf.cast(alive, tf.float32))
    return tf.constant(float("nan"))


def norms(tensors) -> tf.Tensor:
    """Euclidean norm of each tensor, as one vector (two ops a tensor and one square root)."""
    return tf.sqrt(tf.stack([tf.reduce_sum(tf.square(t)) for t in tensors]))


def distances(after, before) -> tf.Tensor:
    """‖a - b‖ for each pair, as one vector."""
    return tf.sqrt(tf.stack([tf.reduce_sum(tf.math.squared_difference(a, b)) for a, b in zip(after, before)]))


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
    """Loss, accuracy, z per weight layer and nonlinearity inputs for one batch (`zeros`: the time probe)."""
    n = len(probe.layers)
    if probe.time_width:
        x = tf.convert_to_tensor(x)
        x = [x, time_probe(probe, x) if zeros is None else zeros]
    outputs = probe.model(x, training=training)
    logits, zs, act_inputs = outputs[0], outputs[1 : n + 1], outputs[n + 1 :]
    loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
    accuracy = tf.reduce_mean(tf.cast(tf.equal(tf.argmax(logits, -1, output_type=y.dtype), y), tf.float32))
    return loss, accuracy, zs, act_inputs


def make_train_chunk(probe: Probe, optimizer, x_train, y_train, clipnorm=None, global_clipnorm=None,
                     jit_compile: bool = False, statistics: bool = True):
    """A compiled function: batch indices [K, B] -> (step stats [K, len(STEP_STATS)], layer stats
    [K, L, len(LAYER_STATS)], time stats [K, T, len(TIME_STATS)] (T = 0 but for recurrent networks));
    layer statistics are built by name, stacked in LAYER_STATS order.

    statistics=False trains the same way and records loss and accuracy only (for the benchmark)."""
    variables = probe.model.trainable_variables
    kernels, biases, recurrents = zip(*(weights_of(layer) for layer in probe.layers))
    position = {id(v): i for i, v in enumerate(variables)}
    kernel_at = [position[id(k)] for k in kernels]
    nan = tf.constant(float("nan"))

    def at(grad_norms, tensors):
        """The gradient norms of these variables, NaN where a layer has none."""
        return tf.stack([grad_norms[position[id(t)]] if t is not None else nan for t in tensors])

    def read_kernels():
        return [tf.convert_to_tensor(k) for k in kernels]

    def layer_columns(grad_norms, deltas, act_inputs, before) -> dict:
        """LAYER_STATS by name, each [L]: all but the update ratio, which the loop measures a step later."""
        return {
            "kernel_grad_norm": tf.gather(grad_norms, kernel_at),
            "bias_grad_norm": at(grad_norms, biases),
            "kernel_norm": norms(before),
            "delta_norm": norms(deltas),
            "inactive_fraction": tf.stack([inactive_fraction(act, a) for act, a in zip(probe.activations, act_inputs)]),
            "recurrent_grad_norm": at(grad_norms, recurrents),
        }

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
            loss, accuracy, zs, act_inputs = forward(probe, x, y, training=True, zeros=zeros)
        grads = tape.gradient(loss, [*variables, *zs, *([zeros] if zeros is not None else [])])
        var_grads, deltas = grads[: len(variables)], grads[len(variables) : len(variables) + len(zs)]
        grad_norms = norms(var_grads)
        clipped_norm, clipped = clipping(grad_norms, clipnorm, global_clipnorm)
        optimizer.apply_gradients(zip(var_grads, variables))
        step_row = tf.stack([loss, accuracy, tf.norm(grad_norms), clipped_norm, tf.cast(clipped, tf.float32)])
        times = time_rows(grads[-1] if zeros is not None else None, zs)
        return step_row, layer_columns(grad_norms, deltas, act_inputs, before), times, before

    def plain_step(x, y):
        with tf.GradientTape() as tape:
            loss, accuracy, _, _ = forward(probe, x, y, training=True)
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return tf.stack([loss, accuracy, nan, nan, 0.0]), {}, None, []

    step = instrumented_step if statistics else plain_step

    @tf.function(jit_compile=jit_compile, reduce_retracing=True)
    def train_chunk(batch_indices):
        k = tf.shape(batch_indices)[0]
        steps = tf.TensorArray(tf.float32, size=k)
        layers = {name: tf.TensorArray(tf.float32, size=k) for name in LAYER_STATS if name != "update_ratio"}
        times = tf.TensorArray(tf.float32, size=k)
        updates = tf.TensorArray(tf.float32, size=k)
        previous = read_kernels() if statistics else []
        for i in tf.range(k):
            indices = batch_indices[i]
            step_row, columns, time_row, before = step(tf.gather(x_train, indices), tf.gather(y_train, indices))
            steps = steps.write(i, step_row)
            if statistics:  # step i-1's update, W_i - W_(i-1): computed here, it overlaps step i's forward pass
                layers = {name: layers[name].write(i, column) for name, column in columns.items()}
                times = times.write(i, time_row)
                updates = updates.write(i, distances(before, previous))
                previous = before
        if not statistics:
            return steps.stack(), tf.zeros([k, len(kernels), len(LAYER_STATS)]), tf.zeros([k, 0, len(TIME_STATS)])
        columns = {name: array.stack() for name, array in layers.items()}
        update_norms = tf.concat([updates.stack()[1:], distances(read_kernels(), previous)[None]], axis=0)
        columns["update_ratio"] = update_norms / columns["kernel_norm"]  # ‖W_after - W_before‖ / ‖W_before‖
        return steps.stack(), tf.stack([columns[name] for name in LAYER_STATS], axis=2), times.stack()

    return train_chunk
