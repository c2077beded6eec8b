"""The phenomenon pages: problem and fix scenarios side by side at one depth, on the seeds they share."""

from dataclasses import dataclass

import pandas as pd

from report import depth_scan, recurrent
from report.data import Data
from report.figure_cache import Shelf
from report.figures import FIGURES, SavedChart
from report.figures import scan as scan_figure
from report.views import CellView, common_seeds, scenario_href


@dataclass(frozen=True)
class Phenomenon:
    slug: str  # page name, and the template <slug>.html.j2 that holds its prose
    title: str
    summary: str
    problems: tuple[str, ...]  # scenarios that show the problem
    fixes: tuple[str, ...]  # scenarios that fix it, compared on the same seeds
    depth: int  # depth of the side-by-side comparison
    figures: tuple[str | tuple[str, tuple[str, ...]], ...]  # FIGURES names, each of every listed scenario
    # or (name, the scenarios it compares)
    scan: bool = False  # shows the depth scan at initialisation
    recurrent: bool = False  # shows the recurrent networks' per-length table and statements

PHENOMENA: tuple[Phenomenon, ...] = (
    Phenomenon(
        "vanishing",
        "Vanishing gradients",
        "the backward signal shrinks layer by layer",
        ("sigmoid", "tanh"),
        ("relu_he", "relu_he_bn", "resmlp"),
        11,
        ("flow", "grid", "curves", "sweep"),
    ),
    Phenomenon(
        "exploding",
        "Exploding gradients",
        "the gradient norm grows until training breaks",
        ("linear", "linear_large_init", "linear_high_lr"),
        ("linear_clipnorm", "linear_global_clipnorm"),
        21,
        ("gradnorm", "curves", "grid", "sweep"),
    ),
    Phenomenon(
        "initialisation",
        "Initialisation",
        "weight variance sets the per-layer gain χ",
        ("relu_glorot", "sigmoid_large_init", "linear_large_init"),
        ("relu_he",),
        11,
        ("flow", "sweep", "curves"),
        scan=True,
    ),
    Phenomenon(
        "activation",
        "Activation choice",
        "the derivative of the activation multiplies every layer",
        ("sigmoid", "tanh"),
        ("relu_he", "leaky_relu", "elu"),
        11,
        ("flow", "curves", "sweep"),
    ),
    Phenomenon(
        "batch-norm",
        "Batch normalisation",
        "re-centre and re-scale every layer's input",
        ("sigmoid", "relu_he"),
        ("relu_he_bn",),
        11,
        ("flow", "grid", "curves"),
    ),
    Phenomenon(
        "residual",
        "Residual connections",
        "an identity path around every block",
        ("sigmoid", "relu_he"),
        ("resmlp", "resnet"),
        11,
        ("flow", "grid", "curves"),
    ),
    Phenomenon(
        "clipping",
        "Gradient clipping",
        "cap the update when the gradient is too large",
        ("linear",),
        ("linear_clipnorm", "linear_global_clipnorm"),
        21,
        ("gradnorm", "curves", "grid"),
    ),
    Phenomenon(
        "recurrent",
        "Recurrent networks",
        "the same Jacobian multiplied at every time step",
        ("rnn_tanh", "rnn_relu_large"),
        ("lstm", "lstm_forget_bias", "gru", "rnn_relu_clipnorm"),
        50,  # the sequence length T
        (("time-grid", ("rnn_tanh", "lstm", "lstm_forget_bias", "gru", "rnn_relu_large")), "length-ratio",
         ("length-accuracy", ("rnn_tanh", "lstm", "lstm_forget_bias", "gru")),
         ("gradnorm", ("rnn_relu_large", "rnn_relu_clipnorm")), ("curves", ("rnn_tanh", "lstm_forget_bias"))),
        recurrent=True,
    ),
)


@dataclass
class PhenomenonPage:
    slug: str
    title: str
    summary: str
    depth: int  # the depth of the side-by-side comparison
    seeds: list[int]  # the seeds every compared scenario shares
    problems: list[str]
    fixes: list[str]
    rows: list[CellView]  # problem and fixes at `depth`, in that order
    at: dict[str, CellView | None]  # by scenario name, None when it has no runs at `depth`
    all_depths: list[CellView]  # every depth of every listed scenario
    missing: list[str]  # listed scenarios with no results at all
    elsewhere: list[str]  # listed scenarios with results, but not at `depth`
    figures: list[SavedChart]
    scan: "ScanSection | None" = None
    recurrent: "recurrent.Section | None" = None


@dataclass
class ScanSection:
    """The depth scan at initialisation: each scenario's law against the theory's, and the figure."""

    rows: list[depth_scan.ScanRow]
    figure: SavedChart
    facts: list[tuple[str, str]]
    rule: str
    depths: int
    seeds: int


def scan_section(data: Data, shelf: Shelf, page: str) -> ScanSection | None:
    if data.scan is None or data.scan.empty:
        return None
    rows, frame = depth_scan.table(data.scan, data.scan_meta)
    meta = data.scan_meta
    facts = [
        ("depths", ", ".join(str(d) for d in meta["depths"])), ("seeds per depth", str(len(meta["seeds"]))),
        ("dataset", f"{meta['dataset']} (batch of {meta['batch']} per seed)"),
        ("measured in", f"{meta.get('wall_time_s', float('nan')):.1f} s on {meta.get('device', '?')}"),
        ("TensorFlow", str(meta.get("tf_version"))),
    ]  # fmt: skip
    figure = shelf.put(scan_figure.chart(rows, frame, meta, "depth-scan"), page)
    return ScanSection(rows, figure, facts, depth_scan.MODEL_RULE, len(meta["depths"]), len(meta["seeds"]))


def comparison_depth(phenomenon: Phenomenon, cells: pd.DataFrame) -> int:
    """The phenomenon's depth if any listed scenario ran it, else the deepest depth they share most."""
    listed = cells[cells["scenario"].isin(phenomenon.problems + phenomenon.fixes)]
    if listed.empty or (listed["depth"] == phenomenon.depth).any():
        return phenomenon.depth
    counts = listed.groupby("depth")["scenario"].nunique()
    return int(counts[counts == counts.max()].index.max())


def phenomenon_page(
    phenomenon: Phenomenon, data: Data, views: list[CellView], shelf: Shelf
) -> PhenomenonPage:
    names = list(phenomenon.problems + phenomenon.fixes)
    depth = comparison_depth(phenomenon, data.cells)
    at = {name: next((v for v in views if v.scenario == name and v.depth == depth), None) for name in names}
    keys = [(name, depth) for name in names if at[name] is not None]
    seeds = common_seeds(data.recorded, keys)
    present = set(data.cells["scenario"])
    charts = [
        FIGURES[kind].build(data, [k for k in keys if k[0] in listed], seeds, f"{phenomenon.slug}-{kind}")
        for kind, listed in (f if isinstance(f, tuple) else (f, names) for f in phenomenon.figures)
        if keys and seeds
    ]
    return PhenomenonPage(
        slug=phenomenon.slug, title=phenomenon.title, summary=phenomenon.summary, depth=depth, seeds=seeds,
        problems=list(phenomenon.problems), fixes=list(phenomenon.fixes),
        rows=[at[n] for n in names if at[n] is not None], at=at,
        all_depths=[v for v in views if v.scenario in names],
        missing=[n for n in names if n not in present],
        elsewhere=[n for n in names if n in present and at[n] is None],
        figures=[shelf.put(c, phenomenon.slug) for c in charts],
        scan=scan_section(data, shelf, phenomenon.slug) if phenomenon.scan else None,
        recurrent=recurrent.section(data.runs, data.cells, data.recorded, scenario_href)
        if phenomenon.recurrent else None,
    )  # fmt: skip
