"""bench/measures.py: the functions that compute each statistic of the train step, and their declarations."""

import numpy as np
import pytest
import tensorflow as tf

from bench import measures, statistics, store


def test_dead_and_saturated_units_are_counted():
    """ReLU units negative on the whole batch are dead; sigmoid entries with |z| > 5.99 are saturated. Each is
    measured on the activation's output, per layer of a stack of layers."""
    a = tf.constant([[-1.0, 2.0, -3.0, -0.5], [-2.0, 1.0, -1.0, -0.1]])
    assert measures.inactive_fraction("relu", tf.nn.relu(a)[None]).numpy() == pytest.approx([0.75])
    assert measures.inactive_fraction("elu", tf.nn.elu(a)[None]).numpy() == pytest.approx([0.75])
    two_layers = tf.sigmoid(tf.stack([a * 10, a]))
    assert measures.inactive_fraction("sigmoid", two_layers).numpy() == pytest.approx([6 / 8, 0])
    edge = tf.constant([5.98, 5.99, -5.99, 2.99, 3.0])  # derivative just above / below 1 % of its maximum
    assert measures.inactive_fraction("sigmoid", tf.sigmoid(edge[None, :3])).numpy() == pytest.approx([2 / 3])
    assert measures.inactive_fraction("tanh", tf.tanh(edge[None, 3:])).numpy() == pytest.approx([1 / 2])
    assert np.isnan(measures.inactive_fraction(None, a[None]).numpy()).all()


def test_layers_of_one_activation_are_measured_together_and_kept_in_order():
    a = tf.constant([[-1.0, 2.0, -3.0, -0.5], [-2.0, 1.0, -1.0, -0.1]])
    outputs = [tf.sigmoid(a * 10), tf.nn.relu(a), tf.sigmoid(a), a, tf.nn.relu(-a[:, :2])]
    fractions = measures.inactive_fractions(["sigmoid", "relu", "sigmoid", None, "relu"], outputs).numpy()
    np.testing.assert_allclose(fractions, [6 / 8, 0.75, 0, np.nan, 0.5])


def test_every_statistic_of_the_train_step_has_its_function_and_a_parquet_column():
    for statistic in statistics.measured():
        assert callable(getattr(measures, statistic.measure, None)), statistic
        assert store.COLUMNS[statistic.kind][statistic.name] == statistic.dtype
    for statistic in statistics.summarised():
        assert statistic.kind == "layer" and statistic.summary in statistics.SUMMARIES and statistic.label
