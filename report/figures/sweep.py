"""Figure 3: the step-0 first/last δ ratio against depth, measured and predicted, per scenario."""

from functools import partial

import pandas as pd
from matplotlib.figure import Figure

from report.figures.common import (
    Chart,
    Key,
    Tables,
    band_lines,
    colours,
    fmt,
    label,
    legend_below,
    log_axis,
    new_figure,
    widen_log,
)
from report.grading.stats import seed_band


def chart(runs: pd.DataFrame, scenarios: list[str], name: str) -> Chart:
    """Figure 3: first/last δ ratio at step 0 against depth, measured (solid) and predicted (dashed)."""
    runs = runs[runs["scenario"].isin(scenarios)]
    data = sweep_data(runs)
    return Chart(name, data, sweep_caption(data, runs), sweep_alt(data), partial(draw_sweep, data, scenarios))


def sweep_data(runs: pd.DataFrame) -> pd.DataFrame:
    """Per scenario × depth: measured step-0 first/last δ ratio over seeds, and the prediction."""
    band = seed_band(runs, "depth", "delta_ratio_init", ["scenario"])
    predicted = runs.groupby(["scenario", "depth"], as_index=False)["predicted_delta_ratio"].first()
    return band.merge(predicted, on=["scenario", "depth"], how="left").sort_values(["scenario", "depth"])


def draw_sweep(data: pd.DataFrame, scenarios: list[str]) -> Figure:
    figure, axes = new_figure(height=3.0)
    ax = axes[0, 0]
    palette = colours([(s, 0) for s in scenarios] + [("", 0)])  # the dummy key keeps catalogue colours
    for scenario in [s for s in scenarios if s in set(data["scenario"])]:
        rows = data[data["scenario"] == scenario]
        band_lines(ax, rows, "depth", scenario, palette[label((scenario, 0))])
        ax.plot(
            rows["depth"],
            rows["predicted_delta_ratio"],
            ls="--",
            marker="o",
            mfc="none",
            color=palette[label((scenario, 0))],
            lw=1,
        )
    ax.axhline(1.0, color="#888", lw=0.8)
    depths = sorted(data["depth"].astype(int).unique())
    ax.set_xticks(depths)
    ax.set_xlim(min(depths) - 1, max(depths) + 1)
    log_axis(ax, "depth (hidden layers or residual blocks)", "‖δ first‖ / ‖δ last‖ at step 0")
    widen_log(ax, 2.0)
    legend_below(figure, "solid: measured, dashed: mean-field theory")
    return figure


def sweep_caption(data: pd.DataFrame, runs: pd.DataFrame) -> str:
    notes = runs.dropna(subset=["theory_note"]).groupby("scenario")["theory_note"].first()
    missing = "; ".join(f"{s}: {n}" for s, n in notes.items())
    text = (
        "First-to-last hidden layer ‖δ‖ ratio at step 0 against depth; solid = median over seeds with "
        "min–max band, dashed with open circles = mean-field prediction (the Methods page). Below 1: the signal "
        "shrinks on its way back to the input."
    )
    return text + (f" No prediction where the theory does not apply ({missing})." if missing else "")


def sweep_alt(data: pd.DataFrame) -> str:
    parts = []
    for scenario, rows in data.groupby("scenario", sort=False):
        deepest = rows.sort_values("depth").iloc[-1]
        parts.append(f"{scenario} {fmt(deepest['median'])} at depth {int(deepest['depth'])}")
    return "Log-scale chart of step-0 δ ratio against depth: " + "; ".join(parts) + "."


def from_data(data: Tables, keys: list[Key], seeds: list[int], name: str) -> Chart:
    """The registry's entry point: every depth of the keys' scenarios, every seed (a sweep is over depth)."""
    return chart(data.runs, list(dict.fromkeys(k[0] for k in keys)), name)
