"""What every figure of the report shares: Chart, SavedChart, the style, colours, axes and files.

A figure module (one per figure, named in report/figures/__init__.py's FIGURES) is pure: result
tables in, a `Chart` out: the data it draws as a DataFrame, a caption and an alt text both written
from that data, and `draw`, a pure function of that data that makes the matplotlib Figure. Drawing is
the slow part, so it happens only when the figure is written (possibly in a worker process: `draw`
is a picklable partial of a module-level function). `write` saves the SVG and the data as gzip CSV side by
side, byte-deterministic (fixed svg.hashsalt, no date, text as text, no gzip time stamp). The data is what the
figure draws, at the resolution it draws it (resolution.py); the run files hold every step. Non-finite values
(a diverged run's last step) are never drawn as numbers: they are left out of lines and marked with a red 'x'
and a note.
"""

import gzip
import io
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Protocol

import matplotlib
import numpy as np
import pandas as pd

matplotlib.use("Agg")
from matplotlib import colormaps, rc_context, ticker  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from bench.scenarios import SCENARIOS  # noqa: E402
from report import recurrent  # noqa: E402
from report.figures.resolution import compact_svg, heat_columns, line_rows  # noqa: E402
from report.grading.stats import seed_band  # noqa: E402
from report.grading.text import fmt  # noqa: E402 - one number format for figures and pages

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
DATA_EXTENSION = "csv.gz"  # a figure's data: pandas.read_csv reads it as it is, a static host serves it small
RASTER_DPI = 144  # for the parts drawn as images inside an SVG (heatmaps, histogram ridges)
LEGEND_CHARACTERS = 120  # about what fits in one legend row at WIDTH and legend.fontsize
matplotlib.rcParams.update(STYLE)  # this package is the only user of matplotlib in gradbench
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
    csv: str  # the data, gzip CSV
    caption: str
    alt: str


class Tables(Protocol):
    """What a figure reads from a page's data (report's Data): the run table and rows of any results table."""

    runs: pd.DataFrame  # run_table

    def rows(self, kind: str, keys: list[Key], seeds: list[int]) -> pd.DataFrame: ...


def new_figure(rows: int = 1, cols: int = 1, height: float = 2.8, **kw) -> tuple[Figure, np.ndarray]:
    """A figure of the report's width; every x axis counts whole things (layers, steps, epochs, depths)."""
    figure = Figure(figsize=(WIDTH, height), layout="constrained")
    axes = figure.subplots(rows, cols, squeeze=False, **kw)
    for ax in axes.flat:
        ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
    return figure, axes


def describe(chart: Chart, folder: Path, root: Path) -> SavedChart:
    """Where save() puts a chart, relative to root, with its caption and alt text."""
    svg, csv = (folder / f"{chart.name}.{ext}" for ext in ("svg", DATA_EXTENSION))
    return SavedChart(
        svg.relative_to(root).as_posix(), csv.relative_to(root).as_posix(), chart.caption, chart.alt
    )


def csv_text(chart: Chart) -> str:
    return chart.data.to_csv(index=False, float_format="%.6g", lineterminator="\n")


def csv_gzip(chart: Chart) -> bytes:
    """The chart's data as gzip CSV, the same bytes for the same data (no time stamp, no file name)."""
    return gzip.compress(csv_text(chart).encode(), compresslevel=9, mtime=0)


def write(chart: Chart, folder: Path, stamp: str | None = None) -> None:
    """<name>.svg and <name>.csv.gz in folder, byte-deterministic; `stamp` goes into the SVG's metadata."""
    folder.mkdir(parents=True, exist_ok=True)
    for ax in chart.figure.axes:
        if ax.get_yscale() == "log":
            tidy_log_ticks(ax)
    metadata = {"Date": None, "Identifier": stamp}
    svg = io.StringIO()
    with rc_context(STYLE):
        chart.figure.savefig(svg, format="svg", metadata=metadata, dpi=RASTER_DPI)
    (folder / f"{chart.name}.svg").write_text(compact_svg(svg.getvalue()), encoding="utf-8")
    (folder / f"{chart.name}.{DATA_EXTENSION}").write_bytes(csv_gzip(chart))


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


# -- pieces several figures draw with ---------------------------------------------------------


FLOW_QUANTITIES = {"delta_norm": "‖δ‖ = ‖∂L/∂z‖", "kernel_grad_norm": "‖∂L/∂W‖"}


MAX_EPOCH_SNAPSHOTS = 6  # more lines are unreadable: a long cell on a small set trains 100+ epochs


def with_snapshots(layer: pd.DataFrame) -> pd.DataFrame:
    """Rows at step 0 and at each seed's last logged step of every epoch (of at most MAX_EPOCH_SNAPSHOTS
    epochs, evenly spaced, the last included), labelled 'snapshot'."""
    layer = layer.astype({"step": int, "layer": int})
    last = layer.groupby(["run_id", "epoch"])["step"].transform("max")
    start = layer[layer["step"] == 0].assign(snapshot="step 0", order=0)
    ends = layer[layer["step"] == last]
    epochs = np.sort(ends["epoch"].unique())
    if len(epochs) > MAX_EPOCH_SNAPSHOTS:
        shown = np.linspace(0, len(epochs) - 1, MAX_EPOCH_SNAPSHOTS).round().astype(int)
        ends = ends[ends["epoch"].isin(epochs[shown])]
    ends = ends.assign(snapshot=[f"end of epoch {e}" for e in ends["epoch"]], order=ends["epoch"])
    return pd.concat([start, ends], ignore_index=True)


def snapshot_colours(data: pd.DataFrame) -> dict[str, tuple]:
    """Snapshot label -> colour along viridis, in time order."""
    snapshots = data[["order", "snapshot"]].drop_duplicates().sort_values("order")["snapshot"].tolist()
    cmap = colormaps["viridis"]
    return {s: cmap(i / max(len(snapshots) - 1, 1) * 0.85) for i, s in enumerate(snapshots)}


def band_lines(ax: Axes, band: pd.DataFrame, x: str, label: str, colour: str, **style) -> None:
    """Median line with a min-max band; points where any seed is non-finite get a red 'x' on top.
    style: matplotlib line options (line style, marker) that tell apart lines that may coincide."""
    band = band.sort_values(x)
    xs = band[x].astype(float)
    ax.fill_between(xs, finite(band["min"]), finite(band["max"]), color=colour, alpha=0.18, lw=0)
    style = {"marker": "." if len(band) < 40 else None, **style}
    ax.plot(xs, finite(band["median"]), color=colour, label=label, **style)
    mark_nonfinite(ax, band.loc[band["n_nonfinite"] > 0, x])


# line styles and markers, in order, for series that may lie on top of each other
DISTINCT = tuple({"ls": ls, "marker": m, "mfc": "none"} for ls, m in zip(("-", "--", "-.", ":", "-", "--"), "osD^vP"))


def length_band(runs: pd.DataFrame, scenarios: list[str], column: str) -> pd.DataFrame | None:
    """A recurrent figure's data: the seed band of a run-table column per scenario against the sequence length T
    (a recurrent run's depth); None when none of the scenarios is recurrent or has runs."""
    runs = runs[runs["scenario"].isin([s for s in scenarios if s in recurrent.NAMES])]
    if runs.empty:
        return None
    return seed_band(runs, "depth", column, ["scenario"]).rename(columns={"depth": "length"})


def length_lines(ax: Axes, data: pd.DataFrame, scenarios: list[str]) -> dict[str, str]:
    """One band line per scenario present, each its own style, in catalogue colours; scenario -> colour."""
    palette = colours([(s, 0) for s in scenarios] + [("", 0)])  # the dummy key keeps catalogue colours
    drawn = {}
    for style, scenario in zip(DISTINCT, [s for s in scenarios if s in set(data["scenario"])]):
        drawn[scenario] = palette[label((scenario, 0))]
        band_lines(ax, data[data["scenario"] == scenario], "length", scenario, drawn[scenario], **style)
    return drawn


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


def select(frame: pd.DataFrame, keys: list[Key]) -> pd.DataFrame:
    """Rows of the given (scenario, depth) keys, with a 'series' column naming each key."""
    frame = frame[frame["scenario"].isin({k[0] for k in keys}) & frame["depth"].isin({k[1] for k in keys})]
    series = frame["scenario"].astype(str) + " d" + frame["depth"].astype(int).astype(str)
    return frame.assign(series=series)[series.isin([label(k) for k in keys])]


def keyed_bands(frame: pd.DataFrame, keys: list[Key], x: str, y: str) -> pd.DataFrame:
    """The seed band of y against x per key, at the resolution it is drawn (resolution.line_rows)."""
    rows = select(frame, keys)
    return line_rows(seed_band(rows.astype({x: int}), x, y, ["series"]), x, ["series"]).assign(quantity=y)


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


def divergence_text(stops: pd.DataFrame) -> str:
    if stops.empty:
        return " No run diverged."
    items = [
        f"{r.series} seed {r.seed} at step {fmt(r.diverged_step)} ({r.diverged_layer})"
        for r in stops.itertuples()
    ]
    return f" Diverged (red dotted line and x): {'; '.join(items)}; later steps do not exist."


def heatmap_data(
    layer: pd.DataFrame, quantities: tuple[str, ...] = tuple(FLOW_QUANTITIES), panels: int = 1
) -> pd.DataFrame:
    """log10 of the seed-median norm per layer × step; NaN where a seed was non-finite; a long run's steps in
    columns (resolution.heat_columns: `step` to `step_last`; `panels` heatmaps side by side share the width)."""
    layer = layer[layer["layer_role"] != "shortcut"].astype({"step": int, "layer": int})
    parts = []
    for quantity in quantities:
        band = seed_band(layer, "step", quantity, ["layer"])
        value = np.log10(band["median"].where((band["n_nonfinite"] == 0) & (band["median"] > 0)))
        parts.append(band[["layer", "step", "n_nonfinite"]].assign(quantity=quantity, log10_median=value))
    grid = heat_columns(pd.concat(parts, ignore_index=True), ["quantity", "layer"], panels)
    return grid.sort_values(["quantity", "layer", "step"], ignore_index=True)


def heat_image(ax: Axes, rows: pd.DataFrame, **scale):
    """imshow of log10_median, layer × step column; non-finite cells neon green, never a colour of the scale."""
    grid = rows.pivot(index="layer", columns="step", values="log10_median")
    steps, layers = grid.columns.to_numpy(), grid.index.to_numpy()
    extent = (steps.min() - 0.5, rows["step_last"].max() + 0.5, layers.min() - 0.5, layers.max() + 0.5)
    ax.grid(False)
    ax.set_xlabel("training step")
    ax.xaxis.set_major_locator(ticker.MaxNLocator(nbins=5, integer=True))  # 4-digit steps do not overlap
    return ax.imshow(
        np.ma.masked_invalid(grid.to_numpy(float)),
        aspect="auto",
        origin="lower",
        interpolation="nearest",
        cmap=colormaps["magma"].with_extremes(bad="#39ff14"),
        extent=extent,
        **scale,
    )
