"""The statistics declared with a summary (bench/statistics.py), summarised the same way for each: per run, the value
at step 0 and at the last logged step, and whether the run recorded it at all; per cell, the aggregate over seeds
and how many seeds recorded it. A run stored before the statistic was declared has it missing, and says so."""

import numpy as np
import pandas as pd

from bench.statistics import summarised
from report.grading.stats import Hidden, group_starts

SUMMARISED = summarised()


def recorded_column(statistic) -> str:
    return f"{statistic.name}_recorded"


def run_columns() -> list[str]:
    return [column for s in SUMMARISED for column in (*s.summaries, recorded_column(s))]


def cell_columns() -> list[str]:
    return [column for s in SUMMARISED for column in (*s.summaries, f"{s.name}_seeds")]


def reduce(values: np.ndarray, statistic) -> float:
    """One logged step's hidden-layer values of a statistic (float64, in layer order), as its summary says."""
    if not len(values):
        return np.nan
    if statistic.summary == "last/first":
        with np.errstate(divide="ignore", invalid="ignore"):
            return float(values[-1] / values[0])
    return float(np.nanmedian(values)) if np.isfinite(values).any() else np.nan


def run_summaries(hidden: Hidden, runs: pd.DataFrame) -> pd.DataFrame:
    """Per run (indexed by run_id), each summarised statistic at its first and last logged step, and recorded."""
    table = pd.DataFrame(index=pd.Index(runs["run_id"], name="run_id"))
    codes = runs["statistic_code"] if "statistic_code" in runs else pd.Series(None, index=runs.index)
    layers = hidden.rows[~hidden.rows["timed"].to_numpy(bool)]  # a time step has no layer statistics
    ends = end_steps(hidden.run_ids, layers)
    for statistic in SUMMARISED:
        key = f"{statistic.kind}.{statistic.name}"
        table[recorded_column(statistic)] = [isinstance(code, dict) and key in code for code in codes]
        values = layers[statistic.name].to_numpy(dtype=float)
        for column, end in zip(statistic.summaries, (0, 1), strict=True):
            table[column] = [reduce(values[ends[run_id][end]], statistic) if run_id in ends else np.nan
                             for run_id in table.index]
    return table


def end_steps(run_ids: np.ndarray, rows: pd.DataFrame) -> dict[str, tuple[slice, slice]]:
    """Per run id: where its rows (sorted by run, step and layer) of its first and of its last logged step are."""
    run, step = rows["run"].to_numpy(), rows["step"].to_numpy()
    starts = group_starts(run)
    ends = {}
    for start, stop in zip(starts, np.r_[starts[1:], len(run)]):
        steps = step[start:stop]
        ends[run_ids[run[start]]] = (slice(start, start + np.searchsorted(steps, steps[0], "right")),
                                     slice(start + np.searchsorted(steps, steps[-1]), stop))
    return ends


def cell_summaries(rows: pd.DataFrame) -> dict:
    """A cell's aggregate over seeds of each summarised statistic, of the runs that recorded it (a run table without
    its columns has none)."""
    found = {}
    for statistic in SUMMARISED:
        column = recorded_column(statistic)
        recorded = rows[rows[column].fillna(False).astype(bool)] if column in rows else rows.iloc[:0]
        found[f"{statistic.name}_seeds"] = len(recorded)
        for summary in statistic.summaries:
            values = pd.to_numeric(recorded.get(summary, pd.Series(dtype=float)), errors="coerce").astype(float)
            finite = values[np.isfinite(values)]
            found[summary] = float(finite.agg(statistic.aggregate)) if len(finite) else np.nan
    return found
