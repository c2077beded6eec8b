"""Comparison: ‖δ‖ per layer, one line per series, at step 0 and at the end of training."""

from functools import partial

import pandas as pd
from matplotlib.figure import Figure

from report.figures.common import (
    Chart,
    Key,
    Tables,
    draw_series,
    fmt,
    label,
    legend_below,
    log_axis,
    new_figure,
    nonfinite_note,
    select,
    widen_log,
)
from report.grading.stats import seed_band


def chart(layer: pd.DataFrame, keys: list[Key], name: str) -> Chart:
    """‖δ‖ per layer, one line per scenario, at step 0 (left) and at the end of training (right)."""
    rows = step0_and_end(select(layer[layer["layer_role"] != "shortcut"], keys))
    data = seed_band(rows, "layer", "delta_norm", ["order", "snapshot", "series"])
    caption, alt = comparison_caption(data, keys), comparison_alt(data, keys)
    return Chart(name, data, caption, alt, partial(draw_flow_comparison, data, keys))


def step0_and_end(layer: pd.DataFrame) -> pd.DataFrame:
    """Rows at step 0 and at each run's last logged step (a diverged run's last step included)."""
    layer = layer.astype({"step": int, "layer": int})
    last = layer.groupby("run_id")["step"].transform("max")
    start = layer[layer["step"] == 0].assign(snapshot="step 0", order=0)
    return pd.concat([start, layer[layer["step"] == last].assign(snapshot="end of training", order=1)])


def draw_flow_comparison(data: pd.DataFrame, keys: list[Key]) -> Figure:
    figure, axes = new_figure(1, 2, sharey=True)
    for ax, (_, part) in zip(axes[0], data.groupby("order"), strict=False):
        draw_series(ax, part, keys, "layer")
        log_axis(ax, "weight layer (0 = input side)", "‖δ‖ (log)")
        widen_log(ax)
        ax.set_title(part["snapshot"].iloc[0], fontsize=8.5)
    legend_below(figure)
    return figure


def ratio_by_series(data: pd.DataFrame, keys: list[Key]) -> dict[str, float]:
    """Median ‖δ‖ of the first layer over that of the last hidden one (before the output), at step 0."""
    step0 = data[data["order"] == 0]
    ratios = {}
    for key in keys:
        medians = step0[step0["series"] == label(key)].sort_values("layer")["median"].to_numpy(float)
        if len(medians) >= 2:
            ratios[label(key)] = float(medians[0] / medians[-2])
    return ratios


def comparison_caption(data: pd.DataFrame, keys: list[Key]) -> str:
    ratios = "; ".join(f"{s} {fmt(r)}" for s, r in ratio_by_series(data, keys).items())
    return (
        "‖δ‖ per weight layer at step 0 (left) and at the end of training (right), one colour per "
        "series, median over seeds with min–max band. Median ‖δ‖ of the first layer over that of the last "
        f"hidden layer at step 0: {ratios}." + nonfinite_note(data, "layer", "‖δ‖")
    )


def comparison_alt(data: pd.DataFrame, keys: list[Key]) -> str:
    ratios = "; ".join(f"{s} {fmt(r)}" for s, r in ratio_by_series(data, keys).items())
    return (
        "Two log-scale line charts of ‖δ‖ per layer, one line per series; first over last hidden layer at "
        f"step 0: {ratios}."
    )


def from_data(data: Tables, keys: list[Key], seeds: list[int], name: str) -> Chart:
    """The registry's entry point."""
    return chart(data.rows("layer", keys, seeds), keys, name)
