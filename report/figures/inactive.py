"""Figure 7: the fraction of saturated (sigmoid/tanh) or dead (ReLU) units per hidden layer."""

from functools import partial

import pandas as pd
from matplotlib.figure import Figure

from report.figures.common import (
    Chart,
    Key,
    Tables,
    band_lines,
    fmt,
    new_figure,
    seeds_text,
    snapshot_colours,
    with_snapshots,
)
from report.grading.stats import seed_band


def chart(layer: pd.DataFrame, scenario: str, depth: int, name: str) -> Chart | None:
    """Figure 7: saturated (sigmoid/tanh) or dead (ReLU) unit fraction per layer; None if not recorded."""
    rows = with_snapshots(layer[(layer["layer_role"] == "hidden") & layer["inactive_fraction"].notna()])
    if rows.empty:
        return None
    data = seed_band(rows, "layer", "inactive_fraction", ["order", "snapshot"])
    caption, alt = inactive_caption(data, layer, scenario, depth), inactive_alt(data, scenario, depth)
    return Chart(name, data, caption, alt, partial(draw_inactive, data))


def draw_inactive(data: pd.DataFrame) -> Figure:
    figure, axes = new_figure(height=2.5)
    ax = axes[0, 0]
    for snapshot, colour in snapshot_colours(data).items():
        band_lines(ax, data[data["snapshot"] == snapshot], "layer", snapshot, colour)
    ax.set(xlabel="hidden layer (0 = input side)", ylabel="inactive fraction of units", ylim=(0, 1))
    ax.legend()
    return figure


def inactive_extremes(data: pd.DataFrame, snapshot: str) -> tuple[float, float]:
    rows = data[data["snapshot"] == snapshot]["median"]
    return float(rows.min()), float(rows.max())


def inactive_caption(data: pd.DataFrame, layer: pd.DataFrame, scenario: str, depth: int) -> str:
    low, high = inactive_extremes(data, "step 0")
    last = data.sort_values("order")["snapshot"].iloc[-1]
    end_low, end_high = inactive_extremes(data, last)
    return (
        f"Fraction of saturated (sigmoid, tanh) or dead (ReLU family) units per hidden layer of {scenario} "
        "at "
        f"depth {depth}, median over {seeds_text(layer)} with min–max band. Step 0: {fmt(low)}–{fmt(high)} "
        f"across layers; {last}: {fmt(end_low)}–{fmt(end_high)}."
    )


def inactive_alt(data: pd.DataFrame, scenario: str, depth: int) -> str:
    low, high = inactive_extremes(data, "step 0")
    return (
        f"Line chart of inactive unit fraction per layer for {scenario} depth {depth}; at step 0 between "
        f"{fmt(low)} and {fmt(high)}."
    )


def from_data(data: Tables, keys: list[Key], seeds: list[int], name: str) -> Chart | None:
    """The registry's entry point: one (scenario, depth) key."""
    [(scenario, depth)] = keys
    return chart(data.rows("layer", keys, seeds), scenario, depth, name)
