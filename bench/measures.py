"""How each statistic of the train step is computed: one function per statistic declared in bench/statistics.py,
named <kind>_<name>, from what the step has seen (a `Seen`).

bench/instrument.py calls them inside the compiled train step. Each function, with the helpers of this module it
uses, is the code version of its statistic (bench/provenance.statistic_code): a new function does not change the
version of the others, so the runs stored before it are resumed, not trained again.
"""

import math
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

SATURATION = 0.01  # a sigmoid/tanh unit is saturated where its derivative is below 1 % of the maximum
# ... read on its output y, as |y - centre| > bound: tanh' = 1 - y^2 < c  <=>  |y| > sqrt(1 - c);
# sigmoid' = y(1 - y) < c/4  <=>  |y - 1/2| > sqrt(1 - c)/2
SATURATED_OUTPUT = {"tanh": (0.0, math.sqrt(1 - SATURATION)), "sigmoid": (0.5, math.sqrt(1 - SATURATION) / 2)}
RELU_FAMILY = ("relu", "leaky_relu", "elu")  # their output is positive exactly where their input is


@dataclass(frozen=True)
class Seen:
    """What one train step has computed, for its statistics (tensors of the step's graph)."""

    loss: tf.Tensor
    accuracy: tf.Tensor
    grad_norms: tf.Tensor  # ‖∂L/∂v‖ per trainable variable
    kernel_grad: tf.Tensor  # per weight layer: ‖∂L/∂W‖
    bias_grad: tf.Tensor  # per weight layer: ‖∂L/∂b‖, NaN without a bias
    recurrent_grad: tf.Tensor  # per weight layer: ‖∂L/∂W_hh‖, NaN but for a recurrent layer
    before: list  # per weight layer: its kernel before the update
    zs: list  # per weight layer: its output z (a recurrent layer's: [h_t, forget gate f_t] for an LSTM)
    deltas: list  # per weight layer: ∂L/∂z
    activations: tuple  # per weight layer: the nonlinearity that follows it, or None
    act_outputs: list  # per weight layer: that nonlinearity's output (else z)
    time_grad: tf.Tensor | None  # recurrent networks: ∂L/∂h_t [batch, T, width]
    time_width: int  # recurrent networks: the hidden state's width
    gated: bool  # an LSTM: its output carries the forget gate
    clipnorm: float | None
    global_clipnorm: float | None


def norms(tensors) -> tf.Tensor:
    """Euclidean norm of each tensor, as one vector: one op a tensor, L2Loss (Σ t²/2, one pass, no temporary)."""
    return tf.sqrt(2 * tf.stack([tf.raw_ops.L2Loss(t=t) for t in tensors]))


def clipping(grad_norms: tf.Tensor, clipnorm, global_clipnorm) -> tuple[tf.Tensor, tf.Tensor]:
    """Global norm after the optimizer's clipping, and whether clipping changed anything.

    Keras clips each tensor to `clipnorm` on its own, or all together to `global_clipnorm`."""
    total = tf.norm(grad_norms)
    if clipnorm is not None:
        return tf.norm(tf.minimum(grad_norms, clipnorm)), tf.reduce_any(grad_norms > clipnorm)
    if global_clipnorm is not None:
        return tf.minimum(total, global_clipnorm), total > global_clipnorm
    return total, tf.constant(False)


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


# -- step: one value a step ---------------------------------------------------------------------------------

def step_loss(seen: Seen) -> tf.Tensor:
    return seen.loss


def step_batch_accuracy(seen: Seen) -> tf.Tensor:
    return seen.accuracy


def step_grad_norm(seen: Seen) -> tf.Tensor:
    return tf.norm(seen.grad_norms)


def step_grad_norm_clipped(seen: Seen) -> tf.Tensor:
    return clipping(seen.grad_norms, seen.clipnorm, seen.global_clipnorm)[0]


def step_clipped(seen: Seen) -> tf.Tensor:
    return tf.cast(clipping(seen.grad_norms, seen.clipnorm, seen.global_clipnorm)[1], tf.float32)


# -- layer: one value per weight layer ------------------------------------------------------------------------

def layer_kernel_grad_norm(seen: Seen) -> tf.Tensor:
    return seen.kernel_grad


def layer_bias_grad_norm(seen: Seen) -> tf.Tensor:
    return seen.bias_grad


def layer_kernel_norm(seen: Seen) -> tf.Tensor:
    return norms(seen.before)


def layer_update_ratio(update_norms: tf.Tensor, kernel_norms: tf.Tensor) -> tf.Tensor:
    """‖W_after - W_before‖ / ‖W_before‖: measured a step later (bench/instrument.py), from the update's norm."""
    return update_norms / kernel_norms


def layer_delta_norm(seen: Seen) -> tf.Tensor:
    return norms(seen.deltas)


def layer_inactive_fraction(seen: Seen) -> tf.Tensor:
    return inactive_fractions(seen.activations, seen.act_outputs)


def layer_recurrent_grad_norm(seen: Seen) -> tf.Tensor:
    return seen.recurrent_grad


def layer_activation_rms(seen: Seen) -> tf.Tensor:
    """sqrt(mean y²) per layer, y = φ(z): read after the nonlinearity, as inactive_fraction is, so that TensorFlow
    still fuses φ into the matmul. An LSTM's output carries its forget gate after h_t, which is left out."""
    outputs = [y[..., : seen.time_width] if seen.gated and i == 0 else y for i, y in enumerate(seen.act_outputs)]
    return tf.stack([tf.sqrt(tf.reduce_mean(tf.square(y))) for y in outputs])


# -- time: one value per time step of a recurrent network's sequence ------------------------------------------

def time_delta_norm(seen: Seen) -> tf.Tensor:
    return tf.sqrt(tf.reduce_sum(tf.square(seen.time_grad), axis=[0, 2]))


def time_forget_gate(seen: Seen) -> tf.Tensor:
    if not seen.gated:
        return tf.fill(tf.shape(seen.time_grad)[1:2], float("nan"))
    return tf.reduce_mean(seen.zs[0][:, :, seen.time_width :], axis=[0, 2])
