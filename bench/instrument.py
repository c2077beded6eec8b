"""Per-layer statistics computed inside the compiled train step.

`make_train_chunk` returns a tf.function that runs K optimizer steps in one call (a graph while-loop) and
returns every step's statistics stacked, so the host sees the device once per K steps. Each statistic
declared in bench/statistics.py is computed by its function in bench/measures.py from what the step has
seen (a measures.Seen). δ is taken with the same tape as the weight gradients: the probe model exposes
each weight layer's output z, and tape.gradient(loss, z) is ∂loss/∂z. A recurrent network's temporal δ,
∂loss/∂h_t, is the gradient with respect to its time probe (bench/models.py), a zero input added to h_t
inside the recurrence.
"""

from dataclasses import dataclass

import keras
import tensorflow as tf

from bench import measures
from bench.measures import Seen, norms
from bench.models import ROLE_SEPARATOR
from bench.statistics import of_kind


def names_of(kind: str) -> tuple[str, ...]:
    return tuple(s.name for s in of_kind(kind) if s.in_step)


STEP_STATS, LAYER_STATS, TIME_STATS = names_of("step"), names_of("layer"), names_of("time")
AFTER_THE_STEP = ("update_ratio",)  # measured at the next step, from the update's norm (make_train_chunk)
AFTER_THE_BACKWARD_PASS = tuple(s.name for s in of_kind("layer") if s.after_backward)


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


def distances(after, before) -> tf.Tensor:
    """‖a - b‖ for each pair, as one vector."""
    return norms([a - b for a, b in zip(after, before)])


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
    in_step = [name for name in LAYER_STATS if name not in AFTER_THE_STEP]

    def read_kernels():
        return [tf.convert_to_tensor(k) for k in kernels]

    def measured(kind: str, names, seen: Seen, axis: int = 0) -> tf.Tensor:
        """The statistics of one kind, each computed by its function in bench/measures.py, stacked by name."""
        values = []
        for name in names:
            with tf.control_dependencies([seen.grad_norms] if name in AFTER_THE_BACKWARD_PASS else []):
                values.append(getattr(measures, f"{kind}_{name}")(seen))
        return tf.stack(values, axis=axis)

    def with_update_ratio(rows, update_norms) -> tf.Tensor:
        """[K, L, len(LAYER_STATS)]: the rows with ‖W_after - W_before‖ / ‖W_before‖ in its place."""
        ratio = measures.layer_update_ratio(update_norms, rows[:, :, in_step.index("kernel_norm")])
        at = LAYER_STATS.index("update_ratio")
        return tf.concat([rows[:, :, :at], ratio[:, :, None], rows[:, :, at:]], axis=2)

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
        optimizer.apply_gradients(zip(var_grads, variables))
        # per layer, its kernel's, bias's and recurrent kernel's gradient norm (NaN where it has none)
        kernel_grad, bias_grad, recurrent_grad = tf.unstack(tf.gather(tf.concat([grad_norms, [nan]], 0), grad_at))
        seen = Seen(loss, accuracy, grad_norms, kernel_grad, bias_grad, recurrent_grad, before, zs, deltas,
                    probe.activations, act_outputs, grads[-1] if zeros is not None else None, probe.time_width,
                    probe.gated, clipnorm, global_clipnorm)
        times = measured("time", TIME_STATS, seen, axis=1) if zeros is not None else tf.zeros([0, len(TIME_STATS)])
        return measured("step", STEP_STATS, seen), measured("layer", in_step, seen, axis=1), times, before

    def plain_step(x, y):
        with tf.GradientTape() as tape:
            loss, accuracy, _, _ = forward(probe, x, y, training=True)
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        recorded = {"loss": loss, "batch_accuracy": accuracy, "clipped": tf.constant(0.0)}
        return tf.stack([recorded.get(name, nan) for name in STEP_STATS]), None, None, []

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
