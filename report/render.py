"""Rendering: the one Jinja2 Environment (templates/, autoescape, StrictUndefined), its filters, and a page.

Rendering never touches a DataFrame: a page's data is computed before (coverage.py's HTML report
works the same way). The output is deterministic but for the one "Built at" line of each page.
"""

import hashlib
import pickle
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, meta

from bench import closure
from bench.statistics import STATISTICS, SUMMARIES, summarised
from report.data import none_if_na
from report.grading.rules import THRESHOLDS
from report.grading.text import fmt, percent
from report.views import CellView

# the source tree's templates/, or the copy a wheel installs as report/templates (pyproject.toml maps it)
SOURCE_TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
TEMPLATES = SOURCE_TEMPLATES if SOURCE_TEMPLATES.is_dir() else Path(__file__).resolve().parent / "templates"

BUILT_AT_PREFIX = "Built at "
SITE_DESCRIPTION = ("Vanishing and exploding gradients in deep networks, measured layer by layer in real "
                    "TensorFlow/Keras training runs and graded against theory.")


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
    env.tests["known"] = known  # {% if x is known %}: a number that was measured, not NaN or None
    env.globals["thresholds"] = {name: t.value for name, t in THRESHOLDS.items()}
    # the declared statistics: the tables' generic columns, the Methods page's list of what a run records
    env.globals.update(summarised_statistics=summarised(), summaries=SUMMARIES, recorded_statistics=STATISTICS)
    return env


def known(value) -> bool:
    return none_if_na(value) is not None


def num(value) -> str:
    return fmt(none_if_na(value))


def pct(value) -> str:
    return percent(none_if_na(value) if value is not None else float("nan"))


def stat(cell: CellView | None, name: str) -> str:
    """A cell's statistic for prose, or a plain note that the scenario has no results at that depth."""
    return "n/a (no results)" if cell is None else num(getattr(cell, name))


@dataclass(frozen=True)
class Page:
    path: str  # relative to the site root
    template: str
    title: str
    data: object


def description(data: object) -> str:
    """What a link preview says of a page: its data's summary where it has one, then what the site is."""
    summary = getattr(data, "summary", "")
    return f"{summary[:1].upper()}{summary[1:]}. {SITE_DESCRIPTION}" if summary else SITE_DESCRIPTION


def render(env: Environment, page: Page, built_at: str, in_site: bool = True, home: str = "",
           result_set: object = None, sweeping: str = "") -> str:
    """A page's HTML; a page written into a folder without a built site (a diff alone) links to no site page.

    In a site of result sets (report/sets.py), `home` is the landing page relative to the page's site root and
    `result_set` the sets.SetEntry whose report the page belongs to. `sweeping`: what a sweep still training the
    results says (sets.sweeping), shown on every page."""
    from report.pages import nav_links  # the registry builds pages, whose modules render: imported when rendering

    depth = page.path.count("/")
    return env.get_template(page.template).render(
        home=home,
        result_set=result_set,
        sweeping=sweeping,
        page=page.data,
        title=page.title,
        description=description(page.data),
        path=page.path,
        root="../" * depth,
        nav=nav_links() if in_site else [],
        built_at=f"{BUILT_AT_PREFIX}{built_at}",
    )


@cache
def templates_of(name: str) -> tuple[str, ...]:
    """A template and every template it extends, includes or imports, at any depth."""
    env = environment()
    found, todo = [], [name]
    while todo:
        current = todo.pop()
        if current not in found:
            found.append(current)
            source = (TEMPLATES / current).read_text(encoding="utf-8")
            todo.extend(t for t in meta.find_referenced_templates(env.parse(source)) if t)
    return tuple(sorted(found))


def page_stamp(page: Page, **context) -> str | None:
    """A hash of what decides a page's HTML but its build time: the rendering code and what it imports, the
    page's templates, its data and the rest of its context; None for data that cannot be pickled (always drawn)."""
    digest = hashlib.sha256(closure.code_hash("report.render").encode())
    for name in templates_of(page.template):
        digest.update(name.encode() + b"\0" + (TEMPLATES / name).read_bytes())
    try:
        digest.update(pickle.dumps((page, sorted(context.items())), protocol=4))
    except (pickle.PicklingError, TypeError, AttributeError):
        return None
    return digest.hexdigest()[:32]
