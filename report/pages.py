"""The pages of a report, registered once: each kind with its template, its entry in the navigation and the
builder of its data. Adding a page is one registration here and a template in templates/.

A builder reads Inputs, whose shared parts (the cells' views, the article page, which the overview quotes) are
computed once per build, when a builder first asks for them. A page's stamp — what decides whether a rebuild
renders it again — is its data, its templates and the rendering code's import closure (render.page_stamp).

Pages that other commands add to a built site (a diff, the version matrix, the benchmark) are registered in ADDED:
those commands (site.write_diff, site.write_matrix, benchmark_page.write_page) render them, a build keeps them, and
the overview lists them in their section (publish.AddedPage).
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property

from report.article import ArticlePage, article_page
from report.data import Data
from report.figure_cache import Shelf
from report.overview import index_page, methods_page
from report.own_models import own_model_names, own_models_page
from report.phenomena import PHENOMENA, Phenomenon, phenomenon_page
from report.render import Page
from report.scenario_pages import scenario_names, scenario_page
from report.views import CellView, Link, cell_views, scenario_href


@dataclass
class Inputs:
    """What page builders read."""

    data: Data
    shelf: Shelf

    @cached_property
    def views(self) -> list[CellView]:
        return cell_views(self.data)

    @cached_property
    def article(self) -> ArticlePage:
        return article_page(self.data, self.shelf)


@dataclass(frozen=True)
class PageKind:
    template: str
    pages: Callable[[Inputs], Iterable[Page]]  # this kind's pages, computing (and saving the figures of) each
    nav: Link | None = None  # its entry in the navigation, if it has one


def single(path: str, template: str, title: str, build: Callable[[Inputs], object], nav: str = "") -> PageKind:
    """A kind of one page."""
    return PageKind(template, lambda inputs: [Page(path, template, title, build(inputs))],
                    Link(path, nav) if nav else None)


def phenomenon(p: Phenomenon) -> PageKind:
    return single(f"{p.slug}.html", f"{p.slug}.html.j2", p.title,
                  lambda i: phenomenon_page(p, i.data, i.views, i.shelf), p.title)


def scenarios(inputs: Inputs) -> Iterable[Page]:
    for name in scenario_names(inputs.data):
        page = scenario_page(name, inputs.data, inputs.views, inputs.shelf)
        yield Page(scenario_href(name), "scenario.html.j2", f"Scenario {name}", page)


def own_models(inputs: Inputs) -> Iterable[Page]:
    """The Your-models page, in a report holding runs recorded from a user's fit (bench.recorder)."""
    if own_model_names(inputs.data):
        yield Page("models.html", "models.html.j2", "Your models",
                   own_models_page(inputs.data, inputs.views, inputs.data.reference))


PAGES: tuple[PageKind, ...] = (
    single("index.html", "index.html.j2", "gradbench report",
           lambda i: index_page(i.data, i.views, i.article, i.shelf), "Overview"),
    *(phenomenon(p) for p in PHENOMENA),
    single("article.html", "article.html.j2", "Reproducing the article", lambda i: i.article, "Article"),
    single("methods.html", "methods.html.j2", "Methods", lambda i: methods_page(i.data), "Methods"),
    PageKind("scenario.html.j2", scenarios),
    PageKind("models.html.j2", own_models),  # the overview links it (IndexPage.own_models)
)


@dataclass(frozen=True)
class AddedKind:
    template: str
    title: Callable[[object], str]  # the page's title, from its data
    section: str  # where the overview lists it: "diff" or "benchmark"


ADDED: dict[str, AddedKind] = {
    "diff": AddedKind("diff.html.j2", lambda page: f"Diff {page.entry.a} → {page.entry.b}", "diff"),  # report diff
    "matrix": AddedKind("matrix.html.j2", lambda page: f"Matrix {page.entry.a}", "diff"),  # report matrix
    "benchmark": AddedKind("benchmark.html.j2", lambda page: "Benchmark", "benchmark"),  # report benchmark-page
}


def added_page(kind: str, path: str, data: object) -> Page:
    """A page of an ADDED kind, as its command renders it."""
    return Page(path, ADDED[kind].template, ADDED[kind].title(data), data)


def pages(data: Data, shelf: Shelf) -> Iterable[Page]:
    """Every page of a report, in registration order, one at a time."""
    inputs = Inputs(data, shelf)
    for kind in PAGES:
        yield from kind.pages(inputs)


def nav_links() -> list[Link]:
    return [kind.nav for kind in PAGES if kind.nav]
