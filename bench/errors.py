"""The one exception type for bad input: the CLIs print its message as one line and exit 2."""

import argparse
import signal
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


def stop(signum, frame) -> None:
    STOPPED.append(signum)
    raise KeyboardInterrupt


def stop_on_signals() -> None:
    """Ctrl-C and SIGTERM raise KeyboardInterrupt, so a command unwinds (no temporary file is left), also where
    SIGINT came in ignored: a background job's children inherit that, and `kill -INT` should still stop them."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, stop)


def check_stopped() -> None:
    """KeyboardInterrupt if a stop signal came, though the one it raised was swallowed (a library's `except:`
    around an import or a callback): called where a command would otherwise go on to write."""
    if STOPPED:
        raise KeyboardInterrupt
