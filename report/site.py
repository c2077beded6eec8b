"""The static site (issue 3): compute each page's data as plain dataclasses, then render it.

Computing never writes HTML and rendering never touches a DataFrame (coverage.py's HTML report
works the same way). Figures are saved while their page's data is computed; templates only
reference them. One Jinja2 Environment: templates/, autoescape on, StrictUndefined. The output is
deterministic: the same results give the same bytes, except the one "Built at" line of each page.
"""

import hashlib
import json
import multiprocessing
import os
import shutil
import sys
from collections.abc import Iterable
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from bench import scenarios as scenarios_module
from bench import store
from bench.scenarios import SCENARIOS, Scenario
from report import analysis, depth_scan, figures, recurrent
from report.figures import FIGURES, Key, SavedChart
from report.figures import scan as scan_figure
from report.figures.common import select

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
MARKER = ".gradbench-site"  # marks a folder this module built, so a rebuild may replace it
BUILT_AT_PREFIX = "Built at "
MAX_WORKERS = 4  # processes drawing figures


class SiteError(Exception):
    """The site cannot be written where asked; the message says what to do."""


# -- what the site is made of ----------------------------------------------------------------------


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
ARTICLE_FIGURES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("curves", ("sigmoid",)), ("flow", ("sigmoid",)), ("curves", ("resnet",)),
    ("curves", ("linear", "linear_clipnorm")), ("gradnorm", ("linear", "linear_clipnorm")),
)  # fmt: skip
PROVENANCE_KEYS = ("tf_version", "keras_version", "profile", "dataset", "device")


@dataclass(frozen=True)
class SetAside:
    """Runs in the folder that this site does not show, so that no cell pools two configs."""

    runs: int
    what: str
    why: str


@dataclass
class Data:
    """A results folder with the analysis tables every page reads."""

    results: store.Results
    runs: pd.DataFrame  # analysis.run_table
    cells: pd.DataFrame  # analysis.cell_table
    set_aside: list[SetAside] = field(default_factory=list)
    scan: pd.DataFrame | None = None  # the depth scan's rows (bench/scan.py), if the folder has one
    scan_meta: dict | None = None
    groups: dict[str, dict[Key, pd.DataFrame]] = field(default_factory=dict)  # by table, by (scenario, depth)

    def rows(self, kind: str, keys: list[Key], seeds: list[int]) -> pd.DataFrame:
        """The rows of one results table for these (scenario, depth) keys and seeds."""
        if kind not in self.groups:
            frame = self.results.table(kind)
            grouped = frame.groupby([frame["scenario"], frame["depth"].astype(int)], sort=False)
            self.groups[kind] = {(s, int(d)): rows for (s, d), rows in grouped}
        parts = [self.groups[kind][key] for key in keys if key in self.groups[kind]]
        if not parts:
            return self.results.table(kind).iloc[:0]
        rows = pd.concat(parts, ignore_index=True)
        return rows[rows["seed"].isin(seeds)]


def load(folder: Path) -> Data:
    results = store.load(folder)
    if results.runs.empty:
        raise store.StoreError(f"{folder}: no result files (*.parquet); run 'python -m bench sweep' first")
    runs = analysis.run_table(results)
    settings = ["run_id", *(c for c in SETTING_COLUMNS if c in results.runs)]
    keep, set_aside = shown_runs(runs.merge(results.runs[settings], on="run_id", how="left"))
    if len(keep) < len(runs):
        results = store.Results(**{kind: rows[rows["run_id"].isin(keep)].reset_index(drop=True)
                                   for kind, rows in vars(results).items()})
        runs = runs[runs["run_id"].isin(keep)].reset_index(drop=True)
    scan, scan_meta = pick_scan(*store.load_scans(folder), distinct(results.runs, "dataset"))
    return Data(results, runs, analysis.cell_table(runs), set_aside, scan, scan_meta)


def setting_text(rows: pd.DataFrame) -> str:
    return ", ".join(f"{name} {distinct(rows, column)}" for name, column in SETTING_KEYS)


SETTING_KEYS = (("profile", "profile"), ("dataset", "dataset"), ("TensorFlow", "tf_version"),
                ("epochs", "epochs"), ("steps", "steps_trained"), ("training samples", "train_samples"))
SETTING_COLUMNS = ("profile", "dataset", "tf_version", "epochs", "train_samples")  # from the runs' metadata


def shown_runs(runs: pd.DataFrame) -> tuple[set[str], list[SetAside]]:
    """The runs the site shows: the experiment with the most runs, and in it one cell per scenario × depth
    (the one with most seeds, then the longest training). Everything else is set aside and named."""
    sizes = runs.groupby("experiment")["run_id"].count().sort_values(ascending=False, kind="stable")
    chosen = runs[runs["experiment"] == sizes.index[0]]
    ranked = chosen.assign(n=chosen.groupby("cell_id")["run_id"].transform("count")).sort_values(
        ["n", "steps_trained"], ascending=False, kind="stable")
    cells = ranked.drop_duplicates(["scenario", "depth"])["cell_id"]
    keep = set(chosen.loc[chosen["cell_id"].isin(cells), "run_id"])
    aside = [
        SetAside(len(rows), setting_text(rows), "another experiment (profile, dataset or versions) in this folder")
        for experiment, rows in runs[runs["experiment"] != sizes.index[0]].groupby("experiment", sort=False)
    ] + [
        SetAside(len(rows), f"{rows['scenario'].iloc[0]} depth {rows['depth'].iloc[0]}: {setting_text(rows)}",
                 "a second config of a cell already shown")
        for cell, rows in chosen[~chosen["run_id"].isin(keep)].groupby("cell_id", sort=False)
    ]
    return keep, aside


def pick_scan(scan: pd.DataFrame, metas: list[dict], dataset: str) -> tuple[pd.DataFrame | None, dict | None]:
    """The newest depth scan on the dataset the runs used."""
    matching = [m for m in metas if m.get("dataset") == dataset]
    if not matching:
        return None, None
    meta = max(matching, key=lambda m: str(m.get("started_at", "")))
    return scan[scan["scan_id"] == meta["scan_id"]].reset_index(drop=True), meta


def code_version() -> str:
    """Hash of everything besides a figure's data that decides how it is drawn."""
    modules = [Path(m.__file__) for m in (analysis, depth_scan, scenarios_module, sys.modules[__name__])]
    sources = [path.read_bytes() for path in [*sorted(Path(figures.__file__).parent.glob("*.py")), *modules]]
    return hashlib.sha256(b"".join(sources) + figures.ENGINE.encode()).hexdigest()


@dataclass
class Shelf:
    """Saves figures under <root>/figures/<page>/ and hands back what a template needs.

    Drawing an SVG is the slow part of a build. A figure whose stamp (a hash of the code, its data,
    caption and alt text) matches the one in the previous build's SVG is copied from there instead;
    the others are drawn by the pool's worker processes while the pages go on. `wait` collects them
    (and re-raises a worker's error).
    """

    root: Path
    pool: Executor | None = None
    previous: Path | None = None  # the site this build replaces
    pending: list[Future] = field(default_factory=list)
    code: str = field(default_factory=code_version)

    def put(self, chart: figures.Chart | None, page: str) -> SavedChart | None:
        if chart is None:
            return None
        folder = self.root / "figures" / page
        saved = figures.describe(chart, folder, self.root)
        stamp = self.stamp(chart)
        if self.reuse(saved, stamp):
            return saved
        if self.pool is None:
            figures.write(chart, folder, stamp)
        else:
            self.pending.append(self.pool.submit(figures.write, chart, folder, stamp))
        return saved

    def stamp(self, chart: figures.Chart) -> str:
        digest = hashlib.sha256("\0".join([self.code, chart.name, chart.caption, chart.alt]).encode())
        digest.update(",".join(map(str, chart.data.columns)).encode())
        digest.update(pd.util.hash_pandas_object(chart.data, index=False).to_numpy().tobytes())
        return digest.hexdigest()[:32]

    def reuse(self, saved: SavedChart, stamp: str) -> bool:
        if self.previous is None:
            return False
        old = [self.previous / saved.svg, self.previous / saved.csv]
        if not all(path.is_file() for path in old) or not figures.stamped(old[0], stamp):
            return False
        for path, relative in zip(old, (saved.svg, saved.csv), strict=True):
            (self.root / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, self.root / relative)
        return True

    def wait(self) -> None:
        for future in self.pending:
            future.result()
        self.pending.clear()


# -- views: plain values a template prints ---------------------------------------------------------


@dataclass(frozen=True)
class CellView:
    """One scenario × depth over its seeds."""

    scenario: str
    depth: int
    seeds: int
    verdict: str
    verdict_label: str
    expected: str | None
    as_expected: bool | None
    accuracy_median: float
    accuracy_min: float
    accuracy_max: float
    delta_ratio_init: float
    predicted_delta_ratio: float
    theory_note: str | None
    growth: float  # median over seeds of max / early global gradient norm
    clip_fraction: float  # median over seeds
    diverged: int  # seeds that diverged
    gain_measured: float  # per-layer factor of ‖δ‖² implied by the step-0 ratio: ratio^(2/(L-1))
    gain_predicted: float  # the same from the mean-field prediction (the geometric mean of χ)
    factor: float  # the verdict's per-layer ‖δ‖ factor: median ratio over training^(1/(L-1)), median over seeds
    factor_init: float  # the same at step 0
    expected_from: str | None
    expected_when: str  # "at step 0" (the theory's) or "in training" (the catalogue's)
    verdict_init: str  # the verdict rules on the step-0 ratio alone
    steps: float  # training steps, median over seeds
    growth_epoch: float  # epoch in which ‖g‖ first crossed exploding_growth × its early median, median over seeds
    loss_fall: float  # fraction by which the batch loss fell from the early to the late window, median over seeds
    href: str


def per_layer_gain(ratio: float, depth: int) -> float:
    """Per-layer factor of ‖δ‖², comparable with χ: the square of analysis.per_layer_factor."""
    return analysis.per_layer_factor(ratio, depth) ** 2


def median_of(rows: pd.DataFrame, column: str) -> float:
    values = pd.to_numeric(rows[column], errors="coerce").astype(float)
    values = values[np.isfinite(values)]
    return float(values.median()) if len(values) else float("nan")


def cell_view(cell: pd.Series, runs: pd.DataFrame) -> CellView:
    rows = runs[(runs["scenario"] == cell["scenario"]) & (runs["depth"] == cell["depth"])]
    depth = int(cell["depth"])
    return CellView(
        scenario=cell["scenario"], depth=depth, seeds=int(cell["seeds"]), verdict=cell["verdict"],
        verdict_label=cell["verdict_label"], expected=cell["expected"],
        as_expected=none_if_na(cell["as_expected"]),
        accuracy_median=float(cell["accuracy_median"]), accuracy_min=float(cell["accuracy_min"]),
        accuracy_max=float(cell["accuracy_max"]), delta_ratio_init=float(cell["delta_ratio_init"]),
        predicted_delta_ratio=float(cell["predicted_delta_ratio"]),
        theory_note=none_if_na(cell["theory_note"]),
        growth=median_of(rows, "growth"), clip_fraction=median_of(rows, "clip_fraction"),
        diverged=int((rows["verdict"] == "diverged").sum()),
        gain_measured=per_layer_gain(float(cell["delta_ratio_init"]), depth),
        gain_predicted=per_layer_gain(float(cell["predicted_delta_ratio"]), depth),
        factor=float(cell["per_layer_factor"]),
        factor_init=analysis.per_layer_factor(float(cell["delta_ratio_init"]), median_of(rows, "hidden_layers")),
        expected_from=none_if_na(cell["expected_from"]),
        expected_when="at step 0" if cell["expected_from"] == analysis.EXPECTED_FROM_THEORY else "in training",
        verdict_init=cell["verdict_init"],
        steps=median_of(rows, "steps_trained"), growth_epoch=median_of(rows, "growth_epoch"),
        loss_fall=analysis.finite_median(pd.Series([analysis.loss_drop(r) for r in rows.to_dict("records")],
                                                   dtype=float)),
        href=scenario_href(cell["scenario"]),
    )  # fmt: skip


def none_if_na(value):
    return None if value is None or (not isinstance(value, str) and pd.isna(value)) else value


def cell_views(data: Data) -> list[CellView]:
    return [cell_view(cell, data.runs) for _, cell in data.cells.iterrows()]


def scenario_href(name: str) -> str:
    return f"scenarios/{name}.html"


@dataclass(frozen=True)
class Link:
    href: str  # relative to the site root
    title: str
    note: str = ""


# -- provenance ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResultSet:
    """Runs that share TF/Keras version, profile, dataset and device: one line of the provenance table."""

    label: str
    runs: int
    scenarios: int
    seeds: str
    details: tuple[tuple[str, str], ...]


def distinct(rows: pd.DataFrame, column: str) -> str:
    """The distinct values of a runs column as text; 'none' when it is recorded empty."""
    if column not in rows:
        return "not recorded"
    values = sorted({str(v) for v in rows[column] if none_if_na(v) is not None and str(v) != ""})
    return ", ".join(values) if values else "none"


DETAIL_KEYS = (
    ("dataset source", "dataset_source"), ("dataset note", "dataset_note"),
    ("train samples", "train_samples"),
    ("test samples", "test_samples"), ("epochs", "epochs"), ("batch size", "batch_size"), ("optimizer", "optimizer"),
    ("Python", "python_version"), ("numpy", "numpy_version"), ("platform", "platform"),
    ("device kind", "device_kind"), ("deterministic ops", "determinism"), ("XLA", "xla"),
    ("intra-op threads", "intra_op_threads"), ("inter-op threads", "inter_op_threads"),
    ("runs trained side by side", "runs_side_by_side"),
    ("git commit", "git_commit"), ("gradbench", "gradbench_version"),
)  # fmt: skip


def result_set(key: tuple, rows: pd.DataFrame) -> ResultSet:
    tf, keras, profile, dataset, device = (str(v) for v in key)
    started = sorted(str(v) for v in rows.get("started_at", pd.Series(dtype=str)).dropna())
    details = [(name, distinct(rows, column)) for name, column in DETAIL_KEYS]
    if started:
        details.append(("started (UTC)", f"{started[0]} – {started[-1]}"))
    return ResultSet(
        label=f"TF {tf} · Keras {keras} · {profile} · {dataset} · {device}",
        runs=len(rows), scenarios=rows["scenario"].nunique(),
        seeds=", ".join(str(s) for s in sorted(rows["seed"].unique())), details=tuple(details),
    )  # fmt: skip


def result_sets(runs: pd.DataFrame) -> list[ResultSet]:
    keys = [k for k in PROVENANCE_KEYS if k in runs]
    filled = runs.assign(**{k: runs[k].fillna("not recorded").astype(str) for k in keys})
    return [result_set(key, rows) for key, rows in filled.groupby(keys, sort=True)]


# -- the comparison figures ------------------------------------------------------------------------


def common_seeds(runs: pd.DataFrame, keys: list[Key]) -> list[int]:
    """Seeds every compared scenario has, so problem and fix start from the same seeds."""
    rows = select(runs, keys)
    sets = [set(group["seed"]) for _, group in rows.groupby("series")]
    return sorted(set.intersection(*sets)) if sets else []


# -- phenomenon pages ------------------------------------------------------------------------------


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
    seeds = common_seeds(data.results.runs, keys)
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
        recurrent=recurrent.section(data.runs, data.cells, data.results, scenario_href)
        if phenomenon.recurrent else None,
    )  # fmt: skip


# -- the article page ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClaimView:
    experiment: str
    scenario: str
    claim: str
    measured: str
    reproduced: bool | None
    evidence: str
    budget: str
    href: str


@dataclass
class ArticlePage:
    claims: list[ClaimView]
    reproduced: int
    checked: int
    figures: list[SavedChart]


def claim_view(claim: analysis.Claim) -> ClaimView:
    scenario = claim.experiment.split(",")[0]  # "sigmoid, depth 11"
    href = scenario_href(scenario)
    return ClaimView(
        claim.experiment, scenario, claim.claim, claim.measured, claim.reproduced, claim.evidence, claim.budget, href
    )


def article_charts(data: Data) -> list[figures.Chart]:
    """The ARTICLE_FIGURES that these results can draw, each scenario at the article's depth."""
    charts = []
    for kind, names in ARTICLE_FIGURES:
        keys = [
            (n, SCENARIOS[n].default_depth) for n in names if has_cell(data, n, SCENARIOS[n].default_depth)
        ]
        seeds = common_seeds(data.results.runs, keys)
        if keys and seeds:
            name = f"article-{kind}-{'-'.join(k[0] for k in keys)}"
            charts.append(FIGURES[kind].build(data, keys, seeds, name))
    return charts


def article_page(data: Data, shelf: Shelf) -> ArticlePage:
    claims = [*analysis.article_claims(data.runs, data.cells, data.results),
              *recurrent.claims(data.runs, data.cells, data.results.time)]
    views = [claim_view(c) for c in claims]
    return ArticlePage(
        claims=views,
        reproduced=sum(v.reproduced is True for v in views),
        checked=sum(v.reproduced is not None for v in views),
        figures=[shelf.put(c, "article") for c in article_charts(data)],
    )


def has_cell(data: Data, scenario: str, depth: int) -> bool:
    return bool(((data.cells["scenario"] == scenario) & (data.cells["depth"] == depth)).any())


# -- scenario pages --------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunView:
    run_id: str
    seed: int
    status: str
    verdict: str
    reason: str
    delta_ratio_init: float
    delta_ratio_median: float
    delta_ratio_final: float
    grad_norm_early: float
    grad_norm_max: float
    growth: float
    clip_fraction: float
    final_test_accuracy: float
    final_test_loss: float
    diverged_step: float
    diverged_layer: str | None
    wall_time_s: float


@dataclass
class DepthSection:
    depth: int
    cell: CellView
    runs: list[RunView]
    figures: list[SavedChart]
    notes: list[str]  # why a figure is missing


NO_INACTIVE = "No inactive-unit figure: {} units are never saturated or dead, so none were recorded."


@dataclass
class ScenarioPage:
    name: str
    summary: str
    expected: str | None
    default_depth: int | None
    article: bool
    present: bool
    config: list[tuple[str, str]]
    main_depth: int | None  # the depth with per-layer figures
    depths: list[DepthSection]
    figures: list[SavedChart]  # across depths
    phenomena: list[Link]


CONFIG_KEYS = (
    "architecture", "activation", "initializer", "init_std", "batch_norm", "width", "optimizer", "learning_rate",
    "clipnorm", "global_clipnorm", "profile", "dataset", "dataset_source", "dataset_note", "train_samples",
    "test_samples", "epochs", "batch_size", "log_every",
)  # fmt: skip


def text(value) -> str:
    value = none_if_na(value)
    return "—" if value is None or value == "" else str(value)


def config_rows(name: str, runs: pd.DataFrame) -> list[tuple[str, str]]:
    """The scenario's settings as recorded with its runs (or from the catalogue when it has none)."""
    if len(runs):
        return [(key, distinct(runs, key) if key in runs else "not recorded") for key in CONFIG_KEYS]
    scenario: Scenario | None = SCENARIOS.get(name)
    return (
        []
        if scenario is None
        else [(k, text(getattr(scenario, k))) for k in CONFIG_KEYS if hasattr(scenario, k)]
    )


def run_view(row: dict) -> RunView:
    fields = RunView.__dataclass_fields__
    values = {k: row.get(k) for k in fields}
    values["diverged_layer"] = none_if_na(values["diverged_layer"])
    values["seed"] = int(values["seed"])
    return RunView(**values)


def main_depth(name: str, depths: list[int]) -> int:
    """The depth whose per-layer figures a scenario page draws: the catalogue's default, else the deepest."""
    default = SCENARIOS[name].default_depth if name in SCENARIOS else None
    return default if default in depths else max(depths)


LAYER_FIGURES = {"layer-flow": "flow", "heatmap": "heatmap", "histograms": "histograms", "inactive": "inactive"}
# the per-layer figures of a scenario's main depth (FIGURES name: file stem), the inactive-unit one last


def layer_charts(name: str, depth: int, data: Data, seeds: list[int]) -> list[figures.Chart | None]:
    """Figures 1, 2, 6, 7 for one scenario × depth."""
    return [FIGURES[kind].build(data, [(name, depth)], seeds, f"{stem}-{name}-d{depth}")
            for kind, stem in LAYER_FIGURES.items()]


def depth_section(name: str, view: CellView, data: Data, shelf: Shelf, drawn: bool) -> DepthSection:
    rows = data.runs[(data.runs["scenario"] == name) & (data.runs["depth"] == view.depth)]
    charts = layer_charts(name, view.depth, data, list(rows["seed"])) if drawn else []
    saved = [shelf.put(c, f"scenarios/{name}") for c in charts]
    inactive_missing = drawn and charts[-1] is None  # layer_charts puts the inactive-unit figure last
    recorded = data.results.runs[data.results.runs["scenario"] == name]
    notes = [NO_INACTIVE.format(distinct(recorded, "activation"))] if inactive_missing else []
    return DepthSection(
        view.depth, view, [run_view(r) for r in rows.to_dict("records")], [s for s in saved if s], notes
    )


def scenario_charts(name: str, data: Data, depths: list[int]) -> list[figures.Chart]:
    """Figures across the scenario's depths: training curves, gradient norm, step-0 flow, depth sweep."""
    keys = [(name, d) for d in depths]
    seeds = sorted(data.results.runs.loc[data.results.runs["scenario"] == name, "seed"].unique().tolist())
    across = ("time-grid", "length-ratio", "length-accuracy") if name in recurrent.NAMES else ("flow", "sweep")
    kinds = ("curves", "gradnorm", *across) if len(depths) > 1 else ("curves", "gradnorm")
    return [FIGURES[kind].build(data, keys, seeds, f"{name}-{kind}") for kind in kinds]


def scenario_page(name: str, data: Data, views: list[CellView], shelf: Shelf) -> ScenarioPage:
    scenario = SCENARIOS.get(name)
    mine = [v for v in views if v.scenario == name]
    runs = data.results.runs[data.results.runs["scenario"] == name]
    depths = [v.depth for v in mine]
    drawn = main_depth(name, depths) if mine else None
    charts = scenario_charts(name, data, depths) if mine else []
    return ScenarioPage(
        name=name, summary=scenario.summary if scenario else "not in this gradbench's catalogue",
        expected=scenario.expected if scenario else None, default_depth=scenario.default_depth if scenario else None,
        article=bool(scenario and scenario.article),
        present=bool(mine), config=config_rows(name, runs), main_depth=drawn,
        depths=[depth_section(name, v, data, shelf, v.depth == drawn) for v in mine],
        figures=[shelf.put(c, f"scenarios/{name}") for c in charts],
        phenomena=[Link(f"{p.slug}.html", p.title) for p in PHENOMENA if name in p.problems + p.fixes],
    )  # fmt: skip


def scenario_names(data: Data) -> list[str]:
    """Every catalogue scenario (a missing one gets a page that says so), then any unknown ones."""
    present = list(dict.fromkeys(data.cells["scenario"]))
    return list(SCENARIOS) + [n for n in present if n not in SCENARIOS]


# -- index and methods -----------------------------------------------------------------------------


@dataclass
class IndexPage:
    overview: list[tuple[str, str]]
    cells: list[CellView]
    missing: list[Link]
    phenomena: list[Link]
    claims: list[ClaimView]
    result_sets: list[ResultSet]
    sweep: SavedChart | None
    set_aside: list[SetAside]
    diffs: list[Link] = field(default_factory=list)  # comparisons saved under diff/ (report diff)
    benchmark: Link | None = None  # benchmark.html, written by python -m bench.benchmark


def overview(runs: pd.DataFrame) -> list[tuple[str, str]]:
    return [
        ("dataset", distinct(runs, "dataset")), ("dataset source", distinct(runs, "dataset_source")),
        ("training / held-out samples",
         f"{distinct(runs, 'train_samples')} / {distinct(runs, 'test_samples')}"),
        ("profile", distinct(runs, "profile")), ("epochs", distinct(runs, "epochs")),
        ("TensorFlow", distinct(runs, "tf_version")), ("Keras", distinct(runs, "keras_version")),
        ("device", distinct(runs, "device")), ("runs", str(len(runs))),
        ("seeds", ", ".join(str(s) for s in sorted(runs["seed"].unique()))),
    ]  # fmt: skip


def index_page(data: Data, views: list[CellView], article: ArticlePage, shelf: Shelf) -> IndexPage:
    present = set(data.cells["scenario"])
    feedforward = data.cells[~data.cells["scenario"].isin(recurrent.NAMES)]  # a recurrent net's depth is T
    keys = list(zip(feedforward["scenario"], feedforward["depth"].astype(int)))
    sweep = FIGURES["sweep"].build(data, keys, [], "depth-sweep") if keys else None
    return IndexPage(
        overview=overview(data.results.runs), cells=views,
        missing=[Link(scenario_href(n), n, SCENARIOS[n].summary) for n in SCENARIOS if n not in present],
        phenomena=[Link(f"{p.slug}.html", p.title, p.summary) for p in PHENOMENA],
        claims=article.claims, result_sets=result_sets(data.results.runs), sweep=shelf.put(sweep, "index"),
        set_aside=data.set_aside,
        diffs=diff_links(shelf.root), benchmark=benchmark_link(shelf.root),
    )  # fmt: skip


@dataclass
class MethodsPage:
    thresholds: list[analysis.Threshold]
    rules: list[tuple[str, str]]
    result_sets: list[ResultSet]
    theory_notes: list[tuple[str, str]]  # scenario, why the mean-field theory does not apply
    set_aside: list[SetAside]
    expected_sources: tuple[str, str, str]  # (theory, catalogue, unmodelled): where an expectation comes from
    scan_rule: str
    verdict_init_rule: str


def methods_page(data: Data) -> MethodsPage:
    notes = data.cells.dropna(subset=["theory_note"]).drop_duplicates("scenario")
    return MethodsPage(
        thresholds=list(analysis.THRESHOLDS.values()),
        rules=list(analysis.RULES),
        result_sets=result_sets(data.results.runs),
        theory_notes=[(r.scenario, r.theory_note) for r in notes.itertuples()],
        set_aside=data.set_aside,
        expected_sources=(analysis.EXPECTED_FROM_THEORY, analysis.EXPECTED_FROM_CATALOGUE,
                          analysis.EXPECTED_UNMODELLED),
        scan_rule=depth_scan.MODEL_RULE,
        verdict_init_rule=analysis.VERDICT_INIT_RULE,
    )


# -- rendering -------------------------------------------------------------------------------------


def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(num=num, pct=pct, stat=stat)
    env.globals["thresholds"] = {name: t.value for name, t in analysis.THRESHOLDS.items()}
    return env


def num(value) -> str:
    return analysis.fmt(none_if_na(value))


def pct(value) -> str:
    return analysis.percent(none_if_na(value) if value is not None else float("nan"))


def stat(cell: CellView | None, name: str) -> str:
    """A cell's statistic for prose, or a plain note that the scenario has no results at that depth."""
    return "n/a (no results)" if cell is None else num(getattr(cell, name))


@dataclass(frozen=True)
class Page:
    path: str  # relative to the site root
    template: str
    title: str
    data: object


def nav_links() -> list[Link]:
    phenomena = [Link(f"{p.slug}.html", p.title) for p in PHENOMENA]
    return [
        Link("index.html", "Overview"),
        *phenomena,
        Link("article.html", "Article"),
        Link("methods.html", "Methods"),
    ]


def render(env: Environment, page: Page, built_at: str) -> str:
    depth = page.path.count("/")
    return env.get_template(page.template).render(
        page=page.data,
        title=page.title,
        path=page.path,
        root="../" * depth,
        nav=nav_links(),
        built_at=f"{BUILT_AT_PREFIX}{built_at}",
    )


def pages(data: Data, shelf: Shelf) -> Iterable[Page]:
    """Every page of the site, computing (and saving the figures of) one at a time."""
    views = cell_views(data)
    article = article_page(data, shelf)
    yield Page("index.html", "index.html.j2", "gradbench report", index_page(data, views, article, shelf))
    for p in PHENOMENA:
        yield Page(f"{p.slug}.html", f"{p.slug}.html.j2", p.title, phenomenon_page(p, data, views, shelf))
    yield Page("article.html", "article.html.j2", "Reproducing the article", article)
    yield Page("methods.html", "methods.html.j2", "Methods", methods_page(data))
    for name in scenario_names(data):
        yield Page(
            scenario_href(name),
            "scenario.html.j2",
            f"Scenario {name}",
            scenario_page(name, data, views, shelf),
        )


# -- writing ---------------------------------------------------------------------------------------


def workers() -> int:
    return max(1, min(len(os.sched_getaffinity(0)), MAX_WORKERS))


def write_pages(data: Data, root: Path, built_at: str, previous: Path | None = None) -> None:
    env = environment()
    context = multiprocessing.get_context("spawn")  # no fork of a process that runs arrow's threads
    with ProcessPoolExecutor(workers(), mp_context=context) as pool:
        shelf = Shelf(root, pool, previous)
        for page in pages(data, shelf):
            target = root / page.path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(render(env, page, built_at), encoding="utf-8", newline="\n")
        shelf.wait()
    shutil.copyfile(TEMPLATES / "style.css", root / "style.css")
    (root / MARKER).write_text("built by python -m report build; rebuilding replaces this folder\n")


def check_target(out: Path) -> None:
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MARKER).exists())):
        raise SiteError(f"{out}: exists and is not a gradbench site; choose an empty or new --out folder")


def build(results: Path, out: Path, built_at: str | None = None) -> Path:
    """Render the site for a results folder into out (replaced whole); returns index.html."""
    out = Path(out)
    check_target(out)
    data = load(Path(results))
    staging = out.with_name(f".{out.name}.{os.getpid()}.building")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        previous = out if (out / MARKER).is_file() else None
        keep_added_pages(out, staging)
        write_pages(
            data, staging, built_at or datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"), previous
        )
        replace_folder(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out / "index.html"


def replace_folder(new: Path, out: Path) -> None:
    old = out.with_name(f".{out.name}.{os.getpid()}.old")
    if out.exists():
        out.rename(old)
    new.rename(out)
    shutil.rmtree(old, ignore_errors=True)


# -- diffs between result sets (report/diff.py computes the page data) -----------------------------

DIFF_FOLDER = "diff"  # <site>/diff/<A>__<B>.html, each beside <A>__<B>.json: its line in the index


def diff_links(root: Path) -> list[Link]:
    """The diffs saved under root/diff/, for the index."""
    entries = [json.loads(path.read_text()) for path in sorted((Path(root) / DIFF_FOLDER).glob("*.json"))]
    return [Link(f"{DIFF_FOLDER}/{e['name']}.html", f"{e['a']} → {e['b']}", e["summary"]) for e in entries]


BENCHMARK_FILES = ("benchmark.html", "benchmark.json")  # written by python -m bench.benchmark


def keep_added_pages(old_root: Path, new_root: Path) -> None:
    """A rebuilt site keeps what other commands added to the one it replaces: diffs, the benchmark."""
    old_root, new_root = Path(old_root), Path(new_root)
    if (old_root / DIFF_FOLDER).is_dir():
        shutil.copytree(old_root / DIFF_FOLDER, new_root / DIFF_FOLDER, dirs_exist_ok=True)
    for name in BENCHMARK_FILES:
        if (old_root / name).is_file():
            shutil.copyfile(old_root / name, new_root / name)


def benchmark_link(root: Path) -> Link | None:
    """The benchmark page, if the site has one, with when it was measured."""
    if not all((Path(root) / name).is_file() for name in BENCHMARK_FILES):
        return None
    meta = json.loads((Path(root) / "benchmark.json").read_text()).get("provenance", {})
    return Link("benchmark.html", "Benchmark", f"measured {meta.get('finished_at', '?')} on {meta.get('cpu', '?')}")


def write_diff(page, out: Path, built_at: str | None = None) -> Path:
    """Render a report.diff.DiffPage into out/diff/ (out: a site or a new folder); returns the page's path."""
    out = Path(out)
    check_target(out)
    path = f"{DIFF_FOLDER}/{page.entry.name}.html"
    (out / DIFF_FOLDER).mkdir(parents=True, exist_ok=True)
    built_at = built_at or datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    title = f"Diff {page.entry.a} → {page.entry.b}"
    html = render(environment(), Page(path, "diff.html.j2", title, page), built_at)
    (out / path).write_text(html, encoding="utf-8", newline="\n")
    entry = json.dumps(asdict(page.entry), indent=1, sort_keys=True, ensure_ascii=False)
    (out / DIFF_FOLDER / f"{page.entry.name}.json").write_text(entry + "\n", encoding="utf-8")
    if not (out / MARKER).exists():  # a new folder: make it a site a later build may replace (keeping diff/)
        shutil.copyfile(TEMPLATES / "style.css", out / "style.css")
        (out / MARKER).write_text("built by python -m report build; rebuilding replaces this folder\n")
    return out / path
