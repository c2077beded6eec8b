"""Tests for bench.theory: mean-field quantities against closed forms, Monte Carlo and the literature."""

from math import pi, sqrt

import numpy as np
import pytest

from bench import theory
from bench.theory import applies, chi, predicted_delta_ratio, q_next, sigma_w2

MNIST_MEAN_SQUARE = 0.1  # mean of x^2 over MNIST pixels scaled to [0, 1] is about 0.10


def test_sigma_w2_of_keras_initializers():
    assert sigma_w2("glorot_uniform", 256, 256) == pytest.approx(1.0)
    assert sigma_w2("glorot_uniform", 784, 256) == pytest.approx(784 * 2 / 1040)
    assert sigma_w2("he_normal", 784, 256) == 2.0
    assert sigma_w2("normal", 256, 256, init_std=1.0) == 256.0
    assert sigma_w2("normal", 100, 7, init_std=0.1) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="orthogonal"):
        sigma_w2("orthogonal", 10, 10)


@pytest.mark.parametrize("q", [1e-3, 0.3, 1.0, 50.0, 1e5])
def test_relu_with_he_is_critical_at_any_q(q):
    assert chi("relu", 2.0, q) == pytest.approx(1.0, rel=1e-12)
    assert q_next("relu", 2.0, q) == pytest.approx(q, rel=1e-12)  # E[relu(x)^2] = q/2


@pytest.mark.parametrize("q", [1e-4, 0.7, 3.0, 1e8])
def test_linear_is_exact(q):
    assert q_next("linear", 1.7, q) == pytest.approx(1.7 * q, rel=1e-12)
    assert chi("linear", 1.0, q) == pytest.approx(1.0, rel=1e-12)


def test_relu_derivative_square_mean_is_one_half():
    assert theory.gaussian_mean(lambda x: (x > 0).astype(float) ** 2, 0.37) == pytest.approx(0.5, rel=1e-12)


def test_leaky_relu_uses_keras_activation_slope():
    import keras  # only to confirm the constant against the installed Keras; theory itself never imports it

    assert float(keras.activations.leaky_relu(np.array([-1.0], dtype="float32"))[0]) == pytest.approx(
        -theory.LEAKY_RELU_SLOPE
    )
    assert chi("leaky_relu", 1.0, 0.5) == pytest.approx((1 + theory.LEAKY_RELU_SLOPE**2) / 2, rel=1e-12)


def test_chi_matches_monte_carlo_for_tanh():
    z = np.random.default_rng(0).standard_normal(1_000_000)
    q = 0.7
    monte_carlo = np.mean((1 - np.tanh(sqrt(q) * z) ** 2) ** 2)
    assert chi("tanh", 1.0, q) == pytest.approx(monte_carlo, abs=1e-2)
    assert q_next("tanh", 1.0, q) == pytest.approx(np.mean(np.tanh(sqrt(q) * z) ** 2), abs=1e-2)


@pytest.mark.parametrize(("activation", "area"), [("sigmoid", 1 / 6), ("tanh", 4 / 3)])
def test_saturating_chi_at_large_q_follows_the_peak_area(activation, area):
    # for q >> 1, E[phi'(x)^2] -> (integral of phi'^2) / sqrt(2 pi q); plain Gauss-Hermite gets this wrong
    q = 1e6
    assert chi(activation, 1.0, q) * sqrt(2 * pi * q) == pytest.approx(area, rel=1e-3)


def test_sigmoid_with_glorot_is_ordered():
    per_layer = chi("sigmoid", sigma_w2("glorot_uniform", 256, 256), 0.15)
    assert 0.05 < per_layer < 0.0625  # sigma' <= 1/4, so chi <= 1/16
    ratio = predicted_delta_ratio("sigmoid", 11, 256, 784, MNIST_MEAN_SQUARE, "glorot_uniform")
    assert 1e-8 < ratio < 1e-5  # sigmoid with Glorot init: about 1e-6 over 10 layers (computed 5.5e-7)
    deeper = predicted_delta_ratio("sigmoid", 21, 256, 784, MNIST_MEAN_SQUARE, "glorot_uniform")
    assert deeper < ratio * 1e-5


def test_tanh_with_glorot_is_critical_at_small_q_and_decays_slowly():
    assert chi("tanh", 1.0, 1e-4) == pytest.approx(1.0, abs=1e-3)
    assert chi("tanh", 1.0, 0.5) < 1.0
    ratio = predicted_delta_ratio("tanh", 11, 256, 784, MNIST_MEAN_SQUARE, "glorot_uniform")
    assert 0.1 < ratio < 1.0  # power-law decay, nowhere near sigmoid's


def test_large_normal_init_is_chaotic():
    assert chi("tanh", sigma_w2("normal", 256, 256, 1.0), 1.0) > 10
    assert predicted_delta_ratio("linear", 11, 256, 784, MNIST_MEAN_SQUARE, "normal", 1.0) == pytest.approx(
        256.0**5, rel=1e-9
    )


def test_critical_networks_keep_the_ratio_at_one():
    for activation, initializer in (("relu", "he_normal"), ("linear", "glorot_uniform")):
        ratio = predicted_delta_ratio(activation, 21, 256, 784, MNIST_MEAN_SQUARE, initializer)
        assert ratio == pytest.approx(1.0, rel=1e-9)


def test_one_hidden_layer_has_ratio_one():
    assert predicted_delta_ratio("sigmoid", 1, 256, 784, MNIST_MEAN_SQUARE, "glorot_uniform") == 1.0


def test_unknown_activation_is_an_error():
    with pytest.raises(ValueError, match="selu"):
        chi("selu", 1.0, 1.0)


@pytest.mark.parametrize(
    ("run", "reason"),
    [
        (
            {
                "architecture": "mlp",
                "batch_norm": False,
                "activation": "sigmoid",
                "initializer": "glorot_uniform",
            },
            None,
        ),
        (
            {"architecture": "mlp", "batch_norm": True, "activation": "relu", "initializer": "he_normal"},
            "batch norm",
        ),
        ({"architecture": "resmlp", "batch_norm": True, "activation": "relu"}, "residual connections"),
        ({"architecture": "resnet", "batch_norm": True, "activation": "relu"}, "convolutions"),
        (
            {"architecture": "mlp", "batch_norm": False, "activation": "gelu", "initializer": "he_normal"},
            "activation gelu not modelled",
        ),
    ],
)
def test_applies(run, reason):
    assert applies(run) == reason
