"""Figures of the report: matplotlib only here.

Each public figure function is pure: result tables in, a `Chart` out (the Figure, the data it
draws as a DataFrame, a caption and an alt text both written from that data). `save` writes the
SVG and the CSV side by side, byte-deterministic (fixed svg.hashsalt, no date, text as text).
Non-finite values (a diverged run's last step) are never drawn as numbers: they are left out of
lines and marked with a red 'x' and a note.
"""

from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd

matplotlib.use("Agg")
from matplotlib import colormaps, rc_context, ticker  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from report import analysis  # noqa: E402

STYLE = {
    "svg.hashsalt": "gradbench",
    "svg.fonttype": "none",  # text stays text: smaller files, the browser's own sans-serif
    "font.family": "sans-serif",
    "font.size": 8.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#e5e5e5",
    "grid.linewidth": 0.6,
    "legend.frameon": False,
    "legend.fontsize": 7.5,
    "lines.linewidth": 1.4,
}
# Okabe-Ito, colour-blind safe; a scenario keeps its colour across all figures
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")
NONFINITE = "#d62728"
WIDTH = 7.2  # inches
matplotlib.rcParams.update(STYLE)  # this module is the only user of matplotlib in gradbench


@dataclass
class Chart:
    name: str  # file stem
    figure: Figure
    data: pd.DataFrame
    caption: str
    alt: str


@dataclass(frozen=True)
class SavedChart:
    svg: str  # path relative to the site root
    csv: str
    caption: str
    alt: str


fmt = analysis.fmt  # one number format for figures and pages


def new_figure(rows: int = 1, cols: int = 1, height: float = 2.8, **kw) -> tuple[Figure, np.ndarray]:
    """A figure of the report's width; every x axis counts whole things (layers, steps, epochs, depths)."""
    figure = Figure(figsize=(WIDTH, height), layout="constrained")
    axes = figure.subplots(rows, cols, squeeze=False, **kw)
    for ax in axes.flat:
        ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
    return figure, axes


def save(chart: Chart, folder: Path, root: Path) -> SavedChart:
    """Write <name>.svg and <name>.csv into folder; paths in the result are relative to root."""
    folder.mkdir(parents=True, exist_ok=True)
    svg, csv = folder / f"{chart.name}.svg", folder / f"{chart.name}.csv"
    with rc_context(STYLE):
        chart.figure.savefig(svg, format="svg", metadata={"Date": None})
    chart.data.to_csv(csv, index=False, float_format="%.6g", lineterminator="\n")
    return SavedChart(svg.relative_to(root).as_posix(), csv.relative_to(root).as_posix(), chart.caption, chart.alt)


def colour(scenarios: list[str], name: str) -> str:
    return PALETTE[scenarios.index(name) % len(PALETTE)]


def finite(series: pd.Series) -> pd.Series:
    """As float, with NaN where the value is not finite (a gap in the line, never a zero)."""
    values = series.astype(float)
    return values.where(np.isfinite(values))


# -- shared pieces --------------------------------------------------------------------------------


def with_snapshots(layer: pd.DataFrame) -> pd.DataFrame:
    """Rows at step 0 and at each seed's last logged step of every epoch, labelled 'snapshot'."""
    layer = layer.astype({"step": int, "layer": int})
    last = layer.groupby(["run_id", "epoch"])["step"].transform("max")
    start = layer[layer["step"] == 0].assign(snapshot="step 0", order=0)
    ends = layer[layer["step"] == last]
    ends = ends.assign(snapshot=[f"end of epoch {e}" for e in ends["epoch"]], order=ends["epoch"])
    return pd.concat([start, ends], ignore_index=True)


def band_lines(ax: Axes, band: pd.DataFrame, x: str, label: str, colour: str) -> None:
    """Median line with a min-max band; points where any seed is non-finite get a red 'x' on top."""
    band = band.sort_values(x)
    xs = band[x].astype(float)
    ax.fill_between(xs, finite(band["min"]), finite(band["max"]), color=colour, alpha=0.18, lw=0)
    ax.plot(xs, finite(band["median"]), color=colour, label=label, marker="." if len(band) < 40 else None)
    mark_nonfinite(ax, band.loc[band["n_nonfinite"] > 0, x])


def mark_nonfinite(ax: Axes, xs: pd.Series) -> None:
    if len(xs):
        transform = ax.get_xaxis_transform()
        ax.scatter(xs, np.full(len(xs), 0.97), marker="x", color=NONFINITE, s=28, zorder=5,
                   transform=transform, clip_on=False, label="non-finite")


def nonfinite_note(band: pd.DataFrame, x: str, what: str) -> str:
    bad = band[band["n_nonfinite"] > 0]
    if bad.empty:
        return ""
    where = ", ".join(sorted({fmt(v) for v in bad[x]}, key=float)[:6])
    return f" Red x: a seed's {what} was non-finite there ({x} {where}); those values are not drawn."


SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


class PowerFormatter(ticker.LogFormatter):
    """Log tick labels as plain Unicode (10⁻⁶, 3×10⁻⁶): no mathtext, which is slow to lay out."""

    def _num_to_string(self, x: float, vmin: float, vmax: float) -> str:
        if 0.01 <= x < 1000:
            return f"{x:g}"
        exponent = int(np.floor(np.log10(x) + 1e-9))
        coefficient = round(x / 10.0**exponent)
        power = f"10{str(exponent).translate(SUPERSCRIPT)}"
        return power if coefficient == 1 else f"{coefficient}×{power}"


def log_axis(ax: Axes, xlabel: str, ylabel: str) -> None:
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(PowerFormatter())
    ax.yaxis.set_minor_formatter(PowerFormatter(minor_thresholds=(1, 0.4)))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)


def seeds_text(frame: pd.DataFrame) -> str:
    n = frame["seed"].nunique()
    return f"{n} seed{'s' if n != 1 else ''}"


def empty_chart(name: str, message: str) -> Chart:
    figure, axes = new_figure(height=1.2)
    axes[0, 0].axis("off")
    axes[0, 0].text(0.5, 0.5, message, ha="center", va="center")
    return Chart(name, figure, pd.DataFrame({"note": [message]}), message, message)


# -- 1. gradient flow ------------------------------------------------------------------------------

FLOW_QUANTITIES = {"delta_norm": "‖δ‖ = ‖∂L/∂z‖", "kernel_grad_norm": "‖∂L/∂W‖"}


def flow_data(layer: pd.DataFrame) -> pd.DataFrame:
    """Median/min/max over seeds per snapshot × layer × quantity (main-path layers only)."""
    main = with_snapshots(layer[layer["layer_role"] != "shortcut"])
    parts = [
        analysis.seed_band(main, "layer", quantity, ["order", "snapshot"]).assign(quantity=quantity)
        for quantity in FLOW_QUANTITIES
    ]
    return pd.concat(parts, ignore_index=True).sort_values(["quantity", "order", "layer"], ignore_index=True)


def gradient_flow(layer: pd.DataFrame, scenario: str, depth: int) -> Chart:
    """Figure 1: per-layer δ and kernel-gradient norm at step 0 and the end of each epoch."""
    data = flow_data(layer)
    figure, axes = new_figure(1, 2, sharex=True)
    snapshots = data[["order", "snapshot"]].drop_duplicates().sort_values("order")["snapshot"].tolist()
    cmap = colormaps["viridis"]
    for ax, (quantity, label) in zip(axes[0], FLOW_QUANTITIES.items()):
        for i, snapshot in enumerate(snapshots):
            rows = data[(data["quantity"] == quantity) & (data["snapshot"] == snapshot)]
            band_lines(ax, rows, "layer", snapshot, cmap(i / max(len(snapshots) - 1, 1) * 0.85))
        log_axis(ax, "weight layer (0 = input side)", label)
    axes[0, 0].legend()
    name = f"flow-{scenario}-d{depth}"
    return Chart(name, figure, data, flow_caption(data, layer, scenario, depth), flow_alt(data, scenario, depth))


def first_last(data: pd.DataFrame, quantity: str, snapshot: str) -> tuple[float, float]:
    rows = data[(data["quantity"] == quantity) & (data["snapshot"] == snapshot)].sort_values("layer")
    return float(rows["median"].iloc[0]), float(rows["median"].iloc[-1])


def flow_caption(data: pd.DataFrame, layer: pd.DataFrame, scenario: str, depth: int) -> str:
    first, last = first_last(data, "delta_norm", "step 0")
    return (
        f"Gradient flow through {scenario} at depth {depth} ({seeds_text(layer)}): ‖δ‖ (left) and ‖∂L/∂W‖ "
        f"(right) per weight layer, at step 0 and at the end of each epoch; line = median over seeds, "
        f"band = min–max. At step 0 the median ‖δ‖ is {fmt(first)} at the first layer and {fmt(last)} at "
        f"the output layer." + nonfinite_note(data, "layer", "norm")
    )


def flow_alt(data: pd.DataFrame, scenario: str, depth: int) -> str:
    first, last = first_last(data, "delta_norm", "step 0")
    n = data["layer"].nunique()
    return (
        f"Two log-scale line charts over {n} layers of {scenario} (depth {depth}). Step-0 ‖δ‖ goes from "
        f"{fmt(first)} at layer 0 to {fmt(last)} at the output layer."
    )


# -- 2. layer × step heatmap -----------------------------------------------------------------------


def heatmap_data(layer: pd.DataFrame) -> pd.DataFrame:
    """log10 of the seed-median norm per layer × step; NaN where a seed was non-finite."""
    layer = layer[layer["layer_role"] != "shortcut"].astype({"step": int, "layer": int})
    parts = []
    for quantity in FLOW_QUANTITIES:
        band = analysis.seed_band(layer, "step", quantity, ["layer"])
        value = np.log10(band["median"].where((band["n_nonfinite"] == 0) & (band["median"] > 0)))
        parts.append(band[["layer", "step", "n_nonfinite"]].assign(quantity=quantity, log10_median=value))
    return pd.concat(parts, ignore_index=True).sort_values(["quantity", "layer", "step"], ignore_index=True)


def heat_image(ax: Axes, rows: pd.DataFrame, **scale):
    """imshow of log10_median as layer × step; non-finite cells in neon green, never as a colour of the scale."""
    grid = rows.pivot(index="layer", columns="step", values="log10_median")
    steps, layers = grid.columns.to_numpy(), grid.index.to_numpy()
    extent = (steps.min() - 0.5, steps.max() + 0.5, layers.min() - 0.5, layers.max() + 0.5)
    ax.grid(False)
    ax.set_xlabel("training step")
    return ax.imshow(np.ma.masked_invalid(grid.to_numpy(float)), aspect="auto", origin="lower",
                     interpolation="nearest", cmap=colormaps["magma"].with_extremes(bad="#39ff14"),
                     extent=extent, **scale)


def draw_heatmap(ax: Axes, rows: pd.DataFrame, label: str) -> None:
    ax.figure.colorbar(heat_image(ax, rows), ax=ax, label=f"log10 {label}", shrink=0.9)
    ax.set_ylabel("weight layer")


def heatmap(layer: pd.DataFrame, scenario: str, depth: int) -> Chart:
    """Figure 2: the signature picture of vanishing (dark lower rows) and exploding (bright right edge)."""
    data = heatmap_data(layer)
    figure, axes = new_figure(1, 2, height=2.6)
    for ax, (quantity, label) in zip(axes[0], FLOW_QUANTITIES.items()):
        draw_heatmap(ax, data[data["quantity"] == quantity], label)
        ax.set_title(label, fontsize=8.5)
    name = f"heatmap-{scenario}-d{depth}"
    return Chart(name, figure, data, heatmap_caption(data, layer, scenario, depth),
                 heatmap_alt(data, scenario, depth))


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
        f"{fmt(low)} to {fmt(high)}." + note
    )


def heatmap_alt(data: pd.DataFrame, scenario: str, depth: int) -> str:
    low, high = heatmap_span(data)
    steps = data["step"].nunique()
    return (
        f"Two heatmaps, layers by {steps} steps, of {scenario} at depth {depth}; log10 ‖δ‖ ranges from "
        f"{fmt(low)} to {fmt(high)}."
    )


# -- 3. depth sweep --------------------------------------------------------------------------------


def sweep_data(runs: pd.DataFrame) -> pd.DataFrame:
    """Per scenario × depth: measured step-0 first/last δ ratio over seeds, and the prediction."""
    band = analysis.seed_band(runs, "depth", "delta_ratio_init", ["scenario"])
    predicted = runs.groupby(["scenario", "depth"], as_index=False)["predicted_delta_ratio"].first()
    return band.merge(predicted, on=["scenario", "depth"], how="left").sort_values(["scenario", "depth"])


def depth_sweep(runs: pd.DataFrame, scenarios: list[str], name: str = "depth-sweep") -> Chart:
    """Figure 3: first/last δ ratio at step 0 against depth, measured (solid) and predicted (dashed)."""
    runs = runs[runs["scenario"].isin(scenarios)]
    data = sweep_data(runs)
    figure, axes = new_figure(height=3.0)
    ax = axes[0, 0]
    for scenario in [s for s in scenarios if s in set(data["scenario"])]:
        rows = data[data["scenario"] == scenario]
        band_lines(ax, rows, "depth", scenario, colour(scenarios, scenario))
        ax.plot(rows["depth"], rows["predicted_delta_ratio"], ls="--", marker="o", mfc="none",
                color=colour(scenarios, scenario), lw=1)
    ax.axhline(1.0, color="#888", lw=0.8)
    log_axis(ax, "depth (hidden layers or residual blocks)", "‖δ first‖ / ‖δ last‖ at step 0")
    ax.legend(ncols=2, title="solid: measured, dashed: mean-field theory", title_fontsize=7.5)
    return Chart(name, figure, data, sweep_caption(data, runs), sweep_alt(data))


def sweep_caption(data: pd.DataFrame, runs: pd.DataFrame) -> str:
    notes = runs.dropna(subset=["theory_note"]).groupby("scenario")["theory_note"].first()
    missing = "; ".join(f"{s}: {n}" for s, n in notes.items())
    text = (
        "First-to-last hidden layer ‖δ‖ ratio at step 0 against depth; solid = median over seeds with "
        "min–max band, dashed with open circles = mean-field prediction (DESIGN §7). Below 1: the signal "
        "shrinks on its way back to the input."
    )
    return text + (f" No prediction where the theory does not apply ({missing})." if missing else "")


def sweep_alt(data: pd.DataFrame) -> str:
    parts = []
    for scenario, rows in data.groupby("scenario", sort=False):
        deepest = rows.sort_values("depth").iloc[-1]
        parts.append(f"{scenario} {fmt(deepest['median'])} at depth {int(deepest['depth'])}")
    return "Log-scale chart of step-0 δ ratio against depth: " + "; ".join(parts) + "."


# -- 4. loss and accuracy --------------------------------------------------------------------------

Key = tuple[str, int]  # (scenario, depth)


def label(key: Key) -> str:
    return f"{key[0]} d{key[1]}"


def select(frame: pd.DataFrame, keys: list[Key]) -> pd.DataFrame:
    """Rows of the given (scenario, depth) keys, with a 'series' column naming each key."""
    series = frame["scenario"].astype(str) + " d" + frame["depth"].astype(int).astype(str)
    return frame.assign(series=series)[series.isin([label(k) for k in keys])]


def keyed_bands(frame: pd.DataFrame, keys: list[Key], x: str, y: str) -> pd.DataFrame:
    rows = select(frame, keys)
    return analysis.seed_band(rows.astype({x: int}), x, y, ["series"]).assign(quantity=y)


def diverged(runs: pd.DataFrame, keys: list[Key]) -> pd.DataFrame:
    rows = select(runs, keys)
    return rows[rows["status"] == "diverged"][["series", "seed", "diverged_step", "diverged_layer"]]


def draw_series(ax: Axes, data: pd.DataFrame, keys: list[Key], x: str) -> None:
    labels = [label(k) for k in keys]
    for name in labels:
        rows = data[data["series"] == name]
        if len(rows):
            band_lines(ax, rows, x, name, PALETTE[labels.index(name) % len(PALETTE)])


def mark_divergence(ax: Axes, stops: pd.DataFrame) -> None:
    for step in sorted(set(stops["diverged_step"].dropna().astype(int))):
        ax.axvline(step, color=NONFINITE, ls=":", lw=0.9)
    mark_nonfinite(ax, stops["diverged_step"].dropna().astype(int))


def training_curves(step: pd.DataFrame, epoch: pd.DataFrame, runs: pd.DataFrame, keys: list[Key], name: str) -> Chart:
    """Figure 4: batch loss against step and held-out accuracy against epoch, median with band."""
    loss = keyed_bands(step, keys, "step", "loss")
    accuracy = keyed_bands(epoch, keys, "epoch", "test_accuracy")
    stops = diverged(runs, keys)
    figure, axes = new_figure(1, 2)
    draw_series(axes[0, 0], loss, keys, "step")
    mark_divergence(axes[0, 0], stops)
    log_axis(axes[0, 0], "training step", "batch loss (log)")
    draw_series(axes[0, 1], accuracy, keys, "epoch")
    axes[0, 1].set(xlabel="epoch", ylabel="held-out accuracy", ylim=(0, 1))
    axes[0, 1].legend()
    data = pd.concat([loss, accuracy], ignore_index=True)
    return Chart(name, figure, data, curves_caption(accuracy, stops, step, keys), curves_alt(loss, accuracy))


def final_accuracy(accuracy: pd.DataFrame) -> dict[str, float]:
    last = accuracy.sort_values("epoch").groupby("series").last()
    return last["median"].to_dict()


def divergence_text(stops: pd.DataFrame) -> str:
    if stops.empty:
        return " No run diverged."
    items = [f"{r.series} seed {r.seed} at step {fmt(r.diverged_step)} ({r.diverged_layer})" for r in stops.itertuples()]
    return f" Diverged (red dotted line and x): {'; '.join(items)}; later steps do not exist."


def curves_caption(accuracy: pd.DataFrame, stops: pd.DataFrame, step: pd.DataFrame, keys: list[Key]) -> str:
    finals = "; ".join(f"{s} {fmt(v)}" for s, v in final_accuracy(accuracy).items())
    return (
        f"Batch loss per step (left, log scale) and held-out accuracy per epoch (right), median over "
        f"{seeds_text(select(step, keys))} with min–max band. Final held-out accuracy (median): {finals}."
        + divergence_text(stops)
    )


def curves_alt(loss: pd.DataFrame, accuracy: pd.DataFrame) -> str:
    finals = "; ".join(f"{s} ends at accuracy {fmt(v)}" for s, v in final_accuracy(accuracy).items())
    return f"Two line charts: loss against step and accuracy against epoch. {finals}."


# -- 5. global gradient norm and clipping ----------------------------------------------------------


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


def global_grad_norm(step: pd.DataFrame, runs: pd.DataFrame, keys: list[Key], name: str) -> Chart:
    """Figure 5: global gradient norm per step, before (solid) and after (dashed) clipping."""
    rates = clip_rates(step, runs, keys)
    data = grad_norm_data(step, keys, rates)
    figure, axes = new_figure(height=2.8)
    ax = axes[0, 0]
    names = [label(k) for k in keys]
    for i, series in enumerate(names):
        tag = f" (clipped {fmt(100 * rates[series])} % of steps)" if rates.get(series) is not None else ""
        rows = data[(data["series"] == series) & (data["quantity"] == "grad_norm")]
        if len(rows):
            band_lines(ax, rows, "step", series + tag, PALETTE[i % len(PALETTE)])
        after = data[(data["series"] == series) & (data["quantity"] == "grad_norm_clipped")].sort_values("step")
        ax.plot(after["step"], finite(after["median"]), ls="--", lw=1, color=PALETTE[i % len(PALETTE)])
    mark_divergence(ax, diverged(runs, keys))
    log_axis(ax, "training step", "global ‖g‖ (log)")
    ax.legend(title="solid: before clipping, dashed: after", title_fontsize=7.5)
    return Chart(name, figure, data, grad_norm_caption(data, rates, runs, keys), grad_norm_alt(data, rates))


def grad_norm_growth(data: pd.DataFrame) -> dict[str, tuple[float, float]]:
    rows = data[data["quantity"] == "grad_norm"].sort_values("step")
    finite_rows = rows[np.isfinite(rows["median"].astype(float))]
    grouped = finite_rows.groupby("series")["median"]
    return {s: (float(first), float(peak)) for (s, first), peak in zip(grouped.first().items(), grouped.max())}


def grad_norm_caption(data: pd.DataFrame, rates: dict, runs: pd.DataFrame, keys: list[Key]) -> str:
    growth = "; ".join(f"{s} {fmt(a)} at the first step, peak {fmt(b)}" for s, (a, b) in grad_norm_growth(data).items())
    clip = "; ".join(f"{s} {fmt(100 * r)} %" for s, r in rates.items() if r is not None)
    return (
        "Global gradient norm over all trainable variables per step, median over seeds with min–max band "
        f"(solid: before clipping; dashed: after). Median norm: {growth}."
        + (f" Clipping fired on this share of steps: {clip}." if clip else "")
        + divergence_text(diverged(runs, keys))
    )


def grad_norm_alt(data: pd.DataFrame, rates: dict) -> str:
    growth = "; ".join(f"{s} from {fmt(a)} to a peak of {fmt(b)}" for s, (a, b) in grad_norm_growth(data).items())
    return f"Log-scale line chart of the global gradient norm against step: {growth}."


# -- 6. histograms ---------------------------------------------------------------------------------

HISTOGRAM_QUANTITIES = {"weight": "weight value", "log10_abs_grad": "log10 |gradient|"}


def histogram_data(histogram: pd.DataFrame) -> pd.DataFrame:
    """The first seed's bins at initialisation (epoch 0) and at the last epoch, with finite edges."""
    seed = histogram["seed"].min()
    rows = histogram[histogram["seed"] == seed].astype({"layer": int, "epoch": int})
    rows = rows[rows["epoch"].isin([0, rows["epoch"].max()])]
    edges_ok = np.isfinite(rows["bin_left"].astype(float)) & np.isfinite(rows["bin_right"].astype(float))
    columns = ["seed", "epoch", "layer", "quantity", "bin_left", "bin_right", "count"]
    return rows.loc[edges_ok, columns].sort_values(columns[:5], ignore_index=True)


def draw_ridges(ax: Axes, rows: pd.DataFrame, epochs: list[int]) -> None:
    styles = {epochs[0]: dict(fill=True, color="#bbbbbb"), epochs[-1]: dict(fill=False, color=PALETTE[0], lw=1)}
    for (epoch, layer), bins in rows.groupby(["epoch", "layer"]):
        bins = bins.sort_values("bin_left")
        height = 0.9 * bins["count"].to_numpy(float) / max(bins["count"].max(), 1)
        edges = np.append(bins["bin_left"].to_numpy(float), bins["bin_right"].iloc[-1])
        ax.stairs(height + layer, edges, baseline=layer, **styles[epoch])
    ax.set_ylabel("weight layer")
    ax.grid(False)


def histograms(histogram: pd.DataFrame, scenario: str, depth: int) -> Chart:
    """Figure 6: per-layer distributions of weights and of log10 |g| at epoch 0 and the last epoch."""
    data = histogram_data(histogram)
    epochs = sorted(data["epoch"].unique().tolist())
    layers = data["layer"].nunique()
    figure, axes = new_figure(1, 2, height=1.2 + 0.17 * layers, sharey=True)
    for ax, (quantity, name) in zip(axes[0], HISTOGRAM_QUANTITIES.items()):
        draw_ridges(ax, data[data["quantity"] == quantity], epochs)
        ax.set_xlabel(name)
    axes[0, 1].set_ylabel("")
    caption = (
        f"Distributions per weight layer (one row each, input side at the bottom; heights scaled per row) "
        f"of {scenario} at depth {depth}, seed {fmt(data['seed'].min())}: grey = at initialisation, "
        f"blue outline = end of epoch {epochs[-1]}. Left: weights; right: log10 |gradient| on a fixed probe batch."
        + typical_gradient_text(data)
    )
    alt = f"Two ridge plots of {layers} layers each, weights and log10 gradient magnitudes, at epoch 0 and {epochs[-1]}."
    return Chart(f"histograms-{scenario}-d{depth}", figure, data, caption, alt)


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


# -- 7. inactive units -----------------------------------------------------------------------------


def inactive_units(layer: pd.DataFrame, scenario: str, depth: int) -> Chart | None:
    """Figure 7: saturated (sigmoid/tanh) or dead (ReLU) unit fraction per layer; None if not recorded."""
    rows = with_snapshots(layer[(layer["layer_role"] == "hidden") & layer["inactive_fraction"].notna()])
    if rows.empty:
        return None
    data = analysis.seed_band(rows, "layer", "inactive_fraction", ["order", "snapshot"])
    figure, axes = new_figure(height=2.5)
    ax = axes[0, 0]
    snapshots = data[["order", "snapshot"]].drop_duplicates().sort_values("order")["snapshot"].tolist()
    for i, snapshot in enumerate(snapshots):
        band_lines(ax, data[data["snapshot"] == snapshot], "layer", snapshot,
                   colormaps["viridis"](i / max(len(snapshots) - 1, 1) * 0.85))
    ax.set(xlabel="hidden layer (0 = input side)", ylabel="inactive fraction of units", ylim=(0, 1))
    ax.legend()
    return Chart(f"inactive-{scenario}-d{depth}", figure, data, inactive_caption(data, layer, scenario, depth),
                 inactive_alt(data, scenario, depth))


def inactive_extremes(data: pd.DataFrame, snapshot: str) -> tuple[float, float]:
    rows = data[data["snapshot"] == snapshot]["median"]
    return float(rows.min()), float(rows.max())


def inactive_caption(data: pd.DataFrame, layer: pd.DataFrame, scenario: str, depth: int) -> str:
    low, high = inactive_extremes(data, "step 0")
    last = data.sort_values("order")["snapshot"].iloc[-1]
    end_low, end_high = inactive_extremes(data, last)
    return (
        f"Fraction of saturated (sigmoid, tanh) or dead (ReLU family) units per hidden layer of {scenario} at "
        f"depth {depth}, median over {seeds_text(layer)} with min–max band. Step 0: {fmt(low)}–{fmt(high)} "
        f"across layers; {last}: {fmt(end_low)}–{fmt(end_high)}."
    )


def inactive_alt(data: pd.DataFrame, scenario: str, depth: int) -> str:
    low, high = inactive_extremes(data, "step 0")
    return f"Line chart of inactive unit fraction per layer for {scenario} depth {depth}; at step 0 between {fmt(low)} and {fmt(high)}."


# -- comparisons for the phenomenon pages ----------------------------------------------------------


def step0_and_end(layer: pd.DataFrame) -> pd.DataFrame:
    """Rows at step 0 and at each run's last logged step (a diverged run's last step included)."""
    layer = layer.astype({"step": int, "layer": int})
    last = layer.groupby("run_id")["step"].transform("max")
    start = layer[layer["step"] == 0].assign(snapshot="step 0", order=0)
    return pd.concat([start, layer[layer["step"] == last].assign(snapshot="end of training", order=1)])


def flow_comparison(layer: pd.DataFrame, keys: list[Key], name: str) -> Chart:
    """‖δ‖ per layer, one line per scenario, at step 0 (left) and at the end of training (right)."""
    rows = step0_and_end(select(layer[layer["layer_role"] != "shortcut"], keys))
    data = analysis.seed_band(rows, "layer", "delta_norm", ["order", "snapshot", "series"])
    figure, axes = new_figure(1, 2, sharey=True)
    for ax, (order, part) in zip(axes[0], data.groupby("order")):
        draw_series(ax, part, keys, "layer")
        log_axis(ax, "weight layer (0 = input side)", "‖δ‖ (log)")
        ax.set_title(part["snapshot"].iloc[0], fontsize=8.5)
    axes[0, 0].legend()
    return Chart(name, figure, data, comparison_caption(data), comparison_alt(data))


def ratio_by_series(data: pd.DataFrame) -> dict[str, float]:
    """Median ‖δ‖ of the first layer over that of the last, at step 0, per series."""
    rows = data[data["order"] == 0].sort_values("layer").groupby("series")["median"]
    return (rows.first() / rows.last()).to_dict()


def comparison_caption(data: pd.DataFrame) -> str:
    ratios = "; ".join(f"{s} {fmt(r)}" for s, r in ratio_by_series(data).items())
    return (
        "‖δ‖ per weight layer at step 0 (left) and at the end of training (right), one colour per "
        f"scenario, median over seeds with min–max band. First-layer over output-layer ‖δ‖ at step 0: {ratios}."
        + nonfinite_note(data, "layer", "‖δ‖")
    )


def comparison_alt(data: pd.DataFrame) -> str:
    ratios = "; ".join(f"{s} {fmt(r)}" for s, r in ratio_by_series(data).items())
    return f"Two log-scale line charts of ‖δ‖ per layer, one line per scenario; first/output ratio at step 0: {ratios}."


def heatmap_grid(layer: pd.DataFrame, keys: list[Key], name: str) -> Chart:
    """log10 ‖δ‖ heatmaps side by side on one colour scale: problem and fixes, same seeds."""
    present = [k for k in keys if label(k) in set(select(layer, keys)["series"])]
    data = pd.concat([heatmap_data(select(layer, [k])).assign(series=label(k)) for k in present], ignore_index=True)
    data = data[data["quantity"] == "delta_norm"]
    figure, axes = new_figure(1, len(present), height=2.4, sharey=True)
    low, high = np.nanmin(data["log10_median"]), np.nanmax(data["log10_median"])
    for ax, key in zip(axes[0], present):
        image = heat_image(ax, data[data["series"] == label(key)], vmin=low, vmax=high)
        ax.set_title(label(key), fontsize=8.5)
    axes[0, 0].set_ylabel("weight layer")
    figure.colorbar(image, ax=list(axes[0]), label="log10 ‖δ‖", shrink=0.9)
    return Chart(name, figure, data, grid_caption(data), grid_alt(data))


def grid_caption(data: pd.DataFrame) -> str:
    spans = "; ".join(f"{s} {fmt(g['log10_median'].min())} to {fmt(g['log10_median'].max())}"
                      for s, g in data.groupby("series", sort=False))
    bad = int((data["n_nonfinite"] > 0).sum())
    note = f" Green cells ({bad}): a seed was non-finite, not drawn." if bad else ""
    return ("log10 ‖δ‖ for every layer (input side at the bottom) and step, median over seeds, on one colour "
            f"scale. Range of log10 ‖δ‖: {spans}." + note)


def grid_alt(data: pd.DataFrame) -> str:
    return f"{data['series'].nunique()} heatmaps side by side of log10 ‖δ‖, layers by steps. " + grid_caption(data)
