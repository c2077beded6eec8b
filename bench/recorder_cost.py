"""What the recorder (bench/recorder.py) costs a user's fit: plain `model.fit` against fit with a Recorder at every
step and at every 10th, side by side in one process, on three models: the catalogue's sigmoid MLP (depth 11, width
256), a small conv net and an LSTM reading the image's rows, batch 32. `nox -s benchmark` reports it (its
"recorder" section); by hand:

    python -m bench.recorder_cost [--steps 200] [--epochs 2] [--repeats 3] [--dataset auto] [--models mlp,conv,lstm]

Each variant trains a fresh copy of the same model (same initial weights, same data order); the first epoch (which
traces the train functions) is not timed, the next `epochs` are, per epoch, and the variants take turns, so that a
change of the machine's load falls on all of them. A repeat's ratio is the variant's median time per step over
plain fit's in the same repeat. Beside it, steadier under a varying load: an instrumented step's time over a plain
step's, the two interleaved in one fit recorded at every 2nd step (step_ratio).
"""

import argparse
import os
import subprocess
import tempfile
import time
from collections.abc import Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from bench import data as datasets  # noqa: E402
from bench.models import build_model  # noqa: E402
from bench.recorder import Recorder  # noqa: E402
from bench.scenarios import SCENARIOS  # noqa: E402

BATCH = 32
VARIANTS = {"plain fit": None, "Recorder every=1": 1, "Recorder every=10": 10}


class EpochTimes(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.times = []

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self.start)


class StepTimes(keras.callbacks.Callback):
    """Wall time of each step after the first epoch (which traces), by whether a Recorder(every=every) listed after
    it instruments the step: the two kinds interleaved in one fit, so that the machine's load falls on both."""

    def __init__(self, every: int):
        super().__init__()
        self.every, self.step, self.epoch = every, 0, 0
        self.times: dict[bool, list[float]] = {True: [], False: []}

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        self.start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        if self.epoch:
            self.times[self.step % self.every == 0].append(time.perf_counter() - self.start)
        self.step += 1


def step_ratio(build: Callable, x: np.ndarray, y: np.ndarray, steps: int, epochs: int) -> float:
    """An instrumented step's wall time over a plain one's, medians over one fit recorded at every 2nd step."""
    keras.utils.set_random_seed(0)
    timer = StepTimes(2)
    with tempfile.TemporaryDirectory() as folder:
        compiled(build).fit(x[: steps * BATCH], y[: steps * BATCH], batch_size=BATCH, epochs=1 + epochs,
                            shuffle=False, verbose=0, callbacks=[timer, Recorder(folder, every=2)])
    return float(np.median(timer.times[True]) / np.median(timer.times[False]))


def mlp(shape: tuple, classes: int, width: int = 256, depth: int = 11) -> keras.Model:
    return build_model(SCENARIOS["sigmoid"], depth, shape, classes, width)


def conv(shape: tuple, classes: int) -> keras.Model:
    side = int(np.sqrt(np.prod(shape)))
    return keras.Sequential([
        keras.Input((side, side, 1)), keras.layers.Conv2D(16, 3, padding="same", activation="relu"),
        keras.layers.Conv2D(16, 3, padding="same", activation="relu"), keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(32, 3, padding="same", activation="relu"), keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(classes)], name="conv")


def lstm(shape: tuple, classes: int) -> keras.Model:
    side = int(np.sqrt(np.prod(shape)))
    return keras.Sequential([keras.Input((side, side)), keras.layers.LSTM(64), keras.layers.Dense(classes)],
                            name="lstm")


MODELS: dict[str, Callable] = {"mlp": mlp, "conv": conv, "lstm": lstm}  # (image shape, classes) -> model


def inputs_for(kind: str, x: np.ndarray) -> np.ndarray:
    side = int(np.sqrt(np.prod(x.shape[1:])))
    return {"mlp": x, "conv": x.reshape(len(x), side, side, 1), "lstm": x.reshape(len(x), side, side)}[kind]


def compiled(build: Callable, weights=None) -> keras.Model:
    model = build()
    if weights is not None:
        model.set_weights(weights)
    model.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    return model


def measure(build: Callable, x: np.ndarray, y: np.ndarray, steps: int, epochs: int, repeats: int,
            say=lambda line: None) -> dict[str, np.ndarray]:
    """Seconds per step of each variant: [repeats, epochs]."""
    keras.utils.set_random_seed(0)
    weights = compiled(build).get_weights()
    x, y = x[: steps * BATCH], y[: steps * BATCH]
    per_step = {name: [] for name in VARIANTS}
    with tempfile.TemporaryDirectory() as folder:
        for repeat in range(repeats):
            for name, every in VARIANTS.items():
                timer = EpochTimes()
                callbacks = [timer] if every is None else [timer, Recorder(folder, every=every)]
                compiled(build, weights).fit(x, y, batch_size=BATCH, epochs=1 + epochs, shuffle=False, verbose=0,
                                             callbacks=callbacks)
                per_step[name].append([t / steps for t in timer.times[1:]])
            say(f"repeat {repeat + 1}: " + ", ".join(f"{n} {1e3 * np.median(t[-1]):.2f} ms/step"
                                                     for n, t in per_step.items()))
    return {name: np.asarray(times) for name, times in per_step.items()}


def ratios(times: dict[str, np.ndarray]) -> dict[str, list[float]]:
    """Each recorded variant's median per repeat over plain fit's in the same repeat."""
    plain = np.median(times["plain fit"], axis=1)
    return {name: list(np.median(t, axis=1) / plain) for name, t in times.items() if name != "plain fit"}


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200, help="steps per epoch")
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs per fit (after one untimed)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dataset", default="auto")
    parser.add_argument("--models", default=",".join(MODELS))
    args = parser.parse_args(argv)
    data = datasets.load(args.dataset, train_samples=args.steps * BATCH, test_samples=BATCH)
    print(f"dataset {data.name}, {args.steps} steps an epoch of batch {BATCH}; before: {uptime()}")
    for kind in args.models.split(","):
        print(f"{kind}:")
        times = measure(lambda kind=kind: MODELS[kind](data.image_shape, data.num_classes),
                        inputs_for(kind, data.x_train), data.y_train, args.steps, args.epochs, args.repeats, print)
        ratio = step_ratio(lambda kind=kind: MODELS[kind](data.image_shape, data.num_classes),
                           inputs_for(kind, data.x_train), data.y_train, args.steps, args.epochs)
        print(f"  an instrumented step / a plain one, interleaved in one fit: {ratio:.3f}")
        for name, values in ratios(times).items():
            print(f"  {name:<20} {1e3 * np.median(times[name]):7.3f} ms/step, plain fit "
                  f"{1e3 * np.median(times['plain fit']):7.3f}: ratio per repeat "
                  f"{' '.join(f'{r:.3f}' for r in values)} (median {np.median(values):.3f})")
    print(f"after: {uptime()}")


if __name__ == "__main__":
    main()
