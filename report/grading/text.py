"""Numbers as the pages print them."""

import numpy as np
import pandas as pd

from report.grading.values import finite


def fmt(value: float) -> str:
    """3 significant digits, scientific when tiny or huge, 'n/a' for a missing value."""
    if value is None or pd.isna(value):
        return "n/a"
    if value != 0 and np.isfinite(value) and not 1e-3 <= abs(value) < 1e3:
        return f"{value:.2e}"
    return f"{value:.3g}"


def percent(fraction: float) -> str:
    return "n/a" if pd.isna(fraction) else f"{100 * fraction:.1f} %"


def step_text(step: float) -> str:
    return "n/a" if step is None or pd.isna(step) else str(int(step))


def range_text(values: pd.Series) -> str:
    """Median over seeds with its range, finite values only."""
    good = finite(values)
    if good.empty:
        return "n/a"
    if len(good) == 1:
        return f"{fmt(good.iloc[0])} (1 seed)"
    if good.min() == good.max():
        return f"{fmt(good.iloc[0])} (all {len(good)} seeds)"
    return f"{fmt(good.median())} (median; range {fmt(good.min())}–{fmt(good.max())})"
