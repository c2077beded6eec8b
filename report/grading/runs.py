"""The run table: one row per run, its config keys, outcome, verdict and the statistics behind it; cells and
experiments as hashes of the config."""

from dataclasses import fields

import numpy as np
import pandas as pd

from bench.scenarios import NOT_CONFIG, SCENARIOS, Scenario
from report.grading import declared
from report.grading.stats import (
    delta_ratio_steps,
    early_update_path,
    final_epoch,
    forget_gates,
    hidden_layers,
    hidden_signal,
    path_norms,
    prediction,
    ratio_summary,
    step_summary,
)
from report.grading.values import with_none
from report.grading.verdicts import effect, expectations, init_verdict, law, per_layer_factor, verdict

RUN_COLUMNS = [
    "run_id", "scenario", "depth", "seed", "status", "verdict", "reason", "verdict_init", "effect", "effect_reason",
    "law", "factor_init", "hidden_layers", "delta_ratio_init", "delta_ratio_median", "delta_ratio_final",
    "path_ratio_init", "path_ratio_median", "early_update_path", "loss_fall",
    "per_layer_factor", "grad_norm_early", "grad_norm_max", "grad_norm_max_epoch", "growth", "growth_applied",
    "growth_step",
    "growth_epoch", "clip_fraction", "loss_early", "loss_late", "loss_max", "loss_spans", "loss_spikes",
    "logged_steps", "steps_trained", "steps_per_epoch", "cell_id", "experiment",
    "final_test_accuracy", "final_test_loss", "first_test_accuracy", "final_train_accuracy", "forget_init",
    "forget_final", "diverged_step", "diverged_layer",
    "predicted_delta_ratio", "predicted_factor", "theory_note", "expected_init", "expected", "wall_time_s",
    *declared.run_columns(),
]  # fmt: skip


# The columns of each kind that run_rows reads (stats.py's and declared.py's functions): a summary reads no more
ROW_INPUTS = {
    "step": ("run_id", "step", "epoch", "loss", "grad_norm", "grad_norm_clipped", "clipped"),
    "layer": ("run_id", "step", "layer", "layer_role", "delta_norm", "kernel_grad_norm", "kernel_norm", "update_ratio",
              *(s.name for s in declared.SUMMARISED if s.kind == "layer")),
    "time": ("run_id", "step", "time_step", "delta_norm", "forget_gate"),
    "epoch": ("run_id", "epoch", "test_accuracy", "test_loss", "train_accuracy"),
}


TEXT_COLUMNS = {"run_id", "scenario", "status", "verdict", "verdict_init", "reason", "effect", "effect_reason", "law",
                "diverged_layer", "theory_note", "expected_init", "expected", "cell_id", "experiment", "loss_spans",
                "loss_spikes"}


# The run config of bench.sweep.config without the versions (tests/test_diff.py checks they agree)
VERSION_KEYS = ("tf_version", "keras_version", "python_version", "numpy_version")


MATCH_KEYS = (
    "scenario", "depth", "seed", "profile", "dataset", "train_samples", "test_samples", "epochs", "steps",
    "batch_size", "log_every", *(f.name for f in fields(Scenario) if f.name not in NOT_CONFIG), "optimizer",
    "device_kind", "measurement_code",
)  # fmt: skip


# A cell is every run with the same config except the seed; an experiment is what a whole sweep shares.
CELL_KEYS = tuple(k for k in (*MATCH_KEYS, *VERSION_KEYS) if k != "seed")


EXPERIMENT_KEYS = (
    "profile", "dataset", "batch_size", "log_every", "optimizer", "device_kind", "measurement_code",
    "tf_version", "keras_version", "python_version", "numpy_version", "intra_op_threads", "inter_op_threads",
)  # fmt: skip


def plain(value) -> str:
    """A recorded value as text, the same whatever else its column holds (pandas turns None among numbers into
    NaN and whole numbers among NaN into floats): missing is empty, numbers are floats."""
    if value is None or (isinstance(value, float | np.floating) and np.isnan(value)):
        return ""
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, int | float | np.integer | np.floating):
        return repr(float(value))
    return str(value)


def key_text(runs: pd.DataFrame, columns) -> pd.Series:
    """One string per run of the values of these columns (those recorded), for grouping; a run's text depends on
    its own values alone."""
    present = [runs[c] for c in columns if c in runs]
    return pd.Series(["|".join(map(plain, values)) for values in zip(*present)] if present else "", index=runs.index)


def with_cells(runs: pd.DataFrame) -> pd.DataFrame:
    """runs with cell_id (config minus seed) and experiment (what the sweep shares), as short hashes."""
    digest = lambda text: pd.util.hash_pandas_object(text, index=False).map(lambda h: f"{h:016x}"[:8])
    return runs.assign(cell_id=digest(key_text(runs, CELL_KEYS)),
                       experiment=digest(key_text(runs, EXPERIMENT_KEYS)))


def catalogue_order(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows sorted by the scenario catalogue's order (unknown scenarios last, by name), then depth, seed."""
    rank = {name: i for i, name in enumerate(SCENARIOS)}
    order = frame["scenario"].map(lambda s: (rank.get(s, len(rank)), s))
    keys = [c for c in ("depth", "seed") if c in frame]
    return (
        frame.assign(_order=order)
        .sort_values(["_order", *keys])
        .drop(columns="_order")
        .reset_index(drop=True)
    )


def run_table(results) -> pd.DataFrame:
    """One row per run: its config keys, outcome, verdict with reason, and the statistics behind it."""
    return tidy(run_rows(results))


def run_rows(results) -> pd.DataFrame:
    """run_table's rows before tidy(): each row depends on its own run alone, so the rows of any batch of runs
    (report/summaries.py) are those of the whole folder."""
    runs = results.runs
    if runs.empty:
        return pd.DataFrame(columns=RUN_COLUMNS)
    hidden = hidden_signal(results)
    table = (
        with_cells(runs).set_index("run_id")
        .join(ratio_summary(hidden, delta_ratio_steps(hidden, hidden.rows["delta_norm"].to_numpy())))
        .join(ratio_summary(hidden, delta_ratio_steps(hidden, path_norms(hidden, runs)), "path_ratio")[
            ["path_ratio_init", "path_ratio_median"]])
        .join(early_update_path(hidden))
        .join(step_summary(results.step))
        .join(final_epoch(results.epoch))
        .join(forget_gates(results.time))
        .join(hidden_layers(hidden))
        .join(declared.run_summaries(hidden, runs))
    )
    for column in RUN_COLUMNS:  # runs without a step/layer/epoch row still get every column
        if column not in table and column != "run_id":
            table[column] = np.nan
    table = table.reset_index()
    if "steps_run" in table:  # the run's own count: logging may skip its last steps
        table["steps_trained"] = table["steps_run"].where(table["steps_run"].notna(), table["steps_trained"])
    layers = table["hidden_layers"].where(table["hidden_layers"].notna(), table["depth"])
    table["per_layer_factor"] = [per_layer_factor(r, n) for r, n in zip(table["delta_ratio_median"], layers)]
    table["factor_init"] = [np.inf if r == np.inf else per_layer_factor(r, n)  # beyond float32 at step 0
                            for r, n in zip(table["delta_ratio_init"], layers)]
    table["law"] = table["factor_init"].map(law)
    with np.errstate(divide="ignore", invalid="ignore"):
        table["loss_fall"] = (table["loss_early"] - table["loss_late"]) / table["loss_early"].where(
            table["loss_early"] > 0)
    table["verdict_init"] = [init_verdict(r, d) for r, d in zip(table["path_ratio_init"], table["diverged_step"])]
    records = table.to_dict("records")
    table[["verdict", "reason"]] = [verdict(r) for r in records]
    table[["effect", "effect_reason"]] = [effect(r) for r in records]
    predictions = [prediction(r) for r in records]
    table["predicted_delta_ratio"] = [ratio for ratio, _ in predictions]
    table["theory_note"] = [note for _, note in predictions]
    table["predicted_factor"] = [per_layer_factor(r, d) for r, d in zip(table["predicted_delta_ratio"], table["depth"])]
    table[["expected_init", "expected"]] = [expectations(r, ratio) for r, (ratio, _) in zip(records, predictions)]
    return table[RUN_COLUMNS]


def tidy(table: pd.DataFrame) -> pd.DataFrame:
    """run_rows (of one batch or many, concatenated) as the run table: numbers as numbers, missing text as None,
    rows in catalogue order."""
    table = table[RUN_COLUMNS].copy()
    numeric = [c for c in RUN_COLUMNS if c not in TEXT_COLUMNS]
    table[numeric] = table[numeric].apply(pd.to_numeric, errors="coerce")
    return with_none(catalogue_order(table[RUN_COLUMNS]), ["diverged_layer", "theory_note", "law", "expected_init",
                                                            "expected"])
