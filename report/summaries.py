"""Each run's summary, computed once per file content: its metadata and its run-table row.

A folder of 10,000 runs does not fit in memory as tables; its run table does. A run's row depends on its
own file alone (run_rows), so a build reads the files in batches, in the drawing workers, and
keeps the rows in a cache keyed by each file's content hash and the summarising code: a rebuild reads
only the files that changed. The cache is one file per results folder under $GRADBENCH_CACHE (default
$XDG_CACHE_HOME/gradbench or ~/.cache/gradbench); deleting it only costs the time to recompute it.
"""

import hashlib
import os
import pickle
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

import pandas as pd

from bench import scenarios, store
from report.grading.runs import RUN_COLUMNS, run_rows, tidy

BATCH_BYTES = 4 * 2**20  # file bytes per batch: bounds a worker's memory (a quick run's file: 25 kB-3 MB)
SUMMARY_KINDS = ("step", "layer", "time", "epoch")  # what a run's row is computed from
REPORT = Path(__file__).resolve().parent
Summary = tuple[dict, dict]  # (the run's metadata, its run_rows row)


def cache_root() -> Path:
    if os.environ.get("GRADBENCH_CACHE"):
        return Path(os.environ["GRADBENCH_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gradbench"


def code_version() -> str:
    """Hash of the code a summary comes from: the report package (the grading layer and what it reads), the catalogue,
    the store."""
    paths = [*sorted(REPORT.glob("*.py")), *sorted((REPORT / "grading").glob("*.py")), Path(scenarios.__file__),
             Path(store.__file__)]
    return hashlib.sha256(b"".join(p.read_bytes() for p in paths)).hexdigest()[:16]


def cache_path(folder: Path) -> Path:
    name = hashlib.sha256(str(Path(folder).resolve()).encode()).hexdigest()[:16]
    return cache_root() / "summaries" / code_version() / f"{name}.pickle"


def content_hash(path: Path) -> str:
    return hashlib.blake2b(path.read_bytes(), digest_size=16).hexdigest()


def read_cache(path: Path) -> dict[str, Summary]:
    """The cached summaries by content hash; none when the cache is missing or unreadable (it is rebuilt)."""
    try:
        with path.open("rb") as file:
            cached = pickle.load(file)
    except Exception:  # noqa: BLE001 - a cache that does not read is recomputed, whatever the reason
        return {}
    return cached if isinstance(cached, dict) else {}


def write_cache(path: Path, summaries: dict[str, Summary]) -> None:
    """Best effort: a cache that cannot be written (read-only home, full disk) is skipped."""
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    try:
        for other in path.parent.parent.glob("*"):  # summaries of other code: never read again
            if other.is_dir() and other != path.parent:
                shutil.rmtree(other, ignore_errors=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        with tmp.open("wb") as file:
            pickle.dump(summaries, file, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)


def summarise(paths: list[Path]) -> list[Summary]:
    """The summary of each file, in order (a worker's task)."""
    metas = [store.read_metadata(p) for p in paths]
    runs = pd.DataFrame(metas)
    store.refuse_copies(paths, runs)
    tables = store.kind_tables(paths, SUMMARY_KINDS)
    results = store.Results(runs=runs, histogram=pd.DataFrame(), **tables)
    return list(zip(metas, run_rows(results).to_dict("records"), strict=True))


def batches(paths: list[Path]) -> list[list[Path]]:
    """Consecutive files in groups of about BATCH_BYTES."""
    groups, size = [[]], 0
    for path in paths:
        if groups[-1] and size + path.stat().st_size > BATCH_BYTES:
            groups.append([])
            size = 0
        groups[-1].append(path)
        size += path.stat().st_size
    return [group for group in groups if group]


def load(folder: Path, map_: Callable[[Callable, Iterable], Iterable] = map
         ) -> tuple[list[Path], pd.DataFrame, pd.DataFrame]:
    """(files, recorded, runs): the run files, their metadata (store's runs table, a row per file) and
    run_table, from the cache where a file's content is known, else summarised in batches by map_ (a
    pool's map, or the builtin)."""
    files = store.run_files(folder)
    hashes = [content_hash(f) for f in files]
    where = cache_path(folder)
    cached = read_cache(where)
    missing = [(f, h) for f, h in zip(files, hashes, strict=True) if h not in cached]
    groups = batches([f for f, _ in missing])
    found = [summary for group in map_(summarise, groups) for summary in group]
    cached.update(zip([h for _, h in missing], found, strict=True))
    summaries = [cached[h] for h in hashes]
    if missing or len(cached) != len(set(hashes)):
        write_cache(where, dict(zip(hashes, summaries, strict=True)))
    recorded = pd.DataFrame([meta for meta, _ in summaries])
    store.refuse_copies(files, recorded)
    rows = pd.DataFrame([row for _, row in summaries], columns=RUN_COLUMNS)
    return files, recorded, tidy(rows) if len(rows) else pd.DataFrame(columns=RUN_COLUMNS)
