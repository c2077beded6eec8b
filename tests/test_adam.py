"""The fused Adam update takes the same steps as Keras's Adam, clipping included."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from bench.adam import FusedAdam


def train(optimizer: keras.optimizers.Optimizer, start: list, grads: list, jit: bool) -> list:
    """Weights and optimizer state after each of the given gradient steps."""
    layer = keras.layers.Dense(start[1].shape[0])
    layer.build((None, start[0].shape[0]))
    layer.set_weights(start)
    optimizer.build(layer.trainable_variables)

    @tf.function(jit_compile=jit)
    def step(gradients):
        optimizer.apply_gradients(zip(gradients, layer.trainable_variables))

    states = []
    for gradients in grads:
        step([tf.constant(g) for g in gradients])
        states.append([v.numpy() for v in (*layer.trainable_variables, *optimizer.variables)])
    return states


@pytest.mark.parametrize("jit", [False, True], ids=["graph", "xla"])
@pytest.mark.parametrize("options", [{}, {"learning_rate": 0.1}, {"clipnorm": 0.5}, {"global_clipnorm": 0.5}],
                         ids=["default", "lr", "clipnorm", "global_clipnorm"])
def test_fused_adam_takes_keras_adams_steps(options, jit):
    rng = np.random.default_rng(0)
    start = [rng.normal(size=(6, 4)).astype(np.float32), rng.normal(size=4).astype(np.float32)]
    grads = [[(scale * rng.normal(size=w.shape)).astype(np.float32) for w in start] for scale in (1, 10, 1e-3, 1, 3)]
    expected = train(keras.optimizers.Adam(**options), start, grads, jit)
    got = train(FusedAdam(**options), start, grads, jit)
    assert len(got[-1]) == len(expected[-1]) >= 2 + 4  # kernel, bias, their m and v (and the step count)
    # TensorFlow's kernel takes 1 - β in float32, Keras in float64: 1 - 0.999 differs by 1.3e-5 relative,
    # so v does, and each step (≈ lr in size) by half that
    step_size = options.get("learning_rate", 1e-3)
    for step, (want, have) in enumerate(zip(expected, got)):
        for a, b in zip(want, have):
            np.testing.assert_allclose(b, a, rtol=3e-5, atol=1e-4 * step_size, err_msg=f"step {step}")
    assert np.abs(got[-1][0] - start[0]).max() > step_size  # the weights did move
