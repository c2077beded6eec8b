"""A figure's data at the resolution it is drawn: a 5,000-step run needs no 5,000 points per line at 700 px.

Lines keep a subset of their rows, exact values: per bin of about two pixel columns the rows of the lowest and
highest median, of the lowest band minimum and the highest band maximum, and the first and last non-finite row,
so a spike stays a spike, a gap in the line stays a gap and a red x stays. Heatmaps group steps into columns of
about a raster pixel and show each column's mean log10 (how an image is downsampled); a column holding a
non-finite cell stays non-finite. The full data is in the run files (`bench.store.load`). SVG coordinates are
written to 1/100 pt.
"""

import re

import numpy as np
import pandas as pd

LINE_BINS = 200  # x bins per line: about three pixel columns each of a full-width axes (~600 px)
HEAT_COLUMNS = 400  # step columns per heatmap: about a pixel each of a full panel at RASTER_DPI


def line_rows(band: pd.DataFrame, x: str, by: list[str]) -> pd.DataFrame:
    """The rows of a seed band (x, median, min, max, n_nonfinite; one line per `by` group) that draw it at
    LINE_BINS bins of x, sorted by line and x; a band of at most LINE_BINS rows per line is returned whole."""
    if band.empty or band.groupby(by, sort=False).size().max() <= LINE_BINS:
        return band
    band = band.sort_values([*by, x], kind="stable", ignore_index=True)
    keys = [band[column] for column in by] + [bins(band, x, by)]
    keep = ~band.duplicated(by, keep="first") | ~band.duplicated(by, keep="last")  # each line's ends
    for column, pick in (("median", "idxmin"), ("median", "idxmax"), ("min", "idxmin"), ("max", "idxmax")):
        values = band[column].astype(float)
        good = np.isfinite(values)
        keep |= band.index.isin(getattr(values[good].groupby([k[good] for k in keys]), pick)())
    bad = (band["n_nonfinite"] > 0) | ~np.isfinite(band["median"].astype(float))
    for pick in ("first", "last"):
        keep |= band.index.isin(band.index.to_series()[bad].groupby([k[bad] for k in keys]).agg(pick))
    return band[keep]


def bins(band: pd.DataFrame, x: str, by: list[str]) -> pd.Series:
    """Each row's bin of x: LINE_BINS equal bins spanning its line's x range."""
    xs = band[x].astype(float)
    low, high = (xs.groupby([band[c] for c in by]).transform(how) for how in ("min", "max"))
    return np.floor((xs - low) / (high - low).where(high > low, 1.0) * LINE_BINS).clip(upper=LINE_BINS - 1)


def heat_columns(grid: pd.DataFrame, by: list[str], panels: int = 1) -> pd.DataFrame:
    """heatmap_data rows (by…, step, n_nonfinite, log10_median) with steps grouped into at most HEAT_COLUMNS
    / panels (the heatmaps sharing the figure's width) equal columns per `by` group: `step` the column's first
    step, `step_last` its last, `log10_median` the mean (NaN where any cell was non-finite or not positive),
    `n_nonfinite` the sum."""
    steps = grid["step"].astype(int)
    span = steps.max() - steps.min() + 1 if len(steps) else 1
    width = max(1, int(np.ceil(span / max(1, HEAT_COLUMNS // panels))))
    if width == 1:
        return grid.assign(step_last=steps)
    grid = grid.assign(column=(steps - steps.min()) // width, gap=grid["log10_median"].isna())
    out = grid.groupby([*by, "column"], sort=True).agg(
        step=("step", "min"), step_last=("step", "max"), n_nonfinite=("n_nonfinite", "sum"),
        log10_median=("log10_median", "mean"), gap=("gap", "any"),
    ).reset_index()
    out["log10_median"] = out["log10_median"].where(~out["gap"])
    return out[[*by, "step", "step_last", "n_nonfinite", "log10_median"]]


def columns_note(grid: pd.DataFrame) -> str:
    """A heatmap caption's note on grouped steps, empty when every column is one step."""
    width = int((grid["step_last"] - grid["step"]).max()) + 1 if len(grid) else 1
    return f" Steps in columns of {width}, each showing the mean log10 of its steps." if width > 1 else ""


PATH_DATA = re.compile(r' d="([^"]*)"')
NUMBER = re.compile(r"-?\d+\.\d+")
INDENT = re.compile(r"\n +")


def compact_svg(svg: str) -> str:
    """matplotlib's SVG with path coordinates to 1/100 pt (it writes 1/1,000,000) and no indentation."""
    def short(number: re.Match) -> str:
        return f"{float(number.group()):.2f}".rstrip("0").rstrip(".")

    svg = PATH_DATA.sub(lambda path: f' d="{NUMBER.sub(short, path.group(1))}"', svg)
    return INDENT.sub("\n", svg)
