"""Figure 6: per-layer distributions of weights and of log10 |g| at initialisation and the last epoch."""

from functools import partial

import numpy as np
import pandas as pd
from matplotlib import ticker
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from report.figures.common import PALETTE, Chart, Key, Tables, fmt, new_figure

HISTOGRAM_QUANTITIES = {"weight": "weight value", "log10_abs_grad": "log10 |gradient|"}


def chart(histogram: pd.DataFrame, scenario: str, depth: int, name: str) -> Chart:
    """Figure 6: per-layer distributions of weights and of log10 |g| at epoch 0 and the last epoch."""
    data = histogram_data(histogram)
    epochs = sorted(data["epoch"].unique().tolist())
    layers = data["layer"].nunique()
    caption = (
        f"Distributions per weight layer (one row each, input side at the bottom; heights scaled per row) "
        f"of {scenario} at depth {depth}, seed {fmt(data['seed'].min())}: grey = at initialisation, "
        f"blue outline = end of epoch {epochs[-1]}. Left: weights; right: log10 |gradient| on a fixed "
        "probe batch." + typical_gradient_text(data)
    )
    alt = (
        f"Two ridge plots of {layers} layers each, weights and log10 gradient magnitudes, at epoch 0 "
        f"and {epochs[-1]}."
    )
    return Chart(name, data, caption, alt, partial(draw_histograms, data))


def histogram_data(histogram: pd.DataFrame) -> pd.DataFrame:
    """The first seed's bins at initialisation (epoch 0) and at the last epoch, with finite edges."""
    seed = histogram["seed"].min()
    rows = histogram[histogram["seed"] == seed].astype({"layer": int, "epoch": int})
    rows = rows[rows["epoch"].isin([0, rows["epoch"].max()])]
    edges_ok = np.isfinite(rows["bin_left"].astype(float)) & np.isfinite(rows["bin_right"].astype(float))
    columns = ["seed", "epoch", "layer", "quantity", "bin_left", "bin_right", "count"]
    return rows.loc[edges_ok, columns].sort_values(columns[:5], ignore_index=True)


def draw_ridges(ax: Axes, rows: pd.DataFrame, epochs: list[int]) -> None:
    styles = {
        epochs[0]: dict(fill=True, color="#bbbbbb"),
        epochs[-1]: dict(fill=False, color=PALETTE[0], lw=1),
    }
    rows = rows.sort_values(["epoch", "layer", "bin_left"])
    keys = rows[["epoch", "layer"]].to_numpy(int)
    counts, lefts, rights = (rows[c].to_numpy(float) for c in ("count", "bin_left", "bin_right"))
    starts = np.flatnonzero(np.r_[True, (keys[1:] != keys[:-1]).any(axis=1)])
    for start, stop in zip(starts, np.r_[starts[1:], len(rows)], strict=True):
        epoch, layer = keys[start]
        height = 0.9 * counts[start:stop] / max(counts[start:stop].max(), 1.0)
        edges = np.append(lefts[start:stop], rights[stop - 1])
        ax.stairs(height + layer, edges, baseline=layer, rasterized=True, **styles[epoch])
    ax.set_ylabel("weight layer")
    ax.grid(False)


def draw_histograms(data: pd.DataFrame) -> Figure:
    epochs = sorted(data["epoch"].unique().tolist())
    figure, axes = new_figure(1, 2, height=1.2 + 0.17 * data["layer"].nunique(), sharey=True)
    for ax, (quantity, name) in zip(axes[0], HISTOGRAM_QUANTITIES.items(), strict=True):
        draw_ridges(ax, data[data["quantity"] == quantity], epochs)
        ax.set_xlabel(name)
        ax.xaxis.set_major_locator(ticker.MaxNLocator(nbins=6))  # values, not counts
    axes[0, 1].set_ylabel("")
    return figure


def typical_log_gradient(data: pd.DataFrame, epoch: int) -> pd.Series:
    """Count-weighted mean of log10 |g| bin centres per layer."""
    rows = data[(data["quantity"] == "log10_abs_grad") & (data["epoch"] == epoch)]
    centre = (rows["bin_left"] + rows["bin_right"]) / 2 * rows["count"]
    sums = rows.assign(weighted=centre).groupby("layer")[["weighted", "count"]].sum()
    return sums["weighted"] / sums["count"].where(sums["count"] > 0)


def typical_gradient_text(data: pd.DataFrame) -> str:
    typical = typical_log_gradient(data, 0).dropna()
    if typical.empty:
        return ""
    return (
        f" At initialisation the mean log10 |g| is {fmt(typical.iloc[0])} in layer {typical.index[0]} and "
        f"{fmt(typical.iloc[-1])} in layer {typical.index[-1]}."
    )


def from_data(data: Tables, keys: list[Key], seeds: list[int], name: str) -> Chart | None:
    """The registry's entry point: one (scenario, depth) key; None when no histograms were recorded."""
    [(scenario, depth)] = keys
    histogram = data.rows("histogram", keys, seeds)
    return chart(histogram, scenario, depth, name) if len(histogram) else None
