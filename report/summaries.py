"""Each run's summary, computed once per file content: its metadata and its run-table row; and, only when a diff of
two folders asks for it, what the diff compares of it beyond that row (its step-0 rows and a digest of everything it
logged: report/diff.py), cached beside the summaries, so that a build pays only for what it shows.

A folder of 10,000 runs does not fit in memory as tables; its run table does. A run's row depends on its
own file alone (run_rows), so a build (or a diff) reads the files in batches, in worker processes, and
keeps the rows in a cache keyed by each file's content hash and the summarising code: a rebuild reads
only the files that changed. The cache is one JSON file per results folder, and one more of what diffs compare,
under $GRADBENCH_CACHE (default $XDG_CACHE_HOME/gradbench or ~/.cache/gradbench), its first line the sha256 of the
second: data, never code, so a cache folder shared in CI or on a cluster cannot run anything, and one that is
damaged or of another structure is recomputed. Deleting it only costs the time to recompute it.
"""

import contextlib
import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import pandas as pd

from bench import closure, store
from report.grading.runs import ROW_INPUTS, RUN_COLUMNS, run_rows, tidy

HASH_THREADS = max(1, min(len(os.sched_getaffinity(0)), 4))  # files hashed at once
BATCH_BYTES = 16 * 2**20  # file bytes per batch: bounds a worker's memory (a quick run's file: 25 kB-3 MB; a worker's
# peak RSS ~740 MiB, ~520 MiB at 8 MB) and amortises a batch's fixed cost (~70 ms CPU; 8 -> 16 MB: -8 % CPU)
COMPARE_BATCH_BYTES = 4 * 2**20  # the same when a diff reads what it compares: every column, histograms included (a
# 4 MB 5,000-step run's ~100 MiB; batches of 16 MB took a worker to 700 MiB and a diff of two 10,050-run folders, its
# two workers and their fork server to 1.9 GiB; 4 MB: a worker's peak ~290 MiB outside the pool)
STEP0_COLUMNS = {"step": ("loss", "grad_norm"), "layer": ("layer_name", "kernel_norm", "delta_norm")}  # per kind,
# the columns of the step-0 rows a diff compares (report/diff.py's step0_<column> metrics)
ROW_COLUMNS = list(dict.fromkeys(["kind", *(c for columns in ROW_INPUTS.values() for c in columns)]))  # read by a build
Summary = tuple  # (the run's metadata, its run_rows row) and, read for a diff, compared(): what the diff compares


def cache_root() -> Path:
    if os.environ.get("GRADBENCH_CACHE"):
        return Path(os.environ["GRADBENCH_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gradbench"


def code_version() -> str:
    """The code a summary comes from: this module and what it imports (the grading layer, the store, the catalogue)."""
    return closure.code_hash("report.summaries")


CACHE_MARKER = ".gradbench-summaries"  # in each folder of summaries this code made: only those are cleaned up


def cache_path(folder: Path) -> Path:
    name = hashlib.sha256(str(Path(folder).resolve()).encode()).hexdigest()[:16]
    return cache_root() / "summaries" / code_version() / f"{name}.json"


def compared_path(folder: Path) -> Path:
    """The cache of what diffs compare of a folder's runs, beside its summaries'."""
    return cache_path(folder).with_suffix(".compared.json")


def content_hash(path: Path) -> str:
    """A file's content as a key: sha256, which CPUs with SHA extensions compute twice as fast as blake2b."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:32]


def content_hashes(files: list[Path]) -> list[str]:
    """Each file's content_hash, in threads: reading and hashing release the GIL, and a folder of 10,000 runs holds
    gigabytes that every build, cold or cached, hashes before it knows what changed."""
    with ThreadPoolExecutor(HASH_THREADS) as pool:
        return list(pool.map(content_hash, files))


def read_cache(path: Path, parts: int) -> dict[str, tuple]:
    """A cache's entries by content hash, each `parts` dicts; none when the cache is missing, damaged or of another
    structure."""
    try:
        digest, text = path.read_bytes().split(b"\n", 1)
        cached = json.loads(text) if hashlib.sha256(text).hexdigest().encode() == digest else None
    except (OSError, ValueError):
        return {}
    well_formed = isinstance(cached, dict) and all(
        isinstance(entry, list) and len(entry) == parts and all(isinstance(part, dict) for part in entry)
        for entry in cached.values())
    return {key: tuple(entry) for key, entry in cached.items()} if well_formed else {}


def plain(value):
    """A numpy scalar as the Python number JSON writes."""
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON")


def write_cache(path: Path, entries: dict[str, tuple]) -> None:
    """Best effort: a cache that cannot be written (read-only home, full disk, $GRADBENCH_CACHE a file) is skipped.
    Summaries of other code are never read again: their folders go, if their marker says this code made them."""
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    try:
        for other in path.parent.parent.glob(f"*/{CACHE_MARKER}"):
            if other.parent != path.parent:
                shutil.rmtree(other.parent, ignore_errors=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        (path.parent / CACHE_MARKER).touch()
        text = json.dumps(entries, sort_keys=True, default=plain).encode()
        tmp.write_bytes(hashlib.sha256(text).hexdigest().encode() + b"\n" + text)
        os.replace(tmp, path)
    except (OSError, TypeError):
        with contextlib.suppress(OSError):  # $GRADBENCH_CACHE a file: there is no tmp to remove either
            tmp.unlink(missing_ok=True)


def summarise(paths: list[Path], compare: bool = False) -> list[Summary]:
    """The summary of each file, in order, with compare also what a diff compares of it, from the same read (a
    worker's task)."""
    # the digest covers every column of every kind; a build reads run_rows' columns only: not the histograms, nor
    # the statistics it does not summarise
    metas, read = zip(*(store.read_run(p, store.schema().names if compare else ROW_COLUMNS) for p in paths))
    runs = pd.DataFrame(list(metas))
    store.refuse_copies(paths, runs)
    if compare:
        tables = store.split_kinds(list(read))
    else:
        tables = {"histogram": store.kind_frame("histogram", []), **store.split_kinds(list(read), tuple(ROW_INPUTS),
                                                                                      ROW_INPUTS)}
    rows = run_rows(store.Results(runs=runs, **tables)).to_dict("records")
    if not compare:
        return list(zip(metas, rows, strict=True))
    return list(zip(metas, rows, compared(tables, [meta["run_id"] for meta in metas]), strict=True))


def compare_files(runs: list[tuple[Path, str]]) -> list[dict]:
    """What a diff compares of each (file, its run id), files summarised before (a worker's task): their content
    is the one their summary checked."""
    tables = store.split_kinds([store.read_arrow(path, store.schema().names) for path, _ in runs])
    return compared(tables, [run for _, run in runs])


def compared(tables: dict[str, pd.DataFrame], run_ids: list[str]) -> list[dict]:
    """What a diff compares of each run beyond its run-table row: per kind of STEP0_COLUMNS, its step-0 rows'
    columns (lists), and `logged`, one digest of every row it logged of every kind, its run id left out (two runs
    with equal digests logged the same numbers)."""
    chunks: dict[str, list[bytes]] = {run: [] for run in run_ids}
    for frame in tables.values():
        for run, rows in frame.groupby("run_id", sort=False):
            chunks[run].append(row_hashes(rows.drop(columns="run_id")))
    step0 = {kind: step0_rows(tables[kind], columns) for kind, columns in STEP0_COLUMNS.items()}
    none = {kind: {column: [] for column in columns} for kind, columns in STEP0_COLUMNS.items()}
    return [{"step0": {kind: step0[kind].get(run, none[kind]) for kind in STEP0_COLUMNS},
             "logged": hashlib.sha256(b"".join(chunks[run])).hexdigest()} for run in run_ids]


def row_hashes(rows: pd.DataFrame) -> bytes:
    """Each row's hash of its values (pandas'), as bytes."""
    return pd.util.hash_pandas_object(rows, index=False).to_numpy().tobytes()


def step0_rows(frame: pd.DataFrame, columns: tuple[str, ...]) -> dict[str, dict[str, list]]:
    """Per run with rows at step 0: their columns, as lists."""
    first = frame[frame["step"] == 0]
    return {run: rows[list(columns)].to_dict("list") for run, rows in first.groupby("run_id", sort=False)}


def batches(paths: list[Path], limit: int = BATCH_BYTES) -> list[list[Path]]:
    """Consecutive files in groups of about `limit` bytes."""
    groups, size = [[]], 0
    for path in paths:
        if groups[-1] and size + path.stat().st_size > limit:
            groups.append([])
            size = 0
        groups[-1].append(path)
        size += path.stat().st_size
    return [group for group in groups if group]


def load(folder: Path, map_: Callable[[Callable, Iterable], Iterable] = map
         ) -> tuple[list[Path], pd.DataFrame, pd.DataFrame]:
    """(files, recorded, runs): the run files, their metadata (store's runs table, a row per file) and
    run_table, through read() (map_: a pool's map, or the builtin)."""
    files, summaries = read(folder, map_)
    return (files, *tables(files, summaries))


def read(folder: Path, map_: Callable[[Callable, Iterable], Iterable] = map, compare: bool = False
         ) -> tuple[list[Path], list[Summary]]:
    """The run files of a results folder and their summaries, in order, with compare each with what a diff
    compares of it (compared()): from the caches where a file's content is known, else computed in batches by map_.
    A build never reads nor computes what only a diff compares."""
    files = store.run_files(store.existing(folder))
    hashes = content_hashes(files)
    known = read_cache(cache_path(folder), 2)
    diffed = read_cache(compared_path(folder), 1) if compare else None
    known_before, diffed_before = set(known), set(diffed or ())
    summarise_missing(files, hashes, known, diffed, map_)
    keep(cache_path(folder), known, hashes, known_before)
    if diffed is None:
        return files, [known[h] for h in hashes]
    compare_missing(files, hashes, known, diffed, map_)
    keep(compared_path(folder), diffed, hashes, diffed_before)
    return files, [(*known[h], *diffed[h]) for h in hashes]


def summarise_missing(files: list[Path], hashes: list[str], known: dict, diffed: dict | None, map_) -> None:
    """Summarise the files whose hash `known` lacks, into it; for a diff (diffed, not None) with what it compares
    of them, into diffed, from the same read of each file."""
    missing = [(f, h) for f, h in zip(files, hashes, strict=True) if h not in known]
    task = partial(summarise, compare=diffed is not None)
    limit = BATCH_BYTES if diffed is None else COMPARE_BATCH_BYTES
    found = [summary for group in map_(task, batches([f for f, _ in missing], limit)) for summary in group]
    for (_, h), summary in zip(missing, found, strict=True):
        known[h] = summary[:2]
        if diffed is not None:
            diffed[h] = summary[2:]


def compare_missing(files: list[Path], hashes: list[str], known: dict, diffed: dict, map_) -> None:
    """What a diff compares of the files summarised before (by a build) but not compared yet, into diffed."""
    missing = [(f, h) for f, h in zip(files, hashes, strict=True) if h not in diffed]
    run_of = {f: known[h][0]["run_id"] for f, h in missing}
    groups = [[(f, run_of[f]) for f in group] for group in batches([f for f, _ in missing], COMPARE_BATCH_BYTES)]
    found = [part for group in map_(compare_files, groups) for part in group]
    diffed.update(zip([h for _, h in missing], ((part,) for part in found), strict=True))


def keep(path: Path, entries: dict[str, tuple], hashes: list[str], cached: set[str]) -> None:
    """Write a cache's entries of these files' hashes unless it held exactly those (`cached`): some were computed,
    or others (of files since deleted or changed) are no longer needed."""
    if set(hashes) != cached:
        write_cache(path, {h: entries[h] for h in hashes})


def tables(files: list[Path], summaries: list[Summary]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(recorded, runs) of a folder's summaries: the files' metadata (store's runs table) and run_table; a run stored
    twice is refused."""
    recorded = pd.DataFrame([summary[0] for summary in summaries])
    store.refuse_copies(files, recorded)
    rows = pd.DataFrame([summary[1] for summary in summaries], columns=RUN_COLUMNS)
    return recorded, tidy(rows) if len(rows) else pd.DataFrame(columns=RUN_COLUMNS)
