"""Figures of the report: matplotlib only here.

Each public figure function is pure: result tables in, a `Chart` out: the data it draws as a
DataFrame, a caption and an alt text both written from that data, and `draw`, a pure function of
that data that makes the matplotlib Figure. Drawing is the slow part, so it happens only when the
figure is written (possibly in a worker process: `draw` is a picklable partial). `write` saves the
SVG and the CSV side by side, byte-deterministic (fixed svg.hashsalt, no date, text as text).
Non-finite values (a diverged run's last step) are never drawn as numbers: they are left out of
lines and marked with a red 'x' and a note.
"""

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property, partial
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd

matplotlib.use("Agg")
from matplotlib import colormaps, rc_context, ticker  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from bench.scenarios import SCENARIOS  # noqa: E402
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
# Okabe-Ito then Paul Tol's muted colours: 16 distinguishable colours, one per catalogue scenario, so a
# scenario keeps its colour in every figure that compares scenarios
PALETTE = (
    "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#882255",
    "#44AA99", "#332288", "#999933", "#AA4499", "#117733", "#88CCEE", "#DDCC77", "#661100",
)  # fmt: skip
CATALOGUE_ORDER = list(SCENARIOS)
NONFINITE = "#d62728"
WIDTH = 7.2  # inches
RASTER_DPI = 144  # for the parts drawn as images inside an SVG (heatmaps, histogram ridges)
LEGEND_CHARACTERS = 120  # about what fits in one legend row at WIDTH and legend.fontsize
matplotlib.rcParams.update(STYLE)  # this module is the only user of matplotlib in gradbench
ENGINE = f"matplotlib {matplotlib.__version__}"  # part of a figure's stamp: another version draws differently


Key = tuple[str, int]  # (scenario, depth)


def label(key: Key) -> str:
    return f"{key[0]} d{key[1]}"


@dataclass
class Chart:
    name: str  # file stem
    data: pd.DataFrame
    caption: str
    alt: str
    draw: Callable[[], Figure]  # a partial of a module-level function of the data: picklable

    @cached_property
    def figure(self) -> Figure:
        return self.draw()


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


def describe(chart: Chart, folder: Path, root: Path) -> SavedChart:
    """Where save() puts a chart, relative to root, with its caption and alt text."""
    svg, csv = (folder / f"{chart.name}.{ext}" for ext in ("svg", "csv"))
    return SavedChart(
        svg.relative_to(root).as_posix(), csv.relative_to(root).as_posix(), chart.caption, chart.alt
    )


def csv_text(chart: Chart) -> str:
    return chart.data.to_csv(index=False, float_format="%.6g", lineterminator="\n")


def write(chart: Chart, folder: Path, stamp: str | None = None) -> None:
    """<name>.svg and <name>.csv in folder, byte-deterministic; `stamp` goes into the SVG's metadata."""
    folder.mkdir(parents=True, exist_ok=True)
    for ax in chart.figure.axes:
        if ax.get_yscale() == "log":
            tidy_log_ticks(ax)
    metadata = {"Date": None, "Identifier": stamp}
    with rc_context(STYLE):
        chart.figure.savefig(folder / f"{chart.name}.svg", format="svg", metadata=metadata, dpi=RASTER_DPI)
    (folder / f"{chart.name}.csv").write_text(csv_text(chart), encoding="utf-8")


def stamped(svg: Path, stamp: str) -> bool:
    """Whether an SVG written by `write` carries this stamp."""
    with svg.open(encoding="utf-8") as file:
        return f"<dc:identifier>{stamp}</dc:identifier>" in file.read(2000)


def save(chart: Chart, folder: Path, root: Path) -> SavedChart:
    write(chart, folder)
    return describe(chart, folder, root)


def colours(keys: list[Key]) -> dict[str, str]:
    """Series label -> colour: by catalogue position across scenarios, by order across one scenario."""
    names = [k[0] for k in keys]
    if len(set(names)) == 1:
        return {label(k): PALETTE[i % len(PALETTE)] for i, k in enumerate(keys)}
    rank = {
        n: CATALOGUE_ORDER.index(n) if n in CATALOGUE_ORDER else len(CATALOGUE_ORDER) + i
        for i, n in enumerate(dict.fromkeys(names))
    }
    return {label(k): PALETTE[rank[k[0]] % len(PALETTE)] for k in keys}


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
        ax.scatter(
            xs,
            np.full(len(xs), 0.97),
            marker="x",
            color=NONFINITE,
            s=28,
            zorder=5,
            transform=transform,
            clip_on=False,
            label="non-finite",
        )


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


def legend_below(figure: Figure, title: str | None = None) -> None:
    """One legend under the axes for all of them, each label once."""
    entries: dict[str, object] = {}
    for ax in figure.axes:
        for handle, text in zip(*ax.get_legend_handles_labels(), strict=True):
            entries.setdefault(text, handle)
    widest = max((len(text) for text in entries), default=1)
    columns = max(1, min(len(entries), 4, LEGEND_CHARACTERS // (widest + 6)))
    figure.legend(
        list(entries.values()),
        list(entries),
        loc="outside lower center",
        ncols=columns,
        title=title,
        title_fontsize=7.5,
    )


def log_axis(ax: Axes, xlabel: str, ylabel: str) -> None:
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)


def widen_log(ax: Axes, decades: float = 1.0) -> None:
    """Show at least `decades` on a log axis, so that a flat profile looks flat, not like a cliff."""
    low, high = ax.get_ylim()
    if low > 0 and high > low and np.log10(high / low) < decades:
        centre = np.sqrt(low * high)
        ax.set_ylim(centre / 10 ** (decades / 2), centre * 10 ** (decades / 2))


def tidy_log_ticks(ax: Axes) -> None:
    """Decade ticks only (minor ticks cost half the drawing time); 1-2-5 ticks when the range is short."""
    low, high = ax.get_ylim()
    if not (np.isfinite([low, high]).all() and 0 < low < high):  # nothing finite and positive to draw
        ax.set_yscale("linear")
        ax.text(0.5, 0.5, "no finite positive values", transform=ax.transAxes, ha="center", color="#b00")
        return
    decades = np.log10(high / low)
    subs = (1.0, 2.0, 5.0) if decades < 2.5 else (1.0,)
    ax.yaxis.set_major_locator(ticker.LogLocator(subs=subs))
    ax.yaxis.set_major_formatter(PowerFormatter(minor_thresholds=(np.inf, np.inf)))  # label every tick
    ax.yaxis.set_minor_locator(ticker.NullLocator())


def seeds_text(frame: pd.DataFrame) -> str:
    n = frame["seed"].nunique()
    return f"{n} seed{'s' if n != 1 else ''}"


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
    caption, alt = flow_caption(data, layer, scenario, depth), flow_alt(data, scenario, depth)
    return Chart(f"flow-{scenario}-d{depth}", data, caption, alt, partial(draw_flow, data))


def snapshot_colours(data: pd.DataFrame) -> dict[str, tuple]:
    """Snapshot label -> colour along viridis, in time order."""
    snapshots = data[["order", "snapshot"]].drop_duplicates().sort_values("order")["snapshot"].tolist()
    cmap = colormaps["viridis"]
    return {s: cmap(i / max(len(snapshots) - 1, 1) * 0.85) for i, s in enumerate(snapshots)}


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


def heatmap_data(layer: pd.DataFrame, quantities: tuple[str, ...] = tuple(FLOW_QUANTITIES)) -> pd.DataFrame:
    """log10 of the seed-median norm per layer × step; NaN where a seed was non-finite."""
    layer = layer[layer["layer_role"] != "shortcut"].astype({"step": int, "layer": int})
    parts = []
    for quantity in quantities:
        band = analysis.seed_band(layer, "step", quantity, ["layer"])
        value = np.log10(band["median"].where((band["n_nonfinite"] == 0) & (band["median"] > 0)))
        parts.append(band[["layer", "step", "n_nonfinite"]].assign(quantity=quantity, log10_median=value))
    return pd.concat(parts, ignore_index=True).sort_values(["quantity", "layer", "step"], ignore_index=True)


def heat_image(ax: Axes, rows: pd.DataFrame, **scale):
    """imshow of log10_median, layer × step; non-finite cells neon green, never a colour of the scale."""
    grid = rows.pivot(index="layer", columns="step", values="log10_median")
    steps, layers = grid.columns.to_numpy(), grid.index.to_numpy()
    extent = (steps.min() - 0.5, steps.max() + 0.5, layers.min() - 0.5, layers.max() + 0.5)
    ax.grid(False)
    ax.set_xlabel("training step")
    return ax.imshow(
        np.ma.masked_invalid(grid.to_numpy(float)),
        aspect="auto",
        origin="lower",
        interpolation="nearest",
        cmap=colormaps["magma"].with_extremes(bad="#39ff14"),
        extent=extent,
        **scale,
    )


def draw_heatmap(ax: Axes, rows: pd.DataFrame, label: str) -> None:
    short = label.split(" = ")[0]
    ax.figure.colorbar(heat_image(ax, rows), ax=ax, label=f"log10 {short}", shrink=0.9)
    ax.set_ylabel("weight layer")


def heatmap(layer: pd.DataFrame, scenario: str, depth: int) -> Chart:
    """Figure 2: the signature picture of vanishing (dark lower rows) and exploding (bright right edge)."""
    data = heatmap_data(layer)
    caption, alt = heatmap_caption(data, layer, scenario, depth), heatmap_alt(data, scenario, depth)
    return Chart(f"heatmap-{scenario}-d{depth}", data, caption, alt, partial(draw_heatmaps, data))


def draw_heatmaps(data: pd.DataFrame) -> Figure:
    figure, axes = new_figure(1, 2, height=2.6)
    for ax, (quantity, label) in zip(axes[0], FLOW_QUANTITIES.items(), strict=True):
        draw_heatmap(ax, data[data["quantity"] == quantity], label)
        ax.set_title(label, fontsize=8.5)
    return figure


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
    return Chart(name, data, sweep_caption(data, runs), sweep_alt(data), partial(draw_sweep, data, scenarios))


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


def select(frame: pd.DataFrame, keys: list[Key]) -> pd.DataFrame:
    """Rows of the given (scenario, depth) keys, with a 'series' column naming each key."""
    frame = frame[frame["scenario"].isin({k[0] for k in keys}) & frame["depth"].isin({k[1] for k in keys})]
    series = frame["scenario"].astype(str) + " d" + frame["depth"].astype(int).astype(str)
    return frame.assign(series=series)[series.isin([label(k) for k in keys])]


def keyed_bands(frame: pd.DataFrame, keys: list[Key], x: str, y: str) -> pd.DataFrame:
    rows = select(frame, keys)
    return analysis.seed_band(rows.astype({x: int}), x, y, ["series"]).assign(quantity=y)


def diverged(runs: pd.DataFrame, keys: list[Key]) -> pd.DataFrame:
    rows = select(runs, keys)
    return rows[rows["status"] == "diverged"][["series", "seed", "diverged_step", "diverged_layer"]]


def draw_series(ax: Axes, data: pd.DataFrame, keys: list[Key], x: str) -> None:
    palette = colours(keys)
    for name, colour in palette.items():
        rows = data[data["series"] == name]
        if len(rows):
            band_lines(ax, rows, x, name, colour)


def mark_divergence(ax: Axes, stops: pd.DataFrame) -> None:
    for step in sorted(set(stops["diverged_step"].dropna().astype(int))):
        ax.axvline(step, color=NONFINITE, ls=":", lw=0.9)
    mark_nonfinite(ax, stops["diverged_step"].dropna().astype(int))


def training_curves(
    step: pd.DataFrame, epoch: pd.DataFrame, runs: pd.DataFrame, keys: list[Key], name: str
) -> Chart:
    """Figure 4: batch loss against step and held-out accuracy against epoch, median with band."""
    loss = keyed_bands(step, keys, "step", "loss")
    accuracy = keyed_bands(epoch, keys, "epoch", "test_accuracy")
    stops = diverged(runs, keys)
    data = pd.concat([loss, accuracy], ignore_index=True)
    caption = curves_caption(accuracy, stops, step, keys, loss_is_log(loss))
    alt = curves_alt(loss, accuracy)
    return Chart(name, data, caption, alt, partial(draw_curves, data, stops, keys))


def draw_curves(data: pd.DataFrame, stops: pd.DataFrame, keys: list[Key]) -> Figure:
    figure, axes = new_figure(1, 2)
    loss, accuracy = (data[data["quantity"] == q] for q in ("loss", "test_accuracy"))
    draw_series(axes[0, 0], loss, keys, "step")
    mark_divergence(axes[0, 0], stops)
    loss_axis(axes[0, 0], loss)
    draw_series(axes[0, 1], accuracy, keys, "epoch")
    epochs = sorted(accuracy["epoch"].astype(int).unique())
    axes[0, 1].set(xlabel="epoch", ylabel="held-out accuracy", ylim=(0, 1), xticks=epochs)
    axes[0, 1].set_xlim(min(epochs, default=1) - 0.5, max(epochs, default=1) + 0.5)
    legend_below(figure)
    return figure


def loss_is_log(loss: pd.DataFrame) -> bool:
    """A loss that spans more than a decade (it blew up) is drawn on a log scale."""
    values = finite(loss["max"]).dropna()
    return bool(len(values) and values.min() > 0 and values.max() / values.min() > 10)


def loss_axis(ax: Axes, loss: pd.DataFrame) -> None:
    if loss_is_log(loss):
        log_axis(ax, "training step", "batch loss (log)")
    else:
        ax.set(xlabel="training step", ylabel="batch loss")


def final_accuracy(accuracy: pd.DataFrame) -> dict[str, float]:
    last = accuracy.sort_values("epoch").groupby("series").last()
    return last["median"].to_dict()


def divergence_text(stops: pd.DataFrame) -> str:
    if stops.empty:
        return " No run diverged."
    items = [
        f"{r.series} seed {r.seed} at step {fmt(r.diverged_step)} ({r.diverged_layer})"
        for r in stops.itertuples()
    ]
    return f" Diverged (red dotted line and x): {'; '.join(items)}; later steps do not exist."


def curves_caption(
    accuracy: pd.DataFrame, stops: pd.DataFrame, step: pd.DataFrame, keys: list[Key], log: bool
) -> str:
    finals = "; ".join(f"{s} {fmt(v)}" for s, v in final_accuracy(accuracy).items())
    scale = ", log scale" if log else ""
    return (
        f"Batch loss per step (left{scale}) and held-out accuracy per epoch (right), median over "
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
    stops = diverged(runs, keys)
    caption, alt = grad_norm_caption(data, rates, stops), grad_norm_alt(data)
    return Chart(name, data, caption, alt, partial(draw_grad_norm, data, rates, stops, keys))


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


def histograms(histogram: pd.DataFrame, scenario: str, depth: int) -> Chart:
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
    return Chart(f"histograms-{scenario}-d{depth}", data, caption, alt, partial(draw_histograms, data))


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


# -- 7. inactive units -----------------------------------------------------------------------------


def inactive_units(layer: pd.DataFrame, scenario: str, depth: int) -> Chart | None:
    """Figure 7: saturated (sigmoid/tanh) or dead (ReLU) unit fraction per layer; None if not recorded."""
    rows = with_snapshots(layer[(layer["layer_role"] == "hidden") & layer["inactive_fraction"].notna()])
    if rows.empty:
        return None
    data = analysis.seed_band(rows, "layer", "inactive_fraction", ["order", "snapshot"])
    caption, alt = inactive_caption(data, layer, scenario, depth), inactive_alt(data, scenario, depth)
    return Chart(f"inactive-{scenario}-d{depth}", data, caption, alt, partial(draw_inactive, data))


def draw_inactive(data: pd.DataFrame) -> Figure:
    figure, axes = new_figure(height=2.5)
    ax = axes[0, 0]
    for snapshot, colour in snapshot_colours(data).items():
        band_lines(ax, data[data["snapshot"] == snapshot], "layer", snapshot, colour)
    ax.set(xlabel="hidden layer (0 = input side)", ylabel="inactive fraction of units", ylim=(0, 1))
    ax.legend()
    return figure


def inactive_extremes(data: pd.DataFrame, snapshot: str) -> tuple[float, float]:
    rows = data[data["snapshot"] == snapshot]["median"]
    return float(rows.min()), float(rows.max())


def inactive_caption(data: pd.DataFrame, layer: pd.DataFrame, scenario: str, depth: int) -> str:
    low, high = inactive_extremes(data, "step 0")
    last = data.sort_values("order")["snapshot"].iloc[-1]
    end_low, end_high = inactive_extremes(data, last)
    return (
        f"Fraction of saturated (sigmoid, tanh) or dead (ReLU family) units per hidden layer of {scenario} "
        "at "
        f"depth {depth}, median over {seeds_text(layer)} with min–max band. Step 0: {fmt(low)}–{fmt(high)} "
        f"across layers; {last}: {fmt(end_low)}–{fmt(end_high)}."
    )


def inactive_alt(data: pd.DataFrame, scenario: str, depth: int) -> str:
    low, high = inactive_extremes(data, "step 0")
    return (
        f"Line chart of inactive unit fraction per layer for {scenario} depth {depth}; at step 0 between "
        f"{fmt(low)} and {fmt(high)}."
    )


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
    caption, alt = comparison_caption(data, keys), comparison_alt(data, keys)
    return Chart(name, data, caption, alt, partial(draw_flow_comparison, data, keys))


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


def heatmap_grid(layer: pd.DataFrame, keys: list[Key], name: str) -> Chart:
    """log10 ‖δ‖ heatmaps side by side on one colour scale: problem and fixes, same seeds."""
    parts = dict(list(select(layer, keys).groupby("series")))
    present = [k for k in keys if label(k) in parts]
    data = pd.concat(
        [heatmap_data(parts[label(k)], ("delta_norm",)).assign(series=label(k)) for k in present],
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
        f"scale. Range of log10 ‖δ‖: {spans}." + note
    )


def grid_alt(data: pd.DataFrame) -> str:
    return f"{data['series'].nunique()} heatmaps side by side of log10 ‖δ‖, layers by steps. " + grid_caption(
        data
    )
