"""Recurrent: ‖∂L/∂h_1‖ / ‖∂L/∂h_T‖ at step 0 against sequence length T, with the Pascanu et al. bound."""

from functools import partial

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from report import recurrent
from report.figures.common import (
    Chart,
    Key,
    Tables,
    fmt,
    legend_below,
    length_band,
    length_lines,
    log_axis,
    new_figure,
)
from report.grading.verdicts import per_layer_factor


def chart(runs: pd.DataFrame, scenarios: list[str], name: str) -> Chart | None:
    data = length_band(runs, scenarios, "delta_ratio_init")
    if data is None:
        return None
    data["bound"] = [recurrent.bound_factor(s) ** (t - 1) for s, t in zip(data["scenario"], data["length"])]
    return Chart(name, data, caption(data), alt(data), partial(draw, data, scenarios))


def draw(data: pd.DataFrame, scenarios: list[str]) -> Figure:
    figure, axes = new_figure(height=3.0)
    ax = axes[0, 0]
    lengths = np.arange(1, int(data["length"].max()) + 1)
    for scenario, colour in length_lines(ax, data, scenarios).items():
        factor = recurrent.bound_factor(scenario)
        if np.isfinite(factor):
            ax.plot(lengths, factor ** (lengths - 1.0), ls="--", lw=1, color=colour)
    ax.axhline(1.0, color="#888", lw=0.8)
    log_axis(ax, "sequence length T", "‖∂L/∂h_1‖ / ‖∂L/∂h_T‖ at step 0")
    legend_below(figure, "with markers: measured (median, band: seeds); thin dashed: the bound (γ·σ_max)^(T−1)")
    return figure


def caption(data: pd.DataFrame) -> str:
    parts = []
    for scenario, rows in data.groupby("scenario", sort=False):
        rows = rows.sort_values("length")
        factor = [per_layer_factor(r, t) for r, t in zip(rows["median"], rows["length"])]
        bound = recurrent.bound_factor(scenario)
        parts.append(f"{scenario}: per step {', '.join(f'{fmt(f)} (T = {t})' for f, t in zip(factor, rows['length']))}"
                     + (f", bound {fmt(bound)}" if np.isfinite(bound) else ", no bound (gated)"))
    return ("The temporal signal at initialisation: how much of the gradient at the last hidden state reaches the "
            "first, against the sequence length, median and range over seeds; dashed, the Pascanu et al. upper "
            f"bound for the SimpleRNNs. Per-time-step factor (ratio^(1/(T−1))): {'; '.join(parts)}.")


def alt(data: pd.DataFrame) -> str:
    return "Log-scale lines of the first-to-last temporal gradient ratio against sequence length. " + caption(data)


def from_data(data: Tables, keys: list[Key], seeds: list[int], name: str) -> Chart | None:
    """The registry's entry point: every trained length of the keys' scenarios."""
    return chart(data.runs, list(dict.fromkeys(k[0] for k in keys)), name)
