"""Per-run statistics from a run's tables: the back-propagated signal, gradient-norm growth, loss windows,
epochs, forget gates, the mean-field prediction; and seed bands for the figures."""

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench import theory
from report.grading.rules import threshold
from report.grading.values import finite_median

# input size per dataset, for runs whose metadata predates an `input_features` field
DATASET_FEATURES = {"mnist": 784, "fashion_mnist": 784, "digits": 64, "synthetic": 64}


BAND_STATS = ["median", "min", "max", "n", "n_nonfinite"]


def delta_ratios(layer: pd.DataFrame, keys: tuple[str, ...] = ("run_id", "step")) -> pd.DataFrame:
    """keys, ratio = delta_norm of the first hidden layer / that of the last hidden layer, per keys group
    (a run's step; or, for the depth scan, a scenario, depth and seed), in key order."""
    keys = list(keys)
    hidden = layer[layer["layer_role"] == "hidden"].sort_values([*keys, "layer"])
    first, last = group_bounds(*(hidden[k].to_numpy() for k in keys))
    ratio = first_over_last(hidden["delta_norm"].to_numpy(), first, last)
    return hidden[keys].iloc[first].assign(ratio=ratio).reset_index(drop=True)


def first_over_last(norms: np.ndarray, first: np.ndarray, last: np.ndarray) -> np.ndarray:
    """Each group's norm at its first row over that at its last (rows: a group's hidden layers in order)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return norms[first].astype(float) / norms[last].astype(float)


@dataclass(frozen=True)
class Hidden:
    """The back-propagated signal of every run: an MLP's hidden layers, and a recurrent net's time steps t = 1..T as
    if they were its hidden layers (the per-layer factor is then per time step). Its rows as numbers sorted by run,
    step and layer, so each statistic selects them with no text column to copy: rows["run"] indexes run_ids (in the
    order the runs' rows come), rows["timed"] marks a time step's row."""

    run_ids: np.ndarray
    rows: pd.DataFrame

    def by_run(self, values: pd.Series | pd.DataFrame) -> pd.Series | pd.DataFrame:
        """Values indexed by run (its index in run_ids) as indexed by run_id."""
        return values.set_axis(pd.Index(self.run_ids[values.index], name="run_id"))


def hidden_signal(results) -> Hidden:
    """The hidden rows of the layer kind and the time steps of the time kind, as Hidden."""
    layer = hidden_numbers(results.layer, "layer", timed=False)  # its columns, even with no row (a recurrent net)
    time = hidden_numbers(results.time, "time_step", timed=True)
    parts = [layer, time] if len(time[1]) else [layer]  # an MLP has no time steps to copy
    # numbered as they come, a batch of run files' rows are in order (each file's rows together, by step and layer):
    # statistics are per run, whichever run comes first
    run_ids = pd.unique(np.concatenate([ids for ids, _ in parts]))
    rows = pd.concat([numbers.assign(run=pd.Index(run_ids).get_indexer(ids)[numbers["run"]])
                      for ids, numbers in parts], ignore_index=True)
    keys = (rows["run"].to_numpy(), rows["step"].to_numpy(), rows["layer"].to_numpy())
    if in_order(*keys):
        return Hidden(run_ids, rows)
    return Hidden(run_ids, rows.take(np.lexsort(keys[::-1])).reset_index(drop=True))


def hidden_numbers(frame: pd.DataFrame, layer: str, timed: bool) -> tuple[np.ndarray, pd.DataFrame]:
    """A kind's hidden rows (a time step's are all hidden): its run ids, and per row its run (an index into them),
    step, layer (the `layer` column), timed and the values of its float columns."""
    hidden = (frame["layer_role"] == "hidden").to_numpy(bool) if "layer_role" in frame else slice(None)
    codes, ids = pd.factorize(frame["run_id"])
    values = frame.select_dtypes("floating").drop(columns=["step", layer], errors="ignore")
    numbers = pd.DataFrame({"run": codes, "step": frame["step"], "layer": frame[layer], "timed": timed, **values})
    return np.asarray(ids, dtype=object), numbers[hidden]


def group_starts(*keys: np.ndarray) -> np.ndarray:
    """Where each group of equal keys begins, in rows sorted by them."""
    changed = np.zeros(len(keys[0]), bool)
    changed[:1] = True
    for key in keys:
        changed[1:] |= key[1:] != key[:-1]
    return np.flatnonzero(changed)


def group_bounds(*keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(first, last): where each group of equal keys begins and ends, in rows sorted by them."""
    first = group_starts(*keys)
    return first, np.r_[first[1:], len(keys[0])][: len(first)] - 1


def in_order(*keys: np.ndarray) -> bool:
    """Whether rows are sorted by these keys, the first first."""
    pairs = max(len(keys[0]) - 1, 0)
    before, tied = np.zeros(pairs, bool), np.ones(pairs, bool)
    for key in keys:
        before |= tied & (key[:-1] < key[1:])
        tied &= key[:-1] == key[1:]
    return bool((before | tied).all())


def delta_ratio_steps(hidden: Hidden, norms: np.ndarray) -> pd.DataFrame:
    """delta_ratios of each run's steps from its hidden rows (norms: their delta_norm or path_norms()): run (its
    index), ratio, in step order."""
    first, last = group_bounds(hidden.rows["run"].to_numpy(), hidden.rows["step"].to_numpy())  # a run's steps
    return pd.DataFrame({"run": hidden.rows["run"].to_numpy()[first], "ratio": first_over_last(norms, first, last)})


def path_norms(hidden: Hidden, runs: pd.DataFrame) -> np.ndarray:
    """The magnitude a verdict reads per layer: ‖δ‖, or for a batch-norm network the scale-free ‖∂L/∂W‖·‖W‖.
    Batch norm after a Dense layer divides δ by the rms of that layer's pre-activation, which the weights' own
    scale sets, so a raw δ ratio overstates how the gradient changes; the product does not."""
    rows = hidden.rows
    normed = runs.loc[runs["batch_norm"].fillna(False).astype(bool), "run_id"] if "batch_norm" in runs else []
    scale_free = np.isin(hidden.run_ids, list(normed))[rows["run"].to_numpy()]
    product = rows["kernel_grad_norm"].to_numpy() * rows["kernel_norm"].to_numpy()
    return np.where(scale_free, product, rows["delta_norm"].to_numpy())


def hidden_layers(hidden: Hidden) -> pd.Series:
    """Per run, its hidden weight layers: the layers a first/last ratio spans (a conv ResNet has more than its
    depth in blocks)."""
    run, layer = hidden.rows["run"].to_numpy(), hidden.rows["layer"].to_numpy()
    known = ~np.isnan(layer)  # nunique's count, from a table of (run, layer) seen: no sort of the rows
    seen = np.zeros((len(hidden.run_ids), int(layer[known].max()) + 1 if known.any() else 0), bool)
    seen[run[known], layer[known].astype(np.int64)] = True
    present = np.flatnonzero(np.bincount(run, minlength=len(hidden.run_ids)))
    return hidden.by_run(pd.Series(seen.sum(axis=1)[present], index=present, name="hidden_layers"))


def ratio_summary(hidden: Hidden, ratios: pd.DataFrame, name: str = "delta_ratio") -> pd.DataFrame:
    """Per run: the ratio at the first logged step, its median over finite steps, its last finite value (ratios:
    delta_ratio_steps())."""
    values = ratios["ratio"]
    by_run = values.where(np.isfinite(values)).groupby(ratios["run"])  # NaN: left out by median and last
    starts = group_starts(ratios["run"].to_numpy())
    return hidden.by_run(pd.DataFrame({
        f"{name}_init": values.iloc[starts].set_axis(ratios["run"].iloc[starts]),
        f"{name}_median": by_run.median(),
        f"{name}_final": by_run.last(),
    }))  # fmt: skip


def early_update_path(hidden: Hidden) -> pd.Series:
    """Per run with two or more hidden weight layers: how far hidden layer 2 moved over training against the last
    hidden layer, each as its update path Σ_t ‖ΔW_t‖ / ‖W_0‖ (‖ΔW_t‖ = update ratio × ‖W_t‖ before the update)."""
    kept = hidden.rows["update_ratio"].notna().to_numpy()  # a time step's rows have none
    run, layer, ratios, norms = (hidden.rows[c].to_numpy()[kept]
                                 for c in ("run", "layer", "update_ratio", "kernel_norm"))
    order = by_run_and_layer(run, layer)  # each layer's rows together: pandas sums a group's rows in another order
    # (another last bit) when the groups interleave
    run, layer, ratios, norms = run[order], layer[order], ratios[order].astype(float), norms[order].astype(float)
    first, last = group_bounds(run, layer)  # each run's layers, in order
    group = np.repeat(np.arange(len(first)), last - first + 1)
    paths = (pd.Series(ratios * norms).groupby(group).sum() / pd.Series(norms).groupby(group).first()).to_numpy()
    layers_first, layers_last = group_bounds(run[first])
    two = layers_last > layers_first  # runs with two or more hidden weight layers
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = paths[layers_first[two] + 1] / paths[layers_last[two]]
    return hidden.by_run(pd.Series(ratio, index=run[first][layers_first[two]], name="early_update_path"))


def by_run_and_layer(run: np.ndarray, layer: np.ndarray) -> np.ndarray:
    """The permutation that puts rows sorted by run, step and layer (as Hidden's are) in order of run, layer and step:
    a stable sort by run and layer, a radix sort where they make fewer than 2**16 pairs (a batch's 440,000 rows of
    5,000-step runs: 5 ms against np.lexsort's 24)."""
    if not len(run):
        return np.arange(0)
    pair = run.astype(np.int64) * (int(layer.max()) + 1) + layer.astype(np.int64)
    return np.argsort(pair.astype(np.uint16) if pair.max() < 2**16 else pair, kind="stable")


def windows(steps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Masks of the early and late windows of a run's logged rows, by training step (not by row).

    Early: steps before the first early_steps; late: the last early_steps steps; each half of a run
    shorter than twice that. They never overlap; the early window always holds the first logged row.
    """
    first, last = int(steps.min()), int(steps.max())
    span = min(int(threshold("early_steps")), (last - first + 1) // 2)
    early = (steps < first + max(span, 1)) | (steps == first)
    late = (steps > last - span) & ~early if span else steps < first
    return early, late


def spikes(steps: np.ndarray, losses: np.ndarray) -> list[tuple[int, float, float]]:
    """(step, loss, × the median of the spike_window steps before it) of each loss spike among logged steps."""
    stride = int(np.median(np.diff(steps))) if len(steps) > 1 else 1  # a profile logs every stride steps
    window = max(1, int(threshold("spike_window")) // max(stride, 1))
    padded = np.concatenate([np.full(window, np.nan), np.where(np.isfinite(losses), losses, np.nan)])
    windows_before = np.lib.stride_tricks.sliding_window_view(padded, window)[: len(losses)]  # rows before step i
    with np.errstate(invalid="ignore"):  # above the median only if above the smallest: those rows' medians are taken
        rows = np.flatnonzero(losses > threshold("loss_spike") * np.fmin.reduce(windows_before, axis=1))
        before = row_medians(windows_before[rows])
        found = (before > 0) & (losses[rows] > threshold("loss_spike") * before)
    return [(int(steps[i]), float(losses[i]), float(losses[i] / median))
            for i, median in zip(rows[found], before[found], strict=True)]


def row_medians(rows: np.ndarray) -> np.ndarray:
    """np.nanmedian of each row, NaN for a row of NaN, the same values faster: a row without NaN by np.median, the
    others sorted (NaN last), the mean of their middle finite values."""
    full = ~np.isnan(rows).any(axis=1)
    medians = np.empty(len(rows))
    medians[full] = np.median(rows[full], axis=1, overwrite_input=True)  # rows[full]: a copy
    partial = np.sort(rows[~full], axis=1)
    count = (~np.isnan(partial)).sum(axis=1)
    row = np.arange(len(partial))
    middle = (partial[row, np.maximum(count - 1, 0) // 2] + partial[row, count // 2]) / 2  # NaN for a row of NaN
    medians[~full] = middle
    return medians


def span_losses(steps: np.ndarray, losses: np.ndarray) -> list[float]:
    """Median batch loss of each of steady_windows equal spans of training steps (finite_median's values, from one
    sort of the finite losses by span and value)."""
    count = int(threshold("steady_windows"))
    edges = np.linspace(steps.min(), steps.max() + 1, count + 1)
    good = np.isfinite(losses)
    spans = np.searchsorted(edges, steps[good], side="right") - 1
    ordered = losses[good][np.lexsort((losses[good], spans))]
    sizes = np.bincount(spans, minlength=count)
    filled = sizes > 0
    starts, sizes = (np.cumsum(sizes) - sizes)[filled], sizes[filled]
    medians = np.full(count, np.nan)  # np.median's: the mean of the middle two values, or the middle one twice
    medians[filled] = (ordered[starts + (sizes - 1) // 2] + ordered[starts + sizes // 2]) / 2
    return medians.tolist()


def growth(norms: np.ndarray, early_rows: np.ndarray) -> float:
    """Largest finite norm over the median of the early window's."""
    early, good = finite_median(norms[early_rows]), norms[np.isfinite(norms)]
    return good.max() / early if early > 0 and len(good) else np.nan


def step_summary(step: pd.DataFrame) -> pd.DataFrame:
    """Per run: gradient-norm growth (before clipping, and as applied), clipping frequency, loss windows and spans,
    spikes, first non-finite step."""

    def summarise(rows: Mapping[str, np.ndarray]) -> dict:
        norms, applied, losses, clipped = (rows[c] for c in ("grad_norm", "grad_norm_clipped", "loss", "clipped"))
        steps, epochs = rows["step"].astype(int), rows["epoch"]
        early_rows, late_rows = windows(steps)
        early = finite_median(norms[early_rows])
        good = np.isfinite(norms)
        peak = norms[good].max() if good.any() else np.nan
        bad = ~(good & np.isfinite(losses))
        over = np.flatnonzero(norms > threshold("exploding_growth") * early) if early > 0 else []
        return {
            "grad_norm_early": early,
            "grad_norm_max": peak,
            "grad_norm_max_epoch": epochs[np.flatnonzero(norms == peak)[0]] if good.any() else np.nan,
            "growth": growth(norms, early_rows),
            "growth_applied": growth(applied, early_rows),
            "growth_step": float(steps[over[0]]) if len(over) else np.nan,  # first above exploding_growth × early
            "growth_epoch": float(epochs[over[0]]) if len(over) else np.nan,
            "clip_fraction": clipped[~np.isnan(clipped)].mean() if (~np.isnan(clipped)).any() else np.nan,
            "loss_early": finite_median(losses[early_rows]),
            "loss_late": finite_median(losses[late_rows]),
            "loss_max": losses[np.isfinite(losses)].max() if np.isfinite(losses).any() else np.nan,
            "loss_at_stop": float(losses[-1]),
            "loss_spans": span_losses(steps, losses),
            "loss_spikes": spikes(steps, losses),
            "logged_steps": len(steps),
            "steps_trained": int(steps.max()) + 1,
            "first_nonfinite_step": float(steps[bad].min()) if bad.any() else np.nan,
        }  # fmt: skip

    ordered = step.sort_values(["run_id", "step"])
    numbers = {c: pd.to_numeric(ordered[c], errors="coerce").to_numpy(dtype=float)
               for c in ("grad_norm", "grad_norm_clipped", "loss", "clipped")}
    return per_run(ordered["run_id"], {**numbers, "step": ordered["step"].to_numpy(),
                                       "epoch": ordered["epoch"].to_numpy()}, summarise)


def final_epoch(epoch: pd.DataFrame) -> pd.DataFrame:
    """Per run: test accuracy and loss of its last recorded epoch, test accuracy of its first, training accuracy
    of its last."""
    ordered = epoch.sort_values(["run_id", "epoch"]).groupby("run_id")
    last = ordered.tail(1).set_index("run_id")
    columns = {"test_accuracy": "final_test_accuracy", "test_loss": "final_test_loss",
               "train_accuracy": "final_train_accuracy"}
    table = last[list(columns)].rename(columns=columns).astype(float)
    table["first_test_accuracy"] = ordered.head(1).set_index("run_id")["test_accuracy"].astype(float)
    return table


def forget_gates(time: pd.DataFrame) -> pd.DataFrame:
    """Per LSTM run: the mean forget gate over time steps at the first and at the last logged step."""
    gated = time.dropna(subset=["forget_gate"])
    if gated.empty:
        return pd.DataFrame(columns=["forget_init", "forget_final"], index=pd.Index([], name="run_id"))
    per_step = gated.groupby(["run_id", "step"])["forget_gate"].mean().reset_index()
    ends = per_step.sort_values("step").groupby("run_id")["forget_gate"]
    return pd.DataFrame({"forget_init": ends.first(), "forget_final": ends.last()}).astype(float)


def per_run(run_ids: pd.Series, columns: Mapping[str, np.ndarray],
            summarise: Callable[[Mapping[str, np.ndarray]], dict]) -> pd.DataFrame:
    """summarise() applied to each run's values of these columns (rows sorted by run), its values kept as they are
    (objects); an empty frame indexed by run_id when there are none."""
    if run_ids.empty:
        return pd.DataFrame(index=pd.Index([], name="run_id"))
    ids = run_ids.to_numpy()
    first, last = group_bounds(ids)
    rows = [summarise({name: values[start:stop + 1] for name, values in columns.items()})
            for start, stop in zip(first, last)]
    return pd.DataFrame(rows, index=pd.Index(ids[first], name="run_id"), dtype=object)


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
        run["initializer"], 0.0 if pd.isna(run.get("init_std")) else float(run["init_std"] or 0.0),
    )  # fmt: skip
    return (ratio, None) if np.isfinite(ratio) else (np.nan, "prediction beyond floating-point range")


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
