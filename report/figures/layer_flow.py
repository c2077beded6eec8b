"""Figure 1: gradient flow through one scenario × depth, per layer, at step 0 and each epoch's end."""

from functools import partial

import pandas as pd
from matplotlib.figure import Figure

from report.figures.common import (
    FLOW_QUANTITIES,
    Chart,
    Key,
    Tables,
    band_lines,
    fmt,
    log_axis,
    new_figure,
    nonfinite_note,
    seeds_text,
    snapshot_colours,
    widen_log,
    with_snapshots,
)
from report.grading.stats import seed_band


def chart(layer: pd.DataFrame, scenario: str, depth: int, name: str) -> Chart:
    """Figure 1: per-layer δ and kernel-gradient norm at step 0 and the end of each epoch."""
    data = flow_data(layer)
    caption, alt = flow_caption(data, layer, scenario, depth), flow_alt(data, scenario, depth)
    return Chart(name, data, caption, alt, partial(draw_flow, data))


def flow_data(layer: pd.DataFrame) -> pd.DataFrame:
    """Median/min/max over seeds per snapshot × layer × quantity (main-path layers only)."""
    main = with_snapshots(layer[layer["layer_role"] != "shortcut"])
    parts = [
        seed_band(main, "layer", quantity, ["order", "snapshot"]).assign(quantity=quantity)
        for quantity in FLOW_QUANTITIES
    ]
    return pd.concat(parts, ignore_index=True).sort_values(["quantity", "order", "layer"], ignore_index=True)


def draw_flow(data: pd.DataFrame) -> Figure:
    figure, axes = new_figure(1, 2, sharex=True)
    for ax, (quantity, label) in zip(axes[0], FLOW_QUANTITIES.items(), strict=True):
        for snapshot, colour in snapshot_colours(data).items():
            rows = data[(data["quantity"] == quantity) & (data["snapshot"] == snapshot)]
            band_lines(ax, rows, "layer", snapshot, colour)
        log_axis(ax, "weight layer (0 = input side)", label)
        widen_log(ax)
    axes[0, 0].legend()
    return figure


def first_last(data: pd.DataFrame, quantity: str, snapshot: str) -> tuple[float, float]:
    rows = data[(data["quantity"] == quantity) & (data["snapshot"] == snapshot)].sort_values("layer")
    return float(rows["median"].iloc[0]), float(rows["median"].iloc[-1])


def flow_caption(data: pd.DataFrame, layer: pd.DataFrame, scenario: str, depth: int) -> str:
    first, last = first_last(data, "delta_norm", "step 0")
    return (
        f"Gradient flow through {scenario} at depth {depth} ({seeds_text(layer)}): ‖δ‖ (left) and ‖∂L/∂W‖ "
        f"(right) per weight layer, at step 0 and at the end of each epoch (of at most six, evenly spaced); "
        f"line = median over seeds, band = min–max. At step 0 the median ‖δ‖ is {fmt(first)} at the first "
        f"layer and {fmt(last)} at the output layer." + nonfinite_note(data, "layer", "norm")
    )


def flow_alt(data: pd.DataFrame, scenario: str, depth: int) -> str:
    first, last = first_last(data, "delta_norm", "step 0")
    n = data["layer"].nunique()
    return (
        f"Two log-scale line charts over {n} layers of {scenario} (depth {depth}). Step-0 ‖δ‖ goes from "
        f"{fmt(first)} at layer 0 to {fmt(last)} at the output layer."
    )


def from_data(data: Tables, keys: list[Key], seeds: list[int], name: str) -> Chart:
    """The registry's entry point: one (scenario, depth) key."""
    [(scenario, depth)] = keys
    return chart(data.rows("layer", keys, seeds), scenario, depth, name)
