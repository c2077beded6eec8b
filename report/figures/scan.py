"""The depth scan's figure: step-0 ratio against depth per scenario, measured and predicted (report/depth_scan.py)."""

from functools import partial

import pandas as pd
from matplotlib.figure import Figure

from report.depth_scan import ScanRow, measurable
from report.figures.common import Chart, colours, fmt, label, legend_below, new_figure

PANELS = (
    ("ordered and critical networks", lambda factor: factor <= 1.05),
    ("networks that amplify δ towards the input", lambda factor: factor > 1.05),
)


def panel_of(rows: list[ScanRow]) -> dict[str, int]:
    return {r.scenario: 0 if PANELS[0][1](r.measured.factor) else 1 for r in rows}


def chart(rows: list[ScanRow], data: pd.DataFrame, meta: dict, name: str) -> Chart:
    """rows and data: report.depth_scan.table's; meta: the scan's metadata."""
    panels = panel_of(rows)
    data = data.assign(panel=data["scenario"].map(panels))
    seeds, depths = len(meta["seeds"]), sorted(meta["depths"])
    caption = (
        f"Step-0 ratio ‖δ first hidden‖ / ‖δ last hidden‖ against depth, {len(depths)} depths from {depths[0]} to "
        f"{depths[-1]} × {seeds} seeds on {meta['dataset']} (batch {meta['batch']}): markers are the median "
        "over seeds with the min–max range; lines are the mean-field prediction at every depth, drawn where "
        "the theory applies. A straight line on this log-linear plot is a constant per-layer factor; a power "
        "law bends. " + unmeasurable_text(data)
    )
    alt = "Depth scan: " + "; ".join(
        f"{r.scenario} {r.measured.model}, per-layer factor {fmt(r.measured.factor)}" for r in rows
    )
    return Chart(name, data, caption, alt, partial(draw, data))


def unmeasurable_text(data: pd.DataFrame) -> str:
    lost = data[(data["source"] == "measured") & (data["n_unmeasurable"] > 0)]
    if lost.empty:
        return "Every point was measurable in float32."
    parts = [f"{s} from depth {int(g['depth'].min())}" for s, g in lost.groupby("scenario", sort=False)]
    return "Not drawn, because ‖δ‖ left float32's range (as it would in training): " + ", ".join(parts) + "."


def draw(data: pd.DataFrame) -> Figure:
    figure, axes = new_figure(1, 2, height=3.4)
    names = list(dict.fromkeys(data["scenario"]))
    colour = colours([(n, 0) for n in names])
    for panel, ax in enumerate(axes[0]):
        mine = data[data["panel"] == panel]
        for name in dict.fromkeys(mine["scenario"]):
            rows = mine[mine["scenario"] == name]
            c = colour[label((name, 0))]
            curve = rows[(rows["source"] == "theory") & measurable(rows["median"])]
            if len(curve):
                ax.plot(curve["depth"], curve["median"], color=c, linewidth=1.0, alpha=0.8)
            points = rows[(rows["source"] == "measured") & measurable(rows["median"])]
            ax.errorbar(points["depth"], points["median"],
                        yerr=[points["median"] - points["min"], points["max"] - points["median"]],
                        fmt="o", markersize=3, color=c, elinewidth=0.8, capsize=0, label=name)
        ax.set_yscale("log")
        ax.set_title(PANELS[panel][0], fontsize=8.5)
        ax.set_xlabel("depth L (hidden layers)")
    axes[0][0].set_ylabel("‖δ first‖ / ‖δ last‖ at step 0")
    legend_below(figure, "markers: measured (median, range over seeds); lines: mean-field theory")
    return figure
