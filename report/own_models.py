"""The "Your models" page: each model recorded with bench.recorder — its verdict by the catalogue's rules, the layer
where its backward signal is lost or amplified most, and the catalogue cell it behaves like with the fixes measured
at that depth.

The catalogue comes from a set of catalogue runs beside the models' set in a site of result sets (Reference, chosen
by site.build_sets): a folder shows one experiment, so a user's runs and the catalogue's never share a report.
Matching (RULE) is on the whole-path ratio the verdicts read."""

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from bench.scenarios import SCENARIOS
from report import recurrent
from report.data import Data
from report.phenomena import PHENOMENA
from report.views import CellView, scenario_href

RECORDER = "bench.recorder"  # the `source` of a run recorded from a user's fit


@dataclass
class Reference:
    """Catalogue cells to compare a user's model with, and where their scenario pages are from the models page."""

    cells: list[CellView]
    label: str  # the result set they come from, as the page names it
    href: str  # prefix of the catalogue set's pages relative to the models page


@dataclass(frozen=True)
class Step:
    """Where the signal changes most between neighbouring hidden weight layers: ‖δ_layer‖ / ‖δ_next‖."""

    layer: str
    next: str
    factor: float


@dataclass(frozen=True)
class Compared:
    cell: CellView
    href: str
    per_layer: float  # the whole-path ratio per layer: ratio^(1/(depth-1))


@dataclass
class ModelSection:
    name: str
    cell: CellView
    href: str
    weakest: Step | None
    strongest: Step | None
    like: Compared | None  # the catalogue cell nearest in whole-path ratio
    fixes: list[Compared] = field(default_factory=list)


RULE = ("A model is matched on the whole-path ratio the verdicts read: its median over recorded fits of the median "
        "over logged steps of ‖δ first hidden‖ / ‖δ last hidden‖ is set against that of every catalogue cell of a "
        "problem scenario (sigmoid, tanh, linear, …) when the model is vanishing or exploding, of every catalogue "
        "cell otherwise; the nearest in log10 wins, the closer depth breaking a tie (a recorded model's depth counts "
        "its output layer, the catalogue's its hidden layers). The fixes are those of the matched problem's "
        "phenomenon page, each at the matched depth or the nearest depth it was swept at. The catalogue is the "
        "first result set of this site that holds catalogue runs (of the quick or full profile, if any).")


@dataclass
class OwnModelsPage:
    models: list[ModelSection]
    reference: str | None  # the result set compared with; None if the site has no catalogue runs
    rule: str = RULE


def own_model_names(data: Data) -> list[str]:
    if "source" not in data.recorded:
        return []
    return list(dict.fromkeys(data.recorded.loc[data.recorded["source"] == RECORDER, "scenario"]))


def per_layer(cell: CellView) -> float:
    """A catalogue cell's whole-path ratio per layer (its depth counts hidden layers)."""
    return float(cell.path_ratio_median ** (1 / max(cell.depth - 1, 1)))


def signal_steps(data: Data, name: str, depth: int) -> tuple[Step | None, Step | None]:
    """The smallest and largest ‖δ_l‖ / ‖δ_l+1‖ between hidden layers: median over logged steps, then over seeds."""
    seeds = sorted(data.recorded.loc[data.recorded["scenario"] == name, "seed"])
    rows = data.rows("layer", [(name, depth)], seeds)
    rows = rows[rows["layer_role"] == "hidden"]
    if rows.empty or rows["layer"].nunique() < 2:
        return None, None
    table = rows.pivot_table(index=["seed", "step"], columns="layer", values="delta_norm", aggfunc="first")
    with np.errstate(divide="ignore", invalid="ignore"):
        factors = (table.iloc[:, :-1].to_numpy() / table.iloc[:, 1:].to_numpy())
    medians = pd.DataFrame(factors, index=table.index).groupby(level="seed").median().median()
    if medians.isna().all():
        return None, None
    names = rows.drop_duplicates("layer").set_index("layer")["layer_name"]
    columns = list(table.columns)

    def step(i: int) -> Step:
        return Step(str(names[columns[i]]), str(names[columns[i + 1]]), float(medians.iloc[i]))

    return step(int(np.nanargmin(medians))), step(int(np.nanargmax(medians)))


def comparable(cells: list[CellView]) -> list[CellView]:
    """Catalogue feed-forward cells with a whole-path ratio."""
    return [c for c in cells if c.scenario in SCENARIOS and c.scenario not in recurrent.NAMES
            and np.isfinite(c.path_ratio_median) and c.path_ratio_median > 0]


def nearest(cells: list[CellView], ratio: float, depth: int) -> CellView | None:
    if not cells or not np.isfinite(ratio) or ratio <= 0:
        return None
    return min(cells, key=lambda c: (abs(np.log10(c.path_ratio_median) - np.log10(ratio)), abs(c.depth - depth)))


def compared(cell: CellView, reference: Reference) -> Compared:
    return Compared(cell, reference.href + scenario_href(cell.scenario), per_layer(cell))


def model_section(name: str, view: CellView, data: Data, reference: Reference | None) -> ModelSection:
    weakest, strongest = signal_steps(data, name, view.depth)
    section = ModelSection(name, view, scenario_href(name), weakest, strongest, None)
    if reference is None:
        return section
    cells = comparable(reference.cells)
    problems = {s for p in PHENOMENA if not p.recurrent for s in p.problems}
    pool = [c for c in cells if c.scenario in problems] if view.verdict in ("vanishing", "exploding") else cells
    like = nearest(pool, view.path_ratio_median, view.depth - 1)  # a recorded run's depth counts its output layer
    if like is None:
        return section
    section.like = compared(like, reference)
    phenomenon = next((p for p in PHENOMENA if like.scenario in p.problems), None)
    if phenomenon and view.verdict in ("vanishing", "exploding"):
        for fix in phenomenon.fixes:
            found = [c for c in cells if c.scenario == fix]
            if found:
                best = min(found, key=lambda c: abs(c.depth - like.depth))
                section.fixes.append(compared(best, reference))
    return section


def own_models_page(data: Data, views: list[CellView], reference: Reference | None) -> OwnModelsPage:
    names = own_model_names(data)
    sections = [model_section(v.scenario, v, data, reference) for v in views if v.scenario in names]
    return OwnModelsPage(sections, reference.label if reference else None)
