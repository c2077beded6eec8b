"""The article page: its claims graded against these results, and its figures redrawn."""

from dataclasses import dataclass

from bench.scenarios import SCENARIOS
from report import figures, recurrent
from report.data import Data
from report.figure_cache import Shelf
from report.figures import FIGURES, SavedChart
from report.grading.claims import Claim, article_claims
from report.views import common_seeds, scenario_href

ARTICLE_FIGURES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("curves", ("sigmoid",)), ("flow", ("sigmoid",)), ("curves", ("resnet",)),
    ("curves", ("linear", "linear_clipnorm")), ("gradnorm", ("linear", "linear_clipnorm")),
)  # fmt: skip


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


def claim_view(claim: Claim) -> ClaimView:
    return ClaimView(claim.experiment, claim.scenario, claim.claim, claim.measured, claim.reproduced, claim.evidence,
                     claim.budget, scenario_href(claim.scenario))


def article_charts(data: Data) -> list[figures.Chart]:
    """The ARTICLE_FIGURES that these results can draw, each scenario at the article's depth."""
    charts = []
    for kind, names in ARTICLE_FIGURES:
        keys = [
            (n, SCENARIOS[n].default_depth) for n in names if has_cell(data, n, SCENARIOS[n].default_depth)
        ]
        seeds = common_seeds(data.recorded, keys)
        if keys and seeds:
            name = f"article-{kind}-{'-'.join(k[0] for k in keys)}"
            charts.append(FIGURES[kind].build(data, keys, seeds, name))
    return charts


def article_page(data: Data, shelf: Shelf) -> ArticlePage:
    claims = [*article_claims(data.runs, data.cells, data.recorded),
              *recurrent.claims(data.runs, data.cells)]
    views = [claim_view(c) for c in claims]
    return ArticlePage(
        claims=views,
        reproduced=sum(v.reproduced is True for v in views),
        checked=sum(v.reproduced is not None for v in views),
        figures=[shelf.put(c, "article") for c in article_charts(data)],
    )


def has_cell(data: Data, scenario: str, depth: int) -> bool:
    return bool(((data.cells["scenario"] == scenario) & (data.cells["depth"] == depth)).any())
