"""A sweep seen while it trains: its progress beside the folder, and a site rebuilt as its runs are stored.

Each sweep writes how many of its runs are stored to a status file beside the results folder
(store.partial_folder, where a glob of the folder does not see it), and removes it when it ends; a site built
meanwhile says that a sweep is still training the set (report/sets.py). With `--site`, the sweep also rebuilds
that site in the background (`python -m report build`, on the CPU time training leaves idle) once runs are stored:
one build at a time, starting at most every REFRESH_EVERY seconds, stopped when the sweep ends. A sweep of several
processes (--jobs) leaves no CPU time idle, where such a build would starve: there the first process stops training
for each build instead (at most every WAITED_EVERY seconds) while the others go on.
"""

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench import claims, store
from bench.errors import UserError

REFRESH_EVERY = 60.0  # seconds between the starts of two builds of a sweep's site
WAITED_EVERY = 180.0  # the same where the sweep waits for each build (--jobs: no CPU time is left idle)
NICENESS = 19  # where the idle scheduling class is missing: the lowest priority


@dataclass
class Status:
    """What a live sweep reported last: runs of its grid stored (found or trained) of all, and when (UTC)."""

    done: int
    total: int
    updated: str
    rebuilding: bool  # the sweep rebuilds a site as it goes on (--site)


def status_path(results: Path) -> Path:
    return store.partial_folder(Path(results)) / f"sweep-{socket.gethostname()}-{os.getpid()}.json"


def report(results: Path, done: int, total: int, rebuilding: bool = False) -> None:
    """Write this sweep's status (atomically: a build may read it at any moment)."""
    path = status_path(results)
    path.parent.mkdir(exist_ok=True)
    tmp = path.with_suffix(".writing")
    updated = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    try:
        tmp.write_text(json.dumps({"done": done, "total": total, "updated": updated, "rebuilding": rebuilding}),
                       encoding="utf-8")
        os.replace(tmp, path)
    finally:  # also when a stop signal lands between the write and the rename
        tmp.unlink(missing_ok=True)


def sweeps(results: Path) -> list[Status]:
    """The status of every live sweep of the folder (see alive)."""
    found = []
    for path in sorted(store.partial_folder(Path(results)).glob("sweep-*.json")):
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
            status = Status(int(saved["done"]), int(saved["total"]), str(saved["updated"]), bool(saved["rebuilding"]))
        except (OSError, ValueError, KeyError, TypeError):  # gone meanwhile, or not a status this code wrote
            continue
        if alive(path):
            found.append(status)
    return found


def alive(path: Path) -> bool:
    """Whether the sweep a status file names (sweep-HOST-PID.*) runs: not when its process has died on this host, it
    has not written its status for claims.STALE_AFTER seconds (a dead machine), or the name is not one it writes."""
    host, _, pid = path.name.removeprefix("sweep-").removesuffix(".json").removesuffix(".writing").rpartition("-")
    try:
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return False
    return pid.isdigit() and not claims.gone(host, int(pid), age)


def remove_dead(results: Path) -> None:
    """Delete the status files of sweeps that died: one killed outright could not remove its own."""
    for path in store.partial_folder(Path(results)).glob("sweep-*"):
        if not alive(path):
            path.unlink(missing_ok=True)


@dataclass
class Site:
    """A site rebuilt in the background from `results` (a result set or a root of sets) into `out`."""

    results: Path
    out: Path
    waited: bool = False  # the sweep waits for each build, run at its own priority, instead of training meanwhile
    build: subprocess.Popen | None = None
    log: object = None  # the running build's output
    started: float = float("-inf")
    runs: int = 0  # runs stored when the running build started

    def refresh(self, runs: int, total: int) -> None:
        """Start a build if none runs and the last started REFRESH_EVERY seconds ago; say how the last one ended."""
        if self.build and self.build.poll() is None:
            return
        if self.build:
            self.say_how_it_ended(total)
        if time.monotonic() - self.started >= (WAITED_EVERY if self.waited else REFRESH_EVERY):
            self.start(runs)
            if self.waited:
                self.build.wait()
                self.say_how_it_ended(total)

    def command(self) -> list[str]:
        return [sys.executable, "-m", "report", "build", "--results", str(self.results), "--out", str(self.out)]

    def start(self, runs: int) -> None:
        self.log = tempfile.TemporaryFile()
        self.build = subprocess.Popen(self.command(), stdout=self.log, stderr=subprocess.STDOUT,
                                      preexec_fn=None if self.waited else lower_priority)
        self.started, self.runs = time.monotonic(), runs

    def final(self) -> None:
        """Build the site once more, in the foreground, from every run stored (after ended(): no sweep is said to
        be running)."""
        code = subprocess.run(self.command()).returncode
        if code:
            raise UserError(f"the runs are stored but the site was not built (exit {code}; see above): "
                            f"python -m report build --results {self.results} --out {self.out} builds it")

    def say_how_it_ended(self, total: int) -> None:
        if self.build.returncode == 0:
            print(f"site rebuilt ({self.runs} of {total} runs done when it started): "
                  f"{(self.out / 'index.html').resolve()}", file=sys.stderr)
        else:
            print(f"site not rebuilt: {last_line(self.log)}", file=sys.stderr)
        self.log.close()
        self.build = None

    def stop(self) -> None:
        """Stop a build still running (the final site is built after the sweep); it leaves the previous site."""
        if self.build and self.build.poll() is None:
            self.build.terminate()
            self.build.wait()
        if self.log:
            self.log.close()
        self.build = None


def ended(results: Path, site: Site | None = None) -> None:
    """Remove this sweep's status (and the folder beside the results when nothing else is in it); stop the site's
    build if one runs."""
    if site:
        site.stop()
    path = status_path(results)
    path.unlink(missing_ok=True)
    path.with_suffix(".writing").unlink(missing_ok=True)  # report's own clean-up skipped by a stop as it began
    try:
        path.parent.rmdir()
    except OSError:
        pass


def last_line(log) -> str:
    """The last line a child process wrote to its temporary log file."""
    log.seek(0)
    return (log.read().decode(errors="replace").strip().splitlines() or ["no output"])[-1]


def lower_priority() -> None:
    """A build runs on what training leaves idle: Linux's idle scheduling class (which its workers inherit), or
    the lowest priority."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        os.nice(NICENESS)
