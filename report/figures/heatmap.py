"""Figure 2: log10 ‖δ‖ and ‖∂L/∂W‖ of one scenario × depth, layer by step: vanishing and exploding at a glance."""

from functools import partial

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from report.figures.common import (
    FLOW_QUANTITIES,
    Chart,
    Key,
    Tables,
    fmt,
    heat_image,
    heatmap_data,
    new_figure,
    seeds_text,
)
from report.figures.resolution import columns_note


def chart(layer: pd.DataFrame, scenario: str, depth: int, name: str) -> Chart:
    """Figure 2: the signature picture of vanishing (dark lower rows) and exploding (bright right edge)."""
    data = heatmap_data(layer, panels=2)  # ‖δ‖ and ‖∂L/∂W‖ side by side
    caption, alt = heatmap_caption(data, layer, scenario, depth), heatmap_alt(data, scenario, depth)
    return Chart(name, data, caption, alt, partial(draw_heatmaps, data))


def draw_heatmaps(data: pd.DataFrame) -> Figure:
    figure, axes = new_figure(1, 2, height=2.6)
    for ax, (quantity, label) in zip(axes[0], FLOW_QUANTITIES.items(), strict=True):
        draw_heatmap(ax, data[data["quantity"] == quantity], label)
        ax.set_title(label, fontsize=8.5)
    return figure


def draw_heatmap(ax: Axes, rows: pd.DataFrame, label: str) -> None:
    short = label.split(" = ")[0]
    ax.figure.colorbar(heat_image(ax, rows), ax=ax, label=f"log10 {short}", shrink=0.9)
    ax.set_ylabel("weight layer")


def heatmap_span(data: pd.DataFrame, quantity: str = "delta_norm") -> tuple[float, float]:
    values = data.loc[data["quantity"] == quantity, "log10_median"]
    return float(values.min()), float(values.max())


def heatmap_caption(data: pd.DataFrame, layer: pd.DataFrame, scenario: str, depth: int) -> str:
    low, high = heatmap_span(data)
    bad = int((data["n_nonfinite"] > 0).sum())
    note = f" Green cells ({bad}): at least one seed non-finite, not drawn." if bad else ""
    return (
        f"log10 of ‖δ‖ (left) and ‖∂L/∂W‖ (right) for every layer and step of {scenario} at depth {depth}, "
        f"median over {seeds_text(layer)}; layer 0 (input side) at the bottom. log10 ‖δ‖ spans "
        f"{fmt(low)} to {fmt(high)}." + columns_note(data) + note
    )


def heatmap_alt(data: pd.DataFrame, scenario: str, depth: int) -> str:
    low, high = heatmap_span(data)
    steps = data["step"].nunique()
    return (
        f"Two heatmaps, layers by {steps} steps, of {scenario} at depth {depth}; log10 ‖δ‖ ranges from "
        f"{fmt(low)} to {fmt(high)}."
    )


def from_data(data: Tables, keys: list[Key], seeds: list[int], name: str) -> Chart:
    """The registry's entry point: one (scenario, depth) key."""
    [(scenario, depth)] = keys
    return chart(data.rows("layer", keys, seeds), scenario, depth, name)
