"""Plain values the templates print about cells, links and result sets, shared by several pages."""

from dataclasses import dataclass

import pandas as pd

from bench.scenarios import SCENARIOS
from bench.statistics import SUMMARIES, summarised
from report.data import Data, distinct, none_if_na
from report.figures import Key
from report.figures.common import select
from report.grading.verdicts import per_layer_factor


@dataclass(frozen=True)
class CellView:
    """One scenario × depth over its seeds: the cell table's row (report/grading/cells.py) as a template reads it."""

    scenario: str
    depth: int
    seeds: int
    law: str | None  # ordered | critical | amplifying: how ‖δ‖ changes per layer at step 0
    per: str  # what the law's factor is per: "layer", or "step" of the sequence for a recurrent net
    factor_init: float  # its per-layer ‖δ‖ factor at step 0, median over seeds
    factor_init_min: float
    factor_init_max: float
    verdict: str  # over training
    verdict_label: str
    verdict_init: str  # the verdict rules on the step-0 ratio alone
    verdict_init_label: str
    effect: str  # learns | stalled | frozen | unstable
    effect_label: str
    agrees: bool  # the verdict predicts the effect
    expected_init: str | None  # the theory's verdict at step 0, where it applies
    as_expected_init: bool | None
    expected: str | None  # the literature's verdict in training, at the catalogue's depth
    as_expected: bool | None
    accuracy_median: float
    accuracy_min: float
    accuracy_max: float
    delta_ratio_init: float  # ‖δ first hidden‖ / ‖δ last hidden‖ at step 0
    path_ratio_init: float  # the whole-path ratio the verdicts read (scale-free under batch norm)
    path_ratio_median: float
    predicted_delta_ratio: float
    theory_note: str | None
    scale_free: bool  # the whole-path ratio is ‖∂L/∂W‖·‖W‖'s (batch norm), not ‖δ‖'s
    growth: float  # largest / early global gradient norm before clipping, median over seeds
    growth_applied: float  # the same after clipping: what reaches the weights
    growth_exploding: bool  # the growth before clipping is beyond the exploding limit
    clip_fraction: float
    diverged: int  # seeds that diverged
    gain_measured: float  # per-layer factor of ‖δ‖² implied by the step-0 ratio: ratio^(2/(L-1))
    gain_predicted: float  # the same from the mean-field prediction (the geometric mean of χ)
    steps: float  # training steps, median over seeds
    growth_epoch: float  # epoch in which ‖g‖ first crossed exploding_growth × its early median
    loss_fall: float  # fraction by which the batch loss fell from the early to the late window
    early_update_path: float  # the effect's number: hidden layer 2's update path over the last hidden layer's
    href: str
    statistics: tuple["StatisticValue", ...] = ()  # the declared statistics with a summary, in declaration order


@dataclass(frozen=True)
class StatisticValue:
    """A declared statistic (bench/statistics.py) of one cell: its summary at step 0 and at the end of training."""

    name: str
    label: str
    unit: str
    meaning: str  # what it is and how a run summarises it
    init: float  # the summary at step 0, aggregated over the seeds that recorded it
    final: float  # the same at the last logged step
    seeds: int  # the cell's seeds that recorded it (runs stored before it was declared did not)


def statistic_values(cell: pd.Series) -> tuple[StatisticValue, ...]:
    return tuple(
        StatisticValue(s.name, s.label, s.unit, f"{s.meaning}: {SUMMARIES[s.summary]}, {s.aggregate} over seeds",
                       float(cell[f"{s.name}_init"]), float(cell[f"{s.name}_final"]), int(cell[f"{s.name}_seeds"]))
        for s in summarised()
    )


def per_layer_gain(ratio: float, depth: int) -> float:
    """Per-layer factor of ‖δ‖², comparable with χ: the square of per_layer_factor."""
    return per_layer_factor(ratio, depth) ** 2


def cell_view(cell: pd.Series, recorded: pd.DataFrame) -> CellView:
    depth = int(cell["depth"])
    number = lambda column: float(cell[column])
    normed = recorded.loc[(recorded["scenario"] == cell["scenario"]) & (recorded["depth"] == depth), "batch_norm"] \
        if "batch_norm" in recorded else pd.Series(dtype=bool)
    return CellView(
        scenario=cell["scenario"], depth=depth, seeds=int(cell["seeds"]), law=none_if_na(cell["law"]),
        per="step" if getattr(SCENARIOS.get(cell["scenario"]), "architecture", "") == "rnn" else "layer",
        factor_init=number("factor_init"), factor_init_min=number("factor_init_min"),
        factor_init_max=number("factor_init_max"), verdict=cell["verdict"], verdict_label=cell["verdict_label"],
        verdict_init=cell["verdict_init"], verdict_init_label=cell["verdict_init_label"], effect=cell["effect"],
        effect_label=cell["effect_label"], agrees=bool(cell["agrees"]),
        expected_init=none_if_na(cell["expected_init"]), as_expected_init=none_if_na(cell["as_expected_init"]),
        expected=none_if_na(cell["expected"]), as_expected=none_if_na(cell["as_expected"]),
        accuracy_median=number("accuracy_median"), accuracy_min=number("accuracy_min"),
        accuracy_max=number("accuracy_max"), delta_ratio_init=number("delta_ratio_init"),
        path_ratio_init=number("path_ratio_init"), path_ratio_median=number("path_ratio_median"),
        predicted_delta_ratio=number("predicted_delta_ratio"), theory_note=none_if_na(cell["theory_note"]),
        scale_free=bool(normed.fillna(False).astype(bool).any()),
        growth=number("growth"), growth_applied=number("growth_applied"),
        growth_exploding=bool(cell["growth_exploding"]), clip_fraction=number("clip_fraction"),
        diverged=int(cell["diverged"]),
        gain_measured=per_layer_gain(number("delta_ratio_init"), depth),
        gain_predicted=per_layer_gain(number("predicted_delta_ratio"), depth),
        steps=number("steps_trained"), growth_epoch=number("growth_epoch"), loss_fall=number("loss_fall"),
        early_update_path=number("early_update_path"), href=scenario_href(cell["scenario"]),
        statistics=statistic_values(cell),
    )  # fmt: skip


def cell_views(data: Data) -> list[CellView]:
    return [cell_view(cell, data.recorded) for _, cell in data.cells.iterrows()]


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
