"""Recurrent: log10 ‖∂L/∂h_t‖ as heatmaps, time step × training step, one panel per cell type."""

from functools import partial

import numpy as np
import pandas as pd
from matplotlib import ticker
from matplotlib.figure import Figure

from report.figures.common import Chart, Key, Tables, fmt, heat_image, heatmap_data, label, new_figure, select
from report.figures.resolution import columns_note


def chart(time: pd.DataFrame, keys: list[Key], name: str) -> Chart | None:
    """One heatmap per series on one colour scale: the temporal δ from h_1 (bottom) to h_T (top)."""
    rows = select(time, keys)
    if rows.empty:
        return None
    parts = dict(list(rows.assign(layer=rows["time_step"], layer_role="time").groupby("series")))
    present = [k for k in keys if label(k) in parts]
    if not present:
        return None
    data = pd.concat([heatmap_data(parts[label(k)], ("delta_norm",), len(present)).assign(series=label(k))
                      for k in present], ignore_index=True).rename(columns={"layer": "time_step"})
    return Chart(name, data, caption(data), alt(data), partial(draw, data, present))


def draw(data: pd.DataFrame, present: list[Key]) -> Figure:
    figure, axes = new_figure(1, len(present), height=2.6)  # own y range: a page may compare lengths
    low, high = np.nanmin(data["log10_median"]), np.nanmax(data["log10_median"])
    for ax, key in zip(axes[0], present, strict=True):
        rows = data[data["series"] == label(key)].rename(columns={"time_step": "layer"})
        image = heat_image(ax, rows, vmin=low, vmax=high)
        ax.set_title(label(key).replace(" d", " T="), fontsize=8.5)
        ax.xaxis.set_major_locator(ticker.MaxNLocator(nbins=max(2, 8 // len(present)), integer=True))
    axes[0, 0].set_ylabel("time step t")
    figure.colorbar(image, ax=list(axes[0]), label="log10 ‖∂L/∂h_t‖", shrink=0.9)
    return figure


def caption(data: pd.DataFrame) -> str:
    parts = []
    for series, rows in data.groupby("series", sort=False):
        first = rows[rows["step"] == rows["step"].min()].sort_values("time_step")["log10_median"].to_numpy()
        parts.append(f"{series.replace(' d', ' T=')}: {fmt(first[0])} at t = 1 and {fmt(first[-1])} at t = T "
                     f"at step 0")
    bad = int((data["n_nonfinite"] > 0).sum())
    note = f" Green cells ({bad}): a seed was non-finite, not drawn." if bad else ""
    return ("log10 ‖∂L/∂h_t‖, the gradient reaching the hidden state of time step t through every later step "
            "(h_1 at the bottom, h_T, next to the loss, at the top), per training step, median over seeds, on "
            f"one colour scale. log10 ‖∂L/∂h_t‖: {'; '.join(parts)}." + columns_note(data) + note)


def alt(data: pd.DataFrame) -> str:
    return f"{data['series'].nunique()} heatmaps of log10 ‖∂L/∂h_t‖, time steps by training steps. " + caption(data)


def from_data(data: Tables, keys: list[Key], seeds: list[int], name: str) -> Chart | None:
    """The registry's entry point."""
    return chart(data.rows("time", keys, seeds), keys, name)
