"""The one exception type for bad input: the CLIs print its message as one line and exit 2."""

import argparse
import signal
import sys
from contextlib import contextmanager
from pathlib import Path


class UserError(Exception):
    """What is wrong and what is valid, in one line."""


def one_line(err: BaseException, limit: int = 200) -> str:
    """An exception's message on one line, cut at `limit` characters."""
    return (" ".join(str(err).split()) or type(err).__name__)[:limit]


def folder_argument(text: str) -> Path:
    """A folder argument of the CLIs: '' would mean the current folder, which no one means."""
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a folder, got ''")
    return Path(text)


STOPPED: list[int] = []  # the stop signals this process received
HELD: list[bool] = []  # inside held_signals: a stop signal is raised at its end


def stop(signum, frame) -> None:
    STOPPED.append(signum)
    if not HELD:
        raise KeyboardInterrupt


@contextmanager
def held_signals():
    """A stop signal that comes inside raises KeyboardInterrupt at the end, for what must not be cut in half."""
    received = len(STOPPED)
    HELD.append(True)
    try:
        yield
    finally:
        HELD.pop()
    if len(STOPPED) > received:
        raise KeyboardInterrupt


def quiet_when_stopped(unraisable) -> None:
    """The KeyboardInterrupt of a stop signal that lands in a callback Python cannot raise from (an import
    lock's weakref callback, a __del__) is dropped without a traceback: STOPPED holds it, check_stopped
    raises it again. Anything else goes to Python's own hook."""
    if STOPPED and unraisable.exc_type is KeyboardInterrupt:
        return
    sys.__unraisablehook__(unraisable)


def stop_on_signals() -> None:
    """Ctrl-C and SIGTERM raise KeyboardInterrupt, so a command unwinds (no temporary file is left), also where
    SIGINT came in ignored: a background job's children inherit that, and `kill -INT` should still stop them."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, stop)
    sys.unraisablehook = quiet_when_stopped


EXIT_INTERRUPTED = 130  # a command stopped by Ctrl-C or SIGTERM, as shells report one


def interrupted() -> int:
    """EXIT_INTERRUPTED, for a CLI's main to return once it has caught the KeyboardInterrupt of a stop. CPython marks
    a KeyboardInterrupt that ends code `exec` ran from a string (dataclasses and namedtuples define their methods so,
    while modules load) as unhandled though a caller catches it, and `python -m` then ends by killing itself with
    SIGINT (exit -2); the next string exec clears that mark (its run_eval_code_obj)."""
    exec("")
    return EXIT_INTERRUPTED


def check_stopped() -> None:
    """KeyboardInterrupt if a stop signal came, though the one it raised was swallowed (a library's `except:`
    around an import or a callback): called where a command would otherwise go on to write."""
    if STOPPED:
        raise KeyboardInterrupt
