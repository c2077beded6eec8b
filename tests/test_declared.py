"""report/grading/declared.py: a statistic declared with a summary is summarised per run and per cell from its
declaration, and a run stored before it was declared has it missing — and says so — on a real tiny sweep."""

import numpy as np
import pandas as pd
import pytest

from bench import store
from bench.statistics import summarised
from report.grading.cells import cell_table
from report.grading.declared import recorded_column, reduce
from report.grading.runs import run_table
from report.views import cell_view

STATISTIC = summarised()[0]


@pytest.fixture(scope="module")
def results(tiny_results):
    return store.load(tiny_results)


def stored_before(results, run_id: str):
    """The results with one run as a gradbench that did not have the statistic stored it."""
    layer = results.layer.copy()
    layer.loc[layer["run_id"] == run_id, STATISTIC.name] = np.nan
    runs = results.runs.copy()
    runs["statistic_code"] = [{k: v for k, v in code.items() if not k.endswith(f".{STATISTIC.name}")}
                              if r == run_id else code for r, code in zip(runs["run_id"], runs["statistic_code"])]
    return store.Results(runs=runs, step=results.step, layer=layer, time=results.time, epoch=results.epoch,
                         histogram=results.histogram)


def in_layer_order(rows: pd.DataFrame) -> np.ndarray:
    return rows.sort_values("layer")[STATISTIC.name].to_numpy(dtype=float)


def test_each_run_has_the_statistic_at_step_0_and_at_its_last_logged_step(results):
    runs = run_table(results).set_index("run_id")
    for run_id, rows in results.layer[results.layer["layer_role"] == "hidden"].groupby("run_id"):
        first, last = rows[rows["step"] == rows["step"].min()], rows[rows["step"] == rows["step"].max()]
        assert runs.loc[run_id, f"{STATISTIC.name}_init"] == pytest.approx(reduce(in_layer_order(first), STATISTIC))
        assert runs.loc[run_id, f"{STATISTIC.name}_final"] == pytest.approx(reduce(in_layer_order(last), STATISTIC))
        assert runs.loc[run_id, recorded_column(STATISTIC)]
    assert np.isfinite(runs[f"{STATISTIC.name}_init"].astype(float)).all()


def test_the_summary_follows_the_declaration():
    rows = pd.DataFrame({"layer": [2, 0, 1], "x": [8.0, 2.0, 3.0]})
    ratio = STATISTIC.__class__("x", "layer", STATISTIC.dtype, "", summary="last/first")
    median = STATISTIC.__class__("x", "layer", STATISTIC.dtype, "", summary="median")
    values = rows.sort_values("layer")["x"].to_numpy(dtype=float)
    assert reduce(values, ratio) == 4.0 and reduce(values, median) == 3.0


def test_a_run_stored_before_the_statistic_is_missing_from_its_cell_and_the_page_says_so(results):
    first = results.runs.sort_values("run_id").iloc[0]
    runs = run_table(stored_before(results, first["run_id"]))
    assert not runs.set_index("run_id").loc[first["run_id"], recorded_column(STATISTIC)]
    cells = cell_table(runs)
    cell = cells[cells["scenario"] == first["scenario"]].iloc[0]
    assert cell[f"{STATISTIC.name}_seeds"] == 1 and cell["seeds"] == 2
    own = runs[(runs["scenario"] == first["scenario"]) & (runs["run_id"] != first["run_id"])]
    assert cell[f"{STATISTIC.name}_init"] == pytest.approx(own[f"{STATISTIC.name}_init"].iloc[0])
    [value] = [v for v in cell_view(cell, results.runs).statistics if v.name == STATISTIC.name]
    assert (value.seeds, value.init) == (1, pytest.approx(cell[f"{STATISTIC.name}_init"]))
    assert (cells.loc[cells["scenario"] != first["scenario"], f"{STATISTIC.name}_seeds"] == 2).all()
