"""python -m bench probe MODEL: a Keras model's forward and backward signal per weight layer at initialisation.

No training: for each of several seeds the model gets fresh weights from its own initialisers, one batch goes
forward and back (training=True, as in fit), and each weight layer gives its forward rms (the rms of its output
after the nonlinearity), ‖δ‖ = ‖∂L/∂z‖ at its pre-activation z (bench.recorder's taps: a fused activation's input,
else the layer's output) and ‖∂L/∂W‖. The profile says where the backward signal shrinks or grows most going
towards the input, gives the whole path ‖δ first‖ / ‖δ last hidden‖ and its factor per layer, and, where the model
is a stack of equal-width Dense layers the mean-field theory models (bench/theory.py), the theory's ratio beside it.

MODEL is a saved .keras or .h5 file (its weights are drawn again from its initialisers: keras.models.clone_model),
or module:function, or path/to/file.py:function, a function of no arguments that builds the model (called once a
seed). The loss is the model's compiled one, else sparse categorical cross-entropy for several outputs, binary for a
sigmoid unit, mean squared error otherwise. The batch is --data (an .npz holding x, or arrays named after the
model's inputs, and y; or a folder of IDX files) or generated: standard normal inputs of the model's input shape,
labels uniform over the outputs' classes.
"""

import importlib
import importlib.util
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from bench import data as datasets
from bench import theory
from bench.errors import UserError, one_line
from bench.recorder import Tapped, activation_after, is_compiled, weight_layers

GENERATED_LENGTH = 16  # a generated input's length along an axis the model leaves open (a sequence's time)
INT_INPUT_RANGE = 10  # a generated integer input (token ids) is uniform in [0, this)


class ProbeError(UserError):
    """The model or data cannot be probed; the message says why in one line."""


@dataclass
class Batch:
    x: object  # an array, or a list of arrays for several inputs
    y: object
    source: str  # where it came from, for the report line


@dataclass
class LayerProfile:
    """One weight layer's step-0 numbers: one value per seed."""

    name: str
    kind: str  # the Keras class
    activation: str | None
    forward_rms: np.ndarray
    delta_norm: np.ndarray
    kernel_grad: np.ndarray


@dataclass
class Profile:
    model: str
    layers: list[LayerProfile]
    seeds: int
    batch: Batch
    loss: str
    chain: bool  # a Sequential model: each weight layer feeds the next
    seconds: float
    theory: tuple[float | None, str]  # the predicted whole-path ratio, or None and why not


# -- the model ------------------------------------------------------------------------------------------------------


def model_maker(spec: str) -> Callable[[int], keras.Model]:
    """seed -> the model with fresh initial weights."""
    if spec.endswith((".keras", ".h5")):
        return saved_model_maker(Path(spec))
    if ":" not in spec:
        raise ProbeError(f"probe: '{spec}' is neither a .keras/.h5 file nor module:function (e.g. mymodels:build)")
    where, name = spec.rsplit(":", 1)
    build = getattr(import_module(where), name, None)
    if not callable(build):
        raise ProbeError(f"probe: {where} has no function '{name}'")

    def make(seed: int) -> keras.Model:
        keras.utils.set_random_seed(seed)
        try:
            model = build()
        except Exception as err:  # noqa: BLE001 - the user's builder: say what it raised
            raise ProbeError(f"probe: {spec}() raised {type(err).__name__}: {one_line(err)}") from None
        if not isinstance(model, keras.Model):
            raise ProbeError(f"probe: {spec}() returned {type(model).__name__}, not a Keras model")
        return model

    return make


def import_module(where: str):
    """A module by dotted name (found from the current folder too) or by the path of a .py file."""
    if where.endswith(".py"):
        path = Path(where)
        if not path.is_file():
            raise ProbeError(f"probe: no Python file {where}")
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        loader = spec.loader.exec_module
    else:
        sys.path.insert(0, str(Path.cwd()))
        module, loader = None, None
    try:
        if loader:
            loader(module)
            return module
        return importlib.import_module(where)
    except ModuleNotFoundError as err:
        raise ProbeError(f"probe: no module {err.name} (run from the folder that holds it, or give file.py:function)"
                         ) from None
    except Exception as err:  # noqa: BLE001 - the user's module failed to import
        raise ProbeError(f"probe: importing {where} raised {type(err).__name__}: {one_line(err)}") from None


def saved_model_maker(path: Path) -> Callable[[int], keras.Model]:
    if not path.is_file():
        raise ProbeError(f"probe: no model file {path}")
    try:
        saved = keras.models.load_model(path)
    except Exception as err:  # noqa: BLE001 - any file Keras cannot read
        raise ProbeError(f"probe: Keras cannot load {path}: {one_line(err)}") from None

    def make(seed: int) -> keras.Model:
        keras.utils.set_random_seed(seed)
        try:
            fresh = keras.models.clone_model(saved)  # weights drawn from the layers' initialisers
        except Exception as err:  # noqa: BLE001 - a subclassed model cannot be cloned
            raise ProbeError(f"probe: {path} cannot be re-initialised ({one_line(err)}); give module:function that "
                             "builds it") from None
        if is_compiled(saved) and getattr(saved, "loss", None) is not None:
            fresh.compile(loss=saved.loss)
        return fresh

    return make


def loss_function(model: keras.Model) -> tuple[Callable, str]:
    """(y_true, y_pred) -> loss, and its name: the model's compiled loss, else one its output suggests."""
    if is_compiled(model) and getattr(model, "loss", None) is not None:
        return (lambda y, p: model.compute_loss(y=tf.nest.map_structure(tf.convert_to_tensor, y), y_pred=p),
                f"{describe(model.loss)} (compiled)")
    outputs = model.outputs if hasattr(model, "outputs") and model.outputs else None
    if outputs is None or len(outputs) != 1:
        raise ProbeError(f"probe: model '{model.name}' is not compiled and has {len(outputs or [])} outputs; compile "
                         "it with its loss first")
    units = outputs[0].shape[-1]
    layers = weight_layers(model)
    last = layers[-1].layer if layers else None
    activation = getattr(getattr(last, "activation", None), "__name__", None)
    if units and units > 1:
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=activation != "softmax")
    elif activation == "sigmoid":
        loss = keras.losses.BinaryCrossentropy()
    else:
        loss = keras.losses.MeanSquaredError()
    return loss, f"{type(loss).__name__} (the model is not compiled)"


def describe(loss) -> str:
    return loss if isinstance(loss, str) else getattr(loss, "name", None) or type(loss).__name__


# -- the batch ------------------------------------------------------------------------------------------------------


def input_shapes(model: keras.Model) -> list[tuple]:
    inputs = getattr(model, "inputs", None)
    if not inputs:
        raise ProbeError(f"probe: model '{model.name}' does not say its input shape; build it with keras.Input")
    return [tuple(x.shape[1:]) for x in inputs]


def load_batch(spec: str | None, model: keras.Model, size: int, loss_name: str) -> Batch:
    rng = np.random.default_rng(0)
    shapes = input_shapes(model)
    if spec is None:
        x = [generated_input(shape, x.dtype, size, rng) for shape, x in zip(shapes, model.inputs)]
        source = f"{size} generated inputs of shape {', '.join(str(s) for s in shapes)}"
        y = None
    else:
        x, y, source = read_data(Path(spec), model, size)
        x = [fitted(a, shape, i, model) for i, (a, shape) in enumerate(zip(x, shapes))]
    if y is None:
        y = generated_labels(model, x, rng, loss_name)
        source += ", generated labels"
    return Batch(x[0] if len(x) == 1 else x, y, source)


def generated_input(shape: tuple, dtype, size: int, rng) -> np.ndarray:
    full = (size, *(GENERATED_LENGTH if d is None else d for d in shape))
    if "int" in str(dtype):
        return rng.integers(0, INT_INPUT_RANGE, size=full).astype(str(dtype).split(".")[-1])
    return rng.standard_normal(full).astype("float32")


def generated_labels(model: keras.Model, x, rng, loss_name: str):
    outputs = [np.asarray(o) for o in tf.nest.flatten(model(x[0] if len(x) == 1 else x, training=False))]
    labels = []
    for out in outputs:
        units = out.shape[-1]
        if "sparse" in loss_name.lower():
            labels.append(rng.integers(0, units, size=out.shape[:-1]))
        elif "categorical" in loss_name.lower():
            labels.append(np.eye(units, dtype="float32")[rng.integers(0, units, size=out.shape[:-1])])
        elif "binary" in loss_name.lower():
            labels.append(rng.integers(0, 2, size=out.shape).astype("float32"))
        else:
            labels.append(rng.standard_normal(out.shape).astype("float32"))
    return labels[0] if len(labels) == 1 else labels


def read_data(path: Path, model: keras.Model, size: int) -> tuple[list, np.ndarray | None, str]:
    if path.is_dir():
        images = sorted(path.glob("*images-idx3-ubyte*"))
        labels = sorted(path.glob("*labels-idx1-ubyte*"))
        if not images:
            raise ProbeError(f"probe: {path} holds no IDX images (*images-idx3-ubyte[.gz]); give an .npz or a folder "
                             "of IDX files")
        try:
            x = datasets.read_idx(images[0])[:size].astype("float32") / 255.0
            y = datasets.read_idx(labels[0])[:size].astype("int64") if labels else None
        except UserError as err:
            raise ProbeError(f"probe: {err}") from None
        return [x], y, f"{len(x)} images of {images[0]}"
    if path.suffix != ".npz" or not path.is_file():
        raise ProbeError(f"probe: --data {path}: expected an .npz file or a folder of IDX files")
    try:
        with np.load(path, allow_pickle=False) as arrays:
            found = dict(arrays)
    except Exception as err:  # noqa: BLE001 - zip and format errors alike
        raise ProbeError(f"probe: cannot read {path}: {one_line(err)}") from None
    names = [x.name for x in model.inputs]
    keys = ["x"] if len(names) == 1 and "x" in found else names
    missing = [k for k in keys if k not in found]
    if missing:
        raise ProbeError(f"probe: {path} has arrays {', '.join(sorted(found))}; expected x (or the model's inputs "
                         f"{', '.join(names)}) and optionally y")
    y = found["y"][:size] if "y" in found else None
    return [found[k][:size] for k in keys], y, f"{len(found[keys[0]][:size])} samples of {path}"


def fitted(array: np.ndarray, shape: tuple, i: int, model: keras.Model) -> np.ndarray:
    """The array shaped as the model's input (flattened or unflattened if only that differs), else a ProbeError."""
    if len(array.shape) - 1 == len(shape) and all(d is None or d == a for d, a in zip(shape, array.shape[1:])):
        return array
    if None not in shape and int(np.prod(shape)) == int(np.prod(array.shape[1:])):
        return array.reshape((len(array), *shape))
    raise ProbeError(f"probe: the data's input {i} has shape {tuple(array.shape[1:])} per sample; model "
                     f"'{model.name}' takes {tuple(shape)}")


# -- the profile ----------------------------------------------------------------------------------------------------


def profile_once(model: keras.Model, batch: Batch, loss) -> list[tuple]:
    """(layer, the nonlinearity after z, forward rms, ‖δ‖, ‖∂L/∂W‖) per weight layer, in the order the forward pass
    calls them."""
    layers = weight_layers(model)
    taps: dict[int, list] = {}
    with tf.GradientTape() as tape:
        with Tapped(layers, tape, taps) as tapped:
            y_pred = model(batch.x, training=True)
        value = loss(batch.y, y_pred)
    order = {key: i for i, key in enumerate(taps)}
    called = sorted((w for w in layers if id(w.layer) in taps and w.kernel is not None),
                    key=lambda w: order[id(w.layer)])
    if not called:
        raise ProbeError(f"probe: model '{model.name}' has no weight layer the probe can read (Dense, Conv, "
                         "EinsumDense, Embedding, SimpleRNN/LSTM/GRU)")
    zs = [[z for z, _ in taps[id(w.layer)]] for w in called]
    grads = tape.gradient(value, [w.kernel for w in called] + [z for calls in zs for z in calls])
    kernel_grads, z_grads = grads[: len(called)], grads[len(called):]
    rows, k = [], 0
    for w, calls, kernel_grad in zip(called, zs, kernel_grads):
        deltas = [g for g in z_grads[k : k + len(calls)] if g is not None]
        k += len(calls)
        y = np.asarray(taps[id(w.layer)][0][1], dtype=np.float64)
        rows.append((w, activation_after(w, tapped.followed), float(np.sqrt(np.mean(y**2))), norm(deltas),
                     norm([kernel_grad] if kernel_grad is not None else [])))
    return rows


def norm(tensors) -> float:
    if not tensors:
        return float("nan")
    return float(np.sqrt(sum(np.sum(np.asarray(tf.convert_to_tensor(t), np.float64) ** 2) for t in tensors)))


def profile(spec: str, data: str | None = None, seeds: int = 5, batch_size: int = 256) -> Profile:
    started = time.perf_counter()
    make = model_maker(spec)
    first = make(0)
    loss, loss_name = loss_function(first)
    batch = load_batch(data, first, batch_size, loss_name)
    runs = []
    for seed in range(seeds):
        model = first if seed == 0 else make(seed)
        if seed:
            loss, _ = loss_function(model)
        try:
            runs.append(profile_once(model, batch, loss))
        except (ValueError, TypeError, tf.errors.InvalidArgumentError) as err:
            raise ProbeError(f"probe: the batch does not fit model '{model.name}': {one_line(err)}") from None
    kinds = [type(w.layer) for w, *_ in runs[0]]  # names differ: Keras numbers each new layer
    if any([type(w.layer) for w, *_ in run] != kinds for run in runs):
        raise ProbeError(f"probe: {spec} builds a different model for each seed; it should differ in weights only")
    layers = [LayerProfile(w.name, type(w.layer).__name__, activation,
                           *(np.array([run[i][j] for run in runs]) for j in (2, 3, 4)))
              for i, (w, activation, *_) in enumerate(runs[0])]
    return Profile(first.name, layers, seeds, batch, loss_name, isinstance(first, keras.Sequential),
                   time.perf_counter() - started,
                   mean_field(first, batch, [(w, activation) for w, activation, *_ in runs[0]]))


def mean_field(model: keras.Model, batch: Batch, called) -> tuple[float | None, str]:
    """The theory's ‖δ first hidden‖ / ‖δ last hidden‖ where the model is a stack the theory models: Dense layers
    of one activation (theirs, or an Activation layer's after each) and width after a flat input, zero biases, a
    Glorot, He or zero-mean normal initialiser. `called`: (weight layer, the nonlinearity after its z)."""
    if isinstance(batch.x, list):
        return None, "several inputs"
    kinds = {type(layer).__name__ for layer in model._flatten_layers(include_self=False, recursive=True)}
    followed = all(w.follower is not None for w, _ in called[:-1])
    other = kinds - {"InputLayer", "Dense", "Flatten", *(["Activation"] if followed else [])}
    if other:
        return None, f"{', '.join(sorted(other))} layers"
    hidden = [w.layer for w, _ in called[:-1]]
    if len(hidden) < 2:
        return None, "fewer than two hidden layers"
    activations = {activation or "linear" for _, activation in called[:-1]}
    widths = {layer.units for layer in hidden}
    initializers = {initializer_of(layer) for layer in hidden}
    if len(activations) > 1 or len(widths) > 1 or len(initializers) > 1:
        return None, "hidden layers of different activations, widths or initialisers"
    (activation,), (width,), ((initializer, std),) = activations, widths, initializers
    if activation not in theory.ACTIVATIONS or initializer is None:
        return None, f"activation {activation} or its initialiser not modelled"
    if any(layer.use_bias and type(layer.bias_initializer).__name__ != "Zeros" for layer in hidden):
        return None, "non-zero initial biases"
    x = np.asarray(batch.x, np.float64).reshape(len(batch.x), -1)
    ratio = theory.predicted_delta_ratio(activation, len(hidden), width, x.shape[1], float(np.mean(x**2)),
                                         initializer, std)
    return ratio, f"{activation}, {initializer}, width {width}"


INITIALIZER_NAMES = {"GlorotUniform": "glorot_uniform", "GlorotNormal": "glorot_normal", "HeNormal": "he_normal",
                     "HeUniform": "he_uniform"}


def initializer_of(layer) -> tuple[str | None, float]:
    init = layer.kernel_initializer
    kind = type(init).__name__
    if kind in INITIALIZER_NAMES:
        return INITIALIZER_NAMES[kind], 0.0
    if kind == "RandomNormal" and init.mean == 0:
        return "normal", float(init.stddev)
    return None, 0.0


# -- the text -------------------------------------------------------------------------------------------------------


def per_layer(ratio: float, hidden: int) -> float:
    """The whole-path ratio as a geometric mean per layer: ratio^(1/(hidden-1))."""
    return ratio ** (1 / max(hidden - 1, 1))


def report(result: Profile) -> str:
    """The profile as a table and a few sentences."""
    median = {name: np.array([np.median(getattr(layer, name)) for layer in result.layers])
              for name in ("forward_rms", "delta_norm", "kernel_grad")}
    deltas = median["delta_norm"]
    back = np.r_[deltas[:-1] / deltas[1:], np.nan]  # ‖δ_l‖ / ‖δ_l+1‖: the factor going back into layer l
    lines = [f"model {result.model}: {len(result.layers)} weight layers; {result.batch.source}; loss "
             f"{result.loss}; median over {result.seeds} seeds of initial weights ({result.seconds:.1f} s)",
             f"  {'#':>2}  {'layer':<20} {'type':<14} {'activation':<10} {'forward rms':>11} {'‖δ‖':>9} "
             f"{'×back':>7} {'‖∂L/∂W‖':>9}"]
    for i, layer in enumerate(result.layers):
        lines.append(f"  {i:>2}  {layer.name[:20]:<20} {layer.kind[:14]:<14} {str(layer.activation or '-'):<10} "
                     f"{median['forward_rms'][i]:>11.3g} {deltas[i]:>9.3g} "
                     f"{'' if np.isnan(back[i]) else f'{back[i]:.3g}':>7} {median['kernel_grad'][i]:>9.3g}")
    lines.append("  (×back: ‖δ‖ of the layer over ‖δ‖ of the next, the factor the backward signal picks up going "
                 "into the layer" + ("" if result.chain else "; layers in the order the forward pass calls them, so "
                                     "neighbours on different branches of this model are not one path") + ")")
    if len(result.layers) < 3:
        lines.append("fewer than two hidden weight layers: no path to judge")
        return "\n".join(lines)
    hidden = back[:-2]  # factors between hidden layers (the output layer's δ is the loss's, not the stack's)
    if len(hidden):
        weakest, strongest = int(np.nanargmin(hidden)), int(np.nanargmax(hidden))
        shrinks = "shrinks most" if hidden[weakest] < 1 else "grows least"
        grows = "grows most" if hidden[strongest] > 1 else "shrinks least"
        lines.append(f"the backward signal {shrinks} going into layer {weakest} ({result.layers[weakest].name}): "
                     f"×{hidden[weakest]:.3g}; {grows} going into layer {strongest} "
                     f"({result.layers[strongest].name}): ×{hidden[strongest]:.3g}")
    paths = np.array([layer.delta_norm for layer in result.layers])
    whole = paths[0] / paths[-2]
    ratio = float(np.median(whole))
    lines.append(f"whole path ‖δ first‖ / ‖δ last hidden‖ = {ratio:.3g} (seeds {np.min(whole):.3g} – "
                 f"{np.max(whole):.3g}), ×{per_layer(ratio, len(result.layers) - 1):.3g} per layer")
    predicted, why = result.theory
    lines.append(f"mean-field theory ({why}): {predicted:.3g}, measured/theory {ratio / predicted:.3g}"
                 if predicted is not None else f"mean-field theory: not modelled ({why})")
    return "\n".join(lines)
