"""report/matrix.py: several result sets in order, and the version at which each change first appeared, on a tiny
real sweep and copies of it that claim later versions, one with a planted change."""

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from bench import store
from bench.scenarios import SCENARIOS
from report import diff, floor, matrix, site
from report.diff import ALL_METRICS

LOSS = ALL_METRICS["final_test_loss"].label


def as_version(source: Path, target: Path, version: str, scenario: str = "", factor: float = 1.0,
               controls: bool = True) -> Path:
    """A copy of a results folder whose runs claim another TensorFlow; `scenario`'s held-out losses times factor."""
    ignore = None if controls else shutil.ignore_patterns(store.CONTROLS_FOLDER)
    shutil.copytree(source, target, ignore=ignore)
    for path in store.run_files(target):
        table = pq.read_table(path)
        meta = json.loads(table.schema.metadata[store.METADATA_KEY])
        meta["run"].update(tf_version=version, keras_version=version)
        frame = table.to_pandas()
        if meta["run"]["scenario"] == scenario:
            frame.loc[frame["kind"] == "epoch", "test_loss"] *= factor
        new = store.pa.Table.from_pandas(frame, schema=store.schema(), preserve_index=False)
        store.write_atomically(new.replace_schema_metadata({store.METADATA_KEY: json.dumps(meta)}), path)
    return target


@pytest.fixture(scope="module")
def three(tiny_results, tmp_path_factory):
    """tf-a, then tf-b (the same numbers), then tf-c (linear's held-out loss doubled); tf-a and tf-b with control runs
    (tf-c's, copied, would measure the planted change as its floor)."""
    root = tmp_path_factory.mktemp("matrix")
    middle = as_version(tiny_results, root / "tf-b", "9.1.0")
    last = as_version(middle, root / "tf-c", "9.2.0", scenario="linear", factor=2.0, controls=False)
    diffs = [floor.compare(tiny_results, middle), floor.compare(middle, last)]
    return diffs, matrix.matrix_page(diffs, [diff.diff_page(d) for d in diffs])


def rows_by(page: matrix.MatrixPage) -> dict[tuple[str, str], matrix.MatrixRow]:
    return {(row.scenario, row.metric): row for row in page.rows}


def test_the_matrix_names_the_version_where_a_change_first_appeared(three):
    _, page = three
    assert page.names == ["tf-a", "tf-b", "tf-c"]
    row = rows_by(page)[("linear", LOSS)]
    assert (row.first_differs, row.first_beyond) == ("tf-c", "tf-c"), row
    assert row.marks[0] == "=" and row.steps[0] == "bit-identical"
    assert "beyond" in row.steps[1] and row.marks[1] in (row.steps[1].split(" ")[0], "> 0")
    a, b, c = (float(m) for m in row.medians)
    assert a == b and c == pytest.approx(2 * b, rel=0.01)
    assert page.firsts == [("tf-b", 0, 0), ("tf-c", 1, 1)]


def test_every_metric_of_an_unchanged_cell_is_equal_across_the_versions(three):
    _, page = three
    assert {(r.scenario, r.depth) for r in page.rows} == {("sigmoid", 2), ("relu_he_bn", 2), ("linear", 2)}
    in_catalogue = [name for name in SCENARIOS if name in ("sigmoid", "relu_he_bn", "linear")]
    assert [r.scenario for r in page.rows][::len(matrix.METRICS)] == in_catalogue
    for row in page.rows:
        if row.scenario != "linear" or row.metric != LOSS:
            assert row.marks == ("=", "=") and row.first_differs == row.first_beyond == "—", row
            assert len(set(row.medians)) == 1, row
    assert len(page.rows) == 3 * len(matrix.METRICS)


def test_the_terminal_lists_only_what_went_beyond_the_floor(three):
    _, page = three
    text = matrix.terminal_text(page)
    assert "at tf-b: 0 cells' numbers first differ, 0 first go beyond the floor" in text
    assert "at tf-c: 1 cells' numbers first differ, 1 first go beyond the floor" in text
    table = text.split("metrics whose change goes beyond the floor:")[1].strip().splitlines()
    assert len(table) == 2 and table[1].split()[:2] == ["linear", "2"]


def test_the_page_for_three_folders_shows_where_each_change_appeared(three, tmp_path):
    _, page = three
    html = site.write_matrix(page, tmp_path / "site", built_at="2000-01-01").read_text()
    assert "tf-a → tf-b → tf-c" in html
    assert '<tr><th scope="row">tf-c</th><td class="n">1</td><td class="n">1</td></tr>' in html
    assert '<td>tf-c</td><td class="ko">tf-c</td>' in html
    assert 'href="tf-a__tf-b.html"' in html and 'href="tf-b__tf-c.html"' in html


def test_without_control_runs_a_change_differs_but_is_never_called_beyond_a_floor(tiny_results, tmp_path):
    plain = as_version(tiny_results, tmp_path / "tf-a", tiny_results.name, controls=False)
    later = as_version(plain, tmp_path / "tf-b", "9.1.0", scenario="linear", factor=2.0)
    diffs = [floor.compare(plain, later)]
    page = matrix.matrix_page(diffs, [diff.diff_page(d) for d in diffs])
    row = rows_by(page)[("linear", LOSS)]
    assert (row.first_differs, row.first_beyond, row.marks) == ("tf-b", "—", ("≠",))
    assert page.floor_from == [] and page.firsts == [("tf-b", 1, 0)]


@pytest.mark.parametrize("step, symbol", [("bit-identical", "="), ("within the floor", "≈"), ("no control", "≠"),
                                          ("3.2× beyond the floor", "3.2×"), ("beyond a zero floor", "> 0")])
def test_a_step_s_symbol(step, symbol):
    assert matrix.mark(step) == symbol
