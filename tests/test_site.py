"""The site, built from a small real results folder (bench's smoke profile).

Page data is checked against numbers computed here straight from the parquet files; every page is
checked for local links and images that exist, no remote URLs, balanced HTML; two builds are
compared byte for byte; a data-derived string with '<' is escaped; the CLI's user errors are one line.
"""

import dataclasses
import html
import json
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pandas as pd
import pyarrow.parquet as pq
import pytest

from bench import store
from bench.scenarios import SCENARIOS
from report import publish, render, site
from report.article import article_page
from report.data import Data, load
from report.figure_cache import Shelf
from report.overview import index_page
from report.phenomena import PHENOMENA, phenomenon_page
from report.views import cell_views

ROOT = Path(__file__).resolve().parent.parent
SMOKE_SCENARIOS = "sigmoid,relu_he,linear,linear_clipnorm"
SMOKE_SEEDS = [0, 1]
BUILT_AT = "2000-01-01 00:00:00 UTC"
SITE_FOLDER = "site"  # under pytest's base temp folder, shared with test_browser.py


def sweep_smoke(folder: Path) -> Path:
    """Run (or resume: finished runs are skipped) the smoke sweep that the site tests read."""
    command = [
        sys.executable,
        "-m",
        "bench",
        "sweep",
        "--profile",
        "smoke",
        "--results",
        str(folder),
        "--scenarios",
        SMOKE_SCENARIOS,
        "--seeds",
        ",".join(map(str, SMOKE_SEEDS)),
    ]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, f"bench sweep failed:\n{done.stderr[-3000:]}"
    scan = [sys.executable, "-m", "bench", "scan", "--profile", "smoke", "--results", str(folder)]
    done = subprocess.run(scan, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"bench scan failed:\n{done.stderr[-3000:]}"
    return folder


@pytest.fixture(scope="session")
def results(tmp_path_factory) -> Path:
    return sweep_smoke(tmp_path_factory.getbasetemp() / "smoke-results")


@pytest.fixture(scope="session")
def built(results, tmp_path_factory) -> Path:
    """The site, built by the CLI as a user would."""
    out = tmp_path_factory.getbasetemp() / SITE_FOLDER
    done = run_cli("build", "--results", str(results), "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(out / "index.html")
    return out


@pytest.fixture(scope="session")
def data(results) -> Data:
    return load(results)


def shelf(root: Path, built: Path) -> Shelf:
    """A shelf that copies the built site's figures (their stamps match) instead of drawing them again."""
    return Shelf(root, previous=built)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "report", *args], cwd=ROOT, capture_output=True, text=True, timeout=900
    )


# -- expected values, computed here from the files ------------------------------------------------


def raw(results: Path) -> pd.DataFrame:
    return pd.concat([pq.read_table(f).to_pandas() for f in sorted(results.glob("*.parquet"))])


def expected_accuracy(results: Path) -> pd.DataFrame:
    """Median, min, max over seeds of each run's last-epoch test accuracy."""
    epochs = raw(results).query("kind == 'epoch'").sort_values("epoch")
    last = epochs.groupby("run_id").tail(1)
    return last.groupby(["scenario", "depth"])["test_accuracy"].agg(["median", "min", "max"])


def expected_step0_ratio(results: Path) -> pd.Series:
    """Median over seeds of ‖δ first hidden‖ / ‖δ last hidden‖ at step 0."""
    rows = raw(results).query("kind == 'layer' and step == 0 and layer_role == 'hidden'").sort_values("layer")
    per_run = rows.groupby("run_id").agg(
        scenario=("scenario", "first"),
        depth=("depth", "first"),
        first=("delta_norm", "first"),
        last=("delta_norm", "last"),
    )
    per_run["ratio"] = per_run["first"] / per_run["last"]
    return per_run.groupby(["scenario", "depth"])["ratio"].median()


def test_index_cells_match_the_files(results, data, tmp_path):
    views = cell_views(data)
    accuracy, ratio = expected_accuracy(results), expected_step0_ratio(results)
    assert sorted((v.scenario, v.depth) for v in views) == sorted(accuracy.index)
    for view in views:
        want = accuracy.loc[(view.scenario, view.depth)]
        assert (view.accuracy_median, view.accuracy_min, view.accuracy_max) == pytest.approx(
            tuple(want), rel=1e-6
        )
        assert view.delta_ratio_init == pytest.approx(ratio.loc[(view.scenario, view.depth)], rel=1e-5)
        assert view.seeds == len(SMOKE_SEEDS) and view.href == f"scenarios/{view.scenario}.html"
        assert view.verdict_label.endswith(f"/{len(SMOKE_SEEDS)}")


def test_index_overview_counts_the_runs(results, data, tmp_path, built):
    views = cell_views(data)
    article = article_page(data, shelf(tmp_path, built))
    page = index_page(data, views, article, shelf(tmp_path, built))
    overview = dict(page.overview)
    files = sorted(results.glob("*.parquet"))
    assert overview["runs"] == str(len(files))
    assert overview["seeds"] == ", ".join(map(str, SMOKE_SEEDS))
    assert overview["profile"] == "smoke"
    assert [link.title for link in page.missing] == [
        n for n in SCENARIOS if n not in SMOKE_SCENARIOS.split(",")
    ]
    assert sum(s.runs for s in page.result_sets) == len(files)


def test_vanishing_page_compares_what_exists_and_names_what_is_missing(data, tmp_path, built):
    views = cell_views(data)
    vanishing = next(p for p in PHENOMENA if p.slug == "vanishing")
    page = phenomenon_page(vanishing, data, views, shelf(tmp_path, built))
    assert page.depth == 11 and page.seeds == SMOKE_SEEDS
    assert [row.scenario for row in page.rows] == ["sigmoid", "relu_he"]
    assert page.missing == ["tanh", "relu_he_bn", "resmlp"]
    assert page.at["tanh"] is None and page.at["sigmoid"].depth == 11
    assert len(page.figures) == len(vanishing.figures)
    for figure in page.figures:
        assert (tmp_path / figure.svg).read_bytes() == (built / figure.svg).read_bytes()  # reused, not drawn
        assert (tmp_path / figure.csv).exists()


def test_exploding_page_compares_at_the_article_depth(data, results, tmp_path, built):
    exploding = next(p for p in PHENOMENA if p.slug == "exploding")
    page = phenomenon_page(exploding, data, cell_views(data), shelf(tmp_path, built))
    assert page.depth == 21
    assert [row.scenario for row in page.rows] == ["linear", "linear_clipnorm"]
    clip = page.at["linear_clipnorm"]
    fired = raw_clip_fraction(results, "linear_clipnorm", 21)
    assert clip.clip_fraction == pytest.approx(fired)


def raw_clip_fraction(results: Path, scenario: str, depth: int) -> float:
    step = store.load(results).step
    rows = step[(step["scenario"] == scenario) & (step["depth"] == depth)]
    return float(rows.groupby("seed")["clipped"].mean().median())


def test_article_page_checks_four_claims_and_says_which_are_missing(data, tmp_path, built):
    page = article_page(data, shelf(tmp_path, built))
    assert [c.scenario for c in page.claims] == ["sigmoid", "resnet", "linear", "linear_clipnorm", "rnn_tanh",
                                                 "lstm", "rnn_relu_clipnorm"]
    resnet = page.claims[1]
    assert resnet.reproduced is None and "no runs" in resnet.measured
    assert all(c.reproduced is None for c in page.claims[4:])  # no recurrent runs here: said, not graded
    assert page.checked == 3


def test_a_missing_scenario_gets_a_page_that_says_so(built):
    html = (built / "scenarios" / "tanh.html").read_text()
    assert "No results for this scenario" in html


# -- the built site ------------------------------------------------------------------------------


class PageParser(HTMLParser):
    """Links, images, ids and tag balance of one HTML page."""

    VOID = {
        "area",
        "base",
        "br",
        "col",
        "embed",
        "hr",
        "img",
        "input",
        "link",
        "meta",
        "source",
        "track",
        "wbr",
    }

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []
        self.images: list[dict] = []
        self.ids: list[str] = []
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.tags: list[str] = []
        self.doctype = ""

    def handle_decl(self, decl):
        self.doctype = decl

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        self.ids += [attrs["id"]] if "id" in attrs else []
        self.links += [attrs[k] for k in ("href", "src") if k in attrs]
        if tag == "img":
            self.images.append(attrs)
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else 'nothing'}>")
        else:
            self.stack.pop()


def parse(path: Path) -> PageParser:
    parser = PageParser()
    parser.feed(path.read_text(encoding="utf-8"))
    parser.close()
    return parser


def html_pages(root: Path) -> list[Path]:
    return sorted(root.rglob("*.html"))


def test_the_site_has_every_page(built):
    names = {p.relative_to(built).as_posix() for p in html_pages(built)}
    expected = {
        "index.html",
        "article.html",
        "methods.html",
        *(f"{p.slug}.html" for p in PHENOMENA),
        *(f"scenarios/{n}.html" for n in SCENARIOS),
    }
    assert names == expected
    assert (built / "style.css").exists()


def test_pages_are_balanced_html5_with_one_h1_and_unique_ids(built):
    for path in html_pages(built):
        page = parse(path)
        assert page.doctype.lower() == "doctype html", path
        assert not page.errors and not page.stack, (path, page.errors, page.stack)
        assert page.tags.count("h1") == 1, path
        assert len(page.ids) == len(set(page.ids)), (
            path,
            sorted(i for i in page.ids if page.ids.count(i) > 1),
        )
        assert "script" not in page.tags and "iframe" not in page.tags, path


def check_links(root: Path) -> int:
    """Every link of every page under root is local, resolves inside root (fragments too), every image has
    alt text; returns how many links were checked."""
    ids = {path.resolve(): set(parse(path).ids) for path in html_pages(root)}
    checked = 0
    for path in html_pages(root):
        page = parse(path)
        for link in page.links:
            parts = urlsplit(link)
            assert not parts.scheme and not parts.netloc and not link.startswith("/"), (path, link)
            target = (path.parent / unquote(parts.path)).resolve() if parts.path else path.resolve()
            assert target.is_relative_to(root.resolve()) and target.exists(), (path, link)
            if parts.fragment and target.suffix == ".html":
                assert parts.fragment in ids[target], (path, link)
            checked += 1
        for image in page.images:
            assert image.get("alt", "").strip(), (path, image)
    return checked


def test_every_local_link_and_image_exists_and_none_is_remote(built):
    checked = check_links(built)
    assert checked > 200


def test_figures_are_svg_with_csv_beside_and_data_derived_alt_text(built):
    page = parse(built / "vanishing.html")
    assert len(page.images) >= 3
    for image in page.images:
        svg = built / image["src"]
        assert svg.suffix == ".svg" and (svg.parent / f"{svg.stem}.csv.gz").exists()
        assert re.search(r"\d", image["alt"]), image["alt"]  # written from the numbers, not a fixed label
    sizes = [p.stat().st_size for p in built.rglob("*.svg")]
    assert max(sizes) < 400_000, max(sizes)


def test_stylesheet_and_pages_request_nothing_remote(built):
    css = (built / "style.css").read_text()
    assert "url(" not in css and "@import" not in css and "@font-face" not in css
    for path in [*html_pages(built), *built.rglob("*.svg")]:
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", text), path


def without_build_time(text: str) -> tuple[str, int]:
    lines = text.splitlines()
    kept = [line for line in lines if render.BUILT_AT_PREFIX not in line]
    return "\n".join(kept), len(lines) - len(kept)


def test_two_builds_are_identical_but_for_the_build_time(built, results, tmp_path):
    again = site.build(results, tmp_path / "again", built_at=BUILT_AT).parent
    first = sorted(p.relative_to(built) for p in built.rglob("*") if p.is_file())
    assert first == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    for relative in first:
        a, b = (built / relative).read_bytes(), (again / relative).read_bytes()
        if relative.suffix == ".html":
            (text_a, lines_a), (text_b, lines_b) = (
                without_build_time(a.decode()),
                without_build_time(b.decode()),
            )
            assert lines_a == lines_b == 1 and text_a == text_b, relative
            assert BUILT_AT in b.decode()
        else:
            assert a == b, relative


@pytest.fixture
def one_run(results, tmp_path) -> Path:
    """A results folder of a single sigmoid run, for tests that build several sites."""
    folder = tmp_path / "one-run"
    folder.mkdir()
    shutil.copy(sorted(results.glob("sigmoid-*.parquet"))[0], folder)
    return folder


def test_data_derived_strings_are_escaped(one_run, tmp_path):
    path = next(one_run.glob("*.parquet"))
    table = pq.read_table(path)
    meta = json.loads(table.schema.metadata[store.METADATA_KEY])
    meta["run"]["dataset_note"] = '<script>alert("gradbench")</script> & <b>bold</b>'
    store.write_atomically(table.replace_schema_metadata({store.METADATA_KEY: json.dumps(meta)}), path)
    out = site.build(one_run, tmp_path / "site", built_at=BUILT_AT).parent
    html = "".join(p.read_text() for p in html_pages(out))
    assert "<script>" not in html and "<b>bold</b>" not in html
    assert (
        html.count("&lt;script&gt;alert(&#34;gradbench&#34;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;")
        >= 2
    )


# -- the command line ----------------------------------------------------------------------------


def assert_user_error(done: subprocess.CompletedProcess, words: str) -> None:
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr, done.stderr
    assert words in done.stderr, done.stderr


def test_cli_missing_results_folder(tmp_path):
    assert_user_error(
        run_cli("build", "--results", str(tmp_path / "nope"), "--out", str(tmp_path / "s")),
        "no such results folder",
    )


def test_cli_empty_results_folder(tmp_path):
    (tmp_path / "results").mkdir()
    assert_user_error(
        run_cli("build", "--results", str(tmp_path / "results"), "--out", str(tmp_path / "s")), "no result files"
    )


def test_cli_corrupt_results_file(tmp_path):
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "run.parquet").write_text("not parquet")
    assert_user_error(
        run_cli("build", "--results", str(tmp_path / "results"), "--out", str(tmp_path / "s")),
        "not a readable parquet file",
    )


def test_cli_bad_arguments(tmp_path):
    assert_user_error(run_cli("build", "--out", str(tmp_path)), "--results")
    assert_user_error(run_cli("upload", "--results", str(tmp_path)), "invalid choice")


def test_cli_refuses_to_overwrite_a_folder_that_is_not_a_site(results, tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    assert_user_error(
        run_cli("build", "--results", str(results), "--out", str(tmp_path)), "not a gradbench site"
    )
    assert (tmp_path / "keep.txt").read_text() == "mine"


def test_rebuilding_replaces_what_builds_wrote_and_keeps_the_users_files(one_run, tmp_path):
    out = tmp_path / "site"
    site.build(one_run, out, built_at=BUILT_AT)
    (out / "stale.html").write_text("old")  # as if an earlier build had written it
    with (out / publish.MARKER).open("a") as marker:
        marker.write("stale.html\n")
    (out / "notes.txt").write_text("mine")
    (out / "figures" / "sketch.png").write_bytes(b"also mine")
    site.build(one_run, out, built_at=BUILT_AT)
    assert not (out / "stale.html").exists() and (out / "index.html").exists()
    assert (out / "notes.txt").read_text() == "mine" and (out / "figures" / "sketch.png").read_bytes() == b"also mine"
    listed = (out / publish.MARKER).read_text().splitlines()
    assert "index.html" in listed and "notes.txt" not in listed  # so the next build keeps them again
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folder left behind


def test_a_build_removes_what_killed_builds_left_beside_the_site(one_run, tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)  # a process that has exited
    parent = tmp_path / "published"
    for folder in (parent / f".site.{pid}.building", parent / f".site.{pid}.old"):
        (folder / "figures").mkdir(parents=True)
        (folder / "index.html").write_text("half a site")
        publish.claim(folder, folder.name)  # the marker a build puts in what it makes (a user's folder has none)
    site.build(one_run, parent / "site", built_at=BUILT_AT)
    assert sorted(p.name for p in parent.iterdir()) == ["site"]


@pytest.mark.parametrize("layout", ["results inside the site", "site inside the results", "the same folder"])
def test_cli_refuses_a_site_folder_that_holds_or_lies_in_the_results(one_run, tmp_path, layout):
    out = tmp_path / "site"
    site.build(one_run, out, built_at=BUILT_AT)
    results = {"results inside the site": out / "results", "site inside the results": tmp_path / "results",
               "the same folder": out}[layout]
    if results != out:
        shutil.copytree(one_run, results)
    target = results / "site" if layout == "site inside the results" else out
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert_user_error(run_cli("build", "--results", str(results), "--out", str(target)), "results folder")
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before  # nothing written or deleted


def test_rebuilding_keeps_the_benchmark_page_and_links_it(one_run, tmp_path):
    out = tmp_path / "site"
    site.build(one_run, out, built_at=BUILT_AT)
    assert "Not measured for this site" in (out / "index.html").read_text()
    (out / "benchmark.json").write_text("{}")
    page = publish.AddedPage("benchmark.html", "Benchmark", "measured 2026-01-02 03:04:05 UTC on Test CPU",
                             "benchmark", ("benchmark.json",))
    publish.add_page(out, page, "<!DOCTYPE html><title>benchmark</title>")
    site.build(one_run, out, built_at=BUILT_AT)
    index = (out / "index.html").read_text()
    assert (out / "benchmark.html").read_text() == "<!DOCTYPE html><title>benchmark</title>"
    assert (out / "benchmark.json").read_text() == "{}"  # the page's files are kept with it
    assert 'href="benchmark.html"' in index and "measured 2026-01-02 03:04:05 UTC on Test CPU" in index


# -- never pooled; every sentence follows its numbers --------------------------------------------


def test_a_folder_of_two_profiles_shows_one_and_names_the_other(results, tmp_path):
    folder = tmp_path / "mixed"
    shutil.copytree(results, folder)
    for path in sorted(folder.glob("sigmoid-*.parquet")):  # the same runs again, as if of another profile
        table = pq.read_table(path)
        meta = json.loads(table.schema.metadata[store.METADATA_KEY])
        meta["run"].update(profile="full", epochs=10, run_id=meta["run"]["run_id"] + "-full")
        store.write_atomically(table.replace_schema_metadata({store.METADATA_KEY: json.dumps(meta)}),
                               folder / f"{meta['run']['run_id']}.parquet")
    data = load(folder)
    assert set(data.recorded["profile"]) == {"smoke"}
    views = cell_views(data)
    assert all(v.seeds == len(SMOKE_SEEDS) for v in views)  # no cell counts a seed twice
    assert [a.runs for a in data.set_aside] == [2 * len(SMOKE_SEEDS)] and "profile full" in data.set_aside[0].what
    out = site.build(folder, tmp_path / "site", built_at=BUILT_AT).parent
    assert "This folder also holds runs this site does not show" in (out / "index.html").read_text()
    assert "profile full" in (out / "methods.html").read_text()


def render_phenomenon(data: Data, slug: str, built: Path, tmp_path: Path, **cells) -> str:
    """A phenomenon page with some of its cells replaced by planted values."""
    phenomenon = next(p for p in PHENOMENA if p.slug == slug)
    page = phenomenon_page(phenomenon, data, cell_views(data), shelf(tmp_path, built))
    for name, changes in cells.items():
        page.at[name] = dataclasses.replace(page.at[name], **changes)
    html = render.render(render.environment(), render.Page(f"{slug}.html", f"{slug}.html.j2", slug, page), BUILT_AT)
    return re.sub(r"\s+", " ", html)


def test_exploding_page_says_whether_the_linear_net_exploded(data, built, tmp_path):
    calm = render_phenomenon(data, "exploding", built, tmp_path, linear={"verdict": "healthy", "steps": 256.0})
    assert "did not explode in its 256 steps" in calm and "Here they do" not in calm
    burst = render_phenomenon(data, "exploding", built, tmp_path,
                              linear={"verdict": "exploding", "growth": 3e8, "growth_epoch": 3.0})
    assert "Here they do for the linear net" in burst and "did not explode" not in burst
    assert "crossing 1e+03× in epoch 3" in burst.replace("1.00e+03", "1e+03")
    assert "initialisation with χ ≈ 1 removes the first route" in burst  # no longer listed as a fix


@pytest.mark.parametrize("factor, word", [(1.23, "amplifies"), (0.5, "shrinks"), (1.02, "keeps")])
def test_batch_norm_page_names_what_it_does_to_the_signal(data, built, tmp_path, factor, word):
    from report.grading.verdicts import law

    views = {v.scenario: v for v in cell_views(data) if v.depth == 11}
    relu = views["relu_he"]
    data_with_bn = dataclasses.replace(relu, scenario="relu_he_bn", factor_init=factor, law=law(factor),
                                       delta_ratio_init=factor ** 10)
    phenomenon = next(p for p in PHENOMENA if p.slug == "batch-norm")
    page = phenomenon_page(phenomenon, data, cell_views(data), shelf(tmp_path, built))
    page.at["relu_he_bn"] = data_with_bn
    html = re.sub(r"\s+", " ", render.render(render.environment(),
                                           render.Page("batch-norm.html", "batch-norm.html.j2", "bn", page), BUILT_AT))
    assert f"with batch norm the network {word} ‖δ‖" in html and f"its law is {law(factor)}" in html
    if word == "amplifies":
        assert "amplifies ‖δ‖ towards the input by 1.23× per layer" in html


def test_initialisation_page_shows_the_depth_scan(built):
    html = (built / "initialisation.html").read_text()
    assert 'id="scan"' in html and "Depth scan: the law of ‖δ‖ over depth" in html
    assert "exponential" in html and "depth-scan.svg" in html


def test_the_methods_page_prints_every_rule_and_the_measured_agreement(built, results):
    """Each threshold with its reason, the verdict and effect rules, and 'N of M cells' with every disagreement named,
    counted from the same cells the index shows."""
    from bench import store
    from report.grading.cells import agreement, cell_table
    from report.grading.rules import EFFECTS, RULES, THRESHOLDS
    from report.grading.runs import run_table

    text = re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", (built / "methods.html").read_text())))
    agree, total, disputed = agreement(cell_table(run_table(store.load(results))))
    assert f"In these results it does in {agree} of {total} cells" in text
    assert all(line in text for line in disputed)
    assert all(name in text for name in THRESHOLDS) and all(rule in text for _, rule in (*RULES, *EFFECTS))
