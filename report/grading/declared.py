"""The statistics declared with a summary (bench/statistics.py), summarised the same way for each: per run, the value
at step 0 and at the last logged step, and whether the run recorded it at all; per cell, the aggregate over seeds
and how many seeds recorded it. A run stored before the statistic was declared has it missing, and says so."""

import numpy as np
import pandas as pd

from bench.statistics import summarised

SUMMARISED = summarised()


def recorded_column(statistic) -> str:
    return f"{statistic.name}_recorded"


def run_columns() -> list[str]:
    return [column for s in SUMMARISED for column in (*s.summaries, recorded_column(s))]


def cell_columns() -> list[str]:
    return [column for s in SUMMARISED for column in (*s.summaries, f"{s.name}_seeds")]


def reduce(rows: pd.DataFrame, statistic) -> float:
    """One logged step's hidden-layer values of a statistic, as its summary says."""
    values = rows.sort_values("layer")[statistic.name].to_numpy(dtype=float)
    if not len(values):
        return np.nan
    if statistic.summary == "last/first":
        with np.errstate(divide="ignore", invalid="ignore"):
            return float(values[-1] / values[0])
    return float(np.nanmedian(values)) if np.isfinite(values).any() else np.nan


def run_summaries(layer: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """Per run (indexed by run_id), each summarised statistic at its first and last logged step, and recorded."""
    table = pd.DataFrame(index=pd.Index(runs["run_id"], name="run_id"))
    codes = runs["statistic_code"] if "statistic_code" in runs else pd.Series(None, index=runs.index)
    groups = dict(tuple(layer[layer["layer_role"] == "hidden"].groupby("run_id")))
    for statistic in SUMMARISED:
        key = f"{statistic.kind}.{statistic.name}"
        table[recorded_column(statistic)] = [isinstance(code, dict) and key in code for code in codes]
        for column, end in zip(statistic.summaries, ("min", "max"), strict=True):
            table[column] = [reduce(rows[rows["step"] == rows["step"].agg(end)], statistic)
                             if (rows := groups.get(run_id)) is not None else np.nan for run_id in table.index]
    return table


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
