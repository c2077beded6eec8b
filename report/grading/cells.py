"""The cell table: runs whose config differs only in the seed, graded together. Every statistic a page shows of a
cell is computed here, once: majorities of the runs' words, medians over seeds of their numbers."""

import numpy as np
import pandas as pd

from report.grading import declared
from report.grading.rules import EFFECTS, SEVERITY, threshold
from report.grading.runs import catalogue_order
from report.grading.values import finite, with_none
from report.grading.verdicts import agrees, as_expected, law, majority

MEDIANS = (
    "delta_ratio_init", "delta_ratio_median", "path_ratio_init", "path_ratio_median", "per_layer_factor",
    "factor_init", "grad_norm_max", "growth", "growth_applied", "clip_fraction", "steps_trained", "growth_epoch",
    "loss_fall", "early_update_path", "hidden_layers", "predicted_delta_ratio", "predicted_factor", "forget_init",
    "forget_final",
)  # fmt: skip
CELL_COLUMNS = [
    "scenario", "depth", "cell_id", "experiment", "verdict", "verdict_init", "verdict_count", "seeds", "verdict_label",
    "verdict_init_label", "effect", "effect_label", "agrees", "law", "factor_init_min", "factor_init_max", "diverged",
    "growth_exploding",
    "accuracy_median", "accuracy_min", "accuracy_max", *MEDIANS, "theory_note", "expected_init", "as_expected_init",
    "expected", "as_expected", *declared.cell_columns(),
]  # fmt: skip
EFFECT_ORDER = tuple(name for name, _ in EFFECTS)  # most severe first


def label(values: pd.Series, order: tuple[str, ...]) -> tuple[str, int, str]:
    """The majority of the seeds' words, its count and its label ("vanishing 3/3")."""
    found, count = majority(values, order)
    return found, count, f"{found} {count}/{len(values)}"


def median_of_measured(values: pd.Series) -> float:
    """The median over seeds of what was measured: NaN left out, ±inf (beyond float32) kept."""
    values = pd.to_numeric(values, errors="coerce").astype(float).dropna()
    return float(np.median(values)) if len(values) else np.nan


def cell_row(rows: pd.DataFrame) -> dict:
    found, count, verdict_label = label(rows["verdict"], SEVERITY)
    at_init, _, init_label = label(rows["verdict_init"], SEVERITY)
    outcome, _, effect_label = label(rows["effect"], EFFECT_ORDER)
    accuracy, factors = finite(rows["final_test_accuracy"]), finite(rows["factor_init"])
    notes = rows["theory_note"].dropna()
    medians = {column: median_of_measured(rows[column]) for column in MEDIANS}
    expected_init, expected = rows["expected_init"].iloc[0], rows["expected"].iloc[0]
    return {
        "verdict": found, "verdict_count": count, "seeds": len(rows), "verdict_label": verdict_label,
        "verdict_init": at_init, "verdict_init_label": init_label, "effect": outcome, "effect_label": effect_label,
        "agrees": agrees(found, outcome), "law": law(medians["factor_init"]),
        "growth_exploding": bool(medians["growth"] > threshold("exploding_growth")),  # before clipping
        "factor_init_min": factors.min() if len(factors) else np.nan,
        "factor_init_max": factors.max() if len(factors) else np.nan,
        "diverged": int((rows["verdict"] == "diverged").sum()),
        "accuracy_median": accuracy.median() if len(accuracy) else np.nan,
        "accuracy_min": accuracy.min() if len(accuracy) else np.nan,
        "accuracy_max": accuracy.max() if len(accuracy) else np.nan,
        **medians,
        "theory_note": notes.iloc[0] if len(notes) else None,
        # each expectation is held against the verdict of its own moment: the theory's against step 0
        "expected_init": expected_init, "as_expected_init": as_expected(at_init, expected_init),
        "expected": expected, "as_expected": as_expected(found, expected),
        **declared.cell_summaries(rows),
    }  # fmt: skip


def cell_table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per cell — runs whose config differs only in the seed — in catalogue order, then depth:
    majority verdict, step-0 verdict and effect over seeds, and medians. Runs of different configs are never pooled.
    """
    if runs.empty:
        return pd.DataFrame(columns=CELL_COLUMNS)
    rows = [
        {"scenario": scenario, "depth": depth, "cell_id": cell, "experiment": group["experiment"].iloc[0],
         **cell_row(group)}
        for (scenario, depth, cell), group in runs.groupby(["scenario", "depth", "cell_id"], sort=False)
    ]
    cells = catalogue_order(pd.DataFrame(rows, columns=CELL_COLUMNS))
    return with_none(cells, ["theory_note", "law", "expected_init", "as_expected_init", "expected", "as_expected"])


def agreement(cells: pd.DataFrame) -> tuple[int, int, list[str]]:
    """(cells whose verdict predicts their effect, cells, each disagreement named)."""
    wrong = cells[~cells["agrees"].astype(bool)]
    named = [f"{r.scenario} at {int(r.depth)}: {r.verdict_label}, effect {r.effect_label}" for r in wrong.itertuples()]
    return len(cells) - len(wrong), len(cells), named
