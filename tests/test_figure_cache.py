"""report/figure_cache.py: a figure is copied from the previous build when its data, words and drawing code are
unchanged, and drawn again when any of them changed."""

import gzip
import shutil
from functools import partial
from pathlib import Path

import pandas as pd
import pytest

from bench import closure
from report import figure_cache, figures
from report.figure_cache import Shelf
from report.figures.common import new_figure
from tests.helpers import closure_changed

MARK = "<!-- kept from the previous build -->"


def draw(data: pd.DataFrame):
    figure, axes = new_figure()
    axes[0, 0].plot(data["step"], data["loss"])
    return figure


def chart(loss=(3.0, 2.0, 1.5), caption="Loss per step.", alt="loss falls from 3 to 1.5") -> figures.Chart:
    data = pd.DataFrame({"step": [0, 1, 2], "loss": list(loss)})
    return figures.Chart("curves", data, caption, alt, partial(draw, data))


def build(root: Path, the_chart: figures.Chart, previous: Path | None = None, **shelf) -> tuple[str, str]:
    """Save one figure into a new build; returns (its SVG, its CSV)."""
    saved = Shelf(root, previous=previous, **shelf).put(the_chart, "page")
    assert saved.svg == "figures/page/curves.svg" and saved.caption == the_chart.caption
    return (root / saved.svg).read_text(), gzip.decompress((root / saved.csv).read_bytes()).decode()


@pytest.fixture(scope="module")
def first(tmp_path_factory) -> Path:
    """A build with one figure, its SVG marked so that a copy of it can be told from a new drawing."""
    root = tmp_path_factory.mktemp("first")
    svg, csv = build(root, chart())
    assert csv.splitlines() == ["step,loss", "0,3", "1,2", "2,1.5"]
    assert figures.stamped(root / "figures/page/curves.svg", Shelf(root).stamp(chart()))
    (root / "figures/page/curves.svg").write_text(svg + MARK)
    return root


def test_an_unchanged_figure_is_copied_from_the_previous_build(first, tmp_path):
    svg, csv = build(tmp_path, chart(), previous=first)
    assert svg.endswith(MARK)
    assert csv == gzip.decompress((first / "figures/page/curves.csv.gz").read_bytes()).decode()


@pytest.mark.parametrize("changed", [
    {"loss": (3.0, 2.0, 1.25)}, {"caption": "Loss per training step."}, {"alt": "loss falls from 3 to 1.25"},
])
def test_a_figure_whose_data_or_words_changed_is_drawn_again(first, tmp_path, changed):
    new = chart(**changed)
    svg, csv = build(tmp_path, new, previous=first)
    assert MARK not in svg and figures.stamped(tmp_path / "figures/page/curves.svg", Shelf(tmp_path).stamp(new))
    assert csv.splitlines()[-1] == ("2,1.25" if "loss" in changed else "2,1.5")


def test_a_figure_is_drawn_again_when_the_drawing_code_changed(first, tmp_path, monkeypatch):
    monkeypatch.setattr(figure_cache, "code_version", lambda chart: "another version of the drawing code")
    svg, _ = build(tmp_path, chart(), previous=first)
    assert MARK not in svg


def test_without_a_previous_build_or_its_files_every_figure_is_drawn(first, tmp_path):
    assert MARK not in build(tmp_path / "new", chart())[0]
    partial_copy = tmp_path / "old"
    shutil.copytree(first, partial_copy)
    (partial_copy / "figures/page/curves.csv.gz").unlink()
    assert MARK not in build(tmp_path / "again", chart(), previous=partial_copy)[0]


def flow_chart() -> figures.Chart:
    """A chart of the catalogue's: drawn by report.figures.layer_flow."""
    from report.figures.layer_flow import draw_flow

    data = pd.DataFrame({"layer": [1, 2], "delta_norm": [1.0, 0.5]})
    return figures.Chart("flow", data, "caption", "alt", partial(draw_flow, data))


def edited(tree: Path, module: str) -> str:
    """The drawing's code version after a line of code is added to one module of the copy (then restored)."""
    path = closure.source_file(module)
    before = path.read_text()
    path.write_text(before + "\nCHANGED = 1\n")
    closure_changed()
    version = figure_cache.code_version(flow_chart())
    path.write_text(before)
    closure_changed()
    return version


@pytest.mark.parametrize("name", ["report.figures.layer_flow", "report.figures.common", "report.figures",
                                  "report.grading.rules", "bench.theory"])
def test_editing_a_module_the_drawing_imports_changes_its_code_version(tree, name):
    assert name in closure.closure([flow_chart().draw.func.__module__, "report.figures"])
    assert edited(tree, name) != figure_cache.code_version(flow_chart())


@pytest.mark.parametrize("name", ["report.deploy", "report.serve", "report.site", "bench.train"])
def test_editing_a_module_no_figure_depends_on_keeps_the_figures(tree, name):
    assert edited(tree, name) == figure_cache.code_version(flow_chart())


def test_every_project_module_the_figures_import_is_in_the_code_version(tree):
    modules = closure.closure(["report.figures"])
    assert {"report.recurrent", "bench.theory", "report.grading.rules"} <= set(modules)
    unchanged = figure_cache.code_version(flow_chart())
    assert [name for name in modules if edited(tree, name) == unchanged] == []
