"""A declared statistic (bench/statistics.py) per hidden layer of one scenario × depth, at step 0 and each epoch's
end: the figure every statistic declared with a summary gets on its scenario page."""

from functools import partial

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from bench.statistics import Statistic
from report.figures.common import (
    Chart,
    Key,
    Tables,
    band_lines,
    fmt,
    log_axis,
    new_figure,
    seeds_text,
    snapshot_colours,
    widen_log,
    with_snapshots,
)
from report.grading.stats import seed_band


def chart(layer: pd.DataFrame, scenario: str, depth: int, name: str, statistic: Statistic) -> Chart | None:
    """None when no run of the cell recorded the statistic (runs stored before it was declared)."""
    rows = layer[(layer["layer_role"] == "hidden") & layer[statistic.name].notna()]
    if rows.empty:
        return None
    data = seed_band(with_snapshots(rows), "layer", statistic.name, ["order", "snapshot"])
    label = statistic.label[0].upper() + statistic.label[1:]
    caption = (f"{label} per hidden layer of {scenario} at depth {depth} ({seeds_text(rows)}): "
               f"{statistic.meaning}, at step 0 and at the end of each epoch (of at most six, evenly spaced); "
               f"line = median over seeds, band = min–max. {ends_text(data)}")
    alt = f"Line chart of {statistic.label} per hidden layer for {scenario} depth {depth}. {ends_text(data)}"
    return Chart(name, data, caption, alt, partial(draw, data, axis_label(statistic)))


def axis_label(statistic: Statistic) -> str:
    return f"{statistic.label} ({statistic.unit})" if statistic.unit else statistic.label


def ends_text(data: pd.DataFrame) -> str:
    """The step-0 medians at the first and the last hidden layer."""
    rows = data[data["snapshot"] == "step 0"].sort_values("layer")["median"]
    first, last = fmt(rows.iloc[0]), fmt(rows.iloc[-1])
    return f"At step 0 the median is {first} at the first hidden layer and {last} at the last."


def draw(data: pd.DataFrame, label: str) -> Figure:
    figure, axes = new_figure(height=2.5)
    ax = axes[0, 0]
    for snapshot, colour in snapshot_colours(data).items():
        band_lines(ax, data[data["snapshot"] == snapshot], "layer", snapshot, colour)
    values = data["median"].to_numpy(dtype=float)
    if (values[np.isfinite(values)] > 0).all():
        log_axis(ax, "hidden layer (0 = input side)", label)
        widen_log(ax)
    else:
        ax.set(xlabel="hidden layer (0 = input side)", ylabel=label)
    ax.legend()
    return figure


def from_data(statistic: Statistic, data: Tables, keys: list[Key], seeds: list[int], name: str) -> Chart | None:
    """The registry's entry point (with the statistic bound): one (scenario, depth) key."""
    [(scenario, depth)] = keys
    return chart(data.rows("layer", keys, seeds), scenario, depth, name, statistic)
