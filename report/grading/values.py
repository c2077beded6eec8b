"""Finite-value helpers: non-finite values (a diverged run's last step) are left out and counted, never taken as 0."""

import numpy as np
import pandas as pd


def finite(values: pd.Series | np.ndarray) -> pd.Series | np.ndarray:
    """The finite values of a series (or array), as float64."""
    if not (isinstance(values, np.ndarray) and values.dtype.kind == "f"):  # floats need no parsing: a run's summary
        values = pd.to_numeric(values, errors="coerce")  # takes ~13 medians of float slices
    values = values.astype(float)
    return values[np.isfinite(values)]


def finite_median(values: pd.Series | np.ndarray) -> float:
    values = finite(values)
    return float(np.median(values)) if len(values) else np.nan


def with_none(frame: pd.DataFrame, columns) -> pd.DataFrame:
    """Missing values of text/flag columns as None (pandas turns a None among strings into NaN)."""
    for column in columns:
        values = frame[column].astype(object)
        frame[column] = values.where(values.notna(), None)
    return frame
