"""Comparison: log10 ‖δ‖ heatmaps side by side on one colour scale, one per series."""

from functools import partial

import numpy as np
import pandas as pd
from matplotlib import ticker
from matplotlib.figure import Figure

from report.figures.common import Chart, Key, Tables, fmt, heat_image, heatmap_data, label, new_figure, select
from report.figures.resolution import columns_note


def chart(layer: pd.DataFrame, keys: list[Key], name: str) -> Chart:
    """log10 ‖δ‖ heatmaps side by side on one colour scale: problem and fixes, same seeds."""
    parts = dict(list(select(layer, keys).groupby("series")))
    present = [k for k in keys if label(k) in parts]
    data = pd.concat(
        [heatmap_data(parts[label(k)], ("delta_norm",), len(present)).assign(series=label(k)) for k in present],
        ignore_index=True,
    )
    return Chart(name, data, grid_caption(data), grid_alt(data), partial(draw_heatmap_grid, data, present))


def draw_heatmap_grid(data: pd.DataFrame, present: list[Key]) -> Figure:
    figure, axes = new_figure(1, len(present), height=2.4, sharey=True)
    low, high = np.nanmin(data["log10_median"]), np.nanmax(data["log10_median"])
    for ax, key in zip(axes[0], present, strict=True):
        image = heat_image(ax, data[data["series"] == label(key)], vmin=low, vmax=high)
        ax.set_title(label(key), fontsize=8.5)
        ax.xaxis.set_major_locator(ticker.MaxNLocator(nbins=max(2, 8 // len(present)), integer=True))  # no overlap
    axes[0, 0].set_ylabel("weight layer")
    figure.colorbar(image, ax=list(axes[0]), label="log10 ‖δ‖", shrink=0.9)
    return figure


def grid_caption(data: pd.DataFrame) -> str:
    spans = "; ".join(
        f"{s} {fmt(g['log10_median'].min())} to {fmt(g['log10_median'].max())}"
        for s, g in data.groupby("series", sort=False)
    )
    bad = int((data["n_nonfinite"] > 0).sum())
    note = f" Green cells ({bad}): a seed was non-finite, not drawn." if bad else ""
    return (
        "log10 ‖δ‖ for every layer (input side at the bottom) and step, median over seeds, on one colour "
        f"scale. Range of log10 ‖δ‖: {spans}." + columns_note(data) + note
    )


def grid_alt(data: pd.DataFrame) -> str:
    return f"{data['series'].nunique()} heatmaps side by side of log10 ‖δ‖, layers by steps. " + grid_caption(
        data
    )


def from_data(data: Tables, keys: list[Key], seeds: list[int], name: str) -> Chart:
    """The registry's entry point."""
    return chart(data.rows("layer", keys, seeds), keys, name)
