"""bench/recorder.py on real tiny models trained for real: every recorded number of every step matches an
independent tf.GradientTape computation of that step on the same batch, from the weights the step started from.

The independent computation takes δ = ∂L/∂z as the gradient of a zero variable added to z (no gradient with
respect to an intermediate tensor, as the recorder takes), and every other number from the tape's variable
gradients, the weights saved around each step and numpy."""

import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from bench import store
from bench.recorder import KERAS_3, Recorder, RecorderError, clipping, recording

BATCH, STEPS, CLASSES = 8, 3, 4
RTOL, ATOL = 2e-4, 1e-6  # float32 rounding: the recorder's compiled graph against eager ops


def logits_loss():
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def compiled(model, optimizer=keras.optimizers.Adam, **options):
    model.compile(optimizer(1e-2, **options), logits_loss(), metrics=["accuracy"])
    return model


def mlp(name="mlp", **optimizer):
    return compiled(keras.Sequential([
        keras.Input((6,)), keras.layers.Dense(16, activation="sigmoid"), keras.layers.Dense(16, activation="tanh"),
        keras.layers.Dense(16, activation="relu"), keras.layers.Dense(CLASSES)], name=name), **optimizer)


def nonlinearity_layers():
    """Linear weight layers each read by a nonlinearity layer alone: the forward signal is read after it."""
    return compiled(keras.Sequential([
        keras.Input((6,)), keras.layers.Dense(16), keras.layers.Activation("tanh"), keras.layers.Dense(16),
        keras.layers.ReLU(), keras.layers.Dense(CLASSES)], name="nonlinearity_layers"))


def weight_decay():
    """AdamW writes its decay to the weights itself: the recorder measures the update from a copy of W."""
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(CLASSES)], name="weight_decay")
    return compiled(model, keras.optimizers.AdamW, weight_decay=0.5)


def two_inputs():
    image, sequence = keras.Input((8, 8, 1), name="image"), keras.Input((5, 3), name="sequence")
    h = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv_a")(image)
    h = keras.layers.BatchNormalization(name="bn")(h)
    skip = keras.layers.Conv2D(4, 3, padding="same", name="conv_b")(h)
    h = keras.layers.Activation("relu")(keras.layers.Add()([h, skip]))
    h = keras.layers.GlobalAveragePooling2D()(h)
    s = keras.layers.LSTM(6, name="lstm")(sequence)
    out = keras.layers.Dense(CLASSES, name="head")(keras.layers.Concatenate()([h, s]))
    return compiled(keras.Model([image, sequence], out, name="two_inputs"))


class Residual(keras.Model):
    def __init__(self):
        super().__init__(name="subclassed")
        self.first = keras.layers.Dense(12, activation="relu", name="first")
        self.inner = keras.layers.Dense(12, activation="elu", name="inner")
        self.last = keras.layers.Dense(CLASSES, name="last")

    def call(self, x):
        h = self.first(x)
        return self.last(h + self.inner(h))


def frozen():
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(16, activation="relu", name="frozen"),
                              keras.layers.Dense(16, activation="relu"), keras.layers.Dense(CLASSES)], name="frozen")
    model.get_layer("frozen").trainable = False
    return compiled(model)


def mixed_precision():
    """float16 compute, float32 weights and output: Keras wraps Adam in a LossScaleOptimizer, whose scaled gradients
    the recorder unscales."""
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(16, activation="tanh"),
                                  keras.layers.Dense(16, activation="relu"),
                                  keras.layers.Dense(CLASSES, dtype="float32")], name="mixed_precision")
        return compiled(model)
    finally:
        keras.mixed_precision.set_global_policy("float32")


MODELS = {
    "mlp": mlp,
    "two_inputs": two_inputs,
    "subclassed": lambda: compiled(Residual()),
    "frozen": frozen,
    "nonlinearity_layers": nonlinearity_layers,
    "global_clipnorm": lambda: mlp("clipped", global_clipnorm=0.05),
    "weight_decay": weight_decay,
    "mixed_precision": mixed_precision,
}
SNAPSHOT = ("weight_decay", "mixed_precision")  # the update measured from a copy of W, not the optimizer's own
TOLERANCE = {"mixed_precision": (2e-2, 1e-4)}  # float16 rounding: the scaled loss's backward pass against the plain


def data(name: str):
    rng = np.random.default_rng(0)
    n = BATCH * STEPS
    y = rng.integers(0, CLASSES, n)
    if name == "two_inputs":
        return [rng.normal(size=(n, 8, 8, 1)).astype("float32"), rng.normal(size=(n, 5, 3)).astype("float32")], y
    return rng.normal(size=(n, 6)).astype("float32"), y


class Weights(keras.callbacks.Callback):
    """The model's weights before each step."""

    def on_train_begin(self, logs=None):
        self.before = []

    def on_train_batch_begin(self, batch, logs=None):
        self.before.append(self.model.get_weights())


def recorded_layers(model):
    """name -> layer, for every layer at any depth."""
    return {layer.name: layer for layer in model._flatten_layers(include_self=False, recursive=True)}


def owner(layer):
    return layer.cell if isinstance(layer, keras.layers.RNN) else layer


def expected_step(model, names, weights, x, y):
    """The step's numbers from the weights it started from, by tf.GradientTape on variables only."""
    model.set_weights(weights)
    layers = [recorded_layers(model)[name] for name in names]
    probes, originals = {}, []
    for layer in layers:  # z + e, e a zero variable: ∂L/∂e = ∂L/∂z
        if isinstance(layer, keras.layers.RNN):
            original = layer.call

            def call(*args, layer=layer, original=original, **kwargs):
                out = original(*args, **kwargs)
                probes.setdefault(layer.name, tf.Variable(tf.zeros_like(out)))
                return out + probes[layer.name]

            originals.append((layer, "call", None))
            object.__setattr__(layer, "call", call)
        else:
            original = layer.activation

            def activation(z, layer=layer, original=original):
                probes.setdefault(layer.name, tf.Variable(tf.zeros_like(z)))
                return original(z + probes[layer.name])

            originals.append((layer, "activation", original))
            object.__setattr__(layer, "activation", activation)
    try:
        model(x, training=True)  # creates the zero variables
        for e in probes.values():
            e.assign(tf.zeros_like(e))
        model.set_weights(weights)  # as the step found them (batch norm's statistics moved)
        with tf.GradientTape() as tape:
            logits = model(x, training=True)
            loss = logits_loss()(y, logits)
        variables = model.trainable_variables
        grads = tape.gradient(loss, [*variables, *(probes[name] for name in names)])
    finally:
        for layer, attribute, original in originals:
            if original is None:
                layer.__dict__.pop(attribute)
            else:
                object.__setattr__(layer, attribute, original)
    var_grads, deltas = grads[: len(variables)], grads[len(variables) :]
    grad_of = {id(v): g for v, g in zip(variables, var_grads)}
    norm = lambda t: float(np.linalg.norm(np.asarray(t, dtype=np.float64)))  # noqa: E731
    global_norm = float(np.sqrt(sum(norm(g) ** 2 for g in var_grads if g is not None)))
    layer_rows = {}
    for layer, delta in zip(layers, deltas):
        kernel, bias = owner(layer).kernel, getattr(owner(layer), "bias", None)
        recurrent = getattr(owner(layer), "recurrent_kernel", None)
        grad = lambda v: norm(grad_of[id(v)]) if v is not None and id(v) in grad_of else np.nan  # noqa: E731
        layer_rows[layer.name] = {"kernel_grad_norm": grad(kernel), "bias_grad_norm": grad(bias),
                                  "recurrent_grad_norm": grad(recurrent), "kernel_norm": norm(kernel),
                                  "delta_norm": norm(delta)}
    accuracy = float(np.mean(np.argmax(logits, -1) == y))
    return {"loss": float(loss), "batch_accuracy": accuracy, "grad_norm": global_norm}, layer_rows


def kernel_index(model, layer) -> int:
    return [id(v) for v in model.weights].index(id(owner(layer).kernel))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Each model trained STEPS steps with a Recorder at every step, and the weights before each step."""
    folder = tmp_path_factory.mktemp("own-models")
    keras.backend.clear_session()  # layer names count from dense again, whatever other tests built before
    trained = {}
    for name, build in MODELS.items():
        keras.utils.set_random_seed(0)
        model, (x, y), weights = build(), data(name), Weights()
        recorder = Recorder(folder, every=1)
        with np.errstate(all="ignore"):
            model.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0, callbacks=[weights, recorder])
        trained[name] = (model, x, y, [*weights.before, model.get_weights()], recorder)
    return folder, trained


@pytest.mark.parametrize("name", list(MODELS))
def test_every_recorded_number_is_the_tapes(runs, name):
    _, trained = runs
    model, x, y, weights, recorder = trained[name]
    assert recorder.errors == []
    # the update from the optimizer's own assignments (Keras 3), or from a copy of W
    assert recorder.increments == (KERAS_3 and name not in SNAPSHOT)
    rtol, atol = TOLERANCE.get(name, (RTOL, ATOL))
    steps, layers = recorder.tables["step"], recorder.tables["layer"]
    assert list(steps["step"]) == list(range(STEPS))
    names = list(layers[layers["step"] == 0]["layer_name"])
    # a subclassed model is built by its first step: its weights before it are not known here, the later steps' are
    checked = [k for k in range(STEPS) if weights[k]]
    assert checked == list(range(1 if name == "subclassed" else 0, STEPS))
    for k in checked:
        batch = slice(k * BATCH, (k + 1) * BATCH)
        xk = [a[batch] for a in x] if isinstance(x, list) else x[batch]
        step, per_layer = expected_step(model, names, weights[k], xk, y[batch])
        row = steps[steps["step"] == k].iloc[0]
        for column, value in step.items():
            np.testing.assert_allclose(row[column], value, rtol=rtol, atol=atol, err_msg=f"{name} step {k} {column}")
        clip = clipping(model.optimizer, "global_clipnorm")
        np.testing.assert_allclose(row["grad_norm_clipped"], min(step["grad_norm"], clip or np.inf), rtol=rtol)
        assert row["clipped"] == bool(clip and step["grad_norm"] > clip)
        rows = layers[layers["step"] == k].set_index("layer_name")
        for layer_name, values in per_layer.items():
            for column, value in values.items():
                np.testing.assert_allclose(rows.loc[layer_name, column], value, rtol=rtol, atol=atol,
                                           err_msg=f"{name} step {k} {layer_name} {column}")
            index = kernel_index(model, recorded_layers(model)[layer_name])
            before, after = weights[k][index], weights[k + 1][index]
            np.testing.assert_allclose(rows.loc[layer_name, "update_ratio"],
                                       np.linalg.norm(after - before) / np.linalg.norm(before), rtol=1e-3, atol=1e-7)


def test_layers_are_in_forward_order_with_the_output_last(runs):
    _, trained = runs
    expected = {
        "mlp": ["dense", "dense_1", "dense_2", "dense_3"],
        "two_inputs": ["conv_a", "conv_b", "lstm", "head"],
        "subclassed": ["first", "inner", "last"],
        "frozen": ["frozen", "dense_4", "dense_5"],
    }
    for name, layers in expected.items():
        table = trained[name][4].tables["layer"]
        step0 = table[table["step"] == 0]
        assert list(step0["layer_name"]) == layers, name
        assert list(step0["layer_role"]) == ["hidden"] * (len(layers) - 1) + ["output"]


def test_the_forward_signal_is_read_after_a_nonlinearity_layer(runs):
    model, x, _, weights, recorder = runs[1]["nonlinearity_layers"]
    table = recorder.tables["layer"]
    read_after = keras.Model(model.inputs, [model.layers[i].output for i in (1, 3, 4)])  # tanh, ReLU, the output
    for k in range(STEPS):
        model.set_weights(weights[k])
        tanh, relu, logits = (np.asarray(y, np.float64) for y in read_after(x[k * BATCH : (k + 1) * BATCH]))
        rows = table[table["step"] == k]
        rms = [np.sqrt(np.mean(y**2)) for y in (tanh, relu, logits)]
        np.testing.assert_allclose(rows["activation_rms"], rms, rtol=RTOL)
        saturated, dead = np.mean(np.abs(tanh) > np.sqrt(0.99)), 1 - np.mean((relu > 0).any(axis=0))
        np.testing.assert_allclose(rows["inactive_fraction"].iloc[:2], [saturated, dead], atol=1e-7)
        assert np.isnan(rows["inactive_fraction"].iloc[2])


def test_frozen_and_recurrent_layers(runs):
    _, trained = runs
    frozen_rows = trained["frozen"][4].tables["layer"].set_index("layer_name").loc["frozen"]
    assert frozen_rows["kernel_grad_norm"].isna().all() and frozen_rows["bias_grad_norm"].isna().all()
    assert (frozen_rows["update_ratio"] == 0).all() and (frozen_rows["delta_norm"] > 0).all()
    lstm = trained["two_inputs"][4].tables["layer"].set_index("layer_name").loc["lstm"]
    assert (lstm["recurrent_grad_norm"] > 0).all()
    clipped = trained["global_clipnorm"][4].tables["step"]
    assert clipped["clipped"].all() and np.allclose(clipped["grad_norm_clipped"], 0.05)


def test_run_files_load_and_the_report_builds(runs, tmp_path):
    folder, trained = runs
    results = store.load(folder)
    assert sorted(results.runs["scenario"]) == sorted(model.name for model, *_ in trained.values())
    run = results.runs.set_index("scenario").loc["two_inputs"]
    assert run["depth"] == 4 and run["status"] == "completed" and run["log_every"] == 1
    described = {layer["name"]: layer for layer in run["model_layers"]}
    assert {"Conv2D", "BatchNormalization", "Add", "LSTM", "Dense"} <= {layer["type"] for layer in described.values()}
    assert described["conv_a"]["activation"] == "relu" and described["conv_a"]["output_shape"] == [None, 8, 8, 4]
    assert "GlorotUniform" in described["lstm"]["initializers"]["kernel_initializer"]
    assert run["weight_layers"] == ["conv_a", "conv_b", "lstm", "head"] and len(run["architecture_hash"]) == 12
    assert len(results.epoch) == len(MODELS)
    done = subprocess.run([sys.executable, "-m", "report", "build", "--results", str(folder), "--out",
                           str(tmp_path / "site")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "site" / "scenarios" / "two_inputs.html").exists()


def test_a_logging_stride_and_a_second_fit_adds_a_seed(tmp_path):
    keras.utils.set_random_seed(0)
    model, (x, y) = mlp("strided"), data("mlp")
    for _ in range(2):
        recorder = Recorder(tmp_path, every=2)
        model.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0, callbacks=[recorder])
        assert list(recorder.tables["step"]["step"]) == [0, 2, 4, 6, 8, 10]
        assert list(recorder.tables["step"]["epoch"]) == [1, 1, 1, 2, 2, 2]
    assert sorted(store.load(tmp_path).runs["seed"]) == [0, 1]


def test_models_it_cannot_record_say_why_in_one_line(tmp_path):
    plain = keras.Sequential([keras.Input((6,)), keras.layers.Dense(CLASSES)], name="plain")
    with pytest.raises(RecorderError, match="^Recorder: model 'plain' is not compiled; call model.compile"):
        recording(plain, tmp_path)
    plain.trainable = False
    compiled(plain)
    x, y = data("mlp")
    with pytest.raises(RecorderError, match="^Recorder: model 'plain' has no trainable weights") as caught:
        plain.fit(x, y, verbose=0, callbacks=[Recorder(tmp_path)])
    assert "\n" not in str(caught.value)
    with pytest.raises(RecorderError, match="every=0"):
        Recorder(tmp_path, every=0)


def test_a_failing_statistic_never_stops_training(tmp_path, monkeypatch):
    from bench import measures

    def broken(seen):
        raise ValueError("no such thing")

    monkeypatch.setattr(measures, "layer_delta_norm", broken)
    keras.utils.set_random_seed(0)
    model, (x, y) = mlp("failing"), data("mlp")
    recorder = Recorder(tmp_path)
    with pytest.warns(RuntimeWarning, match="layer.delta_norm is not recorded"):
        history = model.fit(x, y, batch_size=BATCH, verbose=0, callbacks=[recorder])
    assert len(history.history["loss"]) == 1
    assert recorder.tables["layer"]["delta_norm"].isna().all()
    assert recorder.tables["layer"]["kernel_grad_norm"].notna().all()
    assert store.load(tmp_path).runs["recorder_errors"].iloc[0] == ["layer.delta_norm: no such thing"]
