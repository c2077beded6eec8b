"""What the recorder (bench/recorder.py) costs a user's fit: plain `model.fit` against fit with a Recorder at every
step and at every 10th, side by side in one process, on the catalogue's sigmoid MLP (depth 11, width 256, batch 32).

    python -m bench.recorder_cost [--steps 200] [--repeats 3] [--dataset auto]

Each variant trains a fresh copy of the same model (same initial weights, same data order); the first epoch (which
traces the train functions) is not timed, the next `--epochs` are, per epoch, and the variants take turns, so that
a change of the machine's load falls on all of them. Prints each variant's median and minimum time per step, its
ratio to plain fit's (of medians, of minima, and per repeat), the writing of the run file apart, and `uptime`'s
load averages before and after.
"""

import argparse
import os
import subprocess
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from bench import data as datasets  # noqa: E402
from bench.models import build_model  # noqa: E402
from bench.recorder import Recorder  # noqa: E402
from bench.scenarios import SCENARIOS  # noqa: E402

BATCH = 32


class EpochTimes(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.times = []

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self.start)


def model(weights=None):
    scenario = SCENARIOS["sigmoid"]
    built = build_model(scenario, 11, IMAGE_SHAPE, CLASSES, 256)
    if weights is not None:
        built.set_weights(weights)
    built.compile(keras.optimizers.Adam(scenario.learning_rate),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    return built


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def main(argv=None) -> None:
    global IMAGE_SHAPE, CLASSES
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200, help="steps per epoch")
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs per fit (after one untimed)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dataset", default="auto")
    args = parser.parse_args(argv)
    data = datasets.load(args.dataset, train_samples=args.steps * BATCH, test_samples=BATCH)
    IMAGE_SHAPE, CLASSES = data.image_shape, data.num_classes
    x, y = data.x_train[: args.steps * BATCH], data.y_train[: args.steps * BATCH]
    keras.utils.set_random_seed(0)
    weights = model().get_weights()
    print(f"dataset {data.name}, {args.steps} steps an epoch of batch {BATCH}; before: {uptime()}")
    variants = {"plain fit": None, "Recorder every=1": 1, "Recorder every=10": 10}
    per_step = {name: [] for name in variants}
    writes = []
    with tempfile.TemporaryDirectory() as folder:
        for repeat in range(args.repeats):
            for name, every in variants.items():
                timer = EpochTimes()
                callbacks = [timer] if every is None else [timer, Recorder(folder, every=every)]
                started = time.perf_counter()
                model(weights).fit(x, y, batch_size=BATCH, epochs=1 + args.epochs, shuffle=False, verbose=0,
                                   callbacks=callbacks)
                if every is not None:  # the file is written at the end of fit, after the last epoch's timing
                    writes.append(time.perf_counter() - started - sum(timer.times))
                per_step[name] += [t / args.steps for t in timer.times[1:]]
            print(f"repeat {repeat + 1}: " + ", ".join(f"{n} {1e3 * np.median(t[-args.epochs:]):.2f} ms/step"
                                                       for n, t in per_step.items()), flush=True)
    plain = np.asarray(per_step["plain fit"]).reshape(args.repeats, -1)
    for name, times in per_step.items():
        times = np.asarray(times).reshape(args.repeats, -1)
        paired = np.median(times, axis=1) / np.median(plain, axis=1)  # each repeat's against plain fit's beside it
        print(f"{name:<20} median {1e3 * np.median(times):7.3f} ms/step, min {1e3 * times.min():7.3f}  "
              f"ratio: of medians {np.median(times) / np.median(plain):.3f}, of mins {times.min() / plain.min():.3f}"
              f", per repeat {' '.join(f'{r:.3f}' for r in paired)} (median {np.median(paired):.3f})")
    print(f"first epoch + writing the run file, per recorded fit: median {np.median(writes):.2f} s (includes tracing)")
    print(f"after: {uptime()}")


if __name__ == "__main__":
    main()
