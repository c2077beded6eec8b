"""Record gradbench's statistics while your own Keras model trains: a callback for `model.fit`.

    from bench.recorder import Recorder
    model.fit(x, y, epochs=3, callbacks=[Recorder("results/mine", every=1)])

writes one run file into results/mine/ (bench/store.py's schema) that `python -m report build` reads like any run;
the report shows it as a scenario named after the model (model.name). Keras 3, or Keras 2 (tested on TensorFlow 2.15),
on TensorFlow.

How: on a logged step (every `every`-th, counted from 0 over the whole fit) the fit loop calls a train function
the recorder made with Keras's own `make_train_function` from a copy of Keras's train step (the model's compiled
loss, metrics and optimizer, on the same batch, one forward and one backward pass) that also asks the tape for ∂L/∂z
of every weight layer and measures each statistic with its function in bench/measures.py. Every other step runs
Keras's own train function untouched. The statistics stay on the device until the end of fit.

What a weight layer is: a layer that owns a kernel (Dense, Conv1D/2D/3D and their transposes, EinsumDense), a
depthwise kernel, an embedding table, or a recurrent layer (SimpleRNN, LSTM, GRU, also inside Bidirectional), found
at any depth of nesting, in the order the forward pass calls them. z, where δ = ∂L/∂z is read, is the layer's
pre-activation when its activation is fused (Dense(…, activation="relu"): z before the relu, through the layer's
own `activation`), else its output; a recurrent layer's z is its output (h_t, or h_T), after its nonlinearity. The
forward signal (activation_rms, inactive_fraction) is read after the nonlinearity: the fused one, or for a linear layer
read by a nonlinearity layer alone (Dense(64), then Activation("tanh"), ReLU(), LeakyReLU() or ELU()), that layer's.
Normalisation layers (BatchNormalization, LayerNormalization, …) are not weight layers: their γ and β count in the
global gradient norm only. A frozen layer (trainable=False) is recorded with its kernel norm, δ and forward signal;
its gradient norms are null (no gradient is taken) and its update ratio 0. A layer called twice (shared) has δ over
both calls. Not recorded: the recurrent statistics per time step (the catalogue's time probe needs its own model),
weight and gradient histograms, and for a LossScaleOptimizer the loss scale's own skipped steps.

A statistic that fails to compute is null in the file and named in the run's `recorder_errors` (with a warning);
training goes on. If the instrumented step cannot be built at all, the rest of fit runs Keras's own step and the
run file holds the steps recorded so far.
"""

import contextlib
import json
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from bench import measures, provenance, statistics, store
from bench.closure import code_of
from bench.errors import UserError, one_line
from bench.measures import Seen, norms

KEY = "_gradbench"  # the statistics' key in the instrumented step's logs (taken out before fit sees them)
STEP_STATS = tuple(s for s in statistics.of_kind("step") if s.in_step)
LAYER_STATS = tuple(s for s in statistics.of_kind("layer") if s.in_step)
AFTER_THE_UPDATE = "update_ratio"  # from the kernels before and after the optimizer's step
PROFILE = "own"  # the profile, dataset and architecture a recorded run names (the report groups by them)
KERAS_3 = keras.__version__.startswith("3.")  # else Keras 2 (TensorFlow 2.15): tf.Variable, no stateless metrics
VARIABLES = (tf.Variable, keras.Variable) if KERAS_3 else (tf.Variable,)


class RecorderError(UserError):
    """The model cannot be recorded as it is; the message says why in one line."""


KERNEL_INITIALIZERS = ("kernel_initializer", "depthwise_initializer", "embeddings_initializer")
KERNELS = ("kernel", "depthwise_kernel", "embeddings")


@dataclass
class WeightLayer:
    """A weight layer; its variables are read when asked for (a subclassed model's layers are built by the first
    traced step)."""

    layer: keras.layers.Layer
    tap: str  # "activation": z is the fused activation's input; "call": z is the layer's output
    follower: keras.layers.Layer | None = None  # a linear layer's nonlinearity as the next layer (Dense → Activation)

    @property
    def name(self) -> str:
        return self.layer.name

    @property
    def owner(self):
        return self.layer.cell if isinstance(self.layer, keras.layers.RNN) else self.layer

    def variable(self, *names):
        found = (getattr(self.owner, name, None) for name in names)
        return next((v for v in found if isinstance(v, VARIABLES)), None)

    @property
    def kernel(self):
        return self.variable(*KERNELS)

    @property
    def bias(self):
        return self.variable("bias")

    @property
    def recurrent(self):
        return self.variable("recurrent_kernel")

    @property
    def activation(self) -> str | None:
        """The nonlinearity after z, as bench/measures.py names them (relu, sigmoid, tanh, …); None if linear or
        inside a recurrent layer."""
        return activation_name(self.layer) if self.tap == "activation" else None

    @property
    def follower_activation(self) -> str | None:
        return follower_activation(self.follower) if self.follower is not None else None


def activation_name(layer) -> str | None:
    act = getattr(layer, "activation", None)
    name = getattr(act, "__name__", None) or type(act).__name__
    return None if act is None or name == "linear" else name


NONLINEARITY_LAYERS = {"ReLU": "relu", "LeakyReLU": "leaky_relu", "ELU": "elu"}  # and Activation(…)


def activation_after(w: WeightLayer, followed: set[int]) -> str | None:
    """The nonlinearity after a weight layer's z as a trace found it: its fused one, or its follower's where the
    follower read z (`followed`: Tapped.followed)."""
    return w.follower_activation if id(w.layer) in followed else w.activation


def follower_activation(layer) -> str | None:
    """The nonlinearity a layer applies, if it is a nonlinearity layer (Activation("tanh"), ReLU(), …)."""
    if isinstance(layer, keras.layers.Activation):
        return activation_name(layer)
    return NONLINEARITY_LAYERS.get(type(layer).__name__)


def consumers(layer) -> list:
    """The layers that read this layer's output in a Functional or Sequential model's graph."""
    return [getattr(node, "operation", None) or getattr(node, "layer", None)
            for node in getattr(layer, "_outbound_nodes", [])]


def follower(layer, model_layers: set[int]):
    """The nonlinearity layer that alone reads a linear weight layer's output in the model (Dense(…) then
    Activation("sigmoid")): the layer's forward signal is read after it, and TensorFlow still fuses it into the
    matmul."""
    if activation_name(layer) is not None:
        return None
    after = [c for c in consumers(layer) if id(c) in model_layers]
    return after[0] if len(after) == 1 and follower_activation(after[0]) else None


def weight_layers(model: keras.Model) -> list[WeightLayer]:
    """The model's weight layers at any depth, built or not, in the order the model tracks them (the first traced
    step puts them in forward order and drops any that own no kernel)."""
    found, inside = [], set()
    every = list(model._flatten_layers(include_self=False, recursive=True))
    ids = {id(layer) for layer in every}
    for layer in every:
        if id(layer) in inside:
            continue
        if isinstance(layer, keras.layers.RNN):
            inside.update(id(x) for x in layer.cell._flatten_layers(include_self=True, recursive=True))
            found.append(WeightLayer(layer, "call"))
        elif any(hasattr(layer, a) for a in KERNEL_INITIALIZERS):
            fused = callable(getattr(layer, "activation", None))
            found.append(WeightLayer(layer, "activation" if fused else "call", follower(layer, ids) if fused else None))
    return found


def initializer_name(init) -> str | None:
    if init is None:
        return None
    config = keras.initializers.serialize(init) if not isinstance(init, str) else init
    return json.dumps(config, sort_keys=True, default=str) if isinstance(config, dict) else str(config)


def architecture(model: keras.Model) -> list[dict]:
    """Each layer of the model (at any depth): name, type, output shape, activation, initialisers, trainable."""
    described = []
    for layer in model._flatten_layers(include_self=False, recursive=True):
        try:
            shape = [None if d is None else int(d) for d in layer.output.shape]
        except (AttributeError, ValueError, TypeError):  # a subclassed model's layers have no symbolic output
            shape = None
        source = layer.cell if isinstance(layer, keras.layers.RNN) else layer
        act = getattr(source, "activation", None)
        described.append({
            "name": layer.name, "type": type(layer).__name__, "output_shape": shape,
            "activation": None if act is None else getattr(act, "__name__", type(act).__name__),
            "initializers": {k: initializer_name(getattr(source, k)) for k in
                             ("kernel_initializer", "recurrent_initializer", "bias_initializer",
                              "depthwise_initializer", "embeddings_initializer") if hasattr(source, k)},
            "trainable": bool(layer.trainable), "parameters": int(layer.count_params()) if layer.built else None,
        })
    return described


def float_norms(tensors) -> tf.Tensor:
    return norms([tf.cast(t, tf.float32) for t in tensors])


def distances(after, before) -> tf.Tensor:
    """‖a - b‖ for each pair, as one vector."""
    return float_norms([a - b for a, b in zip(after, before)])


def handle(variable):
    """The tf.Variable itself (a Keras 3 variable wraps one in .value)."""
    return variable.value if KERAS_3 else variable


def value_of(variable) -> tf.Tensor:
    """The variable's value at this point of the step."""
    return tf.convert_to_tensor(handle(variable))


def dense(gradient):
    """A gradient as a dense tensor (an embedding's comes as IndexedSlices)."""
    return tf.convert_to_tensor(gradient) if isinstance(gradient, tf.IndexedSlices) else gradient


class Recorder(keras.callbacks.Callback):
    """Records gradbench's step and layer statistics of every `every`-th training step of a `fit` into one run
    file in `folder`, written at the end of fit (also when stopped early by a callback).

    `seed`: the run's seed number in the report (default: the next one free in the folder for this model and
    architecture, so that fitting the same model again adds a seed to its cell). `dataset`: a name for the data,
    shown and grouped by in the report (default "own"). After fit, `recorder.path` is the file written, and
    `recorder.tables` the tables it holds."""

    def __init__(self, folder, every: int = 1, seed: int | None = None, dataset: str = PROFILE):
        super().__init__()
        if not isinstance(every, int) or isinstance(every, bool) or every < 1:
            raise RecorderError(f"Recorder: every={every!r}; expected a whole number of steps, 1 or more")
        self.folder, self.every, self.seed, self.dataset = Path(folder), every, seed, dataset
        self.path: Path | None = None
        self.tables: dict[str, pd.DataFrame] = {}

    # -- fit's hooks -------------------------------------------------------------------------------------------

    def on_train_begin(self, logs=None):
        model = self.model
        check_recordable(model)
        self.layers = weight_layers(model)
        self.ordered = False
        self.errors: list[str] = []
        self.pending: list = []  # (step, epoch, step stats, layer stats): tensors until the end of fit
        self.epochs: list[dict] = []
        self.step, self.epoch, self.started = 0, 1, time.perf_counter()
        self.batch_size = None  # of the first logged step
        self.plain = model.train_function
        if KERAS_3 and model.built and not model.optimizer.built:  # as Keras's step would, outside a trace
            model.optimizer.build(model.trainable_variables)
        self.increments = Increments.apply_to(model.optimizer, model)
        self.instrumented = self.make_instrumented()
        self.broken = self.instrumented is None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch + 1

    def on_train_batch_begin(self, batch, logs=None):
        logged = not self.broken and self.step % self.every == 0
        self.model.train_function = self.instrumented if logged else self.plain
        self.step += 1

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        row = {"epoch": epoch + 1, "train_loss": logs.get("loss"), "train_accuracy": accuracy_of(logs, ""),
               "test_loss": logs.get("val_loss"), "test_accuracy": accuracy_of(logs, "val_")}
        self.epochs.append({k: (np.nan if v is None else float(v)) for k, v in row.items()})

    def on_train_end(self, logs=None):
        self.model.train_function = self.plain
        try:
            self.write()
        except (UserError, OSError, ValueError, tf.errors.OpError) as err:
            self.warn(f"the run file was not written: {one_line(err)}; call recorder.write() to try again")

    # -- the instrumented step ---------------------------------------------------------------------------------

    def make_instrumented(self):
        """Keras's train function (make_train_function) around self.train_step, called on logged steps; None if it
        cannot be made (then fit runs Keras's own step throughout)."""
        model = self.model
        try:
            with self.own_train_step():
                model.make_train_function(force=True)
            made = model.train_function
        except Exception as err:  # noqa: BLE001 - whatever fails, the user's training goes on
            self.warn(f"no statistics will be recorded: {one_line(err)}")
            return None
        finally:
            model.train_function = self.plain
        traced = contextlib.nullcontext if KERAS_3 else self.own_train_step  # Keras 2 looks it up when tracing

        def instrumented(iterator):
            try:
                with traced():
                    logs = made(iterator)
            except (StopIteration, tf.errors.OutOfRangeError, KeyboardInterrupt):
                raise
            except Exception as err:  # noqa: BLE001 - tracing failed before the batch was taken: train it plainly
                self.broken = True
                self.step_failed(err)
                return self.plain(iterator)
            logs = dict(logs)
            step_stats, layer_stats, batch = logs.pop(KEY)
            self.pending.append((self.step - 1, self.epoch, step_stats, layer_stats))
            if self.batch_size is None:
                self.batch_size = int(batch)
            return logs

        return instrumented

    @contextlib.contextmanager
    def own_train_step(self):
        """Inside it the model's train_step is self.train_step (an instance attribute, which Keras's train function
        calls)."""
        self.model.train_step = self.train_step
        try:
            yield
        finally:
            del self.model.train_step

    def step_failed(self, err: Exception) -> None:
        self.errors.append(f"instrumented step: {one_line(err)}")
        self.warn(f"the instrumented step failed ({one_line(err)}); training goes on without statistics")

    def train_step(self, data):
        """Keras's TensorFlow train step (Keras 3's keras/src/backend/tensorflow/trainer.py, Keras 2's
        keras/src/engine/training.py), its tape also asked for ∂L/∂z of each weight layer; returns the model's logs
        and, under KEY, the statistics."""
        model, optimizer = self.model, self.model.optimizer
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        first = next(i for i in tf.nest.flatten(x) if i is not None)
        taps: dict[int, list] = {}
        with tf.GradientTape() as tape:
            with Tapped(self.layers, tape, taps) as tapped:
                y_pred = model(x, training=True) if getattr(model, "_call_has_training_arg", True) else model(x)
            loss, scaled = compiled_loss(model, x, y, y_pred, sample_weight, tf.shape(first)[0])
        self.put_in_forward_order(taps, tapped.followed)
        outputs = tf.nest.flatten(y_pred)
        self.classes = int(outputs[0].shape[-1]) if len(outputs) == 1 and outputs[0].shape[-1] is not None else None
        variables = model.trainable_weights
        zs = [[z for z, _ in taps.get(id(w.layer), [])] for w in self.layers]
        grads = tape.gradient(scaled, [*variables, *(z for calls in zs for z in calls)])
        var_grads, z_grads = grads[: len(variables)], grads[len(variables) :]
        unscale = None if scaled is loss else tf.cast(loss / scaled, tf.float32)
        kernels = [w.kernel for w in self.layers]
        increments = Increments(optimizer, kernels) if self.increments else None
        before = [tf.cast(value_of(k), tf.float32) for k in kernels]  # read now, not a variable
        seen = self.seen(loss, self.batch_accuracy(y, y_pred, sample_weight), variables, var_grads, zs, z_grads,
                         taps, before, unscale)
        step_stats, layer_stats, kernel_norms = self.measured(seen, var_grads, unscale)
        # ‖W‖ is read before the update, which then updates W in place, no copy (but for a snapshot); the other
        # statistics run beside the update
        with tf.control_dependencies([] if increments is None else [kernel_norms]):
            with increments or contextlib.nullcontext():
                optimizer.apply_gradients(zip(var_grads, variables))
        if increments is None:  # a snapshot: W_before, copied when the update writes W
            with tf.control_dependencies([tf.group(*(handle(v) for v in variables))]):
                update_norms = distances([tf.cast(value_of(k), tf.float32) for k in kernels], before)
        else:
            update_norms = increments.norms()
        layer_stats = self.with_update_ratio(layer_stats, update_norms, seen)
        logs = model.compute_metrics(x, y, y_pred, sample_weight=sample_weight)
        return {**logs, KEY: (step_stats, layer_stats, tf.shape(first)[0])}

    def put_in_forward_order(self, taps: dict, followed: set[int]) -> None:
        """At the first trace: the weight layers in the order the forward pass called them (those it did not call
        last), the last called the output layer; and the nonlinearity after each z."""
        if self.ordered:
            return
        order = {key: i for i, key in enumerate(taps)}
        self.layers = sorted((w for w in self.layers if w.kernel is not None),
                             key=lambda w: order.get(id(w.layer), len(order)))
        self.called = [id(w.layer) in taps for w in self.layers]
        self.activations = tuple(activation_after(w, followed) if called else None
                                 for w, called in zip(self.layers, self.called))
        self.ordered = True

    def batch_accuracy(self, y, y_pred, sample_weight) -> tf.Tensor:
        """The first compiled metric named *acc* on this batch alone (metrics are means over the epoch), else NaN."""
        compiled = getattr(self.model, "_compile_metrics", None)
        try:
            if not KERAS_3:
                return keras_2_batch_accuracy(self.model, y, y_pred, sample_weight)
            if compiled is not None and any("acc" in m.name for m in compiled.metrics):
                start = [tf.zeros_like(v) for v in compiled.variables]
                result = compiled.stateless_result(compiled.stateless_update_state(start, y, y_pred, sample_weight))
                name = next(k for k in result if "acc" in k)
                return tf.cast(tf.reshape(result[name], []), tf.float32)
        except Exception as err:  # noqa: BLE001
            self.failed("batch_accuracy", err)
        return tf.constant(np.nan, tf.float32)

    def seen(self, loss, accuracy, variables, var_grads, zs, z_grads, taps, before, unscale) -> Seen:
        """What the step has seen, per weight layer in forward order, for bench/measures.py."""
        nan = tf.constant(np.nan, tf.float32)
        present = [i for i, g in enumerate(var_grads) if g is not None]
        measured = float_norms([dense(var_grads[i]) for i in present]) if present else tf.zeros([0])
        if unscale is not None:
            measured = measured * unscale
        slot = {i: k for k, i in enumerate(present)}
        # per trainable variable its gradient's norm, 0 where it gets none (as the optimizer skips it)
        grad_norms = tf.gather(tf.concat([measured, [0.0]], 0),
                               [slot.get(i, len(present)) for i in range(len(variables))])
        position = {id(v): i for i, v in enumerate(variables)}

        def per_layer(attribute):
            at = [slot.get(position.get(id(getattr(w, attribute))), len(present)) if getattr(w, attribute) is not None
                  else len(present) for w in self.layers]
            return tf.gather(tf.concat([measured, [nan]], 0), at)

        deltas, outputs, k = [], [], 0
        for w, calls in zip(self.layers, zs):
            grads = [g for g in z_grads[k : k + len(calls)] if g is not None]
            k += len(calls)
            if len(grads) > 1:  # a shared layer: δ over its calls
                grads = [tf.concat([tf.reshape(g, [-1]) for g in grads], 0)]
            delta = tf.cast(grads[0], tf.float32) if grads else tf.fill([1], np.nan)
            deltas.append(delta if unscale is None else delta * unscale)
            tapped = taps.get(id(w.layer))
            outputs.append(tf.cast(tapped[0][1], tf.float32) if tapped else tf.fill([1, 1], np.nan))
        clipnorm = clipping(self.model.optimizer, "clipnorm") or None
        global_clipnorm = clipping(self.model.optimizer, "global_clipnorm") or None
        return Seen(tf.cast(loss, tf.float32), accuracy, grad_norms, per_layer("kernel"), per_layer("bias"),
                    per_layer("recurrent"), [tf.cast(b, tf.float32) for b in before],
                    [z for z, _ in (taps.get(id(w.layer), [(None, None)])[0] for w in self.layers)], deltas,
                    self.activations, outputs, None, 0, False, clipnorm, global_clipnorm)

    def measured(self, seen: Seen, var_grads, unscale) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """(step statistics [len(STEP_STATS)], layer statistics [layers, len(LAYER_STATS) - 1] but the update ratio,
        and of those ‖W‖, which the update waits for),
        each statistic by its function in bench/measures.py; one that fails is NaN (null in the file) and named in
        recorder_errors."""
        n = len(self.layers)
        step = [self.compute(s, lambda s=s: getattr(measures, s.measure)(seen), []) for s in STEP_STATS]
        clipvalue = clipping(self.model.optimizer, "clipvalue")
        if clipvalue:  # measures.clipping knows clipnorm and global_clipnorm; Keras clips each value to ±clipvalue
            present = [dense(g) for g in var_grads if g is not None]
            clipped = tf.norm(float_norms([tf.clip_by_value(g, -clipvalue, clipvalue) for g in present]))
            changed = tf.cast(tf.reduce_any([tf.reduce_any(tf.abs(g) > clipvalue) for g in present]), tf.float32)
            if unscale is not None:
                clipped = clipped * unscale
            names = [s.name for s in STEP_STATS]
            step[names.index("grad_norm_clipped")], step[names.index("clipped")] = clipped, changed
        measured = [s for s in LAYER_STATS if s.name != AFTER_THE_UPDATE]
        layer = []
        for s in measured:
            with tf.control_dependencies([seen.grad_norms] if s.after_backward else []):
                layer.append(self.compute(s, lambda s=s: getattr(measures, s.measure)(seen), [n]))
        return tf.stack(step), tf.stack(layer, axis=1), layer[[s.name for s in measured].index("kernel_norm")]

    def with_update_ratio(self, layer_stats, update_norms, seen) -> tf.Tensor:
        """[layers, len(LAYER_STATS)]: the layer statistics with ‖W_after - W_before‖ / ‖W_before‖ in its place."""
        names = [s.name for s in LAYER_STATS]
        if AFTER_THE_UPDATE not in names:
            return layer_stats
        at = names.index(AFTER_THE_UPDATE)
        kernel_norms = layer_stats[:, [n for n in names if n != AFTER_THE_UPDATE].index("kernel_norm")]
        statistic = LAYER_STATS[at]
        ratio = self.compute(statistic, lambda: measures.layer_update_ratio(update_norms, kernel_norms),
                             [len(self.layers)])
        return tf.concat([layer_stats[:, :at], ratio[:, None], layer_stats[:, at:]], axis=1)

    def compute(self, statistic, function, shape) -> tf.Tensor:
        try:
            value = tf.cast(function(), tf.float32)
            value.shape.assert_is_compatible_with(shape)
            return tf.reshape(value, shape)
        except Exception as err:  # noqa: BLE001 - a statistic that fails is missing, training goes on
            self.failed(f"{statistic.kind}.{statistic.name}", err)
            return tf.fill(shape, np.nan)

    def failed(self, what: str, err: Exception) -> None:
        message = f"{what}: {one_line(err)}"
        if message not in self.errors:
            self.errors.append(message)
            self.warn(f"{what} is not recorded ({one_line(err)}); training goes on")

    def warn(self, message: str) -> None:
        warnings.warn(f"Recorder({self.folder}): {message}", RuntimeWarning, stacklevel=2)

    # -- the run file ------------------------------------------------------------------------------------------

    def frames(self) -> dict[str, pd.DataFrame]:
        """The recorded step, layer and epoch rows (store.COLUMNS kinds)."""
        names, roles = [w.name for w in self.layers], ["hidden"] * (len(self.layers) - 1) + ["output"]
        step_rows, layer_rows = [], []
        for step, epoch, step_stats, layer_stats in self.pending:
            step_rows.append({"step": step, "epoch": epoch,
                              **dict(zip((s.name for s in STEP_STATS), np.asarray(step_stats, dtype=float)))})
            values = np.asarray(layer_stats, dtype=float)
            for i, name in enumerate(names):
                layer_rows.append({"step": step, "epoch": epoch, "layer": i, "layer_name": name,
                                   "layer_role": roles[i], **dict(zip((s.name for s in LAYER_STATS), values[i]))})
        tables = {"step": pd.DataFrame(step_rows), "layer": pd.DataFrame(layer_rows),
                  "epoch": pd.DataFrame(self.epochs)}
        for kind in ("step", "layer"):
            for s in statistics.of_kind(kind):
                if len(tables[kind]) and s.dtype == store.pa.bool_() and s.name in tables[kind]:
                    tables[kind][s.name] = tables[kind][s.name] > 0.5
        return tables

    def run(self, tables: dict[str, pd.DataFrame]) -> dict:
        model, optimizer = self.model, self.model.optimizer
        layers = architecture(model)
        shape_hash = provenance.short_hash(json.dumps(layers, sort_keys=True, default=str))
        device = "/GPU:0" if provenance.gpus() else "/CPU:0"
        meta = provenance.provenance(device)
        steps = tables["step"]
        finite = np.isfinite(steps["loss"].to_numpy(dtype=float)) if len(steps) else np.array([], bool)
        diverged = int(steps["step"].iloc[int(np.argmin(finite))]) if len(finite) and not finite.all() else None
        config = {
            "scenario": model.name, "depth": len(self.layers), "profile": PROFILE, "dataset": self.dataset,
            "architecture": PROFILE, "architecture_hash": shape_hash, "model_layers": layers,
            "weight_layers": [w.name for w in self.layers],
            "epochs": int((self.params or {}).get("epochs") or len(self.epochs)), "steps": self.step,
            "log_every": self.every, "batch_size": self.batch_size, "train_samples": self.train_samples(),
            "test_samples": None, "classes": getattr(self, "classes", None), "optimizer": type(optimizer).__name__,
            "learning_rate": float(f"{learning_rate(optimizer):.7g}"),
            "clipnorm": clipping(optimizer, "clipnorm"),
            "global_clipnorm": clipping(optimizer, "global_clipnorm"),
            "clipvalue": clipping(optimizer, "clipvalue"), "loss_function": describe(model.loss),
            "device_kind": meta["device_kind"], "measurement_code": recorder_code(), **provenance.versions(),
        }
        seed = self.seed if self.seed is not None else next_seed(self.folder, model.name, shape_hash)
        config["seed"] = seed
        run_id = f"{model.name}-d{config['depth']}-s{seed}-{store.digest({**config, 'at': meta['started_at']})}"
        return {"run_id": run_id, **config, **meta, "determinism": determinism(),
                "source": "bench.recorder", "status": "diverged" if diverged is not None else "completed",
                "diverged_step": diverged, "diverged_layer": None, "steps_run": self.step,
                "steps_per_epoch": (self.params or {}).get("steps"),
                "wall_time_s": round(time.perf_counter() - self.started, 3),
                "statistic_code": provenance.statistic_code(), "recorder_errors": list(self.errors)}

    def train_samples(self) -> int | None:
        """Samples a training epoch saw: steps per epoch × the batch size (an upper bound when the last batch is
        smaller)."""
        steps = (self.params or {}).get("steps")
        return int(steps) * self.batch_size if steps and self.batch_size else None

    def write(self) -> Path:
        """Write the run file (once more if asked again); returns its path."""
        tables = self.frames()
        run = self.run(tables)
        self.path = self.folder / f"{run['run_id']}.parquet"
        store.write_run(self.path, run, tables)
        self.tables = tables
        return self.path


class Increments:
    """Inside it, what the optimizer adds to each kernel, taken from its own assign/assign_add/assign_sub (through
    which Keras's optimizers update every variable): ‖W_after - W_before‖ without a copy of W_before."""

    def __init__(self, optimizer, kernels):
        self.optimizer, self.kernels = optimizer, kernels
        self.added: dict[int, list] = {}
        self.slot = {}
        for i, kernel in enumerate(kernels):
            self.slot[id(kernel)] = self.slot[id(kernel.value)] = i

    @staticmethod
    def apply_to(optimizer, model) -> bool:
        """Whether every change to a kernel goes through the optimizer's assign methods in the traced step: Keras's
        own optimizers, without weight decay, EMA, gradient accumulation, loss scaling or kernel constraints
        (those write the variables directly, or inside a cond); otherwise the recorder takes a snapshot."""
        own = KERAS_3 and type(optimizer).__module__.startswith("keras.src.optimizers.") and not isinstance(
            optimizer, keras.optimizers.LossScaleOptimizer)  # Keras 2's update_step writes the variables itself
        plain = not (getattr(optimizer, "weight_decay", None) or getattr(optimizer, "use_ema", False)
                     or getattr(optimizer, "gradient_accumulation_steps", None))
        constrained = any(getattr(v, "constraint", None) is not None for v in model.trainable_weights)
        return own and plain and not constrained

    def __enter__(self):
        def assign(variable, value, original=self.optimizer.assign):
            if id(variable) in self.slot:
                self.added.setdefault(self.slot[id(variable)], []).append((1, value - tf.convert_to_tensor(variable)))
            return original(variable, value)

        def assign_add(variable, value, original=self.optimizer.assign_add):
            if id(variable) in self.slot:
                self.added.setdefault(self.slot[id(variable)], []).append((1, value))
            return original(variable, value)

        def assign_sub(variable, value, original=self.optimizer.assign_sub):
            if id(variable) in self.slot:
                self.added.setdefault(self.slot[id(variable)], []).append((-1, value))
            return original(variable, value)

        for name, method in (("assign", assign), ("assign_add", assign_add), ("assign_sub", assign_sub)):
            object.__setattr__(self.optimizer, name, method)
        return self

    def __exit__(self, *exc):
        for name in ("assign", "assign_add", "assign_sub"):
            self.optimizer.__dict__.pop(name, None)
        return False

    def norms(self) -> tf.Tensor:
        """‖ΔW‖ per kernel; 0 for a kernel the optimizer left alone (frozen, or no gradient)."""
        return norms([tf.cast(self.change(i), tf.float32) for i in range(len(self.kernels))])

    def change(self, i: int) -> tf.Tensor:
        """What the optimizer added to kernel i (its sign left out when it is one assignment: the norm is the same)."""
        added = self.added.get(i, [])
        if len(added) == 1:
            return added[0][1]
        return tf.add_n([value if sign > 0 else -value for sign, value in added]) if added else tf.zeros([0])


def recording(model: keras.Model, folder, every: int = 1, **options) -> Recorder:
    """A Recorder for this model, checked now (not compiled, no trainable weights: a RecorderError, one line):
    `model.fit(x, y, callbacks=[recording(model, "results/mine")])`."""
    check_recordable(model)
    return Recorder(folder, every, **options)


class Tapped:
    """Inside it, each weight layer's z is watched by the tape and kept in taps[id(layer)], with the output of the
    nonlinearity that follows it: through the layer's fused `activation` (z its input) or its `call` (z its
    output); for a linear layer read by a nonlinearity layer alone, that layer's output (then the weight layer's id
    is in `followed`)."""

    def __init__(self, layers: list[WeightLayer], tape: tf.GradientTape, taps: dict):
        self.layers, self.tape, self.taps = layers, tape, taps
        self.followed: set[int] = set()
        self.graph = None if tf.executing_eagerly() else tf.compat.v1.get_default_graph()

    def ours(self, z) -> bool:
        """z is of the step's graph (Keras builds a layer on its first call in a scratch graph: not those)."""
        return self.graph is None or getattr(z, "graph", None) is self.graph

    def keep(self, layer, z, y):
        if self.ours(z):
            self.tape.watch(z)
            self.taps.setdefault(id(layer), []).append((z, y))

    def __enter__(self):
        self.restore = []
        for w in self.layers:
            if w.tap == "activation":
                original = w.layer.activation

                def activation(z, layer=w.layer, original=original):
                    if self.ours(z):
                        self.tape.watch(z)
                    y = original(z)
                    self.keep(layer, z, y)
                    return y

                self.restore.append((w.layer, "activation", original))
                object.__setattr__(w.layer, "activation", activation)
                if w.follower is not None:
                    self.tap_follower(w)
            else:
                original = w.layer.call

                def call(*args, layer=w.layer, original=original, **kwargs):
                    out = original(*args, **kwargs)
                    z = out[0] if isinstance(out, list | tuple) else out
                    self.keep(layer, z, z)
                    return out

                self.restore.append((w.layer, "call", None))
                object.__setattr__(w.layer, "call", call)
        return self

    def tap_follower(self, w: WeightLayer) -> None:
        original = w.follower.call

        def call(inputs, *args, layer=w.layer, original=original, **kwargs):
            y = original(inputs, *args, **kwargs)
            calls = self.taps.get(id(layer))
            if calls and calls[-1][0] is inputs:  # the weight layer's z, straight in
                calls[-1] = (inputs, y)
                self.followed.add(id(layer))
            return y

        self.restore.append((w.follower, "call", None))
        object.__setattr__(w.follower, "call", call)

    def __exit__(self, *exc):
        for layer, name, original in reversed(self.restore):
            if original is None:
                layer.__dict__.pop(name, None)  # the class's method again
            else:
                object.__setattr__(layer, name, original)
        return False


def check_recordable(model: keras.Model) -> None:
    """A one-line RecorderError when the recorder cannot record this model's fit."""
    name = getattr(model, "name", type(model).__name__)
    if getattr(model, "optimizer", None) is None or not is_compiled(model):
        raise RecorderError(f"Recorder: model '{name}' is not compiled; call model.compile(optimizer=…, loss=…) "
                            "before fit")
    if model.built and not model.trainable_weights:  # an unbuilt model is checked again when fit starts
        raise RecorderError(f"Recorder: model '{name}' has no trainable weights, so there are no gradients to "
                            "record")
    if _overrides_train_step(model):
        raise RecorderError(f"Recorder: model '{name}' overrides train_step; the recorder records Keras's own "
                            "train step only")
    if int(getattr(model, "steps_per_execution", 1) or 1) != 1:
        raise RecorderError(f"Recorder: model '{name}' is compiled with steps_per_execution="
                            f"{model.steps_per_execution}; the recorder needs 1")
    if keras.backend.backend() != "tensorflow":
        raise RecorderError(f"Recorder: Keras runs on {keras.backend.backend()}; the recorder needs TensorFlow")


def clipping(optimizer, name: str):
    """The optimizer's clipnorm, global_clipnorm or clipvalue (Keras 2's LossScaleOptimizer: its inner one's)."""
    return getattr(optimizer, name, None) or getattr(getattr(optimizer, "inner_optimizer", None), name, None)


def is_compiled(model) -> bool:
    return bool(getattr(model, "compiled" if KERAS_3 else "_is_compiled", False))


def _overrides_train_step(model) -> bool:
    return type(model).train_step is not keras.Model.train_step


def compiled_loss(model, x, y, y_pred, sample_weight, batch) -> tuple[tf.Tensor, tf.Tensor]:
    """The batch's compiled loss as Keras's train step computes and tracks it, and the loss the gradients are taken
    of (scaled by a LossScaleOptimizer under mixed precision)."""
    optimizer = model.optimizer
    if not KERAS_3:
        loss = model.compute_loss(x, y, y_pred, sample_weight)
        return loss, optimizer.get_scaled_loss(loss) if hasattr(optimizer, "get_scaled_loss") else loss
    from keras.src.losses.loss import unscale_loss_for_distribution

    loss = model._compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True)
    model._loss_tracker.update_state(unscale_loss_for_distribution(loss), sample_weight=batch)
    return loss, optimizer.scale_loss(loss)


def keras_2_batch_accuracy(model, y, y_pred, sample_weight) -> tf.Tensor:
    """Keras 2's first compiled metric named *acc* on this batch alone, by its own function; NaN if there is none
    or the model has more than one output."""
    container = model.compiled_metrics
    if container is not None and len(tf.nest.flatten(y_pred)) == 1:
        if not container.built:  # as its first update_state would, a few ops later in this step
            container.build(y_pred, y)
        metric = next((m for m in container.metrics if "acc" in m.name and hasattr(m, "_fn")), None)
        if metric is not None:
            values = tf.cast(tf.reshape(metric._fn(y, y_pred, **metric._fn_kwargs), [-1]), tf.float32)
            weights = tf.ones_like(values) if sample_weight is None else tf.reshape(
                tf.cast(sample_weight, tf.float32), [-1])
            return tf.reduce_sum(values * weights) / tf.reduce_sum(weights)
    return tf.constant(np.nan, tf.float32)


def learning_rate(optimizer) -> float:
    value = optimizer.learning_rate
    return float(keras.ops.convert_to_numpy(value) if KERAS_3 else keras.backend.get_value(value))


def accuracy_of(logs: dict, prefix: str) -> float | None:
    """The first logged metric named <prefix>…acc… (accuracy, sparse_categorical_accuracy, out_accuracy, …)."""
    for key, value in logs.items():
        if key.startswith(prefix) and "acc" in key and (prefix or not key.startswith("val_")):
            return value
    return None


def determinism() -> bool:
    """Whether TensorFlow's op determinism is on in this process (the catalogue's runs always turn it on)."""
    from tensorflow.python.framework import config

    return bool(config.is_op_determinism_enabled())


def describe(loss) -> str:
    try:
        return json.dumps(keras.losses.serialize(loss), sort_keys=True, default=str)
    except Exception:  # noqa: BLE001 - a name is enough
        return getattr(loss, "__name__", None) or type(loss).__name__


def next_seed(folder: Path, scenario: str, architecture_hash: str) -> int:
    """The lowest seed number no run of this model and architecture in the folder has."""
    taken = set()
    for path in store.run_files(folder) if folder.is_dir() else []:
        try:
            run = store.read_metadata(path)
        except UserError:
            continue
        if run.get("scenario") == scenario and run.get("architecture_hash") == architecture_hash:
            taken.add(run.get("seed"))
    return next(i for i in range(len(taken) + 1) if i not in taken)


def recorder_code() -> str:
    """The version of the recorder's measuring code (its statistics are versioned in statistic_code)."""
    return "recorder-" + provenance.short_hash(code_of(Path(__file__).read_text(encoding="utf-8")))
