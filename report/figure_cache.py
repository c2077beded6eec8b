"""Saving a page's figures: stamped by a hash of code and data, reused from the previous build, drawn in workers."""

import hashlib
import os
import shutil
import signal
import threading
import time
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from bench import scenarios as scenarios_module
from report import figures
from report.figures import SavedChart

REPORT = Path(__file__).resolve().parent
DRAWING_CODE = ("recurrent", "depth_scan", "data", "views", "phenomena", "article", "scenario_pages", "overview")
# report modules besides figures/ and grading/ whose code decides what a figure draws


def code_version() -> str:
    """Hash of everything besides a figure's data that decides how it is drawn."""
    paths = [*sorted((REPORT / "figures").glob("*.py")), *sorted((REPORT / "grading").glob("*.py")),
             *(REPORT / f"{name}.py" for name in DRAWING_CODE),
             Path(scenarios_module.__file__)]
    return hashlib.sha256(b"".join(p.read_bytes() for p in paths) + figures.ENGINE.encode()).hexdigest()


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
    code: str = field(default_factory=code_version)

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

    def stamp(self, chart: figures.Chart) -> str:
        digest = hashlib.sha256("\0".join([self.code, chart.name, chart.caption, chart.alt]).encode())
        digest.update(",".join(map(str, chart.data.columns)).encode())
        digest.update(pd.util.hash_pandas_object(chart.data, index=False).to_numpy().tobytes())
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


def start_worker(parent: int) -> None:
    """A drawing worker leaves interrupts to the build (which stops the pool) and exits when the build dies."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)

    def exit_with_parent() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=exit_with_parent, daemon=True).start()
