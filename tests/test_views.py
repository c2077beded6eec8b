"""report/views.py: the values the templates print of a cell and of a result set follow from the cell table's row
and the runs, on a tiny real sweep."""

import dataclasses

import numpy as np
import pandas as pd
import pytest

from report.data import load
from report.views import CellView, cell_view, cell_views, common_seeds, result_sets, seed_list

RENAMED = {"steps": "steps_trained"}  # a view's field: the cell table's column, where the names differ
DERIVED = {"per", "scale_free", "gain_measured", "gain_predicted", "href", "statistics"}  # statistics: below


@pytest.fixture(scope="module")
def data(tiny_results):
    return load(tiny_results)


@pytest.fixture(scope="module")
def views(data) -> dict[str, CellView]:
    return {view.scenario: view for view in cell_views(data)}


def same(value, expected) -> bool:
    if expected is None or (not isinstance(expected, str) and pd.isna(expected)):
        return value is None or (isinstance(value, float) and np.isnan(value))
    return value == expected


def test_every_cell_has_a_view_whose_values_are_its_row_s(data, views):
    assert sorted(views) == ["linear", "relu_he_bn", "sigmoid"]
    for _, cell in data.cells.iterrows():
        view = views[cell["scenario"]]
        for field in dataclasses.fields(CellView):
            if field.name not in DERIVED:
                expected = cell[RENAMED.get(field.name, field.name)]
                assert same(getattr(view, field.name), expected), (cell["scenario"], field.name)
        assert view.href == f"scenarios/{cell['scenario']}.html" and view.per == "layer"


def test_a_cell_s_numbers_are_its_seeds_medians_and_ranges(data, views):
    for (scenario, depth), runs in data.runs.groupby(["scenario", "depth"]):
        view = views[scenario]
        assert view.seeds == len(runs) == 2 and view.depth == depth
        accuracy = runs["final_test_accuracy"]
        assert (view.accuracy_min, view.accuracy_median, view.accuracy_max) == pytest.approx(
            (accuracy.min(), accuracy.median(), accuracy.max()))
        assert (view.factor_init_min, view.factor_init_max) == pytest.approx(
            (runs["factor_init"].min(), runs["factor_init"].max()))
        assert view.steps == runs["steps_trained"].median() > 0


def test_the_gains_are_the_squared_per_layer_factors_of_the_step_0_ratios(views):
    for view in views.values():
        assert view.depth == 2  # one step between the first and the last hidden layer: the factor is the ratio
        assert view.gain_measured == pytest.approx(view.delta_ratio_init**2)
        assert view.gain_predicted == pytest.approx(view.predicted_delta_ratio**2, nan_ok=True)


def test_only_a_batch_normed_cell_reads_the_scale_free_path_ratio(views):
    assert {name: view.scale_free for name, view in views.items()} == {
        "sigmoid": False, "linear": False, "relu_he_bn": True}


def test_a_recurrent_cell_s_factor_is_per_step_of_the_sequence(data):
    cell = data.cells.iloc[0].copy()
    cell["scenario"] = "lstm"
    assert cell_view(cell, data.recorded).per == "step"
    assert cell_view(cell, data.recorded).href == "scenarios/lstm.html"


def test_runs_of_other_versions_are_another_result_set(data):
    (only,) = result_sets(data.recorded)
    tf = data.recorded["tf_version"].iloc[0]
    assert only.label.startswith(f"TF {tf} · Keras ") and " · smoke · synthetic · " in only.label
    assert (only.runs, only.scenarios, only.seeds) == (6, 3, "0, 1")
    details = dict(only.details)
    assert details["measurement code"] == data.recorded["measurement_code"].iloc[0]
    assert details["epochs"] == "1" and details["batch size"] == "32"
    mixed = data.recorded.copy()
    mixed.loc[mixed["scenario"] == "linear", "tf_version"] = "9.99.0"
    mixed.loc[mixed["scenario"] == "sigmoid", "device"] = None
    sets = result_sets(mixed)
    assert [(s.runs, s.scenarios) for s in sets] == [(2, 1), (2, 1), (2, 1)]
    assert sorted(s.label.split(" · ")[0] for s in sets) == [f"TF {tf}", f"TF {tf}", "TF 9.99.0"]
    assert any(s.label.endswith("· not recorded") for s in sets)


def test_seed_lists_name_up_to_ten_seeds():
    assert seed_list(pd.Series([2, 0, 1, 0])) == "0, 1, 2"
    assert seed_list(pd.Series(range(3, 13))) == "3, 4, 5, 6, 7, 8, 9, 10, 11, 12"
    assert seed_list(pd.Series(range(3, 14))) == "11, from 3 to 13"


def test_compared_scenarios_start_from_the_seeds_they_all_have(data):
    runs = data.recorded
    keys = [("sigmoid", 2), ("linear", 2)]
    assert common_seeds(runs, keys) == [0, 1]
    fewer = runs[~((runs["scenario"] == "linear") & (runs["seed"] == 0))]
    assert common_seeds(fewer, keys) == [1]
    assert common_seeds(runs, [("sigmoid", 2), ("linear", 3)]) == [0, 1]  # a missing cell is left out, not empty
    assert common_seeds(runs, [("resnet", 6)]) == []
