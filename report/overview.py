"""The index (what was run, every cell's verdict, links to every page) and the methods page."""

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from bench.scenarios import SCENARIOS
from report import depth_scan, publish, recurrent
from report.article import ArticlePage, ClaimView
from report.data import FIGURE_SEEDS, Data, SetAside, distinct
from report.figure_cache import Shelf
from report.figures import FIGURES, SavedChart
from report.grading.cells import agreement
from report.grading.rules import EFFECTS, RULES, THRESHOLDS, VERDICT_INIT_RULE, Threshold
from report.own_models import own_model_names
from report.phenomena import PHENOMENA
from report.render import environment
from report.views import CellView, Link, ResultSet, result_sets, scenario_href, seed_list


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
    benchmark: Link | None = None  # benchmark.html (report benchmark-page, run by python -m bench.benchmark)
    own_models: list[str] = field(default_factory=list)  # models recorded from a user's fit: models.html


def overview(runs: pd.DataFrame) -> list[tuple[str, str]]:
    return [
        ("dataset", distinct(runs, "dataset")), ("dataset source", distinct(runs, "dataset_source")),
        ("training / held-out samples",
         f"{distinct(runs, 'train_samples')} / {distinct(runs, 'test_samples')}"),
        ("profile", distinct(runs, "profile")), ("epochs", distinct(runs, "epochs")),
        ("TensorFlow", distinct(runs, "tf_version")), ("Keras", distinct(runs, "keras_version")),
        ("device", distinct(runs, "device")), ("runs", str(len(runs))),
        ("seeds", seed_list(runs["seed"])),
    ]  # fmt: skip


def index_page(data: Data, views: list[CellView], article: ArticlePage, shelf: Shelf) -> IndexPage:
    present = set(data.cells["scenario"])
    feedforward = data.cells[~data.cells["scenario"].isin(recurrent.NAMES)]  # a recurrent net's depth is T
    keys = list(zip(feedforward["scenario"], feedforward["depth"].astype(int)))
    sweep = FIGURES["sweep"].build(data, keys, [], "depth-sweep") if keys else None
    return IndexPage(
        overview=overview(data.recorded), cells=views,
        missing=[Link(scenario_href(n), n, SCENARIOS[n].summary) for n in SCENARIOS if n not in present]
        if present - set(own_model_names(data)) else [],  # a folder of a user's models alone misses nothing
        phenomena=[Link(f"{p.slug}.html", p.title, p.summary) for p in PHENOMENA],
        claims=article.claims, result_sets=result_sets(data.recorded), sweep=shelf.put(sweep, "index"),
        set_aside=data.set_aside, own_models=own_model_names(data),
        **vars(added_pages(shelf.root)),
    )  # fmt: skip


@dataclass
class MethodsPage:
    thresholds: list[Threshold]
    rules: list[tuple[str, str]]
    result_sets: list[ResultSet]
    theory_notes: list[tuple[str, str]]  # scenario, why the mean-field theory does not apply
    set_aside: list[SetAside]
    effects: list[tuple[str, str]]
    agreement: tuple[int, int, list[str]]  # cells whose verdict predicts their effect, cells, the others named
    scan_rule: str
    verdict_init_rule: str
    figure_seeds: int = FIGURE_SEEDS


def methods_page(data: Data) -> MethodsPage:
    notes = data.cells.dropna(subset=["theory_note"]).drop_duplicates("scenario")
    return MethodsPage(
        thresholds=list(THRESHOLDS.values()),
        rules=list(RULES),
        result_sets=result_sets(data.recorded),
        theory_notes=[(r.scenario, r.theory_note) for r in notes.itertuples()],
        set_aside=data.set_aside,
        effects=list(EFFECTS),
        agreement=agreement(data.cells),
        scan_rule=depth_scan.MODEL_RULE,
        verdict_init_rule=VERDICT_INIT_RULE,
    )


@dataclass
class AddedPages:
    """The index's list of added pages alone (templates/added_pages.html.j2)."""

    diffs: list[Link]
    benchmark: Link | None


ADDED_MARKERS = ("<!-- pages added by other commands -->", "<!-- /pages added by other commands -->")


def refresh_index(out: Path) -> None:
    """Rewrite a built site's list of added pages in its index, so that a page added after the build is listed."""
    index = Path(out) / "index.html"
    if not publish.is_built_site(Path(out)):
        return
    html = index.read_text(encoding="utf-8")
    start, end = html.find(ADDED_MARKERS[0]), html.find(ADDED_MARKERS[1])
    if start < 0 or end < 0:  # an index of an older gradbench: the next build lists them
        return
    section = environment().get_template("added_pages.html.j2").render(page=added_pages(out), root="")
    start_of_section = section.index(ADDED_MARKERS[0])
    rest = html[end + len(ADDED_MARKERS[1]):]
    publish.write_text(index, html[:start] + section[start_of_section:].rstrip("\n") + rest)


def added_pages(root: Path) -> AddedPages:
    return AddedPages(added_links(root, "diff"), next(iter(added_links(root, "benchmark")), None))


def added_links(root: Path, kind: str) -> list[Link]:
    """The pages of this kind that other commands added to the site (publish.AddedPage), in path order."""
    return [Link(page.path, page.title, page.summary) for page in publish.added_pages(root) if page.kind == kind]
