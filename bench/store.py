"""Parquet storage: one file per finished run, written atomically.

A run file holds one long table. Its `kind` column says what a row is, and each kind
uses its own columns (the others are null; parquet stores those nulls for almost nothing):

  step       one per logged training step: loss, accuracy and global gradient norm
  layer      one per logged step and weight layer (Dense/Conv/RNN, forward order)
  time       recurrent networks: one per logged step and time step t of the sequence
  epoch      one per epoch: mean training loss/accuracy and held-out loss/accuracy
  histogram  one per bin, at epoch 0 (initialisation) and the end of every epoch

The run's config, outcome and provenance are JSON in the file's metadata; `load` turns
them into the `runs` table. Every row also carries run_id, scenario, depth and seed so
the folder reads as one dataset with any parquet reader (pandas, pyarrow, DuckDB, polars).
"""

import contextlib
import hashlib
import json
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from bench import statistics
from bench.errors import UserError, one_line

SCHEMA_VERSION = 2  # 2: recurrent networks (the time kind, recurrent_grad_norm)
METADATA_KEY = b"gradbench"
CHECKSUM = "sha256"  # of the data pages and the metadata record; files written before it have none (unverified)

RUN_KEYS = {"run_id": pa.string(), "scenario": pa.string(), "depth": pa.int32(), "seed": pa.int32()}
TEXT_KEYS = [key for key, key_type in RUN_KEYS.items() if key_type == pa.string()]
DICTIONARY_COLUMNS = [*TEXT_KEYS, "kind", "layer_role"]  # text columns of a few values a file (parquet_file)
# the columns that say where a row belongs; the statistics' columns follow from bench/statistics.py
KEY_COLUMNS: dict[str, dict[str, pa.DataType]] = {
    "step": {
        "step": pa.int32(),  # 0 = the first update, taken on the initial weights
        "epoch": pa.int32(),  # 1-based epoch the step belongs to
    },
    "layer": {
        "step": pa.int32(),
        "epoch": pa.int32(),
        "layer": pa.int32(),  # index among the weight layers, forward order
        "layer_name": pa.string(),
        "layer_role": pa.string(),  # hidden | output | shortcut (a residual projection)
    },
    "time": {
        "step": pa.int32(),
        "epoch": pa.int32(),
        "time_step": pa.int32(),  # t = 1..T of the sequence
    },
    "epoch": {
        "epoch": pa.int32(),
    },
    "histogram": {
        "epoch": pa.int32(),  # 0 = at initialisation
        "layer": pa.int32(),
        "quantity": pa.string(),  # weight | log10_abs_grad (gradient on a fixed probe batch)
        "bin_left": pa.float32(),
        "bin_right": pa.float32(),
        "count": pa.int64(),
    },
}
COLUMNS: dict[str, dict[str, pa.DataType]] = {
    kind: {**keys, **{s.name: s.dtype for s in statistics.of_kind(kind)}} for kind, keys in KEY_COLUMNS.items()
}
KINDS = tuple(COLUMNS)
STATISTIC_COLUMNS = {s.name for s in statistics.STATISTICS}


class StoreError(UserError):
    """A results file or folder that cannot be read; the message says what to do."""


@cache  # read per file by read_arrow: built once
def schema() -> pa.Schema:
    fields = {"kind": pa.string(), **RUN_KEYS}
    for columns in COLUMNS.values():
        fields.update(columns)
    return pa.schema(list(fields.items()))


def to_table(run: dict, tables: dict[str, pd.DataFrame]) -> pa.Table:
    """Stack a run's per-kind frames into one arrow table with the run's metadata."""
    parts = [frame.assign(kind=kind) for kind, frame in tables.items() if len(frame)]
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame({"kind": []})
    for key in RUN_KEYS:
        frame[key] = run[key]
    target = schema()
    frame = frame.reindex(columns=target.names)
    table = pa.Table.from_pandas(frame, schema=target, preserve_index=False)
    meta = {"schema_version": SCHEMA_VERSION, "run": run}
    return table.replace_schema_metadata({METADATA_KEY: json.dumps(meta, sort_keys=True)})


def digest(config: dict) -> str:
    """A short hash of a config: the identity a result file is named by."""
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:10]


def partial_folder(folder: Path) -> Path:
    """Where files of a folder are written before they are renamed into it: beside it, so that a glob of the
    folder (DuckDB's read_parquet('results/*'), say) never sees a half-written file."""
    return folder.parent / f".{folder.name}.partial"


def process_alive(pid: int) -> bool:
    """Whether a process of this host runs (another user's counts as running)."""
    if pid <= 0:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def writer_alive(tmp: Path) -> bool:
    """Whether the process that names a temporary file or folder (NAME.PID.tmp, .site.PID.building) still runs;
    unknown names count as alive."""
    try:
        pid = int(tmp.suffixes[-2][1:])
    except (IndexError, ValueError):
        return True
    return process_alive(pid)


def remove_leftovers(folder: Path) -> list[Path]:
    """Delete the temporary files of writers that died (killed mid-write) in a folder's partial folder, and
    those of older gradbench versions inside the folder; returns them."""
    candidates = [*partial_folder(folder).glob("*.tmp"), *Path(folder).glob(".*.tmp")]
    dead = [path for path in candidates if not writer_alive(path)]
    for path in dead:
        path.unlink(missing_ok=True)
    try:
        partial_folder(folder).rmdir()
    except OSError:  # absent, or a live writer's file is in it
        pass
    return dead


def body(raw: bytes) -> memoryview:
    """A parquet file's data pages: what lies between its leading magic and its footer (a view, not a copy)."""
    footer = int.from_bytes(raw[-8:-4], "little") + 8 if len(raw) >= 12 else len(raw)
    return memoryview(raw)[4 : max(4, len(raw) - footer)]


def checksum(raw: bytes, info: dict) -> str:
    """sha256 of a file's data pages and of its metadata record (without the checksum itself)."""
    record = json.dumps({k: v for k, v in info.items() if k != CHECKSUM}, sort_keys=True).encode()
    digest = hashlib.sha256(body(raw))
    digest.update(record)
    return digest.hexdigest()


# lz4, not zstd: a run's float statistics hardly compress (a 5,000-step run 3.8 MB with zstd, 4.2 with lz4), and lz4
# decodes 1.4-2.4x faster; a build reads every run file once it changed
COMPRESSION = "lz4"


def sealed(table: pa.Table, write) -> None:
    """Write a table through write(table) -> the file's bytes, twice: the second time with the first's checksum in
    its metadata (the data pages do not depend on the metadata, which the check below proves)."""
    info = json.loads(table.schema.metadata[METADATA_KEY])
    info[CHECKSUM] = checksum(write(table), info)
    raw = write(table.replace_schema_metadata({METADATA_KEY: json.dumps(info, sort_keys=True)}))
    if checksum(raw, info) != info[CHECKSUM]:
        raise RuntimeError("parquet wrote different data pages for the same table")


def write_atomically(table: pa.Table, path: Path) -> None:
    """A crash leaves either the whole file or none; a full disk is a StoreError that names the file."""
    def write(tmp: Path) -> None:
        sealed(table, lambda t: (pq.write_table(t, tmp, compression=COMPRESSION), tmp.read_bytes())[1])
    replace_atomically(path, write)


def replace_atomically(path: Path, write, check=None) -> None:
    """Write a file beside the folder with write(tmp), check(tmp) it if asked, then rename it into place."""
    tmp = partial_folder(path.parent) / f"{path.name}.{os.getpid()}.tmp"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_beside(tmp, write)
        if check:
            check(tmp)
        os.replace(tmp, path)
    except OSError as err:
        raise StoreError(f"{path}: cannot write it ({err.strerror or err}); the runs already stored are kept: "
                         "free space or fix the folder, then run the same command again to resume") from None
    finally:
        tmp.unlink(missing_ok=True)
        try:
            tmp.parent.rmdir()  # unless another writer is using it
        except OSError:
            pass


def write_beside(tmp: Path, write) -> None:
    """write(tmp) into the partial folder, made first, up to three times: a writer that has just finished beside us
    removes it while it is empty, between our making it and our opening tmp (two --jobs processes storing runs)."""
    for attempt in range(3):
        tmp.parent.mkdir(exist_ok=True)
        try:
            return write(tmp)
        except OSError:
            if tmp.parent.is_dir() or attempt == 2:
                raise


def write_run(path: Path, run: dict, tables: dict[str, pd.DataFrame]) -> None:
    write_atomically(to_table(run, tables), path)


def run_bytes(run: dict, tables: dict[str, pd.DataFrame]) -> bytes:
    """A run's result file as bytes (what a cluster worker sends back)."""
    written = []

    def write(table: pa.Table) -> bytes:
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, compression=COMPRESSION)
        written.append(sink.getvalue().to_pybytes())
        return written[-1]

    sealed(to_table(run, tables), write)
    return written[-1]


def store_run_bytes(raw: bytes, path: Path, code: dict) -> tuple[dict, dict[str, pd.DataFrame]]:
    """Store a result file received as bytes, checked like a file of the folder before it is renamed into it
    (its name must be its run's id, its code this gradbench's: bench/provenance.code()); returns (run, tables)."""
    received = {}

    def check(tmp: Path) -> None:
        run = read_metadata(tmp)
        if run.get("run_id") != path.stem or any(run.get(key) != value for key, value in code.items()):
            raise StoreError(f"{path.name}: the worker on {run.get('host')} sent run {run.get('run_id')} measured by "
                             f"gradbench code {run.get('measurement_code')} (this one is {code['measurement_code']})"
                             "; install the same gradbench on every worker")
        received.update(run=run, tables=kind_tables([tmp]))

    replace_atomically(path, lambda tmp: tmp.write_bytes(raw), check)
    return received["run"], received["tables"]


def measured_otherwise(run: dict, code: dict) -> list[str]:
    """What of a stored run this gradbench would measure differently (bench/provenance.code()): its shared
    measurement code, or statistics whose own code changed. A statistic the run lacks (declared since) is missing
    for it, not measured otherwise."""
    if run.get("measurement_code") != code["measurement_code"]:
        return ["measurement code"]
    own = run.get("statistic_code") or {}
    return sorted(name for name, version in own.items() if code["statistic_code"].get(name, version) != version)


# what reading a damaged parquet file raises: Arrow's errors, I/O errors, and a footer's names that are no longer
# UTF-8 (a flipped bit in a column's name)
UNREADABLE = (pa.ArrowException, OSError, UnicodeDecodeError)


def read_info(path: Path, kind: str = "run", what: str = "result") -> dict:
    """The `kind` dict (run, scan) of one file's metadata; refuses foreign files and other schema versions."""
    return opened(path, kind, what)[0]


def opened(path: Path, kind: str, what: str) -> tuple[dict, pq.ParquetFile]:
    """read_info's dict and the file's reader (parquet_file's), its checks passed."""
    try:
        raw = path.read_bytes()
        file = parquet_file(raw, kind)
        meta, rows = file.schema_arrow.metadata or {}, file.metadata.num_rows
    except UNREADABLE as err:
        raise StoreError(f"{path}: not a readable parquet file ({one_line(err)}); delete it or move it away") from None
    if METADATA_KEY not in meta:
        raise StoreError(f"{path}: a parquet file, but not a gradbench {what} (no '{METADATA_KEY.decode()}' metadata)")
    try:
        info = json.loads(meta[METADATA_KEY])
    except ValueError:
        info = None
    if not isinstance(info, dict) or not isinstance(info.get(kind), dict):
        raise StoreError(f"{path}: its '{METADATA_KEY.decode()}' metadata is corrupt (no {kind} record); "
                         f"delete it and {measure_again(kind)}")
    version = info.get("schema_version")
    if version != SCHEMA_VERSION:
        raise StoreError(
            f"{path}: schema version {version}, this gradbench reads version {SCHEMA_VERSION}; "
            "re-run the sweep into an empty folder or use the gradbench that wrote it"
        )
    problem = damage(raw, info, kind, rows) or (kind == "run" and mislabelled(file, info["run"]))
    if problem:
        raise StoreError(f"{path}: {problem}; this file cannot be trusted: move it away and {measure_again(kind)}")
    return info[kind], file


def parquet_file(raw: bytes, kind: str) -> pq.ParquetFile:
    """A file's reader; a run file's repeated text columns read as dictionaries (a file's few values, not a string
    per row: a 5,000-step run's kind and layer_role decode 4 ms faster, read_arrow makes them strings again),
    unless a damaged file lacks them."""
    if kind == "run":
        with contextlib.suppress(KeyError):
            return pq.ParquetFile(pa.BufferReader(raw), read_dictionary=DICTIONARY_COLUMNS)
    return pq.ParquetFile(pa.BufferReader(raw))


def measure_again(kind: str) -> str:
    """What measures a file of this kind again."""
    return "run 'python -m bench scan' again" if kind == "scan" else "run the sweep again to retrain it"


def mislabelled(file: pq.ParquetFile, run: dict) -> str | None:
    """Rows of another run than the file's metadata names (a file pieced together from two): the report would
    show them under the metadata's name. Where the footer's statistics of a key column say every row holds the
    metadata's value, its rows are not read (a build reads 10,000 files)."""
    names = file.schema.names  # the footer's, as all_rows_hold reads: schema_arrow is converted anew on each access
    keys = [key for key in RUN_KEYS if key in names and not all_rows_hold(file, key, run[key])]
    if not keys:
        return None
    try:
        table = file.read(columns=keys, use_threads=False)  # as read_arrow
    except UNREADABLE as err:
        return f"its data cannot be read ({one_line(err)})"
    for key in keys:
        found = pc.unique(table.column(key)).to_pylist()
        if found != [run[key]]:
            return f"its rows are of {key} {', '.join(map(str, found[:3]))}, its metadata names {key} {run[key]}"
    return None


def all_rows_hold(file: pq.ParquetFile, column: str, value) -> bool:
    """Whether the statistics of every row group say each row's `column` is `value` (False where any lacks them)."""
    meta = file.metadata
    index = meta.schema.names.index(column) if column in meta.schema.names else -1
    for group in range(meta.num_row_groups):
        stats = meta.row_group(group).column(index).statistics if index >= 0 else None
        if not (stats and stats.has_min_max and stats.has_null_count and stats.null_count == 0
                and stats.min == value == stats.max):
            return False
    return True


RECORD_TYPES = {"run": {"run_id": str, "scenario": str, "depth": int, "seed": int},
                "scan": {}}


def damage(raw: bytes, info: dict, kind: str, rows: int) -> str | None:
    """What is wrong with a file whose metadata parsed: a checksum that does not match, keys of the wrong type, no
    rows; None when nothing is (a file without a checksum, written before gradbench had them, reads unverified)."""
    if CHECKSUM in info and info[CHECKSUM] != checksum(raw, info):
        return "its content does not match its checksum (a damaged copy or disk)"
    wrong = [key for key, kind_type in RECORD_TYPES[kind].items()
             if not isinstance(info[kind].get(key), kind_type) or isinstance(info[kind].get(key), bool)]
    if wrong:
        valid = ", ".join(f"{key}: {RECORD_TYPES[kind][key].__name__}" for key in wrong)
        return f"its metadata has no valid {valid}"
    if rows == 0:
        return "it holds no rows"
    return None


def read_metadata(path: Path) -> dict:
    """The run dict of one result file."""
    return read_info(path, "run")


@dataclass
class Results:
    """A results folder as one set of tables, each with run_id/scenario/depth/seed columns."""

    runs: pd.DataFrame
    step: pd.DataFrame
    layer: pd.DataFrame
    time: pd.DataFrame
    epoch: pd.DataFrame
    histogram: pd.DataFrame

    def table(self, kind: str) -> pd.DataFrame:
        return getattr(self, kind)


def run_files(folder: Path) -> list[Path]:
    """The *.parquet files of a folder; a folder or a broken link of that name is refused, naming it."""
    files = sorted(Path(folder).glob("*.parquet"), key=lambda path: path.name)  # as paths sort, 5 times faster
    for path in files:
        if not path.is_file():
            what = "a folder" if path.is_dir() else "a broken link" if path.is_symlink() else "not a regular file"
            raise StoreError(f"{path}: {what}, not a run file; move it out of {path.parent}")
    return files


def check_folder(folder: Path, code: dict | None = None, datasets: tuple[str, ...] = (),
                 profile: str | None = None) -> None:
    """Refuse a folder holding foreign files, files of another schema version, runs this gradbench would measure
    differently (`code`: bench/provenance.code()) or on other datasets than `datasets` (the first is the images';
    a folder holds one experiment), before adding to it (and before any training: a folder that cannot be written
    is refused now, not after the first run); remove what writers that died left behind."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise StoreError(f"{folder}: a file, not a folder; --results takes a folder (new or holding results)")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise StoreError(f"{folder}: cannot create the results folder ({err.strerror}); choose another --results") \
            from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise StoreError(f"{folder}: the results folder is not writable; choose another --results")
    remove_leftovers(folder)
    files = run_files(folder)
    runs = {path.name: read_metadata(path) for path in files}
    refuse_copies(files, pd.DataFrame(list(runs.values())))
    if code:
        refuse_other_code(folder, runs, code)
    refuse_other_dataset(folder, list(runs.values()), datasets, profile)
    renamed = [(name, run["run_id"]) for name, run in runs.items() if Path(name).stem != run["run_id"]]
    if renamed:
        name, run = renamed[0]
        raise StoreError(f"{folder / name}: holds run {run} under another name, so a sweep would train it again; "
                         f"rename it {run}.parquet or move it away")


def refuse_other_code(folder: Path, runs: dict[str, dict], code: dict) -> None:
    """Runs this gradbench would measure differently are not resumed: their numbers may differ from new runs'."""
    other = {name: measured_otherwise(run, code) for name, run in runs.items()}
    other = {name: what for name, what in other.items() if what}
    if not other:
        return
    names = sorted(other)
    if any(what == ["measurement code"] for what in other.values()):
        codes = ", ".join(sorted({str(runs[name].get("measurement_code")) for name in names}))
        what = f"other gradbench code ({codes}; this one is {code['measurement_code']})"
    else:
        what = f"other code of {', '.join(sorted({s for found in other.values() for s in found}))}"
    raise StoreError(
        f"{folder}: {len(names)} runs ({', '.join(names[:3])}{', …' if len(names) > 3 else ''}) were measured by "
        f"{what}, so their numbers may differ from new runs'; they are not resumed: move them away, or sweep into "
        "another --results folder")


def refuse_other_dataset(folder: Path, runs: list[dict], datasets: tuple[str, ...], profile: str | None) -> None:
    """A folder's runs are one experiment: runs of another dataset beside them would be set aside by the report.
    Where the profile differs too (each profile has its default dataset), the message says so: that is the cause."""
    others = [run for run in runs if datasets and str(run.get("dataset")) not in datasets]
    if not others:
        return
    name, theirs = datasets[0], sorted({str(run.get("dataset")) for run in others})
    profiles = sorted({str(run.get("profile")) for run in others})
    if profile and profiles != [profile]:
        raise StoreError(f"{folder}: holds runs of the {', '.join(profiles)} profile on {', '.join(theirs)}, and "
                         f"these of the {profile} profile would train on {name}; a results folder holds one "
                         f"experiment: sweep into another, such as --results {folder}-{profile}, or give --profile "
                         f"{profiles[0]} to add to these")
    raise StoreError(f"{folder}: holds runs on {', '.join(theirs)}, and these would train on {name}; a results "
                     f"folder holds one dataset's runs: sweep into another, such as --results "
                     f"{folder.parent / f'{folder.name}-{name}'}, or give --dataset {theirs[0]} to add to these")


def refuse_copies(files: list[Path], runs: pd.DataFrame) -> None:
    """A run stored twice (a file copied under another name) would count twice: refuse it, naming both."""
    if runs.empty:
        return
    named = pd.Series([f.name for f in files], index=runs.index)
    twice = runs["run_id"].duplicated(keep=False)
    if twice.any():
        first = runs.loc[twice, "run_id"].iloc[0]
        names = ", ".join(named[runs["run_id"] == first])
        raise StoreError(f"{files[0].parent}: {names} hold the same run {first}; delete the copies")


def read_run(path: Path, columns: list[str]) -> tuple[dict, pa.Table]:
    """A run file's metadata (read_metadata) and rows of these columns (read_arrow), from one read of it; its run
    keys' columns (RUN_KEYS) filled from the metadata, which its rows were checked to agree with."""
    run, file = opened(path, "run", "result")
    table = read_arrow(path, schema().names, [c for c in columns if c not in RUN_KEYS], file=file)
    for index, name in enumerate(columns):
        if name in RUN_KEYS:
            table = table.add_column(index, schema().field(name), pa.repeat(pa.scalar(run[name], RUN_KEYS[name]),
                                                                            len(table)))
    return run, table


def read_arrow(path: Path, expected: list[str], columns: list[str] | None = None, kind: str = "run",
               file: pq.ParquetFile | None = None) -> pa.Table:
    """A file's rows (of these columns, else all), through `file` if it is open; a file whose metadata reads but
    whose data does not, or lacks expected columns, is a StoreError naming it. A run file written before a statistic
    was declared reads it as missing (null): a new statistic is an additive change of the schema."""
    try:
        with file or pq.ParquetFile(path) as file:  # lighter than read_table for one file
            found = file.schema_arrow  # built anew on each access
            names = set(found.names)
            optional = STATISTIC_COLUMNS if kind == "run" else set()
            # a statistic declared since reads as missing; a column no gradbench wrote is a damaged name
            unknown = sorted(names - set(schema().names)) if kind == "run" else []
            missing = [f"no column {c}" for c in expected if c not in names and c not in optional]
            missing += [f"a column no gradbench writes, {c}" for c in unknown]
            wanted = [c for c in columns or expected if c in names]
            if kind == "run":  # a damaged type annotation would read as other values (bytes for strings)
                missing += [f"column {c} of type {found.field(c).type}" for c in wanted
                            if value_type(found.field(c).type) != schema().field(c).type]
            # read in this thread: a build reads its files in worker processes, one per core, where arrow's threads
            # cost more than they give (a 40 kB file 2.3 -> 1.6 ms, a 3 MB one 32 -> 22 ms)
            table = None if missing else with_missing(decoded(file.read(columns=wanted, use_threads=False)),
                                                      columns or expected)
    except UNREADABLE as err:
        table, problem = None, one_line(err)
    else:
        problem = ", ".join(missing[:3]) if missing else None
    if problem:
        raise StoreError(f"{path}: its data cannot be read ({problem}); delete it and {measure_again(kind)}")
    return table


def value_type(column_type: pa.DataType) -> pa.DataType:
    """A column's type, a dictionary's its values' (parquet_file reads some text columns as dictionaries)."""
    return column_type.value_type if pa.types.is_dictionary(column_type) else column_type


def decoded(table: pa.Table) -> pa.Table:
    """The table with its dictionary columns as plain columns of their values."""
    for index, field in enumerate(table.schema):
        if pa.types.is_dictionary(field.type):
            table = table.set_column(index, field.name, table.column(index).cast(field.type.value_type))
    return table


def with_missing(table: pa.Table, columns: list[str]) -> pa.Table:
    """The table with the statistics it lacks as null columns, in the order of `columns`."""
    types, present = schema(), set(table.column_names)
    for name in columns:
        if name not in present:
            table = table.append_column(types.field(name), pa.nulls(len(table), types.field(name).type))
    return table.select(columns)


def read_body(path: Path, expected: list[str], kind: str = "run") -> pd.DataFrame:
    return read_arrow(path, expected, kind=kind).to_pandas()


def kind_columns(kind: str) -> list[str]:
    """Every column of a kind's rows: the run keys and its own."""
    return [*RUN_KEYS, *COLUMNS[kind]]


def by_kind(table: pa.Table, kinds: tuple[str, ...] = KINDS, columns: dict[str, tuple[str, ...]] | None = None
            ) -> dict[str, pa.Table]:
    """A run file's rows split by kind, each with its kind's columns only (of those, the ones `columns` names for
    it, if given): a file holds every kind's columns, null outside their kind. Each kind's table is slices of the
    given one, sharing its buffers: compact() it to keep it alone."""
    spans, split = kind_spans(table.column("kind")), {}
    for kind in kinds:
        chosen = table.select(list(columns[kind]) if columns else kind_columns(kind))
        split[kind] = pa.concat_tables([chosen.slice(start, rows) for start, rows in spans.get(kind, [(0, 0)])])
    return split


def kind_spans(column: pa.ChunkedArray) -> dict[str, list[tuple[int, int]]]:
    """(first row, rows) of each run of one kind, in row order: a file stores its kinds one after another, so a
    kind's rows are a few slices of the table, taken without a copy (a filter copied them: 4 ms a 5,000-step run)."""
    spans, offset = {}, 0
    for chunk in column.chunks:
        encoded = pc.run_end_encode(chunk)
        ends = encoded.run_ends.to_numpy()
        lengths = np.diff(ends, prepend=0)
        for kind, end, length in zip(encoded.values.to_pylist(), ends, lengths, strict=True):
            spans.setdefault(kind, []).append((offset + int(end - length), int(length)))
        offset += len(chunk)
    return spans


def compact(table: pa.Table) -> pa.Table:
    """A copy of the table's rows that holds no more memory than they take (a slice holds its whole buffers)."""
    return table.take(np.arange(len(table)))


def kind_frame(kind: str, tables: list[pa.Table]) -> pd.DataFrame:
    """One kind's rows of many files as a DataFrame, in the dtypes a frame of whole files gave (a column that other
    kinds lack: whole numbers as float64, flags as objects), so every number reads and prints as before."""
    if not tables:
        return pd.DataFrame(columns=kind_columns(kind))
    frame = pa.concat_tables(tables).to_pandas(use_threads=False)  # as read_arrow reads (3 MB file's: 14 -> 2 ms)
    for name, kind_type in COLUMNS[kind].items():
        if name not in frame:  # a kind read in part (split_kinds' columns)
            continue
        if pa.types.is_integer(kind_type) and not all(name in columns for columns in COLUMNS.values()):
            frame[name] = frame[name].astype("float64")
        elif pa.types.is_boolean(kind_type):
            frame[name] = frame[name].astype(object)
    return frame


def load(folder: str | Path) -> Results:
    """Read every run file of a folder; the runs table comes from the files' metadata."""
    files = run_files(existing(folder))
    runs = pd.DataFrame([read_metadata(f) for f in files])
    refuse_copies(files, runs)
    return Results(runs=runs, **kind_tables(files))


def existing(folder: str | Path) -> Path:
    """A results folder that exists; any other is a StoreError."""
    folder = Path(folder)
    if not folder.is_dir():
        raise StoreError(f"{folder}: no such results folder; run 'python -m bench sweep' first")
    return folder


def kind_tables(files: list[Path], kinds: tuple[str, ...] = KINDS) -> dict[str, pd.DataFrame]:
    """The rows of run files, one table per kind (of these kinds): the files' columns of these kinds read, stacked,
    then split."""
    columns = list(dict.fromkeys(["kind", *RUN_KEYS, *(c for kind in kinds for c in COLUMNS[kind])]))
    return split_kinds([read_arrow(path, schema().names, columns) for path in files], kinds)


def split_kinds(tables: list[pa.Table], kinds: tuple[str, ...] = KINDS,
                columns: dict[str, tuple[str, ...]] | None = None) -> dict[str, pd.DataFrame]:
    """Rows read from run files (read_arrow), stacked, as one table per kind (of these kinds; of each, the columns
    `columns` names for it, if given)."""
    if not tables:
        return {kind: kind_frame(kind, []) for kind in kinds}
    stacked = by_kind(pa.concat_tables(tables), kinds, columns)
    return {kind: kind_frame(kind, [rows]) for kind, rows in stacked.items()}


# -- the depth scan (bench/scan.py): one file per scan under <results>/scan/ -------------------------

SCAN_FOLDER = "scan"
CONTROLS_FOLDER = "controls"  # control runs (bench sweep --control) of the runs of the folder it is in
SCAN_COLUMNS: dict[str, pa.DataType] = {
    "scenario": pa.string(),  # the first catalogue scenario with this step-0 network
    "depth": pa.int32(),
    "seed": pa.int32(),
    "layer": pa.int32(),  # index among the weight layers, forward order
    "layer_role": pa.string(),  # hidden | output
    "delta_norm": pa.float32(),  # ||dL/dz|| over the batch at initialisation (0 where below float32's range)
    "kernel_grad_norm": pa.float32(),
    "preactivation_rms": pa.float32(),  # sqrt(mean z^2): the forward spread, sqrt(q) of the theory
    "loss": pa.float32(),  # the batch loss at initialisation
}


def write_scan(path: Path, meta: dict, frame: pd.DataFrame) -> None:
    """Write a scan atomically, its config and provenance in the metadata like a run's."""
    target = pa.schema(list(SCAN_COLUMNS.items()))
    table = pa.Table.from_pandas(frame[list(SCAN_COLUMNS)], schema=target, preserve_index=False)
    meta = json.dumps({"schema_version": SCHEMA_VERSION, "scan": meta}, sort_keys=True)
    write_atomically(table.replace_schema_metadata({METADATA_KEY: meta}), path)


def load_scans(folder: str | Path) -> tuple[pd.DataFrame, list[dict]]:
    """Every depth scan of a results folder: the rows (with a scan_id column) and each scan's metadata."""
    frames, metas = [], []
    for path in run_files(Path(folder) / SCAN_FOLDER):
        metas.append({**read_info(path, "scan", "depth scan"), "scan_id": path.stem})
        frames.append(read_body(path, list(SCAN_COLUMNS), "scan").assign(scan_id=path.stem))
    if not frames:
        return pd.DataFrame(columns=[*SCAN_COLUMNS, "scan_id"]), []
    return pd.concat(frames, ignore_index=True), metas
