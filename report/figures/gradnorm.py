"""Figure 5: the global gradient norm per step, before and after clipping, one line per series."""

from functools import partial

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from report.figures.common import (
    Chart,
    Key,
    Tables,
    band_lines,
    colours,
    diverged,
    divergence_text,
    finite,
    fmt,
    keyed_bands,
    label,
    legend_below,
    log_axis,
    mark_divergence,
    new_figure,
    select,
    widen_log,
)


def chart(step: pd.DataFrame, runs: pd.DataFrame, keys: list[Key], name: str) -> Chart:
    """Figure 5: global gradient norm per step, before (solid) and after (dashed) clipping."""
    rates = clip_rates(step, runs, keys)
    data = grad_norm_data(step, keys, rates)
    stops = diverged(runs, keys)
    caption, alt = grad_norm_caption(data, rates, stops), grad_norm_alt(data)
    return Chart(name, data, caption, alt, partial(draw_grad_norm, data, rates, stops, keys))


def clip_rates(step: pd.DataFrame, runs: pd.DataFrame, keys: list[Key]) -> dict[str, float | None]:
    """Fraction of steps where clipping fired, per series; None for series that do not clip."""
    clipping = select(runs, keys)
    clipping = clipping[clipping["clipnorm"].notna() | clipping["global_clipnorm"].notna()]["series"]
    rows = select(step, keys)
    rates = rows.groupby("series")["clipped"].mean().to_dict()
    return {label(k): rates.get(label(k)) if label(k) in set(clipping) else None for k in keys}


def grad_norm_data(step: pd.DataFrame, keys: list[Key], rates: dict[str, float | None]) -> pd.DataFrame:
    before = keyed_bands(step, keys, "step", "grad_norm")
    clipped = [k for k in keys if rates.get(label(k)) is not None]
    if not clipped:
        return before
    return pd.concat([before, keyed_bands(step, clipped, "step", "grad_norm_clipped")], ignore_index=True)


def draw_grad_norm(data: pd.DataFrame, rates: dict, stops: pd.DataFrame, keys: list[Key]) -> Figure:
    figure, axes = new_figure(height=2.8)
    ax = axes[0, 0]
    palette = colours(keys)
    for series, colour in palette.items():
        tag = f" (clipped {fmt(100 * rates[series])} % of steps)" if rates.get(series) is not None else ""
        rows = data[(data["series"] == series) & (data["quantity"] == "grad_norm")]
        if len(rows):
            band_lines(ax, rows, "step", series + tag, colour)
        after = data[(data["series"] == series) & (data["quantity"] == "grad_norm_clipped")].sort_values(
            "step"
        )
        ax.plot(after["step"], finite(after["median"]), ls="--", lw=1, color=colour)
    mark_divergence(ax, stops)
    log_axis(ax, "training step", "global ‖g‖ (log)")
    widen_log(ax)
    legend_below(figure, "solid: before clipping, dashed: after")
    return figure


def grad_norm_growth(data: pd.DataFrame) -> dict[str, tuple[float, float]]:
    rows = data[data["quantity"] == "grad_norm"].sort_values("step")
    finite_rows = rows[np.isfinite(rows["median"].astype(float))]
    grouped = finite_rows.groupby("series")["median"]
    return {
        s: (float(first), float(peak))
        for (s, first), peak in zip(grouped.first().items(), grouped.max(), strict=True)
    }


def grad_norm_caption(data: pd.DataFrame, rates: dict, stops: pd.DataFrame) -> str:
    growth = "; ".join(
        f"{s} {fmt(a)} at the first step, peak {fmt(b)}" for s, (a, b) in grad_norm_growth(data).items()
    )
    clip = "; ".join(f"{s} {fmt(100 * r)} %" for s, r in rates.items() if r is not None)
    return (
        "Global gradient norm over all trainable variables per step, median over seeds with min–max band "
        f"(solid: before clipping; dashed: after). Median norm: {growth}."
        + (f" Clipping fired on this share of steps: {clip}." if clip else "")
        + divergence_text(stops)
    )


def grad_norm_alt(data: pd.DataFrame) -> str:
    growth = "; ".join(
        f"{s} from {fmt(a)} to a peak of {fmt(b)}" for s, (a, b) in grad_norm_growth(data).items()
    )
    return f"Log-scale line chart of the global gradient norm against step: {growth}."


def from_data(data: Tables, keys: list[Key], seeds: list[int], name: str) -> Chart:
    """The registry's entry point."""
    return chart(data.rows("step", keys, seeds), data.rows("runs", keys, seeds), keys, name)
