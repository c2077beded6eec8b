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
import tarfile
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bench import store
from bench.scenarios import SCENARIOS
from report import publish, render, sets, site
from report.article import article_page
from report.data import Data, load
from report.figure_cache import Shelf
from report.overview import index_page
from report.phenomena import PHENOMENA, phenomenon_page
from report.views import cell_views
from tests.helpers import (
    BUILT_AT,
    SETS,
    SMOKE_SCENARIOS,
    SMOKE_SEEDS,
    assert_user_error,
    check_links,
    html_pages,
    parse,
    run_cli,
    sets_root,
    site_copy,
)


@pytest.fixture(scope="session")
def data(results) -> Data:
    return load(results)


def shelf(root: Path, built: Path) -> Shelf:
    """A shelf that copies the built site's figures (their stamps match) instead of drawing them again."""
    return Shelf(root, previous=built)


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
        elif relative.name == site.PAGES_FILE:  # each page's stamp, then the hash of its file, "Built at" line included
            stamps = [{path: rec and rec.split()[0] for path, rec in json.loads(raw).items()} for raw in (a, b)]
            assert stamps[0] == stamps[1] and any(stamps[0].values()), relative
        else:
            assert a == b, relative


@pytest.fixture
def one_run(results, tmp_path) -> Path:
    """A results folder of a single sigmoid run, for tests that build several sites."""
    folder = tmp_path / "one-run"
    folder.mkdir()
    shutil.copy(sorted(results.glob("sigmoid-*.parquet"))[0], folder)
    return folder


@pytest.fixture(scope="module")
def one_run_site(results, tmp_path_factory) -> Path:
    """one_run's site, built once for the tests that only need a site a build made (they copy it)."""
    folder = tmp_path_factory.mktemp("one-run-site")
    (folder / "one-run").mkdir()
    shutil.copy(sorted(results.glob("sigmoid-*.parquet"))[0], folder / "one-run")
    return site.build(folder / "one-run", folder / "site", built_at=BUILT_AT).parent


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


def test_rebuilding_replaces_what_builds_wrote_and_keeps_the_users_files(one_run, one_run_site, tmp_path):
    out = site_copy(one_run_site, tmp_path / "site")
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
def test_cli_refuses_a_site_folder_that_holds_or_lies_in_the_results(one_run, one_run_site, tmp_path, layout):
    out = site_copy(one_run_site, tmp_path / "site")
    results = {"results inside the site": out / "results", "site inside the results": tmp_path / "results",
               "the same folder": out}[layout]
    if results != out:
        shutil.copytree(one_run, results)
    target = results / "site" if layout == "site inside the results" else out
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert_user_error(run_cli("build", "--results", str(results), "--out", str(target)), "results folder")
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before  # nothing written or deleted


def test_rebuilding_keeps_the_benchmark_page_and_links_it(one_run, one_run_site, tmp_path):
    out = site_copy(one_run_site, tmp_path / "site")
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
        run_id = pa.array([meta["run"]["run_id"]] * len(table), pa.string())
        table = table.set_column(table.schema.get_field_index("run_id"), "run_id", run_id)  # rows of that run
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


# -- a site of result sets (python -m report build over a results root) ------------------------------------


def visible_text(page: Path) -> str:
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page.read_text(encoding="utf-8"))))


def test_the_landing_page_lists_every_set_from_its_runs_metadata(sets_site, results):
    landing = parse(sets_site / "index.html")
    for path in SETS:
        assert f"{path}/index.html" in landing.links
        assert (sets_site / path / "index.html").is_file()
    meta = store.read_metadata(sorted(results.glob("sigmoid-*.parquet"))[0])
    text = visible_text(sets_site / "index.html")
    assert text.count(f"smoke · synthetic · TF {meta['tf_version']} · {meta['device']} (cpu)") == len(SETS)
    assert meta["keras_version"] in text and meta["git_commit"][:10] in text
    assert check_links(sets_site) > 2 * 200  # every link of the landing page, the sets' pages and the diff resolves


def test_each_set_has_the_whole_report_with_a_link_home(sets_site, built):
    pages = {p.relative_to(built).as_posix() for p in html_pages(built)}
    for path in SETS:
        assert {p.relative_to(sets_site / path).as_posix() for p in html_pages(sets_site / path)} == pages
        for page in html_pages(sets_site / path):
            home = "../" * (page.relative_to(sets_site).as_posix().count("/")) + "index.html"
            assert home in parse(page).links, page


def test_a_set_page_says_what_produced_it_and_links_its_raw_data(sets_site, results):
    meta = store.read_metadata(sorted(results.glob("sigmoid-*.parquet"))[0])
    for path in SETS:
        index = sets_site / path / "index.html"
        text = visible_text(index)
        assert "What produced these results" in text
        for value in ("smoke", "synthetic", meta["tf_version"], meta["keras_version"], meta["device"],
                      meta["git_commit"][:10], meta["gradbench_version"], meta["started_at"][:10]):
            assert value in text, value
        assert f"python -m bench sweep --profile smoke --scenarios {SMOKE_SCENARIOS} --seeds 0,1 --dataset synthetic " \
               f"--results {sets_site.parent / 'sets-root' / path}" in text
        archive = path.replace("/", "-") + ".tar.gz"
        assert archive in parse(index).links
        with tarfile.open(sets_site / path / archive) as tar:
            packed = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
        files = [*results.glob("*.parquet"), *results.glob("scan/*.parquet")]
        assert packed == {f"{path}/{f.relative_to(results).as_posix()}": f.read_bytes() for f in files}


def test_a_set_too_large_to_carry_gets_the_command_that_trains_it_again(results, tmp_path, monkeypatch):
    monkeypatch.setattr(sets, "ARCHIVE_LIMIT", 1000)
    root = sets_root(results, tmp_path / "root")
    recorded = pd.DataFrame([store.read_metadata(f) for f in sorted(results.glob("*.parquet"))])
    entry = sets.describe(root, root / SETS[0], recorded, len(recorded), "results")
    sets.add_raw_data(root, root / SETS[0], entry, tmp_path / "site")
    assert entry.archive == "" and not (tmp_path / "site").exists()
    assert entry.command == (f"python -m bench sweep --profile smoke --scenarios {SMOKE_SCENARIOS} --seeds 0,1 "
                             f"--dataset synthetic --results results/{SETS[0]} && python -m bench scan --profile smoke "
                             f"--dataset synthetic --results results/{SETS[0]}")


def test_the_diff_is_linked_from_the_sets_it_compares_and_links_home(sets_site):
    diffs = [p.relative_to(sets_site).as_posix() for p in (sets_site / "diff").glob("*.html")]
    assert len(diffs) == 1
    assert parse(sets_site / "index.html").links.count(diffs[0]) == len(SETS) + 1  # each set's row, the list
    assert "../index.html" in parse(sets_site / diffs[0]).links


def test_a_second_build_of_an_unchanged_root_renders_nothing_again(sets_site, tmp_path):
    root, out = sets_site.parent / "sets-root", tmp_path / "site"
    shutil.copytree(sets_site, out)
    rebuilt = (out / "index.html", out / publish.MARKER)  # the landing page, the list of the files (now the diff's)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file() and p not in rebuilt}
    done = run_cli("build", "--results", str(root), "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [f"{path}: unchanged, its pages reused" for path in SETS]
    after = {p: p.read_bytes() for p in out.rglob("*") if p.is_file() and p not in rebuilt}
    assert after == before  # the sets' pages, figures and archives, the record, the diff: the same bytes
    assert parse(out / "index.html").links == parse(sets_site / "index.html").links  # the diff still listed
    moved = sorted((root / SETS[0]).glob("sigmoid-*.parquet"))[0]
    shutil.move(moved, tmp_path)  # one set changes (put back after: other tests read the root)
    try:
        done = run_cli("build", "--results", str(root), "--out", str(out))
    finally:
        shutil.move(tmp_path / moved.name, moved)
    assert done.stderr.splitlines() == [f"{SETS[0]}: rendered", f"{SETS[1]}: unchanged, its pages reused"]
    assert (out / SETS[1] / "index.html").read_bytes() == (sets_site / SETS[1] / "index.html").read_bytes()
    assert (out / SETS[0] / "index.html").read_bytes() != (sets_site / SETS[0] / "index.html").read_bytes()


def test_a_single_folder_builds_its_report_as_before_and_as_a_set_does(built, sets_site):
    """No landing page, no link home, no provenance section: the set's pages are the single folder's but for those."""
    assert not (built / sets.SETS_FILE).exists()
    assert "All result sets" not in "".join(p.read_text() for p in html_pages(built))
    assert "What produced these results" not in (built / "index.html").read_text()
    in_set = sets_site / SETS[1]
    for page in html_pages(built):
        mine = (in_set / page.relative_to(built)).read_text()
        mine = re.sub(r'\n    <p class="note"><a href="[./]*index.html">← All result sets</a>[^\n]*', "", mine)
        mine = re.sub(r'<section aria-labelledby="produced">.*?</section>\n\n', "", mine, flags=re.S)
        assert without_build_time(mine)[0] == without_build_time(page.read_text())[0], page
    figures = [p.relative_to(built) for p in built.rglob("*") if p.name.endswith((".svg", ".csv.gz"))]
    assert figures and all((in_set / f).read_bytes() == (built / f).read_bytes() for f in figures)


def test_cli_a_root_without_runs_or_with_foreign_files_is_one_line(tmp_path):
    (tmp_path / "results" / "quick" / "tf-2.21.0").mkdir(parents=True)
    (tmp_path / "results" / "quick" / "tf-2.21.0" / "scan").mkdir()
    build = ("build", "--results", str(tmp_path / "results"), "--out", str(tmp_path / "site"))
    assert_user_error(run_cli(*build), "no result files")
    pq.write_table(pa.table({"x": [1, 2]}), tmp_path / "results" / "quick" / "tf-2.21.0" / "run.parquet")
    assert_user_error(run_cli(*build), "tf-2.21.0/run.parquet: a parquet file, but not a gradbench result")
    (tmp_path / "results" / "quick" / "tf-2.21.0" / "run.parquet").unlink()
    (tmp_path / "results" / "diff").mkdir()
    (tmp_path / "results" / "diff" / "run.parquet").write_text("not parquet")
    assert_user_error(run_cli(*build), "may not be named 'diff'")
    assert not (tmp_path / "site").exists()
