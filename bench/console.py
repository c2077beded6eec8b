"""A quiet console: gradbench's own lines only, TensorFlow's and Keras's chatter with --verbose.

TensorFlow prints native start-up lines (absl, oneDNN) while it is imported, whatever TF_CPP_MIN_LOG_LEVEL
says; Keras prints "Downloading data from …" before a download that may fail; tf.function warns about
retracing when a sweep builds a new graph per cell, which is by design (each graph is traced once per cell,
tests/test_train.py). Errors still raise as Python exceptions, so hiding these lines hides no failure.
"""

import contextlib
import io
import os
import sys

verbose = False


def configure(show_everything: bool) -> None:
    global verbose
    verbose = show_everything
    if not verbose:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@contextlib.contextmanager
def native_stderr_hidden():
    """Send file descriptor 2 (what C++ code writes to) to /dev/null for a block, unless verbose."""
    if verbose:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def import_tensorflow() -> None:
    """Import TensorFlow once, quietly: no native banners, no Python-side warnings unless verbose."""
    with native_stderr_hidden():
        import tensorflow as tf
    if not verbose:
        tf.get_logger().setLevel("ERROR")


@contextlib.contextmanager
def prints_hidden():
    """Swallow what a library prints to stdout/stderr in Python (Keras's download lines), unless verbose."""
    if verbose:
        yield
        return
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        yield


def dask_setup(worker) -> None:
    """Dask's preload hook: a worker started by `--workers` imports TensorFlow quietly before its first task."""
    import_tensorflow()
