"""From result tables to per-run verdicts, per-cell summaries and the article's claims (DESIGN §6).

Pure pandas: every number on a page comes from here or from the figures' data, and every rule
reads its numbers from THRESHOLDS, the one table the Methods page prints. Non-finite values (a
diverged run's last step) are excluded from medians and extremes and counted, never taken as 0.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import pandas as pd

from bench.scenarios import SCENARIOS
from report import theory


@dataclass(frozen=True)
class Threshold:
    name: str
    value: float
    meaning: str


THRESHOLDS: dict[str, Threshold] = {
    t.name: t
    for t in (
        Threshold(
            "vanishing_delta_ratio",
            1e-3,
            "a run whose median (over logged steps) ratio of first- to "
            "last-hidden-layer ‖δ‖ is below this is vanishing: the input side gets a thousandth of the "
            "signal the output side gets",
        ),
        Threshold(
            "exploding_delta_ratio",
            1e3,
            "a run whose median first/last ‖δ‖ ratio is above this is "
            "exploding: the backward signal grows a thousandfold on its way to the input",
        ),
        Threshold(
            "exploding_growth",
            1e3,
            "a run whose largest global gradient norm exceeds this many times its early median is exploding",
        ),
        Threshold(
            "early_steps",
            20,
            "the number of first (and, for losses, last) logged steps whose median is the 'early' (or "
            "'late') value of a run; half the run's logged steps when it has fewer than twice this",
        ),
        Threshold(
            "stuck_accuracy",
            0.2,
            "a final test accuracy at or below this counts as stuck near chance "
            "(0.10 with 10 classes; the article reports 0.112)",
        ),
        Threshold(
            "plateau_drop",
            0.1,
            "a batch loss that falls by less than this fraction between the early "
            "and the late window has plateaued; one that falls by more has decreased",
        ),
        Threshold(
            "loss_blowup", 10.0, "a largest batch loss above this many times its early median has blown up"
        ),
        Threshold("resnet_accuracy", 0.9, "the article's final accuracy for its ResNet (> 90 %)"),
    )
}


def threshold(name: str) -> float:
    return THRESHOLDS[name].value


RULES: tuple[tuple[str, str], ...] = (
    ("diverged", "the run produced a non-finite loss, gradient or weight and was stopped"),
    (
        "exploding",
        (
            "largest global gradient norm > exploding_growth × its median over the first early_steps "
            "logged steps, or median first/last ‖δ‖ ratio > exploding_delta_ratio"
        ),
    ),
    (
        "vanishing",
        "median over logged steps of the first/last hidden-layer ‖δ‖ ratio < vanishing_delta_ratio",
    ),
    ("healthy", "none of the above"),
)
SEVERITY = tuple(verdict for verdict, _ in RULES)  # most severe first
# the article's training (its code: mnist.load_data(), model.fit(..., epochs=10, batch_size=32))
ARTICLE_EPOCHS = 10
ARTICLE_TRAIN_SAMPLES = 60000
ARTICLE_DATASET = "mnist"
# input size per dataset, for runs whose metadata predates an `input_features` field
DATASET_FEATURES = {"mnist": 784, "fashion_mnist": 784, "digits": 64, "synthetic": 64}

RUN_COLUMNS = [
    "run_id", "scenario", "depth", "seed", "status", "verdict", "reason",
    "delta_ratio_init", "delta_ratio_median", "delta_ratio_final",
    "grad_norm_early", "grad_norm_max", "grad_norm_max_epoch", "growth", "clip_fraction",
    "loss_early", "loss_late", "loss_max", "logged_steps",
    "final_test_accuracy", "final_test_loss", "diverged_step", "diverged_layer",
    "predicted_delta_ratio", "theory_note", "wall_time_s",
]  # fmt: skip
CELL_COLUMNS = [
    "scenario", "depth", "verdict", "verdict_count", "seeds", "verdict_label",
    "accuracy_median", "accuracy_min", "accuracy_max", "delta_ratio_init", "delta_ratio_median",
    "grad_norm_max", "predicted_delta_ratio", "theory_note", "expected", "as_expected",
]  # fmt: skip
TEXT_COLUMNS = {"run_id", "scenario", "status", "verdict", "reason", "diverged_layer", "theory_note"}
BAND_STATS = ["median", "min", "max", "n", "n_nonfinite"]


# -- small numeric helpers -------------------------------------------------------------------------


def finite(values: pd.Series) -> pd.Series:
    """The finite values of a series, as float64."""
    values = pd.to_numeric(values, errors="coerce").astype(float)
    return values[np.isfinite(values)]


def finite_median(values: pd.Series) -> float:
    values = finite(values)
    return float(values.median()) if len(values) else np.nan


def fmt(value: float) -> str:
    """3 significant digits, scientific when tiny or huge, 'n/a' for a missing value."""
    if value is None or pd.isna(value):
        return "n/a"
    if value != 0 and np.isfinite(value) and not 1e-3 <= abs(value) < 1e3:
        return f"{value:.2e}"
    return f"{value:.3g}"


def with_none(frame: pd.DataFrame, columns) -> pd.DataFrame:
    """Missing values of text/flag columns as None (pandas turns a None among strings into NaN)."""
    for column in columns:
        values = frame[column].astype(object)
        frame[column] = values.where(values.notna(), None)
    return frame


def percent(fraction: float) -> str:
    return "n/a" if pd.isna(fraction) else f"{100 * fraction:.1f} %"


def step_text(step: float) -> str:
    return "n/a" if step is None or pd.isna(step) else str(int(step))


# -- per-run statistics ----------------------------------------------------------------------------


def delta_ratios(layer: pd.DataFrame) -> pd.DataFrame:
    """run_id, step, ratio = delta_norm of the first hidden layer / that of the last hidden layer."""
    hidden = layer[layer["layer_role"] == "hidden"]
    if hidden.empty:
        return pd.DataFrame({"run_id": pd.Series(dtype=str), "step": pd.Series(dtype=int), "ratio": []})
    ends = hidden.groupby("run_id")["layer"].agg(first="min", last="max")
    hidden = hidden.join(ends, on="run_id")
    keys = ["run_id", "step"]
    first = hidden[hidden["layer"] == hidden["first"]].set_index(keys)["delta_norm"].astype(float)
    last = hidden[hidden["layer"] == hidden["last"]].set_index(keys)["delta_norm"].astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = first / last
    return ratio.rename("ratio").reset_index().sort_values(keys, ignore_index=True)


def ratio_summary(ratios: pd.DataFrame) -> pd.DataFrame:
    """Per run: the ratio at the first logged step, its median over finite steps, its last finite value."""

    def summarise(rows: pd.DataFrame) -> pd.Series:
        good = finite(rows["ratio"])
        return pd.Series({
            "delta_ratio_init": float(rows["ratio"].iloc[0]),
            "delta_ratio_median": float(good.median()) if len(good) else np.nan,
            "delta_ratio_final": float(good.iloc[-1]) if len(good) else np.nan,
        })  # fmt: skip

    return per_run(ratios.sort_values(["run_id", "step"]), summarise)


def windows(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """The early and late windows of a run's logged values: early_steps long, or half a shorter run.

    They never overlap; a run of one logged step has an early window of that step and no late one.
    """
    size = min(int(threshold("early_steps")), len(values) // 2)
    return values.iloc[: max(size, 1)], values.iloc[len(values) - size :] if size else values.iloc[:0]


def step_summary(step: pd.DataFrame) -> pd.DataFrame:
    """Per run: gradient-norm growth, clipping frequency, loss windows, first non-finite step."""

    def summarise(rows: pd.DataFrame) -> pd.Series:
        norms, losses = rows["grad_norm"], rows["loss"]
        early, peak = finite_median(windows(norms)[0]), finite(norms).max()
        early_losses, late_losses = windows(losses)
        bad = ~(np.isfinite(norms.astype(float)) & np.isfinite(losses.astype(float)))
        return pd.Series({
            "grad_norm_early": early,
            "grad_norm_max": peak,
            "grad_norm_max_epoch": rows.loc[finite(norms).idxmax(), "epoch"] if finite(norms).size else np.nan,
            "growth": peak / early if early > 0 else np.nan,
            "clip_fraction": pd.to_numeric(rows["clipped"], errors="coerce").astype(float).mean(),
            "loss_early": finite_median(early_losses),
            "loss_late": finite_median(late_losses),
            "loss_max": finite(losses).max(),
            "logged_steps": len(rows),
            "first_nonfinite_step": rows.loc[bad, "step"].min() if bad.any() else np.nan,
        })  # fmt: skip

    return per_run(step.sort_values(["run_id", "step"]), summarise)


def final_epoch(epoch: pd.DataFrame) -> pd.DataFrame:
    """Per run: test accuracy and loss of its last recorded epoch."""
    last = epoch.sort_values(["run_id", "epoch"]).groupby("run_id").tail(1)
    columns = {"test_accuracy": "final_test_accuracy", "test_loss": "final_test_loss"}
    return last.set_index("run_id")[list(columns)].rename(columns=columns).astype(float)


def per_run(frame: pd.DataFrame, summarise: Callable[[pd.DataFrame], pd.Series]) -> pd.DataFrame:
    """summarise() applied to each run's rows; an empty frame indexed by run_id when there are none."""
    if frame.empty:
        return pd.DataFrame(index=pd.Index([], name="run_id"))
    return pd.DataFrame(
        {run_id: summarise(rows) for run_id, rows in frame.groupby("run_id", sort=True)}
    ).T.rename_axis("run_id")


def input_features(run: Mapping) -> float:
    features = run.get("input_features")
    if features is not None and not pd.isna(features):
        return float(features)
    return float(DATASET_FEATURES.get(run.get("dataset"), np.nan))


def prediction(run: Mapping) -> tuple[float, str | None]:
    """(mean-field first/last δ ratio at init, None) or (NaN, why the theory does not apply)."""
    reason = theory.applies(run)
    if reason is not None:
        return np.nan, reason
    features, mean_square, width = input_features(run), run.get("input_mean_square"), run.get("width")
    if any(value is None or pd.isna(value) for value in (features, mean_square, width)):
        return np.nan, "input size, input mean square or width not recorded"
    ratio = theory.predicted_delta_ratio(
        run["activation"], int(run["depth"]), int(width), int(features), float(mean_square),
        run["initializer"], float(run.get("init_std") or 0.0),
    )  # fmt: skip
    return (ratio, None) if np.isfinite(ratio) else (np.nan, "prediction beyond floating-point range")


# -- verdicts --------------------------------------------------------------------------------------


def verdict(row: Mapping) -> tuple[str, str]:
    """(verdict, why with the numbers) for one run's statistics, by RULES in order of precedence."""
    if row["status"] == "diverged" or not pd.isna(row.get("first_nonfinite_step", np.nan)):
        step = row.get("diverged_step")
        step = row.get("first_nonfinite_step") if step is None or pd.isna(step) else step
        layer = row.get("diverged_layer")
        where = f" in layer {layer}" if isinstance(layer, str) and layer else ""
        return "diverged", f"non-finite values at step {step_text(step)}{where}; training stopped there"
    growth, ratio = row["growth"], row["delta_ratio_median"]
    if growth > threshold("exploding_growth"):
        return "exploding", (
            f"largest global gradient norm {fmt(row['grad_norm_max'])} is {fmt(growth)}× its early median "
            f"{fmt(row['grad_norm_early'])} (> {fmt(threshold('exploding_growth'))}×)"
        )
    if ratio > threshold("exploding_delta_ratio"):
        return (
            "exploding",
            f"median first/last ‖δ‖ ratio {fmt(ratio)} > {fmt(threshold('exploding_delta_ratio'))}",
        )
    if ratio < threshold("vanishing_delta_ratio"):
        return (
            "vanishing",
            f"median first/last ‖δ‖ ratio {fmt(ratio)} < {fmt(threshold('vanishing_delta_ratio'))}",
        )
    return "healthy", (
        f"median first/last ‖δ‖ ratio {fmt(ratio)}, gradient-norm growth {fmt(growth)}× "
        f"(limits {fmt(threshold('vanishing_delta_ratio'))}–{fmt(threshold('exploding_delta_ratio'))} and "
        f"{fmt(threshold('exploding_growth'))}×)"
    )


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
    runs = results.runs
    if runs.empty:
        return pd.DataFrame(columns=RUN_COLUMNS)
    table = (
        runs.set_index("run_id")
        .join(ratio_summary(delta_ratios(results.layer)))
        .join(step_summary(results.step))
        .join(final_epoch(results.epoch))
    )
    for column in RUN_COLUMNS:  # runs without a step/layer/epoch row still get every column
        if column not in table and column != "run_id":
            table[column] = np.nan
    table = table.reset_index()
    records = table.to_dict("records")
    table[["verdict", "reason"]] = [verdict(r) for r in records]
    predictions = [prediction(r) for r in records]
    table["predicted_delta_ratio"] = [ratio for ratio, _ in predictions]
    table["theory_note"] = [note for _, note in predictions]
    numeric = [c for c in RUN_COLUMNS if c not in TEXT_COLUMNS]
    table[numeric] = table[numeric].apply(pd.to_numeric, errors="coerce")
    return with_none(catalogue_order(table[RUN_COLUMNS]), ["diverged_layer", "theory_note"])


# -- cells: scenario x depth over seeds ------------------------------------------------------------


def majority(verdicts: pd.Series) -> tuple[str, int]:
    """The most frequent verdict and its count; a tie goes to the more severe verdict."""
    counts = verdicts.value_counts()
    top = counts[counts == counts.max()].index
    winner = min(top, key=lambda v: SEVERITY.index(v) if v in SEVERITY else len(SEVERITY))
    return winner, int(counts[winner])


def as_expected(found: str, expected: str | None) -> bool | None:
    """Whether the cell's verdict matches the literature's; divergence is the extreme of exploding."""
    if expected is None:
        return None
    return found == expected or (expected == "exploding" and found == "diverged")


def cell_row(rows: pd.DataFrame) -> dict:
    found, count = majority(rows["verdict"])
    scenario = SCENARIOS.get(rows["scenario"].iloc[0])
    expected = scenario.expected if scenario else None
    accuracy = finite(rows["final_test_accuracy"])
    notes = rows["theory_note"].dropna()
    return {
        "verdict": found,
        "verdict_count": count,
        "seeds": len(rows),
        "verdict_label": f"{found} {count}/{len(rows)}",
        "accuracy_median": accuracy.median() if len(accuracy) else np.nan,
        "accuracy_min": accuracy.min() if len(accuracy) else np.nan,
        "accuracy_max": accuracy.max() if len(accuracy) else np.nan,
        "delta_ratio_init": finite_median(rows["delta_ratio_init"]),
        "delta_ratio_median": finite_median(rows["delta_ratio_median"]),
        "grad_norm_max": finite_median(rows["grad_norm_max"]),
        "predicted_delta_ratio": finite_median(rows["predicted_delta_ratio"]),
        "theory_note": notes.iloc[0] if len(notes) else None,
        "expected": expected,
        "as_expected": as_expected(found, expected),
    }


def cell_table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per scenario × depth (catalogue order, then depth): majority verdict over seeds and medians.

    Numeric columns other than the accuracy range are medians over seeds of the run_table columns.
    """
    if runs.empty:
        return pd.DataFrame(columns=CELL_COLUMNS)
    rows = [
        {"scenario": scenario, "depth": depth, **cell_row(group)}
        for (scenario, depth), group in runs.groupby(["scenario", "depth"], sort=False)
    ]
    cells = catalogue_order(pd.DataFrame(rows, columns=CELL_COLUMNS))
    return with_none(cells, ["theory_note", "expected", "as_expected"])


def seed_band(frame: pd.DataFrame, x: str, y: str, by: list[str]) -> pd.DataFrame:
    """Median, min and max of y over the rows (seeds) of each by + x group, finite values only.

    n counts the finite values used, n_nonfinite the NaN/inf values left out.
    """
    keys = [*by, x]
    if frame.empty:
        return pd.DataFrame(columns=[*keys, *BAND_STATS])
    values = pd.to_numeric(frame[y], errors="coerce").astype(float)
    good = np.isfinite(values)
    grouped = frame[keys].assign(value=values.where(good), bad=~good).groupby(keys, sort=True, dropna=False)
    band = grouped["value"].agg(["median", "min", "max", "count"]).rename(columns={"count": "n"})
    band["n_nonfinite"] = grouped["bad"].sum().astype(int)
    return band.reset_index()[[*keys, *BAND_STATS]]


# -- the article's four claims ---------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    experiment: str
    claim: str
    measured: str
    reproduced: bool | None
    evidence: str


ARTICLE_CLAIMS = {
    "sigmoid": "loss plateaus, accuracy stuck near 11 %",
    "resnet": "fast convergence, accuracy > 90 %",
    "linear": "gradient norms and loss blow up (around epoch 3)",
    "linear_clipnorm": "loss decreases steadily",
}


def loss_drop(row: Mapping) -> float:
    """Fraction by which the batch loss fell from the early to the late window."""
    early, late = row["loss_early"], row["loss_late"]
    return (early - late) / early if early > 0 else np.nan


def epoch_losses(results, run_id: str) -> list[float]:
    rows = results.epoch[results.epoch["run_id"] == run_id].sort_values("epoch")
    return [float(v) for v in rows["train_loss"]]


def training_note(rows: pd.DataFrame, results) -> str:
    """How much these runs trained, against the article's 10 epochs on the 60000 MNIST training images."""
    run = results.runs[results.runs["run_id"] == rows["run_id"].iloc[0]].iloc[0]
    epochs, samples, dataset = run.get("epochs"), run.get("train_samples"), run.get("dataset")
    if any(value is None or pd.isna(value) for value in (epochs, samples)):
        return "training length not recorded"
    share = epochs * samples / (ARTICLE_EPOCHS * ARTICLE_TRAIN_SAMPLES)
    notes = [
        f"{100 * share:.3g} % of the article's {ARTICLE_EPOCHS} epochs × {ARTICLE_TRAIN_SAMPLES} samples"
    ]
    if dataset != ARTICLE_DATASET:
        notes.append(f"the article used {ARTICLE_DATASET}")
    return (
        f"trained {int(epochs)} epoch(s) on {int(samples)} training samples of {dataset} ({'; '.join(notes)})"
    )


def window_text() -> str:
    steps = int(threshold("early_steps"))
    return f"windows: the first and the last {steps} logged steps, or each half of a shorter run"


def tally(ok: list[bool]) -> tuple[bool, str]:
    """Reproduced when a strict majority of seeds meet the criterion."""
    k, n = sum(ok), len(ok)
    return k * 2 > n, f"{k}/{n} seeds meet the criterion"


def range_text(values: pd.Series) -> str:
    """Median over seeds with its range, finite values only."""
    good = finite(values)
    if good.empty:
        return "n/a"
    if len(good) == 1:
        return f"{fmt(good.iloc[0])} (1 seed)"
    if good.min() == good.max():
        return f"{fmt(good.iloc[0])} (all {len(good)} seeds)"
    return f"{fmt(good.median())} (median; range {fmt(good.min())}–{fmt(good.max())})"


def check_sigmoid(rows: pd.DataFrame, results) -> tuple[bool, str, str]:
    stuck, flat = threshold("stuck_accuracy"), threshold("plateau_drop")
    drops = [loss_drop(r) for r in rows.to_dict("records")]
    ok = [acc <= stuck and drop <= flat for acc, drop in zip(rows["final_test_accuracy"], drops)]
    reproduced, count = tally(ok)
    measured = (
        f"final test accuracy {range_text(rows['final_test_accuracy'])}; batch loss "
        f"{fmt(finite_median(rows['loss_early']))} → {fmt(finite_median(rows['loss_late']))} "
        f"(median fall {percent(finite_median(pd.Series(drops)))}); {count}"
    )
    evidence = (
        f"reproduced if in a majority of seeds the final test accuracy is ≤ {fmt(stuck)} and the median batch "
        f"loss of the late window is less than {percent(flat)} below that of the early window (a plateau; "
        f"{window_text()})"
    )
    return reproduced, measured, evidence


def check_resnet(rows: pd.DataFrame, results) -> tuple[bool, str, str]:
    target = threshold("resnet_accuracy")
    reproduced, count = tally([acc > target for acc in rows["final_test_accuracy"]])
    first = results.epoch[results.epoch["run_id"].isin(rows["run_id"]) & (results.epoch["epoch"] == 1)]
    measured = (
        f"final test accuracy {range_text(rows['final_test_accuracy'])}, after epoch 1 "
        f"{range_text(first['test_accuracy'])}; {count}"
    )
    evidence = f"reproduced if in a majority of seeds the final test accuracy is > {fmt(target)}"
    return reproduced, measured, evidence


def blew_up(row: Mapping) -> bool:
    if row["verdict"] == "diverged":
        return True
    early = row["loss_early"]
    return row["verdict"] == "exploding" and early > 0 and row["loss_max"] / early >= threshold("loss_blowup")


def check_linear(rows: pd.DataFrame, results) -> tuple[bool, str, str]:
    records = rows.to_dict("records")
    reproduced, count = tally([blew_up(r) for r in records])
    with np.errstate(divide="ignore", invalid="ignore"):
        loss_growth = rows["loss_max"].astype(float) / rows["loss_early"].astype(float)
    peak_epochs = ", ".join(step_text(e) for e in rows["grad_norm_max_epoch"])
    measured = (
        f"largest global gradient norm / early median: {range_text(rows['growth'])}, reached in epoch "
        f"{peak_epochs}; largest batch loss / early median: {range_text(loss_growth)}; {count}"
    )
    evidence = (
        f"reproduced if in a majority of seeds the run diverged, or was exploding (growth > "
        f"{fmt(threshold('exploding_growth'))}× or ‖δ‖ ratio > {fmt(threshold('exploding_delta_ratio'))}) with "
        f"its largest batch loss ≥ {fmt(threshold('loss_blowup'))}× its early median"
    )
    return reproduced, measured, evidence


def decreased_steadily(row: Mapping, losses: list[float]) -> bool:
    steady = all(b <= a for a, b in pairwise(losses))
    calm = row["verdict"] not in ("exploding", "diverged")
    return calm and steady and loss_drop(row) >= threshold("plateau_drop")


def check_linear_clipnorm(rows: pd.DataFrame, results) -> tuple[bool, str, str]:
    records = rows.to_dict("records")
    losses = [epoch_losses(results, r["run_id"]) for r in records]
    reproduced, count = tally([decreased_steadily(r, ls) for r, ls in zip(records, losses)])
    drops = pd.Series([loss_drop(r) for r in records])
    per_epoch = "; ".join(
        f"seed {r['seed']}: " + ", ".join(fmt(v) for v in ls) for r, ls in zip(records, losses)
    )
    measured = (
        f"batch loss {fmt(finite_median(rows['loss_early']))} → {fmt(finite_median(rows['loss_late']))} "
        f"(median fall {percent(finite_median(drops))}); epoch train losses {per_epoch}; {count}"
    )
    evidence = (
        f"reproduced if in a majority of seeds the run neither diverged nor exploded, its epoch train losses "
        f"never rise, and its late batch loss is at least {percent(threshold('plateau_drop'))} below its "
        f"early one ({window_text()})"
    )
    return reproduced, measured, evidence


CHECKS = {
    "sigmoid": check_sigmoid,
    "resnet": check_resnet,
    "linear": check_linear,
    "linear_clipnorm": check_linear_clipnorm,
}


def article_claim(name: str, runs: pd.DataFrame, cells: pd.DataFrame, results) -> Claim:
    depth = SCENARIOS[name].default_depth
    experiment = f"{name}, depth {depth}"
    rows = runs[(runs["scenario"] == name) & (runs["depth"] == depth)] if len(runs) else runs
    if rows.empty:
        return Claim(
            experiment,
            ARTICLE_CLAIMS[name],
            f"no runs of {name} at depth {depth} in these results",
            None,
            "nothing to check",
        )
    reproduced, measured, evidence = CHECKS[name](rows, results)
    cell = cells[(cells["scenario"] == name) & (cells["depth"] == depth)]
    label = f"verdict {cell['verdict_label'].iloc[0]}; " if len(cell) else ""
    return Claim(
        experiment,
        ARTICLE_CLAIMS[name],
        f"{label}{measured}; {training_note(rows, results)}",
        reproduced,
        evidence,
    )


def article_claims(runs: pd.DataFrame, cells: pd.DataFrame, results) -> list[Claim]:
    """The article's four experiments (DESIGN §2), each checked against these results."""
    return [article_claim(name, runs, cells, results) for name in ARTICLE_CLAIMS]
