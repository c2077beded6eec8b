"""A quiet console: gradbench's own lines only, TensorFlow's and Keras's chatter with --verbose.

TensorFlow prints native start-up lines (absl, oneDNN) while it is imported, whatever TF_CPP_MIN_LOG_LEVEL
says; Keras prints "Downloading data from …" before a download that may fail; tf.function warns about
retracing when a sweep builds a new graph per cell, which is by design (each graph is traced once per cell,
tests/test_train.py). From TensorFlow 2.17 on, native warnings logged later (Grappler's "No registered ''
OpKernel" for a ReLU recurrent cell, and the remapper's error about it, on 2.18) also ignore
TF_CPP_MIN_LOG_LEVEL (tensorflow#79029): after the import, native output passes through a filter that drops
absl's info, warning and error lines. Failures still raise as Python exceptions and native fatal lines still
show, so hiding these lines hides no failure.
"""

import contextlib
import io
import os
import re
import sys
import threading

verbose = False
filtering = False  # native output goes through filter_native_stderr's thread


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


NATIVE_NOTICE = re.compile(
    rb"^(?:[IWE]\d{4} \d\d:\d\d:[\d.]+ +\d+ \S+:\d+\]"  # "W0000 00:00:1795860208.616937   17122 graph_view.cc:849] …"
    rb"|WARNING: All log messages before absl::InitializeLog\(\)"
    rb"|\t\.  Registered:|\s*$)"  # the continuation line Grappler adds, the blank line after
)  # absl/TSL info, warning and error lines; a fatal one (F…) still shows


def writes_to_fd2(stream) -> bool:
    try:
        return stream.fileno() == 2
    except (AttributeError, OSError, io.UnsupportedOperation):  # a capture of pytest's, say
        return False


def filter_native_stderr() -> None:
    """Send file descriptor 2 (native code's output) through a thread that drops NATIVE_NOTICE lines, once per
    process. Python's sys.stderr, if it wrote to fd 2, now writes to the terminal directly, so progress bars are
    not held up by the filter."""
    global filtering
    if filtering:
        return
    filtering = True
    sys.stderr.flush()
    terminal = os.dup(2)
    if writes_to_fd2(sys.stderr):
        sys.stderr = io.TextIOWrapper(open(terminal, "wb", buffering=0, closefd=False), encoding=sys.stderr.encoding,
                                      errors="backslashreplace", line_buffering=True, write_through=True)
    read, write = os.pipe()
    os.dup2(write, 2)
    os.close(write)

    def forward() -> None:
        with open(read, "rb") as native:
            for line in native:
                if not NATIVE_NOTICE.match(line):
                    os.write(terminal, line)

    threading.Thread(target=forward, name="native-stderr-filter", daemon=True).start()


def import_tensorflow() -> None:
    """Import TensorFlow once, quietly: no native banners or warnings, no Python-side warnings unless verbose."""
    with native_stderr_hidden():
        import tensorflow as tf
    if not verbose:
        tf.get_logger().setLevel("ERROR")
        filter_native_stderr()


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
