"""The benchmark's page: benchmark.html rendered from the benchmark.json that python -m bench.benchmark writes.

bench never imports report; it runs `python -m report benchmark-page <benchmark.json> --out SITE`.
"""

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from bench.text import fmt
from report import publish
from report.overview import refresh_index
from report.pages import ADDED, added_page
from report.publish import SiteError
from report.render import environment, render

PAGE = "benchmark.html"
DATA = "benchmark.json"  # beside the page, kept with it


@dataclass(frozen=True)
class Row:
    """A figure as the page prints it."""

    name: str
    unit: str
    min: str
    median: str
    max: str
    target: str
    met: bool | None
    repeats: int


@dataclass
class BenchmarkPage:
    sections: list[tuple[str, list[Row]]]
    provenance: list[tuple[str, str]]
    command: str


def row(figure: dict) -> Row:
    return Row(figure["name"], figure["unit"], fmt(figure["min"]), fmt(figure["median"]), fmt(figure["max"]),
               figure["target"], figure["met"], len(figure["values"]))


def page_view(report: dict) -> BenchmarkPage:
    """The page's data from benchmark.json's content."""
    sections: dict[str, list[Row]] = {}
    for figure in report["figures"]:
        sections.setdefault(figure["section"], []).append(row(figure))
    facts = {**report["provenance"], **{f"setting: {k}": v for k, v in report["settings"].items()}}
    return BenchmarkPage(list(sections.items()), [(k, str(v)) for k, v in facts.items()],
                         report["provenance"]["command"])


def summary(report: dict) -> str:
    """The page's line in the site's index."""
    meta = report.get("provenance", {})
    return f"measured {meta.get('finished_at', '?')} on {meta.get('cpu', '?')}"


def read_report(source: Path) -> tuple[dict, BenchmarkPage, str]:
    """benchmark.json's content, the page's data and when it was measured; a file that is not one is a SiteError
    saying so."""
    expected = "give the benchmark.json that python -m bench.benchmark (nox -s benchmark) writes"
    try:
        report = json.loads(source.read_bytes())
    except OSError as err:
        raise SiteError(f"{source}: cannot read it ({err.strerror or err}); {expected}") from None
    except ValueError:  # not JSON, or not text at all
        raise SiteError(f"{source}: not JSON; {expected}") from None
    try:
        return report, page_view(report), str(report["provenance"]["finished_at"])
    except (KeyError, TypeError, AttributeError, IndexError, ValueError):
        raise SiteError(f"{source}: JSON, but not a benchmark report (no figures, provenance and settings); "
                        f"{expected}") from None


def write_page(source: Path, out: Path) -> Path:
    """<out>/benchmark.html, and <out>/benchmark.json, from a benchmark.json; a new folder becomes a site."""
    source, out = Path(source), Path(out)
    report, view, measured = read_report(source)
    html = render(environment(), added_page("benchmark", PAGE, view), measured, publish.is_built_site(out))
    written = publish.add_page(out, publish.AddedPage(PAGE, "Benchmark", summary(report), ADDED["benchmark"].section,
                                                      (DATA,)), html)
    if not (out / DATA).exists() or not (out / DATA).samefile(source):
        shutil.copyfile(source, out / DATA)
    refresh_index(out)
    return written
