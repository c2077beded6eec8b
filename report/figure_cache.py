"""Saving a page's figures: stamped by a hash of the code that draws them and what they draw, reused from the previous
build, drawn in workers."""

import hashlib
import os
import pickle
import shutil
import signal
import threading
import time
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from bench import closure, store
from report import figures
from report.figures import SavedChart


def code_version(chart: figures.Chart) -> str:
    """The code that draws a chart: its drawing function's module and the figures package (where `write` is), with
    the modules they import, and the drawing engine's version."""
    return closure.code_hash(chart.draw.func.__module__, "report.figures") + figures.ENGINE


def fingerprint(value) -> bytes:
    """An argument of a drawing function as bytes: a table by its content, anything else as pickled."""
    if isinstance(value, pd.DataFrame):
        columns = ",".join(map(str, value.columns)).encode()
        return columns + pd.util.hash_pandas_object(value, index=False).to_numpy().tobytes()
    return pickle.dumps(value, protocol=4)


@dataclass
class Shelf:
    """Saves figures under <root>/figures/<page>/ and hands back what a template needs.

    Drawing an SVG is the slow part of a build. A figure whose stamp (a hash of the code, its data,
    caption and alt text) matches the one in the previous build's SVG is copied from there instead;
    the others are drawn by the pool's worker processes while the pages go on. `wait` collects them
    (and re-raises a worker's error).
    """

    root: Path
    pool: Executor | None = None
    previous: Path | None = None  # the site this build replaces
    pending: list[Future] = field(default_factory=list)

    def put(self, chart: figures.Chart | None, page: str) -> SavedChart | None:
        if chart is None:
            return None
        folder = self.root / "figures" / page
        saved = figures.describe(chart, folder, self.root)
        stamp = self.stamp(chart)
        if self.reuse(saved, stamp):
            return saved
        if self.pool is None:
            figures.write(chart, folder, stamp)
        else:
            self.pending.append(self.pool.submit(figures.write, chart, folder, stamp))
        return saved

    @staticmethod
    def stamp(chart: figures.Chart) -> str:
        """A hash of everything that decides the figure: the code that draws it, what it draws (the drawing
        function's arguments, its data among them), its name, caption and alt text."""
        digest = hashlib.sha256("\0".join([code_version(chart), chart.name, chart.caption, chart.alt]).encode())
        for value in (*chart.draw.args, *sorted(chart.draw.keywords.items())):
            digest.update(fingerprint(value))
        return digest.hexdigest()[:32]

    def reuse(self, saved: SavedChart, stamp: str) -> bool:
        if self.previous is None:
            return False
        old = [self.previous / saved.svg, self.previous / saved.csv]
        if not all(path.is_file() for path in old) or not figures.stamped(old[0], stamp):
            return False
        for path, relative in zip(old, (saved.svg, saved.csv), strict=True):
            (self.root / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, self.root / relative)
        return True

    def wait(self) -> None:
        for future in self.pending:
            future.result()
        self.pending.clear()


def start_worker(build: int) -> None:
    """A drawing worker leaves interrupts to the build (which stops the pool) and exits when the build dies (its
    parent is the build's fork server, which lives on while a worker does)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)

    def exit_with_build() -> None:
        while store.process_alive(build):
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=exit_with_build, daemon=True).start()
