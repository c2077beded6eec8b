"""Plain values the templates print about cells, links and result sets, shared by several pages."""

from dataclasses import dataclass

import numpy as np
import pandas as pd

from report.data import Data, distinct, none_if_na
from report.figures import Key
from report.figures.common import select
from report.grading.claims import loss_drop
from report.grading.rules import EXPECTED_FROM_THEORY
from report.grading.values import finite_median
from report.grading.verdicts import per_layer_factor


@dataclass(frozen=True)
class CellView:
    """One scenario × depth over its seeds."""

    scenario: str
    depth: int
    seeds: int
    verdict: str
    verdict_label: str
    expected: str | None
    as_expected: bool | None
    accuracy_median: float
    accuracy_min: float
    accuracy_max: float
    delta_ratio_init: float
    predicted_delta_ratio: float
    theory_note: str | None
    growth: float  # median over seeds of max / early global gradient norm
    clip_fraction: float  # median over seeds
    diverged: int  # seeds that diverged
    gain_measured: float  # per-layer factor of ‖δ‖² implied by the step-0 ratio: ratio^(2/(L-1))
    gain_predicted: float  # the same from the mean-field prediction (the geometric mean of χ)
    factor: float  # the verdict's per-layer ‖δ‖ factor: median ratio over training^(1/(L-1)), median over seeds
    factor_init: float  # the same at step 0
    expected_from: str | None
    expected_when: str  # "at step 0" (the theory's) or "in training" (the catalogue's)
    verdict_init: str  # the verdict rules on the step-0 ratio alone
    steps: float  # training steps, median over seeds
    growth_epoch: float  # epoch in which ‖g‖ first crossed exploding_growth × its early median, median over seeds
    loss_fall: float  # fraction by which the batch loss fell from the early to the late window, median over seeds
    href: str


def per_layer_gain(ratio: float, depth: int) -> float:
    """Per-layer factor of ‖δ‖², comparable with χ: the square of per_layer_factor."""
    return per_layer_factor(ratio, depth) ** 2


def median_of(rows: pd.DataFrame, column: str) -> float:
    values = pd.to_numeric(rows[column], errors="coerce").astype(float)
    values = values[np.isfinite(values)]
    return float(values.median()) if len(values) else float("nan")


def cell_view(cell: pd.Series, runs: pd.DataFrame) -> CellView:
    rows = runs[(runs["scenario"] == cell["scenario"]) & (runs["depth"] == cell["depth"])]
    depth = int(cell["depth"])
    return CellView(
        scenario=cell["scenario"], depth=depth, seeds=int(cell["seeds"]), verdict=cell["verdict"],
        verdict_label=cell["verdict_label"], expected=cell["expected"],
        as_expected=none_if_na(cell["as_expected"]),
        accuracy_median=float(cell["accuracy_median"]), accuracy_min=float(cell["accuracy_min"]),
        accuracy_max=float(cell["accuracy_max"]), delta_ratio_init=float(cell["delta_ratio_init"]),
        predicted_delta_ratio=float(cell["predicted_delta_ratio"]),
        theory_note=none_if_na(cell["theory_note"]),
        growth=median_of(rows, "growth"), clip_fraction=median_of(rows, "clip_fraction"),
        diverged=int((rows["verdict"] == "diverged").sum()),
        gain_measured=per_layer_gain(float(cell["delta_ratio_init"]), depth),
        gain_predicted=per_layer_gain(float(cell["predicted_delta_ratio"]), depth),
        factor=float(cell["per_layer_factor"]),
        factor_init=per_layer_factor(float(cell["delta_ratio_init"]), median_of(rows, "hidden_layers")),
        expected_from=none_if_na(cell["expected_from"]),
        expected_when="at step 0" if cell["expected_from"] == EXPECTED_FROM_THEORY else "in training",
        verdict_init=cell["verdict_init"],
        steps=median_of(rows, "steps_trained"), growth_epoch=median_of(rows, "growth_epoch"),
        loss_fall=finite_median(pd.Series([loss_drop(r) for r in rows.to_dict("records")],
                                                   dtype=float)),
        href=scenario_href(cell["scenario"]),
    )  # fmt: skip


def cell_views(data: Data) -> list[CellView]:
    return [cell_view(cell, data.runs) for _, cell in data.cells.iterrows()]


def scenario_href(name: str) -> str:
    return f"scenarios/{name}.html"


@dataclass(frozen=True)
class Link:
    href: str  # relative to the site root
    title: str
    note: str = ""

PROVENANCE_KEYS = ("tf_version", "keras_version", "profile", "dataset", "device")


@dataclass(frozen=True)
class ResultSet:
    """Runs that share TF/Keras version, profile, dataset and device: one line of the provenance table."""

    label: str
    runs: int
    scenarios: int
    seeds: str
    details: tuple[tuple[str, str], ...]

DETAIL_KEYS = (
    ("dataset source", "dataset_source"), ("dataset note", "dataset_note"),
    ("train samples", "train_samples"),
    ("test samples", "test_samples"), ("epochs", "epochs"), ("batch size", "batch_size"), ("optimizer", "optimizer"),
    ("Python", "python_version"), ("numpy", "numpy_version"), ("platform", "platform"),
    ("device kind", "device_kind"), ("deterministic ops", "determinism"), ("XLA", "xla"),
    ("intra-op threads", "intra_op_threads"), ("inter-op threads", "inter_op_threads"),
    ("runs trained side by side", "runs_side_by_side"),
    ("git commit", "git_commit"), ("gradbench", "gradbench_version"), ("measurement code", "measurement_code"),
)  # fmt: skip


def seed_list(seeds: pd.Series) -> str:
    """The distinct seeds, listed up to ten."""
    found = sorted(int(s) for s in seeds.unique())
    return ", ".join(map(str, found)) if len(found) <= 10 else f"{len(found)}, from {found[0]} to {found[-1]}"


def result_set(key: tuple, rows: pd.DataFrame) -> ResultSet:
    tf, keras, profile, dataset, device = (str(v) for v in key)
    started = sorted(str(v) for v in rows.get("started_at", pd.Series(dtype=str)).dropna())
    details = [(name, distinct(rows, column)) for name, column in DETAIL_KEYS]
    if started:
        details.append(("started (UTC)", f"{started[0]} – {started[-1]}"))
    return ResultSet(
        label=f"TF {tf} · Keras {keras} · {profile} · {dataset} · {device}",
        runs=len(rows), scenarios=rows["scenario"].nunique(),
        seeds=seed_list(rows["seed"]), details=tuple(details),
    )  # fmt: skip


def result_sets(runs: pd.DataFrame) -> list[ResultSet]:
    keys = [k for k in PROVENANCE_KEYS if k in runs]
    filled = runs.assign(**{k: runs[k].fillna("not recorded").astype(str) for k in keys})
    return [result_set(key, rows) for key, rows in filled.groupby(keys, sort=True)]


def common_seeds(runs: pd.DataFrame, keys: list[Key]) -> list[int]:
    """Seeds every compared scenario has, so problem and fix start from the same seeds."""
    rows = select(runs, keys)
    sets = [set(group["seed"]) for _, group in rows.groupby("series")]
    return sorted(set.intersection(*sets)) if sets else []
