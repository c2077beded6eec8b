"""The cell table: runs whose config differs only in the seed, graded together."""

import numpy as np
import pandas as pd

from report.grading.rules import EXPECTED_FROM_THEORY
from report.grading.runs import catalogue_order
from report.grading.values import finite, finite_median, with_none
from report.grading.verdicts import as_expected, majority

CELL_COLUMNS = [
    "scenario", "depth", "cell_id", "experiment", "verdict", "verdict_init", "verdict_count", "seeds", "verdict_label",
    "accuracy_median", "accuracy_min", "accuracy_max", "delta_ratio_init", "delta_ratio_median",
    "per_layer_factor", "grad_norm_max", "predicted_delta_ratio", "predicted_factor", "theory_note", "expected",
    "expected_from", "as_expected",
]  # fmt: skip


def cell_row(rows: pd.DataFrame) -> dict:
    found, count = majority(rows["verdict"])
    at_init, _ = majority(rows["verdict_init"])
    accuracy = finite(rows["final_test_accuracy"])
    notes = rows["theory_note"].dropna()
    expected, source = rows["expected"].iloc[0], rows["expected_from"].iloc[0]
    return {
        "verdict": found,
        "verdict_count": count,
        "seeds": len(rows),
        "verdict_label": f"{found} {count}/{len(rows)}",
        "verdict_init": at_init,
        "accuracy_median": accuracy.median() if len(accuracy) else np.nan,
        "accuracy_min": accuracy.min() if len(accuracy) else np.nan,
        "accuracy_max": accuracy.max() if len(accuracy) else np.nan,
        "delta_ratio_init": finite_median(rows["delta_ratio_init"]),
        "delta_ratio_median": finite_median(rows["delta_ratio_median"]),
        "per_layer_factor": finite_median(rows["per_layer_factor"]),
        "grad_norm_max": finite_median(rows["grad_norm_max"]),
        "predicted_delta_ratio": finite_median(rows["predicted_delta_ratio"]),
        "predicted_factor": finite_median(rows["predicted_factor"]),
        "theory_note": notes.iloc[0] if len(notes) else None,
        "expected": expected,
        "expected_from": source,
        # the theory speaks of step 0, the catalogue of training: each is held against its own verdict
        "as_expected": as_expected(at_init if source == EXPECTED_FROM_THEORY else found, expected),
    }


def cell_table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per cell — runs whose config differs only in the seed — in catalogue order, then depth:
    majority verdict over seeds and medians. Runs of different configs are never pooled.

    Numeric columns other than the accuracy range are medians over seeds of the run_table columns.
    """
    if runs.empty:
        return pd.DataFrame(columns=CELL_COLUMNS)
    rows = [
        {"scenario": scenario, "depth": depth, "cell_id": cell, "experiment": group["experiment"].iloc[0],
         **cell_row(group)}
        for (scenario, depth, cell), group in runs.groupby(["scenario", "depth", "cell_id"], sort=False)
    ]
    cells = catalogue_order(pd.DataFrame(rows, columns=CELL_COLUMNS))
    return with_none(cells, ["theory_note", "expected", "expected_from", "as_expected"])
