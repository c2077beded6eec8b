"""report/publish.py: a site folder is written only where this project may write, replaced whole, keeping the
user's files and the pages other commands added (not the gh-pages deploy: that is report/deploy.py)."""

import json
import os
from pathlib import Path

import pytest

from report import publish


def build(out: Path, pages: dict[str, str]) -> None:
    """What report build does with a folder: write pages into the staging folder, mark them, replace out."""
    with publish.replacing(out) as (staging, _previous):
        for name, text in pages.items():
            (staging / name).parent.mkdir(parents=True, exist_ok=True)
            (staging / name).write_text(text)
        publish.mark_site(staging)


def files(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


def dead_pid() -> int:
    child = os.fork()
    if child == 0:
        os._exit(0)
    os.waitpid(child, 0)
    return child


@pytest.fixture
def site(tmp_path) -> Path:
    out = tmp_path / "site"
    build(out, {"index.html": "first index", "old.html": "a page the next build drops", "figures/a.svg": "<svg/>"})
    return out


def test_a_build_lists_what_it_wrote_and_leaves_nothing_beside_the_site(site):
    assert publish.is_built_site(site)
    listed = publish.written_by_build(site) - {publish.BUILD_MARKER}  # (the staging folder's own marker is listed)
    assert listed == {publish.MARKER, "index.html", "old.html", "figures/a.svg", "style.css"}
    assert [p.name for p in site.parent.iterdir()] == ["site"]  # no staging or old folder left
    assert not (site / publish.BUILD_MARKER).exists()


def test_a_rebuild_replaces_what_builds_wrote_and_keeps_the_users_files(site):
    (site / "notes.txt").write_text("mine")
    (site / "figures" / "my-plot.png").write_text("mine too")
    (site / "empty").mkdir()
    (site / "index.html").write_text("edited by hand: a build's file, replaced")
    build(site, {"index.html": "second index"})
    assert files(site) == {
        publish.MARKER: files(site)[publish.MARKER], "index.html": "second index", "notes.txt": "mine",
        "figures/my-plot.png": "mine too", "style.css": files(site)["style.css"],
    }
    assert (site / "empty").is_dir()
    assert "notes.txt" not in publish.written_by_build(site)  # still the user's at the next rebuild


def test_a_failed_build_leaves_the_previous_site_as_it_was(site):
    before = files(site)
    with pytest.raises(RuntimeError, match="rendering failed"), publish.replacing(site) as (staging, previous):
        assert previous == site
        (staging / "index.html").write_text("half a site")
        raise RuntimeError("rendering failed")
    assert files(site) == before
    assert [p.name for p in site.parent.iterdir()] == ["site"]


def test_a_site_link_is_rebuilt_where_it_points(site, tmp_path):
    link = tmp_path / "published"
    link.symlink_to(site)
    build(link, {"index.html": "through the link"})
    assert link.is_symlink() and (site / "index.html").read_text() == "through the link"


def test_only_folders_a_killed_build_made_are_removed(site):
    dead = dead_pid()
    killed = site.with_name(f".site.{dead}.building")
    killed.mkdir()
    publish.claim(killed, killed.name)
    users = site.with_name(f".site.{dead}.old")  # the same kind of name, but no marker: not a build's
    users.mkdir()
    live = site.with_name(f".site.{os.getpid()}.old")
    live.mkdir()
    publish.claim(live, live.name)  # its writer (this process) runs
    publish.remove_dead_builds(site)
    assert not killed.exists() and users.exists() and live.exists()


@pytest.mark.parametrize("what", ["a file", "a folder of other files"])
def test_the_target_must_be_new_empty_or_a_site(tmp_path, what):
    out = tmp_path / "out"
    publish.check_target(out)  # new
    out.mkdir()
    publish.check_target(out)  # empty
    if what == "a file":
        out.rmdir()
        out.write_text("x")
    else:
        (out / "thesis.tex").write_text("x")
    with pytest.raises(publish.SiteError, match="is not a gradbench site"):
        publish.check_target(out)


def test_the_site_may_not_be_the_current_folder_or_hold_it(tmp_path, monkeypatch):
    inner = tmp_path / "work" / "here"
    inner.mkdir(parents=True)
    monkeypatch.chdir(inner)
    for out in (inner, tmp_path / "work", Path(".")):
        with pytest.raises(publish.SiteError, match="must not be the current folder"):
            publish.check_target(out)


@pytest.mark.parametrize("results, out", [("r", "r"), ("r", "r/site"), ("r/site/results", "r/site"),
                                          ("r", "./r/../r")])
def test_the_site_and_the_results_are_kept_apart(tmp_path, results, out):
    with pytest.raises(publish.SiteError, match="must not be, hold or lie inside the results folder"):
        publish.check_apart(tmp_path / results, tmp_path / out)


def test_a_site_beside_the_results_is_allowed(tmp_path):
    publish.check_apart(tmp_path / "results", tmp_path / "results-site")


def test_an_added_page_makes_a_new_folder_a_site_and_survives_rebuilds(tmp_path):
    out = tmp_path / "site"
    out.mkdir()
    (out / "benchmark.json").write_text("{}")  # the page's own file, written first by its command
    page = publish.AddedPage("benchmark.html", "Benchmark", "measured today", "benchmark", ("benchmark.json",))
    assert publish.add_page(out, page, "<p>bench</p>") == out / "benchmark.html"
    assert (out / publish.MARKER).is_file() and (out / "style.css").is_file()
    assert json.loads((out / "benchmark.page.json").read_text())["kind"] == "benchmark"
    diff = publish.AddedPage("diff/a__b.html", "a → b", "2 cells", "diff")
    publish.add_page(out, diff, "<p>diff</p>")
    assert publish.added_pages(out) == [page, diff]
    build(out, {"index.html": "the built site"})
    assert publish.added_pages(out) == [page, diff]
    assert (out / "diff" / "a__b.html").read_text() == "<p>diff</p>"
    assert (out / "benchmark.json").read_text() == "{}"
    (out / "benchmark.json").unlink()  # a page whose files are gone is no longer listed
    assert publish.added_pages(out) == [diff]


def test_an_added_page_is_not_written_into_a_folder_of_other_files_as_a_site(tmp_path):
    out = tmp_path / "notes"
    out.mkdir()
    (out / "thesis.tex").write_text("x")
    publish.add_page(out, publish.AddedPage("d.html", "d", "", "diff"), "<p/>")
    assert not (out / publish.MARKER).exists()  # not marked: a build will not replace the user's folder
    assert not list(out.glob(".*.tmp"))
