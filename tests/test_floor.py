"""Control runs, the noise floor of a diff, its figures and the matrix of several result sets, on real sweeps."""

import shutil

import pytest

from bench import store
from report import diff, floor, matrix
from report.__main__ import main as report_main
from tests.helpers import check_links, copy, rewrite, run_file


@pytest.fixture(scope="module")
def results(pair_sweep, tmp_path_factory):
    """A real smoke sweep (two cells, two seeds: conftest's, copied) and its real control runs."""
    from bench.__main__ import main

    folder = tmp_path_factory.mktemp("floor") / "tf-a"
    shutil.copytree(pair_sweep, folder)
    assert main(["sweep", "--results", str(folder), "--control", "init_ulp", "--scenarios", "sigmoid,linear",
                 "--depths", "2", "--seeds", "0,1"]) == 0
    return folder


def controls_as_another_version(results, tmp_path, name="tf-b"):
    """The control runs, claiming another TensorFlow: a 'version change' that is exactly the perturbation."""
    target = tmp_path / name
    shutil.copytree(results / store.CONTROLS_FOLDER, target)
    for path in store.run_files(target):
        rewrite(path, run=lambda r: r.update(tf_version="9.99.0", keras_version="9.0.0"))
    return target


def planted_copy(results, tmp_path, name, scenario, factor):
    """A copy claiming another version whose `scenario` runs' test loss is `factor` times theirs, without controls
    (copied, they would measure the planted change as B's floor)."""
    planted = copy(results, tmp_path, name)
    shutil.rmtree(planted / store.CONTROLS_FOLDER)
    for seed in (0, 1):
        rewrite(run_file(planted, scenario, seed), rows=lambda f: f.__setitem__("test_loss", f["test_loss"] * factor))
    return planted


def test_control_runs_differ_from_their_runs_by_one_ulp_of_initial_weight(results, capsys):
    from bench.__main__ import main

    runs, controls = store.load(results), store.load(results / store.CONTROLS_FOLDER)
    assert len(runs.runs) == len(controls.runs) == 4
    assert set(controls.runs["control"]) == {"init_ulp"} and "control" not in runs.runs
    assert not set(runs.runs["run_id"]) & set(controls.runs["run_id"])  # other configs, other files
    kernels = [r.layer[r.layer["step"] == 0].sort_values(["scenario", "seed", "layer"])["kernel_norm"].to_numpy()
               for r in (runs, controls)]
    assert (abs(kernels[1] - kernels[0]) <= 1e-6 * kernels[0]).all()  # the same weights to float32 precision ...
    logged = [r.step.sort_values(["run_id", "step"]) for r in (runs, controls)]
    assert (logged[0]["loss"].to_numpy() != logged[1]["loss"].to_numpy()).any()  # ... yet not the same training
    capsys.readouterr()
    assert main(["sweep", "--results", str(results), "--control", "init_ulp"]) == 0  # resume: nothing to train
    assert "0 trained, 4 already stored" in capsys.readouterr().err


def test_a_control_sweep_needs_stored_runs(tmp_path, capsys):
    from bench.__main__ import main

    assert main(["sweep", "--results", str(tmp_path / "none"), "--control", "init_ulp"]) == 2
    err = capsys.readouterr().err.strip()
    assert "holds no result files to control; sweep them first" in err and len(err.splitlines()) == 1


def test_a_change_the_size_of_the_perturbation_is_within_the_floor(results, tmp_path):
    result = floor.compare(results, controls_as_another_version(results, tmp_path))
    assert result.floor_sources == [str(results)]
    moved = result.metrics[result.metrics["differ"] > 0]
    assert len(moved) and (moved["max_change"] == moved["floor"]).all()  # each seed's change is its own floor
    assert (moved["beyond"] <= 1).all()
    assert {line.versus_floor for line in diff.metric_lines(result, layers=False) if line.changed} \
        == {"within the floor"}


def test_a_planted_change_is_placed_beyond_the_floor_and_gated(results, tmp_path, capsys):
    """Planted on the linear net, whose control moved its final test loss (a floor above zero)."""
    planted = planted_copy(results, tmp_path, "tf-planted", "linear", 1.5)
    result = floor.compare(results, planted)
    row = result.metrics.set_index(["scenario", "metric", "layer"]).loc[("linear", "final_test_loss", "")]
    assert row["change"] == pytest.approx(1 / 3, rel=1e-5) and row["floor"] > 0
    assert row["beyond"] == pytest.approx(row["change"] / row["floor"]) and row["beyond"] > 1
    lines = {(m.scenario, m.metric): m for m in diff.metric_lines(result, layers=False)}
    assert lines[("linear", "final test loss")].versus_floor.endswith("× beyond the floor")
    assert lines[("sigmoid", "final test loss")].versus_floor == "bit-identical"
    site = str(tmp_path / "site")
    capsys.readouterr()
    assert report_main(["diff", str(results), str(planted), "--out", site, "--fail-beyond-floor", "2"]) == 1
    err = capsys.readouterr().err
    assert "beyond 2× the floor: linear depth 2: final test loss changed 33.3 %" in err and "sigmoid" not in err
    factor = float(row["beyond"]) * 1.01
    assert report_main(["diff", str(results), str(planted), "--out", site, "--fail-beyond-floor", f"{factor}"]) == 0


def test_the_floor_gate_without_controls_and_a_bad_factor_are_one_line_errors(results, tmp_path, capsys):
    bare = planted_copy(results, tmp_path, "tf-bare", "linear", 1)
    other = copy(bare, tmp_path, "tf-other")
    site = str(tmp_path / "site")
    for argv in (["diff", str(bare), str(other), "--out", site, "--fail-beyond-floor", "3"],
                 ["diff", str(bare), str(other), "--out", site, "--fail-beyond-floor", "0"],
                 ["diff", str(bare), "--out", site]):
        capsys.readouterr()
        assert report_main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and err.startswith("error:"), err
    assert report_main(["diff", str(bare), str(other), "--out", site]) == 0  # no gate: reported without a floor
    assert "none: no control runs stored beside A or B" in capsys.readouterr().out


def test_the_diff_page_has_its_three_figures_with_data_and_alt_text(results, tmp_path):
    site = tmp_path / "site"
    b = controls_as_another_version(results, tmp_path)
    assert report_main(["diff", str(results), str(b), "--out", str(site)]) == 0
    page = (site / "diff" / "tf-a__tf-b.html").read_text()
    for name in ("paired", "step0-profiles", "loss-curves"):
        for ext in ("svg", "csv.gz"):
            assert (site / "diff" / "tf-a__tf-b" / f"{name}.{ext}").is_file()
        assert f'src="tf-a__tf-b/{name}.svg"' in page.replace("../diff/", "")
    assert "first log a different loss (seed 0: step" in page
    assert check_links(site) > 0


def test_the_matrix_names_the_version_where_a_change_first_appeared(results, tmp_path, capsys):
    middle = planted_copy(results, tmp_path, "tf-b", "linear", 2)
    last = copy(middle, tmp_path, "tf-c")
    site = tmp_path / "site"
    assert report_main(["build", "--results", str(results), "--out", str(site)]) == 0
    capsys.readouterr()
    assert report_main(["diff", str(results), str(middle), str(last), "--out", str(site)]) == 0
    out = capsys.readouterr().out
    assert "at tf-b: 1 cells' numbers first differ, 1 first go beyond the floor" in out
    assert "at tf-c: 0 cells' numbers first differ, 0 first go beyond the floor" in out
    pages = {p.name for p in (site / "diff").glob("*.html")}
    assert pages == {"tf-a__tf-b.html", "tf-b__tf-c.html", "tf-a__tf-b__tf-c.html"}
    index = (site / "index.html").read_text()  # listed at once, not only from the next build on
    assert all(f'href="diff/{page}"' in index for page in pages)
    diffs = [floor.compare(results, middle), floor.compare(middle, last)]
    rows = {(r.scenario, r.metric): r for r in matrix.matrix_page(diffs, [diff.diff_page(d) for d in diffs]).rows}
    assert rows[("linear", "final test loss")].first_beyond == "tf-b"
    assert rows[("linear", "final test loss")].steps[1] == "bit-identical"
    assert rows[("sigmoid", "final test loss")].first_differs == "—"
    assert check_links(site) > 0


def test_a_site_built_from_a_folder_with_controls_shows_only_its_runs(results, tmp_path):
    from report.data import load

    assert len(load(results).runs) == 4  # not the 4 control runs of its controls/ folder
