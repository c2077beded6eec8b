"""One staleness model: summaries, figures and pages are reused when, and only when, their inputs and the code they
import (bench/closure.py) are unchanged."""

import shutil
from functools import partial

import pandas as pd

from bench import closure
from report import figure_cache, render, site
from report.figures.common import Chart
from tests.helpers import closure_changed


def edit(tree, module: str, old: str, new: str) -> None:
    path = closure.source_file(module)
    text = path.read_text()
    assert old in text, f"{module} no longer holds {old!r}"
    path.write_text(text.replace(old, new, 1))
    closure_changed()


def test_the_closure_follows_imports_at_any_level_and_stops_at_other_libraries():
    summaries = closure.closure(["report.summaries"])
    assert {"report.summaries", "report.grading.runs", "bench.store", "bench.scenarios", "report",
            "report.grading"} <= set(summaries)  # direct, indirect, and the packages Python runs on the way
    assert "report.site" not in summaries and "report.figures" not in summaries
    assert "report.site" in closure.closure(["report.__main__"])  # imported inside main(), not at the top
    assert all(name.split(".")[0] in closure.PACKAGES for name in closure.closure(["report.site"]))


def test_a_code_hash_changes_with_code_in_the_closure_and_with_nothing_else(tree):
    before = {m: closure.code_hash(m) for m in ("report.summaries", "report.site", "report.figures")}
    edit(tree, "report.grading.runs", '"""', '"""Reworded, with a comment.\n\n')  # wording: no code changed
    assert {m: closure.code_hash(m) for m in before} == before
    edit(tree, "report.site", "MAX_WORKERS = 4", "MAX_WORKERS = 3")  # outside the summaries' closure
    assert closure.code_hash("report.summaries") == before["report.summaries"]
    assert closure.code_hash("report.site") != before["report.site"]
    edit(tree, "report.grading.runs", "def ", "def _unused():\n    return 1\n\n\ndef ")  # code inside it
    assert closure.code_hash("report.summaries") != before["report.summaries"]


def chart(data: pd.DataFrame, label: str = "a") -> Chart:
    from report.figures.layer_flow import draw_flow

    return Chart("flow", data, "caption", "alt", partial(draw_flow, data, label))


def test_a_figure_stamp_follows_its_data_and_every_argument_of_its_drawing():
    data = pd.DataFrame({"x": [1.0, 2.0]})
    stamp = figure_cache.Shelf.stamp(chart(data))
    assert figure_cache.Shelf.stamp(chart(data.copy())) == stamp  # the same content
    assert figure_cache.Shelf.stamp(chart(data.assign(x=[1.0, 2.5]))) != stamp
    assert figure_cache.Shelf.stamp(chart(data, "b")) != stamp  # an argument besides the data


def test_a_rebuild_renders_only_the_pages_whose_template_changed(pair_sweep, tmp_path, monkeypatch):
    templates = tmp_path / "templates"
    shutil.copytree(render.TEMPLATES, templates)
    monkeypatch.setattr(render, "TEMPLATES", templates)
    render.templates_of.cache_clear()
    rendered = []
    monkeypatch.setattr(site, "render", lambda env, page, *a, **k: rendered.append(page.path) or
                        render.render(env, page, *a, **k))
    out = tmp_path / "site"
    site.build(pair_sweep, out)
    every = set(rendered)
    rendered.clear()
    site.build(pair_sweep, out)
    assert rendered == []  # nothing changed: every page copied from the previous build
    scenario = templates / "scenario.html.j2"
    scenario.write_text(scenario.read_text().replace("{% block content %}", "{% block content %}<!-- edited -->", 1))
    render.templates_of.cache_clear()
    site.build(pair_sweep, out)
    assert rendered and set(rendered) == {p for p in every if p.startswith("scenarios/")}
    assert all("<!-- edited -->" in (out / p).read_text() for p in rendered)
    rendered.clear()
    (out / "methods.html").write_text("edited by hand")  # a page's file no longer the one the build wrote
    site.build(pair_sweep, out)
    assert rendered == ["methods.html"] and "edited by hand" not in (out / "methods.html").read_text()
    render.templates_of.cache_clear()


def test_relative_imports_are_followed_like_absolute_ones(tree):
    (tree / "report" / "grading" / "probe.py").write_text("from . import rules\nfrom ..depth_scan import laws\n")
    assert {"report.grading.rules", "report.depth_scan", "report.grading", "report"} <= closure.imports(
        "report.grading.probe")
