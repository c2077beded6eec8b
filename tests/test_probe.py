"""python -m bench probe: a user's model's step-0 profile, checked against an independent tape computation."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from bench import probe
from bench.__main__ import main

BUILDERS = '''
import keras

def sigmoid_mlp():
    return keras.Sequential([keras.Input((12,)), *(keras.layers.Dense(32, activation="sigmoid") for _ in range(6)),
                             keras.layers.Dense(3)], name="sigmoid_mlp")

def sigmoid_layers():
    hidden = [layer for _ in range(6) for layer in (keras.layers.Dense(32), keras.layers.Activation("sigmoid"))]
    return keras.Sequential([keras.Input((12,)), *hidden, keras.layers.Dense(3)], name="sigmoid_layers")

def relu_he():
    return keras.Sequential([keras.Input((12,)), *(keras.layers.Dense(64, activation="relu",
                             kernel_initializer="he_normal") for _ in range(6)), keras.layers.Dense(3)], name="relu_he")

def two_branches():
    a, b = keras.Input((8, 8, 2), name="image"), keras.Input((5, 3), name="sequence")
    h = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(a)
    h = keras.layers.GlobalAveragePooling2D()(h)
    out = keras.layers.Dense(3)(keras.layers.Concatenate()([h, keras.layers.LSTM(4)(b)]))
    model = keras.Model([a, b], out, name="two_branches")
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model

def not_a_model():
    return 3
'''


@pytest.fixture
def builders(tmp_path):
    path = tmp_path / "builders.py"
    path.write_text(BUILDERS)
    return path


@pytest.fixture
def batch(tmp_path):
    rng = np.random.default_rng(1)
    path = tmp_path / "batch.npz"
    np.savez(path, x=rng.normal(size=(48, 12)).astype("float32"), y=rng.integers(0, 3, size=48))
    return path


def tape_profile(model: keras.Model, x: np.ndarray, y: np.ndarray) -> tuple[list, list, list]:
    """Forward rms, ‖∂L/∂z‖ and ‖∂L/∂W‖ per Dense layer by hand: z = hW + b, h = φ(z), L = cross-entropy of logits."""
    kernels = [layer.kernel for layer in model.layers]
    with tf.GradientTape(persistent=True) as tape:
        h, zs, outs = tf.constant(x), [], []
        for layer in model.layers:
            z = h @ layer.kernel + layer.bias
            tape.watch(z)
            h = layer.activation(z)
            zs.append(z)
            outs.append(h)
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(y, h)
    norm = lambda t: float(tf.norm(t))  # noqa: E731
    return ([float(tf.sqrt(tf.reduce_mean(o**2))) for o in outs], [norm(tape.gradient(loss, z)) for z in zs],
            [norm(tape.gradient(loss, k)) for k in kernels])


def test_the_profile_matches_an_independent_tape_computation(builders, batch):
    result = probe.profile(f"{builders}:sigmoid_mlp", str(batch), seeds=2, batch_size=40)
    data = np.load(batch)
    x, y = data["x"][:40], data["y"][:40]
    assert len(result.layers) == 7 and result.batch.source.startswith("40 samples")
    for seed in range(2):
        keras.utils.set_random_seed(seed)
        namespace = {}
        exec(BUILDERS, namespace)
        rms, deltas, grads = tape_profile(namespace["sigmoid_mlp"](), x, y)
        for i, layer in enumerate(result.layers):
            np.testing.assert_allclose(
                [layer.forward_rms[seed], layer.delta_norm[seed], layer.kernel_grad[seed]],
                [rms[i], deltas[i], grads[i]], rtol=2e-5, err_msg=f"seed {seed} layer {i}")


def whole_path(text: str) -> float:
    return float(text.split("‖δ last hidden‖ = ")[1].split()[0])


def test_the_whole_path_and_the_theory(builders):
    sigmoid = probe.report(probe.profile(f"{builders}:sigmoid_mlp", seeds=4, batch_size=128))
    assert whole_path(sigmoid) < 1e-2 and "shrinks most going into layer" in sigmoid
    measured_over_theory = float(sigmoid.split("measured/theory ")[1].split()[0])
    assert 0.5 < measured_over_theory < 2, sigmoid  # six sigmoid layers lose ~4^5: the theory says how much
    relu = probe.report(probe.profile(f"{builders}:relu_he", seeds=4, batch_size=128))
    assert 0.5 < whole_path(relu) < 2 and "mean-field theory (relu, he_normal, width 64)" in relu


def test_an_activation_layer_after_each_dense_reads_as_a_fused_activation(builders, batch):
    """The same weights as sigmoid_mlp (Activation layers own none): the same numbers, the same theory."""
    fused, layered = (probe.profile(f"{builders}:{name}", str(batch), seeds=2, batch_size=40)
                      for name in ("sigmoid_mlp", "sigmoid_layers"))
    assert [layer.activation for layer in layered.layers] == ["sigmoid"] * 6 + [None]
    for a, b in zip(fused.layers, layered.layers, strict=True):
        for column in ("forward_rms", "delta_norm", "kernel_grad"):
            np.testing.assert_allclose(getattr(b, column), getattr(a, column), rtol=1e-6)
    assert layered.theory[0] == pytest.approx(fused.theory[0]) and "sigmoid" in layered.theory[1]


def test_a_saved_model_with_two_branches_is_re_initialised_per_seed(builders, tmp_path):
    namespace = {}
    exec(BUILDERS, namespace)
    path = tmp_path / "branches.keras"
    namespace["two_branches"]().save(path)
    result = probe.profile(str(path), seeds=2, batch_size=16)
    assert [layer.kind for layer in result.layers] == ["Conv2D", "LSTM", "Dense"]
    assert "(compiled)" in result.loss and not result.chain
    assert all(layer.delta_norm[0] != layer.delta_norm[1] for layer in result.layers)  # new weights each seed
    text = probe.report(result)
    assert "not one path" in text and "not modelled (several inputs)" in text


@pytest.mark.parametrize("arguments, message", [
    (["missing.keras"], "no model file missing.keras"),
    (["nothing"], "neither a .keras/.h5 file nor module:function"),
    (["{builders}:absent"], "has no function 'absent'"),
    (["{builders}:not_a_model"], "returned int, not a Keras model"),
    (["{builders}:sigmoid_mlp", "--data", "{tmp}/images.npz"], "input 0 has shape (5,) per sample; model "
                                                                "'sigmoid_mlp' takes (12,)"),
    (["{builders}:sigmoid_mlp", "--data", "{tmp}/other.npz"], "expected x (or the model's inputs"),
    (["{builders}:sigmoid_mlp", "--seeds", "0"], "--seeds must be between 1 and 1000"),
])
def test_bad_input_is_one_line_and_exit_2(arguments, message, builders, tmp_path, capsys):
    np.savez(tmp_path / "images.npz", x=np.zeros((4, 5), "float32"))
    np.savez(tmp_path / "other.npz", inputs=np.zeros((4, 12), "float32"))
    filled = [a.format(builders=builders, tmp=tmp_path) for a in arguments]
    assert main(["probe", *filled]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
