"""Claims: one lock file per run, so that sweeps sharing a results folder split the work.

Two processes, or machines on a shared filesystem, may sweep into one folder: each claims a run before
training it and skips runs another sweep holds. A claim file names its holder (host and pid) from the moment it
exists (it is written aside and linked into place); one whose process has died on this host, or that its holder
has not refreshed for STALE_AFTER seconds (a dead machine), is taken over. Claims live beside the folder
(store.partial_folder), where a glob of the folder does not see them. A race on a stale claim can at worst train a
run twice, and the atomic write keeps one.
"""

import os
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from bench import store

STALE_AFTER = 6 * 3600  # seconds; a sweep refreshes the claims it holds every half hour (kept)


def path_of(results: Path, run_id: str) -> Path:
    return store.partial_folder(Path(results)) / f"{run_id}.claim"


def holder(path: Path) -> tuple[str, int] | None:
    """(host, pid) written in a claim file; None when it is gone or unreadable."""
    try:
        host, pid = path.read_text().split()
        return host, int(pid)
    except (OSError, ValueError):
        return None


def stale(path: Path) -> bool:
    """Whether a claim's holder is gone: a dead process on this host, or no refresh for STALE_AFTER seconds."""
    held = holder(path)
    try:
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return True
    if held is None:
        return age > 60  # unreadable: written by an older gradbench, which created a claim before writing it
    return gone(*held, age)


def gone(host: str, pid: int, age: float) -> bool:
    """Whether the process that wrote a file `age` seconds ago is gone: dead on this host, or silent for
    STALE_AFTER seconds (a dead machine). Claims and sweeps' status files (bench.live) are judged by it."""
    return (host == socket.gethostname() and not store.process_alive(pid)) or age > STALE_AFTER


def remove_stale(results: Path) -> None:
    """Delete the claims of sweeps that died (a claim outlives its run when the run was stored just before)."""
    folder = store.partial_folder(Path(results))
    for path in folder.glob("*.claim"):
        if stale(path):
            path.unlink(missing_ok=True)
    for path in folder.glob("*.claiming"):  # what a sweep killed as it wrote a claim aside left
        host, pid, _ = path.stem.rsplit("-", 2)
        try:
            if gone(host, int(pid), time.time() - path.stat().st_mtime):
                path.unlink()
        except (ValueError, FileNotFoundError):
            pass
    try:
        folder.rmdir()  # unless live claims or files are in it
    except OSError:
        pass


def take(results: Path, run_id: str) -> Path | None:
    """Claim a run: the claim file's path, or None when another live sweep holds it."""
    path = path_of(results, run_id)
    path.parent.mkdir(exist_ok=True)
    for _ in range(3):
        try:
            create(path, f"{socket.gethostname()} {os.getpid()}\n")
        except FileExistsError:
            if not stale(path):
                return None
            try:  # move the stale claim out of the way, then try again to create ours
                os.replace(path, path.with_suffix(f".stale.{os.getpid()}"))
                path.with_suffix(f".stale.{os.getpid()}").unlink()
            except FileNotFoundError:
                pass
            continue
        return path
    return None


def create(path: Path, text: str) -> None:
    """Create a file holding text, or raise FileExistsError: written aside, then linked into place, so that a stop
    signal never leaves a claim without its holder (release_own would not know it as this process's)."""
    aside = writing(path.parent)
    try:
        aside.write_text(text)
        os.link(aside, path)
    finally:
        aside.unlink(missing_ok=True)


def writing(folder: Path) -> Path:
    """Where this thread writes a claim before it links it into place."""
    return folder / f"{socket.gethostname()}-{os.getpid()}-{threading.get_ident()}.claiming"


@contextmanager
def kept(paths: list[Path]):
    """Hold claims while a block runs (refreshed from a thread, so a long run's claim never looks stale);
    release those still in `paths` after, also on an error or Ctrl-C."""
    stop = threading.Event()

    def refresh() -> None:
        while not stop.wait(STALE_AFTER / 12):
            for path in list(paths):  # the caller may add and release claims meanwhile
                try:
                    os.utime(path)
                except FileNotFoundError:
                    pass

    threading.Thread(target=refresh, daemon=True).start()
    try:
        yield
    finally:
        stop.set()
        release(paths)


def release(paths: list[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)
    for folder in {path.parent for path in paths}:
        try:
            folder.rmdir()  # unless another sweep's claims or files are in it
        except OSError:
            pass


def release_own(results: Path) -> None:
    """Delete every claim this process holds on a folder, and the claims folder if empty: what an interrupt
    between taking a claim and holding it (kept) would leave."""
    me = (socket.gethostname(), os.getpid())
    folder = store.partial_folder(Path(results))
    for path in folder.glob(f"{socket.gethostname()}-{os.getpid()}-*.claiming"):  # a stop landed as it was written
        path.unlink(missing_ok=True)
    release([path for path in folder.glob("*.claim") if holder(path) == me])
    try:
        folder.rmdir()
    except OSError:
        pass
