"""Mean-field signal propagation at initialisation (Poole et al. 2016, Schoenholz et al. 2017).

For a deep MLP of equal widths with zero biases and weights of variance sigma_w2 / fan_in:
  forward   q^1 = sigma_w2(first layer) * mean(x^2),   q^{l+1} = sigma_w2 * E[phi(sqrt(q^l) z)^2]
  backward  E[delta_l^2] / E[delta_{l+1}^2] = chi(q^l) = sigma_w2 * E[phi'(sqrt(q^l) z)^2]
with z standard normal. Pure numpy: no TensorFlow here.

Quadrature: plain Gauss-Hermite in z (100 nodes) is exact for ReLU/linear but loses the narrow
peak of sigmoid'/tanh' once q grows (measured against scipy quad: 2e-1 relative error in chi at
q = 100, 100 % at q >= 1000; 1e-2 for ELU at any q) -- and large q is exactly the large-init
scenarios. So each half-line x >= 0, x <= 0 of E[f(x)], x ~ N(0, q), is a Gauss-Legendre sum in
u = asinh(x) over |x| <= 12 sqrt(q): nodes dense where activations bend (|x| ~ 1) and spread over
the Gaussian's width, no node at the kink x = 0. Relative error <= 1e-14 for all six activations,
q from 1e-4 to 1e6.

Activation parameters follow the Keras 3 *activation functions* a scenario names:
`keras.activations.leaky_relu` has negative_slope=0.2 (the `keras.layers.LeakyReLU` layer defaults
to 0.3, but the scenarios pass the activation name, which resolves to the function) and
`keras.activations.elu` has alpha=1.0.
"""

from collections.abc import Callable, Mapping
from functools import lru_cache
from math import pi, sqrt

import numpy as np
from numpy.polynomial.legendre import leggauss

QUADRATURE_POINTS = 100  # Gauss-Legendre nodes per half-line
GAUSSIAN_REACH = 12.0  # integrate over |x| <= this many standard deviations (the rest is < 1e-32)
LEAKY_RELU_SLOPE = 0.2  # keras.activations.leaky_relu default negative_slope (Keras 3)
ELU_ALPHA = 1.0  # keras.activations.elu default alpha

_NODES, _WEIGHTS = leggauss(QUADRATURE_POINTS)  # on [-1, 1]

Array = np.ndarray


def _sigmoid(x: Array) -> Array:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # no overflow for large |x|


def _sigmoid_prime(x: Array) -> Array:
    s = _sigmoid(x)
    return s * (1.0 - s)


def _elu(x: Array) -> Array:
    return np.where(x > 0, x, ELU_ALPHA * np.expm1(np.minimum(x, 0.0)))


def _elu_prime(x: Array) -> Array:
    return np.where(x > 0, 1.0, ELU_ALPHA * np.exp(np.minimum(x, 0.0)))


# name -> (phi, phi')
ACTIVATIONS: dict[str, tuple[Callable[[Array], Array], Callable[[Array], Array]]] = {
    "sigmoid": (_sigmoid, _sigmoid_prime),
    "tanh": (np.tanh, lambda x: 1.0 - np.tanh(x) ** 2),
    "relu": (lambda x: np.maximum(x, 0.0), lambda x: (x > 0).astype(float)),
    "linear": (lambda x: x, np.ones_like),
    "leaky_relu": (
        lambda x: np.where(x > 0, x, LEAKY_RELU_SLOPE * x),
        lambda x: np.where(x > 0, 1.0, LEAKY_RELU_SLOPE),
    ),
    "elu": (_elu, _elu_prime),
}
INITIALIZERS = ("glorot_uniform", "glorot_normal", "he_normal", "he_uniform", "normal")


def _functions(activation: str) -> tuple[Callable[[Array], Array], Callable[[Array], Array]]:
    if activation not in ACTIVATIONS:
        raise ValueError(f"no mean-field model for activation {activation!r}; known: {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[activation]


def gaussian_mean(f: Callable[[Array], Array], q: float) -> float:
    """E[f(x)] for x ~ N(0, q): Gauss-Legendre in u = asinh(x) on each half-line."""
    if q <= 0:
        return float(f(np.zeros(1))[0])
    reach = np.arcsinh(GAUSSIAN_REACH * sqrt(q))
    u = 0.5 * reach * (_NODES + 1.0)
    x = np.sinh(u)
    density = np.exp(-x * x / (2.0 * q)) / sqrt(2.0 * pi * q)
    weights = 0.5 * reach * _WEIGHTS * np.cosh(u) * density
    return float(np.dot(weights, f(x) + f(-x)))


def sigma_w2(initializer: str, fan_in: int, fan_out: int, init_std: float = 0.0) -> float:
    """fan_in * Var(W) of a Keras initializer.

    Keras's truncated-normal initializers (glorot_normal, he_normal) rescale their stddev so the
    variance after truncation is exactly the target, so they share the uniform variants' values.
    """
    if initializer in ("glorot_uniform", "glorot_normal"):
        return fan_in * 2.0 / (fan_in + fan_out)
    if initializer in ("he_normal", "he_uniform"):
        return 2.0
    if initializer == "normal":
        return fan_in * init_std**2
    raise ValueError(f"no variance known for initializer {initializer!r}; known: {INITIALIZERS}")


def q_next(activation: str, sw2: float, q: float) -> float:
    """Pre-activation variance of the next layer: sw2 * E[phi(sqrt(q) z)^2]."""
    phi, _ = _functions(activation)
    return sw2 * gaussian_mean(lambda x: phi(x) ** 2, q)


def chi(activation: str, sw2: float, q: float) -> float:
    """Per-layer factor of E[delta^2] going one layer back: sw2 * E[phi'(sqrt(q) z)^2]."""
    _, phi_prime = _functions(activation)
    return sw2 * gaussian_mean(lambda x: phi_prime(x) ** 2, q)


def variances(activation: str, depth: int, q1: float, sw2: float) -> list[float]:
    """q^1 .. q^depth of the hidden layers' pre-activations."""
    qs = [q1]
    for _ in range(depth - 1):
        qs.append(q_next(activation, sw2, qs[-1]))
    return qs


def delta_ratio_curve(
    activation: str,
    max_depth: int,
    width: int,
    input_features: int,
    input_mean_square: float,
    initializer: str,
    init_std: float = 0.0,
) -> np.ndarray:
    """Predicted ||delta first hidden|| / ||delta last hidden|| for every depth 1..max_depth (index depth - 1).

    Depth L's ratio is sqrt(prod_{l=1}^{L-1} chi(q^l)): q^l does not depend on the layers after l, so one
    pass over max_depth layers gives every depth. Values beyond float64's range are inf or 0."""
    q1 = sigma_w2(initializer, input_features, width, init_std) * input_mean_square
    sw2 = sigma_w2(initializer, width, width, init_std)
    qs = variances(activation, max_depth, q1, sw2)
    with np.errstate(divide="ignore", over="ignore"):
        log_chis = np.log([chi(activation, sw2, q) for q in qs[:-1]])
        return np.exp(0.5 * np.concatenate([[0.0], np.cumsum(log_chis)]))


@lru_cache(maxsize=4096)  # a build asks it once per run: seeds and replicated runs ask the same
def predicted_delta_ratio(
    activation: str,
    depth: int,
    width: int,
    input_features: int,
    input_mean_square: float,
    initializer: str,
    init_std: float = 0.0,
) -> float:
    """Predicted ||delta first hidden|| / ||delta last hidden|| = sqrt(prod_{l=1}^{L-1} chi(q^l))."""
    curve = delta_ratio_curve(activation, depth, width, input_features, input_mean_square, initializer, init_std)
    return float(curve[-1])


def applies(run: Mapping) -> str | None:
    """None if the mean-field theory describes this run's network at init, else the short reason why not."""
    architecture = run.get("architecture", "mlp")
    if architecture == "resnet":
        return "convolutions"
    if architecture == "rnn":
        return "recurrent: see the Pascanu et al. bound"
    if architecture == "resmlp":
        return "residual connections"
    if architecture != "mlp":
        return f"architecture {architecture}"
    if bool(run.get("batch_norm", False)):
        return "batch norm"
    if run.get("activation") not in ACTIVATIONS:
        return f"activation {run.get('activation')} not modelled"
    if run.get("initializer") not in INITIALIZERS:
        return f"initializer {run.get('initializer')} not modelled"
    return None
