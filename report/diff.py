"""Compare two result sets, typically of two TensorFlow versions.

`compare(A, B)` reads both folders' run summaries (summaries.py: each run file read once, cached by its content),
refuses sets that cannot be compared (other dataset, profile or schema), pairs the runs whose config is the same
except for the versions, and computes plain tables: per pair and metric the two values; per scenario × depth ×
metric the medians, ratio, size of change and a significance statement that says when the seeds are too few; per
pair and per cell what changed (nothing, the initial weights, the step-0 arithmetic, or training). The functions at
the end format those tables as text rows, printed in the terminal and rendered on the diff page; the page's figures
read the files of the few runs they draw (Side.rows).
"""

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from bench import store
from bench.errors import UserError
from bench.scenarios import SCENARIOS
from report import summaries
from report.grading.cells import cell_table as graded_cells
from report.grading.rules import threshold
from report.grading.runs import (  # MATCH_KEYS: the config without the versions
    MATCH_KEYS,
    catalogue_order,
)
from report.grading.text import fmt
from report.grading.values import finite_median

SET_KEYS = ("dataset", "profile")  # what must agree for two result sets to be comparable at all
# Step-0 kernel norms this close mean the same initial weights: another TF may sum a norm in another order
# (measured: up to 2.3e-7 apart with bit-identical weights); another draw moves it by about 1/sqrt(size).
INIT_RTOL = 1e-5
ALPHA = threshold("significance_level")  # the level a test must be able to reach
MIN_SEEDS = next(n for n in range(1, 64) if 2.0 ** (1 - n) < ALPHA)  # fewer cannot reach it (6 at 0.05)


class DiffError(UserError):
    """Two result sets that cannot be compared; the message says which and why."""


@dataclass(frozen=True)
class Metric:
    name: str
    label: str
    step0: bool = False  # measured before the first update: it depends on the initial weights only


METRICS = (
    Metric("final_test_accuracy", "final test accuracy"),
    Metric("final_test_loss", "final test loss"),
    Metric("delta_ratio_init", "δ first/last, step 0", step0=True),
    Metric("delta_ratio_median", "δ first/last, median"),
    Metric("grad_norm_max", "max global grad norm"),
    Metric("diverged_step", "divergence step"),
    Metric("step0_loss", "step-0 loss", step0=True),
    Metric("step0_grad_norm", "step-0 global grad norm", step0=True),
)
LAYER_METRICS = (  # per weight layer, at step 0
    Metric("step0_kernel_norm", "step-0 kernel norm", step0=True),  # the initial weights themselves
    Metric("step0_delta_norm", "step-0 ‖δ‖", step0=True),
)
ALL_METRICS = {m.name: m for m in (*METRICS, *LAYER_METRICS)}
CHANGES = {  # what changed in a pair of runs, most fundamental first
    "initialisation": "initialisation changed (random streams or initializer code)",
    "step0": "step-0 numerics changed (same initial weights)",
    "dynamics": "training dynamics changed (step 0 identical)",
    "identical": "bit-identical",
}


# -- loading and refusing ----------------------------------------------------------------------------


@dataclass
class Side:
    folder: Path
    files: list[Path]  # its run files, in order
    recorded: pd.DataFrame  # a row per file: the run's metadata (store's runs table)
    runs: pd.DataFrame  # run_table
    step0: dict[str, pd.DataFrame]  # per kind of summaries.STEP0_COLUMNS: the step-0 rows' columns, with run_id
    logged: pd.Series  # run_id -> digest of every number the run logged

    @property
    def name(self) -> str:
        return self.folder.resolve().name

    def versions(self) -> str:
        runs = self.recorded
        return f"TF {distinct(runs, 'tf_version')}, Keras {distinct(runs, 'keras_version')}"

    def rows(self, kind: str, run_ids: pd.Series) -> pd.DataFrame:
        """One kind's rows of these runs, read from their files (what a figure draws of a few runs)."""
        wanted = set(run_ids)
        return store.kind_tables([f for f, run in zip(self.files, self.recorded["run_id"]) if run in wanted],
                                 (kind,))[kind]


def distinct(runs: pd.DataFrame, column: str) -> str:
    values = sorted({str(v) for v in runs.get(column, pd.Series(dtype=object)).dropna()})
    return ", ".join(values) if values else "not recorded"


def load_side(folder: Path, which: str, map_=map) -> Side:
    """A folder's side of a diff, from its run summaries (map_: how files not summarised yet are, in batches: a
    pool's map, or the builtin)."""
    try:
        files, found = summaries.read(Path(folder), map_, compare=True)
        recorded, runs = summaries.tables(files, found)
    except store.StoreError as err:
        raise DiffError(f"cannot compare: {which}: {err}") from None
    if recorded.empty:
        raise DiffError(f"cannot compare: {which} ({folder}) holds no result files")
    run_ids = list(recorded["run_id"])
    step0 = {kind: step0_table(run_ids, [part["step0"][kind] for *_, part in found], columns)
             for kind, columns in summaries.STEP0_COLUMNS.items()}
    logged = pd.Series([part["logged"] for *_, part in found], index=run_ids)
    return Side(Path(folder), files, recorded, runs, step0, logged)


def step0_table(run_ids: list[str], parts: list[dict], columns: tuple[str, ...]) -> pd.DataFrame:
    """The step-0 rows of the runs, one kind: run_id and the columns, from each run's lists of them."""
    run_column = [run for run, part in zip(run_ids, parts) for _ in part[columns[0]]]
    return pd.DataFrame({"run_id": run_column, **{c: [v for part in parts for v in part[c]] for c in columns}})


def check_comparable(a: Side, b: Side) -> None:
    """Refuse result sets whose dataset or profile differ: their numbers differ for other reasons."""
    found = [(key, distinct(a.recorded, key), distinct(b.recorded, key)) for key in SET_KEYS]
    differ = [f"{key} (A: {in_a}, B: {in_b})" for key, in_a, in_b in found if in_a != in_b]
    if differ:
        raise DiffError(
            f"cannot compare {a.folder} and {b.folder}: different {' and '.join(differ)}; "
            "a diff isolates the library versions, so both sets need the same dataset and profile"
        )


# -- pairing ----------------------------------------------------------------------------------------


def plain(value):
    """A metadata value in one canonical form, whatever dtype its DataFrame column took."""
    if value is None or (isinstance(value, float | np.floating) and np.isnan(value)):
        return None
    if isinstance(value, np.generic):
        value = value.item()
    return int(value) if isinstance(value, float) and value.is_integer() else value


def config_keys(runs: pd.DataFrame) -> pd.Series:
    """Per run: its config without the versions, as one hashable tuple."""
    columns = [runs[k] if k in runs else pd.Series(None, index=runs.index) for k in MATCH_KEYS]
    return pd.Series([tuple(plain(v) for v in row) for row in zip(*columns)], index=runs.index)


def keyed_runs(side: Side, which: str) -> pd.DataFrame:
    runs = side.recorded.assign(key=config_keys(side.recorded))
    twins = runs[runs.duplicated("key", keep=False)]
    if len(twins):
        raise DiffError(f"cannot compare: {which} ({side.folder}) holds runs of the same config twice "
                        f"({', '.join(twins['run_id'])}); keep one result set per folder")
    return runs[["key", "run_id", "scenario", "depth", "seed"]]


def pair_runs(a: Side, b: Side) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(pairs: key, scenario, depth, seed, run_a, run_b; unmatched: side, run_id, scenario, depth, seed)."""
    runs_a, runs_b = keyed_runs(a, "A"), keyed_runs(b, "B")
    pairs = runs_a.merge(runs_b[["key", "run_id"]], on="key", suffixes=("_a", "_b"))
    unmatched = pd.concat([
        runs_a[~runs_a["key"].isin(runs_b["key"])].assign(side="A"),
        runs_b[~runs_b["key"].isin(runs_a["key"])].assign(side="B"),
    ])  # fmt: skip
    columns = ["side", "run_id", "scenario", "depth", "seed"]
    return catalogue_order(pairs), catalogue_order(unmatched[columns])


# -- per-run and paired values ---------------------------------------------------------------------


def run_values(side: Side) -> pd.DataFrame:
    """Long table run_id, metric, layer ('' for whole-run metrics), value."""
    outcome = side.runs.melt("run_id", [m.name for m in METRICS if m.name in side.runs], "metric")
    step0 = side.step0["step"].rename(columns=metric_names("step"))
    layer0 = side.step0["layer"].rename(columns={**metric_names("layer"), "layer_name": "layer"})
    frames = [
        outcome.assign(layer=""),
        step0.melt("run_id", ["step0_loss", "step0_grad_norm"], "metric").assign(layer=""),
        layer0.melt(["run_id", "layer"], [m.name for m in LAYER_METRICS], "metric"),
    ]
    values = pd.concat(frames, ignore_index=True)
    return values.assign(value=pd.to_numeric(values["value"], errors="coerce").astype(float))


def metric_names(kind: str) -> dict[str, str]:
    """A kind's step-0 columns (summaries.STEP0_COLUMNS) -> the names of their metrics."""
    return {column: f"step0_{column}" for column in summaries.STEP0_COLUMNS[kind]}


def relative_difference(a: pd.Series, b: pd.Series) -> pd.Series:
    """|B − A| / max(|A|, |B|): 0 when equal, 1 when one side is missing or the signs are opposite."""
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = (b - a).abs() / np.maximum(a.abs(), b.abs())
    rel = rel.where(np.isfinite(rel), 1.0)
    return rel.where(~same(a, b), 0.0).clip(upper=1.0)


def same(a: pd.Series, b: pd.Series) -> pd.Series:
    return (a == b) | (a.isna() & b.isna())


def paired_values(pairs: pd.DataFrame, a: Side, b: Side) -> pd.DataFrame:
    """One row per pair × metric × layer: seed, a, b, equal, rel (relative difference)."""
    keys = ["scenario", "depth", "seed", "run_id_a", "run_id_b"]
    values_a = pairs[keys].merge(run_values(a).rename(columns={"run_id": "run_id_a", "value": "a"}))
    values_b = pairs[keys].merge(run_values(b).rename(columns={"run_id": "run_id_b", "value": "b"}))
    paired = values_a.merge(values_b, on=[*keys, "metric", "layer"], how="outer")
    a, b = paired["a"], paired["b"]
    return paired.assign(equal=same(a, b), rel=relative_difference(a, b))


# -- what changed ----------------------------------------------------------------------------------


def pair_change(rows: pd.DataFrame, same_logs: bool) -> str:
    """Which of CHANGES describes a pair of runs, from its paired values and whether all it logged agrees."""
    if rows["equal"].all():
        return "identical" if same_logs else "dynamics"
    kernels = rows[rows["metric"] == "step0_kernel_norm"]
    close = np.isclose(kernels["a"], kernels["b"], rtol=INIT_RTOL, atol=0.0, equal_nan=True)
    if not close.all():
        return "initialisation"
    step0 = rows["metric"].map(lambda m: ALL_METRICS[m].step0)
    return "step0" if not rows.loc[step0, "equal"].all() else "dynamics"


def pair_table(pairs: pd.DataFrame, paired: pd.DataFrame, a: Side, b: Side) -> pd.DataFrame:
    """Per pair: whether everything logged is the same, its change and each side's verdict."""
    same_logs = pairs["run_id_a"].map(a.logged).eq(pairs["run_id_b"].map(b.logged))
    table = pairs.drop(columns="key").assign(same_logs=same_logs.to_numpy())
    by_run = dict(zip(table["run_id_a"], table["same_logs"]))
    changes = {run: pair_change(rows, by_run[run]) for run, rows in paired.groupby("run_id_a")}
    verdicts_a, verdicts_b = (side.runs.set_index("run_id")["verdict"] for side in (a, b))
    return table.assign(change=table["run_id_a"].map(changes), verdict_a=table["run_id_a"].map(verdicts_a),
                        verdict_b=table["run_id_b"].map(verdicts_b))


def change_text(changes: pd.Series) -> str:
    """'bit-identical', or each kind of change with its count of seeds, most fundamental first."""
    counts = changes.value_counts()
    if counts.get("identical", 0) == len(changes):
        return CHANGES["identical"]
    return ", ".join(f"{CHANGES[c]} {counts[c]}/{len(changes)}" for c in CHANGES if c in counts)


def layers_differing(rows: pd.DataFrame, metric: str) -> str:
    """How many layers' step-0 value differs on at least one seed, out of all layers."""
    layers = rows[rows["metric"] == metric].groupby("layer")["equal"].all()
    return f"{int((~layers).sum())}/{len(layers)}"


def verdict_cells(side: Side, run_ids: pd.Series, suffix: str) -> pd.DataFrame:
    """Majority verdict per scenario × depth over the paired runs of one side."""
    cells = graded_cells(side.runs[side.runs["run_id"].isin(run_ids)])
    columns = {"verdict": f"verdict{suffix}", "verdict_label": f"verdict_label{suffix}"}
    return cells.set_index(["scenario", "depth"])[list(columns)].rename(columns=columns)


def cell_table(pair_rows: pd.DataFrame, paired: pd.DataFrame, a: Side, b: Side) -> pd.DataFrame:
    """Per scenario × depth: seeds, what changed, layers differing at step 0, and both verdicts."""
    rows = []
    for (scenario, depth), group in pair_rows.groupby(["scenario", "depth"], sort=False):
        values = paired[(paired["scenario"] == scenario) & (paired["depth"] == depth)]
        rows.append({
            "scenario": scenario, "depth": depth, "seeds": len(group), "change": change_text(group["change"]),
            "kernels_differ": layers_differing(values, "step0_kernel_norm"),
            "deltas_differ": layers_differing(values, "step0_delta_norm"),
        })  # fmt: skip
    cells = (pd.DataFrame(rows).join(verdict_cells(a, pair_rows["run_id_a"], "_a"), on=["scenario", "depth"])
             .join(verdict_cells(b, pair_rows["run_id_b"], "_b"), on=["scenario", "depth"]))
    return cells.assign(verdict_changed=cells["verdict_a"] != cells["verdict_b"])


# -- statistics over seeds -------------------------------------------------------------------------


def sign_test(higher: int, n: int) -> float:
    """Exact two-sided sign test: p of a split at least as uneven as `higher` of n under a fair coin."""
    tail = sum(math.comb(n, i) for i in range(min(higher, n - higher) + 1))
    return min(1.0, 2 * tail / 2**n)


def significance(a: pd.Series, b: pd.Series) -> str:
    """An exact paired sign test, or why none can be significant with these seeds."""
    finite = np.isfinite(a) & np.isfinite(b)
    diffs = (b - a)[finite]
    nonzero, pairs = diffs[diffs != 0], int(finite.sum())
    one_sided = int((np.isfinite(a) != np.isfinite(b)).sum())
    if nonzero.empty:
        return f"finite on one side only for {one_sided} seed(s)" if one_sided else "—"
    higher, n = int((nonzero > 0).sum()), len(nonzero)
    if sign_test(pairs, pairs) >= ALPHA:  # even n seeds all moving one way would not be significant
        return f"n={pairs} seeds: cannot be significant"
    if sign_test(n, n) >= ALPHA:
        return f"{n} of {pairs} seeds differ: cannot be significant"
    return f"sign test p={sign_test(higher, n):.2g}, B higher on {higher}/{n}"


def metric_row(rows: pd.DataFrame) -> dict:
    median_a, median_b = finite_median(rows["a"]), finite_median(rows["b"])
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = median_b / median_a if median_a != 0 else np.nan
    return {
        "seeds": list(rows["seed"]), "values_a": list(rows["a"]), "values_b": list(rows["b"]),
        "median_a": median_a, "median_b": median_b, "ratio": ratio,
        "change": float(rows["rel"].median()), "max_change": float(rows["rel"].max()),
        "differ": int((~rows["equal"]).sum()), "n": len(rows),
        "significance": significance(rows["a"], rows["b"]),
    }  # fmt: skip


def metric_table(paired: pd.DataFrame) -> pd.DataFrame:
    """Per scenario × depth × metric × layer; the largest change (median over seeds) first."""
    keys = ["scenario", "depth", "metric", "layer"]
    rows = [
        {**dict(zip(keys, key)), **metric_row(group.sort_values("seed"))}
        for key, group in paired.groupby(keys, sort=False)
    ]
    table = pd.DataFrame(rows)
    scenario_rank = {name: i for i, name in enumerate(SCENARIOS)}
    metric_rank = {name: i for i, name in enumerate(ALL_METRICS)}
    ranks = table.assign(_scenario=table["scenario"].map(lambda s: scenario_rank.get(s, len(SCENARIOS))),
                         _metric=table["metric"].map(metric_rank))
    order = ["change", "max_change", "_scenario", "scenario", "depth", "_metric", "layer"]
    ranked = ranks.sort_values(order, ascending=[False, False, True, True, True, True, True])
    return ranked.drop(columns=["_scenario", "_metric"]).reset_index(drop=True)


# -- the whole diff --------------------------------------------------------------------------------


@dataclass
class Diff:
    a: Side
    b: Side
    pairs: pd.DataFrame  # per pair: scenario, depth, seed, run ids, change, verdicts
    cells: pd.DataFrame  # per scenario × depth: change, layers differing at step 0, verdicts
    metrics: pd.DataFrame  # per scenario × depth × metric × layer, sorted by size of change
    unmatched: pd.DataFrame  # runs on one side only: side, run_id, scenario, depth, seed
    values: pd.DataFrame = field(repr=False)  # per pair × metric × layer
    floor_sources: list[str] = field(default_factory=list)  # folders whose controls gave the floor (floor.py)

    def verdict_changes(self) -> list[str]:
        changed = self.cells[self.cells["verdict_changed"]]
        return [f"{r.scenario} depth {r.depth}: {r.verdict_label_a} → {r.verdict_label_b}"
                for r in changed.itertuples()]


def compare(folder_a: Path, folder_b: Path, map_=map) -> Diff:
    """The diff of two folders (map_: how their files not summarised yet are, as load_side)."""
    a, b = load_side(Path(folder_a), "A", map_), load_side(Path(folder_b), "B", map_)
    check_comparable(a, b)
    pairs, unmatched = pair_runs(a, b)
    if pairs.empty:
        raise DiffError(f"cannot compare {a.folder} and {b.folder}: no run has the same config on both sides")
    values = paired_values(pairs, a, b)
    pair_rows = pair_table(pairs, values, a, b)
    cells = cell_table(pair_rows, values, a, b)
    return Diff(a, b, pair_rows, cells, metric_table(values), unmatched, values)


# -- formatting: text rows shared by the terminal and the page -------------------------------------


@dataclass(frozen=True)
class MetricLine:
    scenario: str
    depth: int
    metric: str
    median_a: str
    median_b: str
    ratio: str
    change: str  # median over seeds
    max_change: str
    differ: str
    significance: str
    per_seed: tuple[tuple[int, str, str, str], ...]  # the paired view: seed, A, B, against the floor
    changed: bool
    floor: str  # the cell's floor (floor.py), "–" without controls
    versus_floor: str  # the median seed's change against it
    floor_test: str


@dataclass(frozen=True)
class CellLine:
    scenario: str
    depth: int
    seeds: int
    change: str
    kernels_differ: str
    deltas_differ: str
    verdict_a: str
    verdict_b: str
    verdict_changed: bool
    versus_floor: str  # the whole-run metrics beyond the floor, or that none is


def number(value: float) -> str:
    return fmt(value)


def change_size(rel: float) -> str:
    if rel == 0:
        return "0"
    return f"{100 * rel:.3g} %" if rel >= 1e-3 else f"{rel:.1e}"


def metric_label(row) -> str:
    label = ALL_METRICS[row.metric].label
    return f"{label}, {row.layer}" if row.layer else label


def paired_numbers(a: float, b: float) -> tuple[str, str]:
    """A seed's two values: 'same' for an identical B, all 9 digits where a float32 difference may hide."""
    if a == b or (pd.isna(a) and pd.isna(b)):
        return number(a), "same"
    return (f"{a:.9g}", f"{b:.9g}") if number(a) == number(b) else (number(a), number(b))


def versus_floor(row) -> str:
    """A metric row's median change against its cell's floor (floor.py), in words."""
    floor = getattr(row, "floor", np.nan)
    if row.differ == 0:
        return "bit-identical"
    if pd.isna(floor):
        return "no control"
    if row.beyond <= 1:
        return "within the floor" + (f" ({row.seeds_beyond}/{row.n} seeds beyond)" if row.seeds_beyond else "")
    return "beyond a zero floor" if floor == 0 else f"{times(row.beyond)} beyond the floor"


def times(factor: float) -> str:
    """A factor beyond the floor: 3 digits, and never a bare '1×' for one just above 1."""
    return f"{factor:.3g}×" if factor >= 1.005 else f"{factor:.2f}×"


def metric_line(row) -> MetricLine:
    statuses = getattr(row, "seed_status", None) or ["no control"] * row.n
    values = zip(row.seeds, row.values_a, row.values_b, statuses)
    per_seed = tuple((int(seed), *paired_numbers(a, b), status) for seed, a, b, status in values)
    floor = getattr(row, "floor", np.nan)
    return MetricLine(
        row.scenario, int(row.depth), metric_label(row), number(row.median_a), number(row.median_b),
        number(row.ratio), change_size(row.change), change_size(row.max_change), f"{row.differ}/{row.n}",
        row.significance, per_seed, row.differ > 0, "–" if pd.isna(floor) else change_size(floor),
        versus_floor(row), getattr(row, "floor_test", "no controls"),
    )  # fmt: skip


def metric_lines(diff: Diff, layers: bool) -> list[MetricLine]:
    """Whole-run metrics (layers=False) or per-layer step-0 metrics, sorted by the size of change."""
    rows = diff.metrics[(diff.metrics["layer"] != "") == layers]
    return [metric_line(row) for row in rows.itertuples()]


def cell_floor_text(diff: Diff, scenario: str, depth: int) -> str:
    """Which whole-run metrics of a cell changed beyond the floor, and by how much."""
    if not diff.floor_sources:
        return "no controls"
    rows = diff.metrics[(diff.metrics["scenario"] == scenario) & (diff.metrics["depth"] == depth)
                        & (diff.metrics["layer"] == "")]
    beyond = [f"{ALL_METRICS[r.metric].label} {versus_floor(r).replace(' beyond the floor', '')}"
              for r in rows.itertuples() if r.differ and r.beyond > 1]
    if beyond:
        return "beyond the floor: " + ", ".join(beyond)
    return "bit-identical" if not rows["differ"].any() else "every metric within the floor"


def cell_lines(diff: Diff) -> list[CellLine]:
    return [
        CellLine(r.scenario, int(r.depth), int(r.seeds), r.change, r.kernels_differ, r.deltas_differ,
                 r.verdict_label_a, r.verdict_label_b, bool(r.verdict_changed),
                 cell_floor_text(diff, r.scenario, r.depth))
        for r in diff.cells.itertuples()
    ]  # fmt: skip


def side_text(side: Side) -> str:
    runs = side.recorded
    return (f"{side.folder}: {side.versions()} ({distinct(runs, 'profile')}, {distinct(runs, 'dataset')}, "
            f"{len(runs)} runs; {distinct(runs, 'device')}, XLA {distinct(runs, 'xla')}, intra/inter-op threads "
            f"{distinct(runs, 'intra_op_threads')}/{distinct(runs, 'inter_op_threads')})")


def floor_text(diff: Diff) -> str:
    if not diff.floor_sources:
        return "none: no control runs stored beside A or B (python -m bench sweep --results B --control init_ulp)"
    return "control runs (init_ulp) in " + ", ".join(f"{f}/{store.CONTROLS_FOLDER}/" for f in diff.floor_sources)


def unmatched_text(diff: Diff, which: str) -> str:
    rows = diff.unmatched[diff.unmatched["side"] == which]
    return ", ".join(f"{r.scenario} d{r.depth} s{r.seed}" for r in rows.itertuples()) or "none"


# -- the terminal ----------------------------------------------------------------------------------

TABLE_HEADER = ("scenario", "depth", "metric", "A median", "B median", "B/A", "change", "max", "differ",
                "floor", "against the floor", "significance")
NUMERIC_COLUMNS = {1, 3, 4, 5, 6, 7, 8, 9}  # right-aligned


def table_row(m: MetricLine) -> tuple[str, ...]:
    return (m.scenario, str(m.depth), m.metric, m.median_a, m.median_b, m.ratio, m.change, m.max_change,
            m.differ, m.floor, m.versus_floor, m.significance)


def columns(rows: list[tuple[str, ...]], numeric: set[int] = NUMERIC_COLUMNS) -> list[str]:
    """Text columns two spaces apart, the numeric ones right-aligned."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    align = [str.rjust if i in numeric else str.ljust for i in range(len(widths))]
    return ["  ".join(a(c, w) for a, c, w in zip(align, row, widths)).rstrip() for row in rows]


def cell_text(line: CellLine) -> str:
    verdict = f"verdict {line.verdict_a} → {line.verdict_b}" + ("  (CHANGED)" if line.verdict_changed else "")
    layers = f"step-0 layers differing: kernel norm {line.kernels_differ}, ‖δ‖ {line.deltas_differ}"
    return (f"  {line.scenario} depth {line.depth}, {line.seeds} seeds: {line.change}\n    {layers}; {verdict}\n"
            f"    against the 1-ulp floor: {line.versus_floor}")


def header_lines(diff: Diff) -> list[str]:
    return [f"A  {side_text(diff.a)}", f"B  {side_text(diff.b)}", f"floor: {floor_text(diff)}",
            f"{len(diff.pairs)} pairs of runs matched (same config but versions) in {len(diff.cells)} cells; "
            f"only in A: {unmatched_text(diff, 'A')}; only in B: {unmatched_text(diff, 'B')}"]


def terminal_text(diff: Diff) -> str:
    """The summary, one paragraph per cell, and the whole-run metrics that differ, largest change first."""
    lines = [*header_lines(diff), "", *(cell_text(line) for line in cell_lines(diff))]
    rows = metric_lines(diff, layers=False)
    changed = [m for m in rows if m.changed]
    if changed:
        lines += ["", "metrics that differ, largest change first "
                      "(change: median over seeds of |B−A|/max(|A|,|B|); max: over seeds):"]
        lines += columns([TABLE_HEADER, *(table_row(m) for m in changed)])
    lines.append(f"{len(rows) - len(changed)} metric rows identical on every seed"
                 + ("" if changed else ": bit-identical"))
    return "\n".join(lines)


# -- the page ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DiffEntry:
    """What the site's index says of one diff (site.write_diff saves it as the page's publish.AddedPage)."""

    name: str  # file name without extension
    a: str
    b: str
    summary: str


@dataclass
class DiffPage:
    entry: DiffEntry
    side_a: str
    side_b: str
    cells: list[CellLine]
    metrics: list[MetricLine]
    layers: list[MetricLine]
    unmatched_a: str
    unmatched_b: str
    verdict_changes: list[str]
    floor_from: str  # the folders whose control runs measured the floor
    init_rtol: float = INIT_RTOL
    alpha: float = ALPHA
    min_seeds: int = MIN_SEEDS
    changes: dict[str, str] = field(default_factory=lambda: dict(CHANGES))
    figures: list = field(default_factory=list)  # figures.SavedChart, set by site.write_diff

    @property
    def summary(self) -> str:  # what a link preview says of the page (render.description)
        return self.entry.summary


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "results"


def summary(diff: Diff) -> str:
    changes = change_text(diff.pairs["change"])
    count = len(diff.verdict_changes())
    verdicts = f"{count} verdict change(s)" if count else "no verdict changes"
    beyond = ""
    if diff.floor_sources:
        whole_run = diff.metrics[(diff.metrics["layer"] == "") & (diff.metrics["differ"] > 0)]
        cells = whole_run[whole_run["beyond"] > 1][["scenario", "depth"]].drop_duplicates()
        beyond = f"; {len(cells)} cells with a metric beyond the 1-ulp noise floor"
    return f"{len(diff.pairs)} matched runs in {len(diff.cells)} cells: {changes}; {verdicts}{beyond}"


def names(*folders: Path) -> list[str]:
    """The folders' names, with as many parent folders as it takes to tell them apart: tf-2.21.0 and tf-2.15.1,
    but quick/tf-2.21.0 and gpu-box/tf-2.21.0."""
    parts = [Path(folder).resolve().parts for folder in folders]
    for n in range(1, max(map(len, parts)) + 1):
        found = ["/".join(p[-n:]) for p in parts]
        if len(set(found)) == len(set(parts)):  # a folder given twice keeps its name
            return found
    return found


def diff_page(diff: Diff) -> DiffPage:
    a, b = diff.a, diff.b
    name_a, name_b = names(a.folder, b.folder)
    entry = DiffEntry(f"{slug(name_a)}__{slug(name_b)}", f"{name_a} ({a.versions()})",
                      f"{name_b} ({b.versions()})", summary(diff))
    return DiffPage(
        entry, side_text(diff.a), side_text(diff.b), cell_lines(diff), metric_lines(diff, layers=False),
        metric_lines(diff, layers=True), unmatched_text(diff, "A"), unmatched_text(diff, "B"),
        diff.verdict_changes(), floor_text(diff),
    )  # fmt: skip
