"""One page per scenario: its settings, every depth's cell and runs, and the figures of its main depth."""

from dataclasses import dataclass

import pandas as pd

from bench.scenarios import SCENARIOS, Scenario
from bench.statistics import summarised
from report import figures, recurrent
from report.data import Data, distinct, none_if_na
from report.figure_cache import Shelf
from report.figures import FIGURES, SavedChart
from report.phenomena import PHENOMENA
from report.views import CellView, Link


@dataclass(frozen=True)
class RunView:
    run_id: str
    seed: int
    status: str
    verdict: str
    reason: str
    effect: str
    effect_reason: str
    path_ratio_init: float
    path_ratio_median: float
    grad_norm_early: float
    grad_norm_max: float
    growth: float
    growth_applied: float
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
NO_INACTIVE_RECURRENT = "No inactive-unit figure: saturated or dead units are not recorded inside a recurrent layer."


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
    recurrent: bool = False  # depth is the sequence length T, the ratios are over time steps

CONFIG_KEYS = (
    "architecture", "activation", "initializer", "init_std", "batch_norm", "width", "optimizer", "learning_rate",
    "clipnorm", "global_clipnorm", "profile", "dataset", "dataset_source", "dataset_note", "train_samples",
    "test_samples", "epochs", "batch_size", "log_every",
)  # fmt: skip
COMMON_KEYS = CONFIG_KEYS[CONFIG_KEYS.index("width"):]
RECURRENT_CONFIG_KEYS = ("architecture", "cell", "activation", "recurrent_gain", "forget_bias", *COMMON_KEYS)


def text(value) -> str:
    value = none_if_na(value)
    return "—" if value is None or value == "" else str(value)


def config_rows(name: str, runs: pd.DataFrame) -> list[tuple[str, str]]:
    """The scenario's settings as recorded with its runs (or from the catalogue when it has none)."""
    keys = RECURRENT_CONFIG_KEYS if name in recurrent.NAMES else CONFIG_KEYS
    if len(runs):
        return [(key, distinct(runs, key) if key in runs else "not recorded") for key in keys]
    scenario: Scenario | None = SCENARIOS.get(name)
    return (
        []
        if scenario is None
        else [(k, text(getattr(scenario, k))) for k in keys if hasattr(scenario, k)]
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

LAYER_FIGURES = {"layer-flow": "flow", "heatmap": "heatmap", "histograms": "histograms",
                 **{f"layer-{s.name}": s.name.replace("_", "-") for s in summarised()}, "inactive": "inactive"}
# the per-layer figures of a scenario's main depth (FIGURES name: file stem), the inactive-unit one last
NOT_RECORDED = "No {} figure: the runs of this depth were stored before gradbench recorded it."


def layer_charts(name: str, depth: int, data: Data, seeds: list[int]) -> list[figures.Chart | None]:
    """Figures 1, 2, 6, 7 for one scenario × depth."""
    return [FIGURES[kind].build(data, [(name, depth)], seeds, f"{stem}-{name}-d{depth}")
            for kind, stem in LAYER_FIGURES.items()]


def depth_section(name: str, view: CellView, data: Data, shelf: Shelf, drawn: bool) -> DepthSection:
    rows = data.runs[(data.runs["scenario"] == name) & (data.runs["depth"] == view.depth)]
    charts = layer_charts(name, view.depth, data, list(rows["seed"])) if drawn else []
    saved = [shelf.put(c, f"scenarios/{name}") for c in charts]
    inactive_missing = drawn and charts[-1] is None  # layer_charts puts the inactive-unit figure last
    recorded = data.recorded[data.recorded["scenario"] == name]
    note = NO_INACTIVE_RECURRENT if name in recurrent.NAMES else NO_INACTIVE.format(distinct(recorded, "activation"))
    missing = [s.label for s in view.statistics if drawn and not s.seeds]
    notes = [NOT_RECORDED.format(label) for label in missing] + ([note] if inactive_missing else [])
    return DepthSection(
        view.depth, view, [run_view(r) for r in rows.to_dict("records")], [s for s in saved if s], notes
    )


def scenario_charts(name: str, data: Data, depths: list[int]) -> list[figures.Chart]:
    """Figures across the scenario's depths: training curves, gradient norm, step-0 flow, depth sweep."""
    keys = [(name, d) for d in depths]
    seeds = sorted(data.recorded.loc[data.recorded["scenario"] == name, "seed"].unique().tolist())
    across = ("time-grid", "length-ratio", "length-accuracy") if name in recurrent.NAMES else ("flow", "sweep")
    kinds = ("curves", "gradnorm", *across) if len(depths) > 1 else ("curves", "gradnorm")
    return [FIGURES[kind].build(data, keys, seeds, f"{name}-{kind}") for kind in kinds]


def scenario_page(name: str, data: Data, views: list[CellView], shelf: Shelf) -> ScenarioPage:
    scenario = SCENARIOS.get(name)
    mine = [v for v in views if v.scenario == name]
    runs = data.recorded[data.recorded["scenario"] == name]
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
        recurrent=name in recurrent.NAMES,
    )  # fmt: skip


def scenario_names(data: Data) -> list[str]:
    """Every catalogue scenario (a missing one gets a page that says so), then any unknown ones."""
    present = list(dict.fromkeys(data.cells["scenario"]))
    return list(SCENARIOS) + [n for n in present if n not in SCENARIOS]
