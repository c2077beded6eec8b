"""A results folder as the site reads it: the runs it shows (one config per cell), the tables, the scan."""

from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from bench import store
from report import recurrent, summaries
from report.figures import Key
from report.grading.cells import cell_table


@dataclass(frozen=True)
class SetAside:
    """Runs in the folder that this site does not show, so that no cell pools two configs."""

    runs: int
    what: str
    why: str


FIGURE_SEEDS = 5  # seeds a figure draws per cell at most (the lowest); tables and verdicts use every seed
READ_CACHE_BYTES = 256 * 2**20  # run files kept in memory, split by kind: a page's figures read the same cells


def figure_seeds(seeds) -> list[int]:
    return sorted(seeds)[:FIGURE_SEEDS]


class RunFiles:
    """Run files split by kind, the most recently read kept up to READ_CACHE_BYTES."""

    def __init__(self):
        self.kept: OrderedDict[tuple[Path, int], dict] = OrderedDict()
        self.size = 0  # bytes of the tables kept

    def kind(self, path: Path, kind: str):
        key = (path, path.stat().st_mtime_ns)
        if key not in self.kept:
            split = store.by_kind(store.read_arrow(path, store.schema().names))
            self.kept[key] = {kind: store.compact(rows) for kind, rows in split.items()}
            self.size += sum(t.nbytes for t in self.kept[key].values())
            while len(self.kept) > 1 and self.size > READ_CACHE_BYTES:
                self.size -= sum(t.nbytes for t in self.kept.popitem(last=False)[1].values())
        self.kept.move_to_end(key)
        return self.kept[key][kind]


@dataclass
class Data:
    """A results folder with the grading tables every page reads. Its runs' rows stay in their files: a figure
    reads those of the cells and seeds it draws (rows())."""

    recorded: pd.DataFrame  # store's runs table: the shown runs' metadata
    runs: pd.DataFrame  # run_table
    cells: pd.DataFrame  # cell_table
    files: dict[Key, list[tuple[int, Path]]]  # (seed, file) of each (scenario, depth)'s shown runs, in file order
    set_aside: list[SetAside] = field(default_factory=list)
    scan: pd.DataFrame | None = None  # the depth scan's rows (bench/scan.py), if the folder has one
    scan_meta: dict | None = None
    reference: object = None  # own_models.Reference: catalogue cells a user's models are compared with
    read: RunFiles = field(default_factory=RunFiles)

    def rows(self, kind: str, keys: list[Key], seeds: list[int]) -> pd.DataFrame:
        """The rows of one results table for these (scenario, depth) keys and, of these seeds, the first
        FIGURE_SEEDS: what a figure draws stays the same size however many seeds a cell has."""
        drawn = set(figure_seeds(seeds))
        if kind == "runs":  # the metadata, key by key
            runs = self.recorded[self.recorded["seed"].isin(drawn)]
            parts = [runs[(runs["scenario"] == s) & (runs["depth"] == d)] for s, d in keys]
            return pd.concat([runs.iloc[:0], *parts]).reset_index(drop=True)
        paths = [path for key in keys for seed, path in self.files.get(key, []) if seed in drawn]
        return store.kind_frame(kind, [self.read.kind(path, kind) for path in paths])


def load(folder: Path, map_=map) -> Data:
    """The folder's runs, through report/summaries.py (map_: how batches of files are summarised)."""
    folder = Path(folder)
    files, recorded, runs = summaries.load(folder, map_)
    if recorded.empty:
        raise store.StoreError(f"{folder}: no result files (*.parquet); run 'python -m bench sweep' first")
    recorded["path"] = files
    settings = ["run_id", *(c for c in SETTING_COLUMNS if c in recorded)]
    keep, set_aside = shown_runs(runs.merge(recorded[settings], on="run_id", how="left"))
    recorded = recorded[recorded["run_id"].isin(keep)].reset_index(drop=True)
    runs = runs[runs["run_id"].isin(keep)].reset_index(drop=True)
    by_cell: dict[Key, list[tuple[int, Path]]] = {}
    for run in recorded[["scenario", "depth", "seed", "path"]].itertuples(index=False):
        by_cell.setdefault((run.scenario, int(run.depth)), []).append((int(run.seed), run.path))
    recorded = recorded.drop(columns="path")
    feedforward = recorded[~recorded["scenario"].isin(recurrent.NAMES)]  # recurrent: the recall task
    scan, scan_meta = pick_scan(*store.load_scans(folder), distinct(feedforward, "dataset"))
    return Data(recorded, runs, cell_table(runs), by_cell, set_aside, scan, scan_meta)


def setting_text(rows: pd.DataFrame) -> str:
    return ", ".join(f"{name} {distinct(rows, column)}" for name, column in SETTING_KEYS)

SETTING_KEYS = (("profile", "profile"), ("dataset", "dataset"), ("TensorFlow", "tf_version"),
                ("epochs", "epochs"), ("steps", "steps_trained"), ("training samples", "train_samples"))

SETTING_COLUMNS = ("profile", "dataset", "tf_version", "epochs", "train_samples")  # from the runs' metadata


def shown_runs(runs: pd.DataFrame) -> tuple[set[str], list[SetAside]]:
    """The runs the site shows: an experiment, and in it one cell per scenario × depth (the one with most
    seeds, then the longest training). Feedforward and recurrent networks (whose dataset is the generated
    recall task) each get one; the recurrent one of the same profile and TensorFlow where there is one.
    Everything else is set aside and named."""
    recurrent_rows = runs["scenario"].isin(recurrent.NAMES)
    keep, aside = experiment_runs(runs[~recurrent_rows])
    shown = runs[runs["run_id"].isin(keep)]
    like = {c: set(shown[c]) for c in ("profile", "tf_version") if c in runs} if len(shown) else {}
    more, more_aside = experiment_runs(runs[recurrent_rows], like)
    return keep | more, aside + more_aside


def experiment_runs(runs: pd.DataFrame, like: dict | None = None) -> tuple[set[str], list[SetAside]]:
    """One experiment of these runs: the largest, among those whose values are in `like` if any are."""
    if runs.empty:
        return set(), []
    match = pd.Series(True, index=runs.index)
    for column, values in (like or {}).items():
        match &= runs[column].isin(values)
    pool = runs[match] if match.any() else runs
    sizes = pool.groupby("experiment")["run_id"].count().sort_values(ascending=False, kind="stable")
    chosen = runs[runs["experiment"] == sizes.index[0]]
    ranked = chosen.assign(n=chosen.groupby("cell_id")["run_id"].transform("count")).sort_values(
        ["n", "steps_trained"], ascending=False, kind="stable")
    cells = ranked.drop_duplicates(["scenario", "depth"])["cell_id"]
    keep = set(chosen.loc[chosen["cell_id"].isin(cells), "run_id"])
    aside = [
        SetAside(len(rows), setting_text(rows), "another experiment (profile, dataset or versions) in this folder")
        for experiment, rows in runs[runs["experiment"] != sizes.index[0]].groupby("experiment", sort=False)
    ] + [
        SetAside(len(rows), f"{rows['scenario'].iloc[0]} depth {rows['depth'].iloc[0]}: {setting_text(rows)}",
                 "a second config of a cell already shown")
        for cell, rows in chosen[~chosen["run_id"].isin(keep)].groupby("cell_id", sort=False)
    ]
    return keep, aside


def pick_scan(scan: pd.DataFrame, metas: list[dict], dataset: str) -> tuple[pd.DataFrame | None, dict | None]:
    """The newest depth scan on the dataset the runs used."""
    matching = [m for m in metas if m.get("dataset") == dataset]
    if not matching:
        return None, None
    meta = max(matching, key=lambda m: str(m.get("started_at", "")))
    return scan[scan["scan_id"] == meta["scan_id"]].reset_index(drop=True), meta


def none_if_na(value):
    return None if value is None or (not isinstance(value, str) and pd.isna(value)) else value


def distinct(rows: pd.DataFrame, column: str) -> str:
    """The distinct values of a runs column as text; 'none' when it is recorded empty."""
    if column not in rows:
        return "not recorded"
    values = rows[column]
    values = sorted({str(v) for v in values[values.notna()]} - {""})  # notna: none_if_na's test, vectorised
    return ", ".join(values) if values else "none"
