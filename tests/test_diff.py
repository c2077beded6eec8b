"""report diff on a real smoke sweep and on copies of it with one planted change each."""

import hashlib
import json
import shutil
from collections import Counter
from contextlib import nullcontext
from types import SimpleNamespace

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bench import store
from report import diff, site, summaries
from report.__main__ import main as report_main
from report.grading.runs import MATCH_KEYS, VERSION_KEYS, run_table
from tests.helpers import check_links, copy, rewrite, run_file

CELLS = [("sigmoid", 2), ("linear", 2)]


@pytest.fixture(scope="module")
def results(pair_sweep, tmp_path_factory):
    """A real sweep: two scenarios at depth 2, seeds 0 and 1 (conftest's, copied)."""
    folder = tmp_path_factory.mktemp("diff") / "tf-a"
    shutil.copytree(pair_sweep, folder)
    return folder


def changed(result: diff.Diff) -> set[tuple]:
    rows = result.metrics[result.metrics["differ"] > 0]
    return set(zip(rows["scenario"], rows["metric"], rows["layer"]))


def changes_by_seed(result: diff.Diff) -> dict[tuple, str]:
    return {(r.scenario, r.seed): r.change for r in result.pairs.itertuples()}


def test_match_keys_are_the_run_config_without_versions(synthetic):
    from bench import sweep
    from bench.scenarios import PROFILES, SCENARIOS
    from bench.train import RunSpec

    config = sweep.config(RunSpec(SCENARIOS["linear"], 2, 0, PROFILES["smoke"]), synthetic, "cpu")
    assert set(config) - set(VERSION_KEYS) == set(MATCH_KEYS)


def test_a_result_set_against_itself_is_bit_identical(results, tmp_path, capsys):
    assert report_main(["diff", str(results), str(results), "--out", str(tmp_path / "site"),
                        "--fail-on-verdict-change"]) == 0
    out = capsys.readouterr().out
    result = diff.compare(results, results)
    assert set(result.pairs["change"]) == {"identical"} and len(result.pairs) == 4
    assert result.unmatched.empty and not changed(result)
    assert "metric rows identical on every seed: bit-identical" in out
    page = tmp_path / "site" / "diff" / "tf-a__tf-a.html"
    assert "bit-identical" in page.read_text()
    assert f'<meta name="description" content="{diff.summary(result)}. ' in page.read_text()  # link previews
    assert check_links(tmp_path / "site") > 0  # a diff alone in a new folder links only to what is there
    assert "methods.html" not in page.read_text() and "index.html" not in page.read_text()


def test_one_planted_metric_change_is_flagged_and_nothing_else(results, tmp_path):
    other = copy(results, tmp_path)

    def halve_accuracy(frame):
        epochs = frame["kind"] == "epoch"
        frame.loc[epochs, "test_accuracy"] = frame.loc[epochs, "test_accuracy"] * 0.5

    rewrite(run_file(other, "linear", 1), rows=halve_accuracy)
    result = diff.compare(results, other)
    assert len(result.pairs) == 4 and result.unmatched.empty  # versions differ, yet every run is paired
    assert changed(result) == {("linear", "final_test_accuracy", "")}
    assert changes_by_seed(result) == {("sigmoid", 0): "identical", ("sigmoid", 1): "identical",
                                       ("linear", 0): "identical", ("linear", 1): "dynamics"}
    row = result.metrics.iloc[0]  # the largest change comes first
    assert (row["metric"], row["differ"]) == ("final_test_accuracy", 1)
    assert row["significance"] == "n=2 seeds: cannot be significant"
    assert row["values_b"][1] == pytest.approx(row["values_a"][1] * 0.5)
    assert "training dynamics changed (step 0 identical) 1/2" in diff.terminal_text(result)


def test_a_planted_step0_change_is_an_initialisation_change(results, tmp_path):
    other = copy(results, tmp_path)

    def other_initial_weights(frame):
        first = (frame["kind"] == "layer") & (frame["step"] == 0)
        frame.loc[first, "kernel_norm"] = frame.loc[first, "kernel_norm"] * 1.01

    rewrite(run_file(other, "sigmoid", 0), rows=other_initial_weights)
    result = diff.compare(results, other)
    assert changes_by_seed(result)[("sigmoid", 0)] == "initialisation"
    others = {change for key, change in changes_by_seed(result).items() if key != ("sigmoid", 0)}
    assert others == {"identical"}
    assert {metric for _, metric, _ in changed(result)} == {"step0_kernel_norm"}
    cell = result.cells.set_index("scenario").loc["sigmoid"]
    assert cell["change"].startswith(diff.CHANGES["initialisation"] + " 1/2")
    assert cell["kernels_differ"] == "3/3"  # two hidden layers and the output layer


def test_same_initial_weights_with_other_step0_numbers_is_not_an_initialisation_change(results, tmp_path):
    other = copy(results, tmp_path)

    def other_arithmetic(frame):
        first = (frame["kind"] == "layer") & (frame["step"] == 0)
        frame.loc[first, "kernel_norm"] = frame.loc[first, "kernel_norm"] * (1 + 1e-7)  # summation order
        frame.loc[first, "delta_norm"] = frame.loc[first, "delta_norm"] * 1.001

    rewrite(run_file(other, "linear", 0), rows=other_arithmetic)
    assert changes_by_seed(diff.compare(results, other))[("linear", 0)] == "step0"


def test_a_change_outside_the_metrics_still_breaks_bit_identity(results, tmp_path):
    other = copy(results, tmp_path)

    def later_bias_gradient(frame):
        later = (frame["kind"] == "layer") & (frame["step"] == 3)
        frame.loc[later, "bias_grad_norm"] = frame.loc[later, "bias_grad_norm"] * 2

    rewrite(run_file(other, "sigmoid", 1), rows=later_bias_gradient)
    result = diff.compare(results, other)
    assert not changed(result)  # no summary metric sees it ...
    assert changes_by_seed(result)[("sigmoid", 1)] == "dynamics"  # ... but the pair is not bit-identical


def test_runs_on_one_side_only_are_listed(results, tmp_path, capsys):
    other = copy(results, tmp_path)
    run_file(other, "sigmoid", 1).unlink()
    result = diff.compare(results, other)
    unmatched = result.unmatched[["side", "scenario", "seed"]].itertuples(index=False, name=None)
    assert list(unmatched) == [("A", "sigmoid", 1)]
    assert "only in A: sigmoid d2 s1; only in B: none" in diff.terminal_text(result)


def test_another_dataset_is_refused_in_one_line(results, tmp_path, capsys):
    other = copy(results, tmp_path)
    for path in store.run_files(other):
        rewrite(path, run=lambda r: r.update(dataset="mnist"))
    assert report_main(["diff", str(results), str(other), "--out", str(tmp_path / "site")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "different dataset (A: synthetic, B: mnist)" in err
    assert not (tmp_path / "site").exists()


def test_another_schema_version_is_refused_in_one_line(results, tmp_path, capsys):
    other = copy(results, tmp_path)
    path = run_file(other, "linear", 0)
    table = pq.read_table(path)
    meta = json.loads(table.schema.metadata[store.METADATA_KEY])
    meta["schema_version"] = store.SCHEMA_VERSION + 1
    pq.write_table(table.replace_schema_metadata({store.METADATA_KEY: json.dumps(meta)}), path)
    assert report_main(["diff", str(results), str(other), "--out", str(tmp_path / "site")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cannot compare: B:" in err and "schema version" in err


def test_the_verdict_gate_fails_only_when_a_verdict_changes(results, tmp_path, capsys):
    quiet = copy(results, tmp_path, "tf-quiet")
    rewrite(run_file(quiet, "linear", 0), rows=lambda f: f.__setitem__("test_loss", f["test_loss"] * 2))
    site = str(tmp_path / "site")
    assert report_main(["diff", str(results), str(quiet), "--out", site, "--fail-on-verdict-change"]) == 0

    vanishing = copy(results, tmp_path, "tf-vanishing")

    def vanish(frame):  # the first hidden layer's δ a millionth of the others': the ratio rule says vanishing
        first = (frame["kind"] == "layer") & (frame["layer"] == 0)
        frame.loc[first, "delta_norm"] = frame.loc[first, "delta_norm"] * 1e-6

    for seed in (0, 1):
        rewrite(run_file(vanishing, "linear", seed), rows=vanish)
    capsys.readouterr()
    assert report_main(["diff", str(results), str(vanishing), "--out", site]) == 0  # reported, not gated
    assert report_main(["diff", str(results), str(vanishing), "--out", site, "--fail-on-verdict-change"]) == 1
    err = capsys.readouterr().err
    assert "verdict changed: linear depth 2: healthy 2/2 → vanishing 2/2" in err
    assert "sigmoid" not in err


@pytest.mark.parametrize("bad", ["truncated", "foreign", "empty"])
def test_a_folder_that_cannot_be_read_is_refused_in_one_line(results, tmp_path, capsys, bad):
    other = tmp_path / "tf-b"
    other.mkdir()
    if bad != "empty":
        shutil.copytree(results, other, dirs_exist_ok=True)
    if bad == "truncated":
        path = run_file(other, "linear", 1)
        path.write_bytes(path.read_bytes()[:3000])
    if bad == "foreign":
        pq.write_table(pa.table({"x": [1, 2]}), path := other / "zz-mine.parquet")
    assert report_main(["diff", str(results), str(other), "--out", str(tmp_path / "site")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err and "cannot compare: B" in err
    assert str(other) in err and (bad == "empty" or path.name in err)
    assert not (tmp_path / "site").exists()


def whole_folder_values(folder) -> tuple[pd.DataFrame, pd.Series]:
    """(run_values, the logged digests) as the diff computed them from a whole folder's tables before it read
    summaries: what the summaries must give."""
    results = store.load(folder)
    runs = run_table(results)
    step_metrics = [m.name for m in diff.METRICS if m.name.startswith("step0_")]
    layer_metrics = [m.name for m in diff.LAYER_METRICS]
    columns = {m.removeprefix("step0_"): m for m in (*step_metrics, *layer_metrics)}
    step0 = results.step[results.step["step"] == 0].rename(columns=columns)
    layer0 = results.layer[results.layer["step"] == 0].drop(columns="layer").rename(
        columns={**columns, "layer_name": "layer"})
    values = pd.concat([
        runs.melt("run_id", [m.name for m in diff.METRICS if m.name in runs], "metric").assign(layer=""),
        step0.melt("run_id", step_metrics, "metric").assign(layer=""),
        layer0.melt(["run_id", "layer"], layer_metrics, "metric"),
    ], ignore_index=True)  # fmt: skip
    values["value"] = pd.to_numeric(values["value"], errors="coerce").astype(float)
    chunks: dict[str, list[bytes]] = {}
    for kind in store.KINDS:
        for run, rows in results.table(kind).groupby("run_id", sort=False):
            chunks.setdefault(run, []).append(pd.util.hash_pandas_object(rows.drop(columns="run_id"), index=False)
                                              .to_numpy().tobytes())
    return values, pd.Series({run: hashlib.sha256(b"".join(parts)).hexdigest() for run, parts in chunks.items()})


def forget(folder) -> None:
    """No summary of the folder's runs cached, nor what a diff compares of them: the next read is cold."""
    for path in (summaries.cache_path(folder), summaries.compared_path(folder)):
        path.unlink(missing_ok=True)


def counted_reads(monkeypatch) -> Counter:
    """(store function, path) of every run file's metadata and rows read from now on (read_run reads its rows
    through read_arrow, on the file it opened)."""
    reads = Counter()
    for name in ("read_metadata", "read_run", "read_arrow"):
        read = getattr(store, name)
        monkeypatch.setattr(store, name, lambda path, *args, read=read, name=name, **kwargs:
                            reads.update([(name, path)]) or read(path, *args, **kwargs))
    return reads


def test_the_summaries_give_what_the_whole_tables_gave_cold_and_cached(results, tmp_path):
    other = copy(results, tmp_path)

    def other_histogram(frame):  # no metric sees it; the digest must
        bins = frame["kind"] == "histogram"
        frame.loc[bins, "count"] = frame.loc[bins, "count"].to_numpy()[::-1]

    rewrite(run_file(other, "linear", 0), rows=other_histogram)
    for folder in (results, other):
        expected_values, expected_digests = whole_folder_values(folder)
        forget(folder)
        for state in ("summarised", "cached"):
            side = diff.load_side(folder, "A")
            assert summaries.cache_path(folder).is_file(), state
            pd.testing.assert_frame_equal(diff.run_values(side), expected_values)
            pd.testing.assert_series_equal(side.logged.sort_index(), expected_digests.sort_index())
    digests = [diff.load_side(folder, "A").logged for folder in (results, other)]
    differ = {run for run in digests[0].index if digests[0][run] != digests[1][run]}
    assert differ == {run_file(results, "linear", 0).stem}


def test_a_diff_reads_each_run_file_once_and_no_folder_whole(results, tmp_path, monkeypatch, capsys):
    other = copy(results, tmp_path)
    for folder in (results, other):
        forget(folder)
    monkeypatch.setattr(site, "worker_pool", lambda: nullcontext(SimpleNamespace(map=map)))  # reads counted here
    reads = counted_reads(monkeypatch)
    monkeypatch.setattr(store, "load", lambda folder: pytest.fail(f"the diff read all of {folder}"))
    files = [*store.run_files(results), *store.run_files(other)]
    assert report_main(["diff", str(results), str(other), "--out", str(tmp_path / "site")]) == 0
    assert reads == Counter((name, path) for name in ("read_run", "read_arrow") for path in files)
    reads.clear()
    assert report_main(["diff", str(results), str(other), "--out", str(tmp_path / "site")]) == 0
    assert reads == Counter()  # every run's summary from the cache
    assert capsys.readouterr().out.count("metric rows identical on every seed: bit-identical") == 2


def test_a_diff_after_a_build_computes_what_it_compares_once_and_reuses_it(results, monkeypatch):
    forget(results)
    summaries.load(results)  # a build's read: summaries only
    assert summaries.cache_path(results).is_file() and not summaries.compared_path(results).exists()
    expected_values, expected_digests = whole_folder_values(results)
    reads = counted_reads(monkeypatch)
    side = diff.load_side(results, "A")
    assert reads == Counter(("read_arrow", path) for path in store.run_files(results))  # their rows only, once
    pd.testing.assert_frame_equal(diff.run_values(side), expected_values)
    pd.testing.assert_series_equal(side.logged.sort_index(), expected_digests.sort_index())
    reads.clear()
    again = diff.load_side(results, "A")
    assert reads == Counter()  # from both caches
    pd.testing.assert_series_equal(again.logged, side.logged)


def test_sign_test_is_exact_and_says_when_seeds_are_too_few():
    assert diff.sign_test(3, 3) == 0.25
    assert diff.sign_test(6, 6) == pytest.approx(1 / 32)
    assert diff.sign_test(3, 6) == 1.0
    a = pd.Series([1.0, 2.0, 3.0])
    assert diff.significance(a, a * 1.1) == "n=3 seeds: cannot be significant"
    six = pd.Series([1.0, 2, 3, 4, 5, 6])
    assert diff.significance(six, six + 1) == "sign test p=0.031, B higher on 6/6"
    assert diff.significance(a, a) == "—"


def test_sets_of_one_folder_name_are_told_apart_by_their_parents(tmp_path):
    assert diff.names(tmp_path / "tf-a", tmp_path / "tf-b") == ["tf-a", "tf-b"]
    assert diff.names(tmp_path / "quick" / "tf-2.21.0", tmp_path / "gpu-box" / "tf-2.21.0") == [
        "quick/tf-2.21.0", "gpu-box/tf-2.21.0"]
    assert diff.names(tmp_path / "tf-a", tmp_path / "tf-a") == ["tf-a", "tf-a"]  # a set against itself
