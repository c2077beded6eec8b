"""Keras's Adam with each variable's update as one fused kernel.

Keras 3's Adam updates a variable with about twelve elementwise ops, and recomputes the step's
scalar coefficients for every variable; Keras 2's legacy Adam used TensorFlow's fused
ResourceApplyAdam kernel. On a 2-core CPU those small ops were ~1 ms of the article's 7 ms
step (nox -s benchmark). Same algorithm, hyper-parameters, clipping and state variables; the
numbers agree with keras.optimizers.Adam to within 3e-5 relative (tests/test_adam.py): the kernel
takes 1 - β₂ in float32, where Keras takes it in float64.
"""

import keras
import tensorflow as tf

NAME = "Adam, fused update (ResourceApplyAdam)"  # in each run's config: its numbers differ from Keras's Adam's


class FusedAdam(keras.optimizers.Adam):
    def apply_gradients(self, grads_and_vars):
        # once a step, before the per-variable updates (the step counter moves after them)
        if self.amsgrad:
            raise ValueError("FusedAdam has no AMSGrad variant; use keras.optimizers.Adam")
        step = tf.cast(self.iterations + 1, tf.float32)
        beta_1, beta_2 = tf.constant(self.beta_1, tf.float32), tf.constant(self.beta_2, tf.float32)
        self._coefficients = dict(
            beta1_power=tf.pow(beta_1, step), beta2_power=tf.pow(beta_2, step),
            lr=tf.cast(self.learning_rate, tf.float32), beta1=beta_1, beta2=beta_2,
            epsilon=tf.constant(self.epsilon, tf.float32),
        )
        return super().apply_gradients(grads_and_vars)

    def update_step(self, gradient, variable, learning_rate=None):
        """var -= lr·√(1-β₂ᵗ)/(1-β₁ᵗ) · m / (√v + ε), after m and v move towards g and g²."""
        m, v = self.moments(variable)
        tf.raw_ops.ResourceApplyAdam(var=variable.handle, m=m.handle, v=v.handle, grad=gradient,
                                     **self._coefficients)

    def moments(self, variable):
        if hasattr(self, "_get_variable_index"):  # Keras 3
            index = self._get_variable_index(variable)
        else:  # Keras 2
            index = self._index_dict[self._var_key(variable)]
        return self._momentums[index], self._velocities[index]
