"""The benchmark's page: benchmark.html rendered from the benchmark.json that python -m bench.benchmark writes.

bench never imports report; it runs `python -m report benchmark-page <benchmark.json> --out SITE`.
"""

import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path

from report.site import MARKER, TEMPLATES, Page, environment, render

PAGE = "benchmark.html"
OWN_FILES = {PAGE, "benchmark.json", "style.css"}  # a folder holding only these is new: mark it as a site


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


def fmt(value: float) -> str:
    """Three significant digits, without exponents for everyday magnitudes (as bench.benchmark.fmt)."""
    if not math.isfinite(value):
        return str(value)
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}" if abs(value) >= 0.001 else f"{value:.2e}"


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


def write_page(source: Path, out: Path) -> Path:
    """<out>/benchmark.html from a benchmark.json; a new folder is marked as a gradbench site."""
    report = json.loads(Path(source).read_text())
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    new = all(path.name in OWN_FILES for path in out.iterdir())
    if not (out / "benchmark.json").exists() or not (out / "benchmark.json").samefile(source):
        shutil.copyfile(source, out / "benchmark.json")  # the index's link reads it
    if not (out / "style.css").exists():
        shutil.copyfile(TEMPLATES / "style.css", out / "style.css")
    if new:
        (out / MARKER).write_text("built by python -m report build; rebuilding replaces this folder\n")
    page = Page(PAGE, "benchmark.html.j2", "Benchmark", page_view(report))
    html = render(environment(), page, report["provenance"]["finished_at"])
    (out / PAGE).write_text(html, encoding="utf-8", newline="\n")
    return out / PAGE
