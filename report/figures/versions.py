"""The diff page's figures (report.diff, report.floor): paired values against the floor, the step-0 ‖δ‖
profiles of the cell whose start changed most, and the loss curves of the cell whose training changed most."""

from functools import partial

import numpy as np
import pandas as pd
from matplotlib import ticker
from matplotlib.figure import Figure

from report.figures.common import PALETTE, Chart, fmt, legend_below, new_figure

PAIRED_METRICS = {"final_test_loss": "final test loss", "final_test_accuracy": "final test accuracy"}
STATUS_COLOURS = {"bit-identical": "#7f7f7f", "within the floor": "#1f77b4", "beyond the floor": "#d62728",
                  "no control": "#000000"}


def status_class(text: str) -> str:
    return "beyond the floor" if "beyond" in text else text


def spans_decades(values: pd.Series) -> bool:
    finite = values[np.isfinite(values)]
    return bool(len(finite) and finite.min() > 0 and finite.max() / finite.min() > 10)


def paired(values: pd.DataFrame, name_a: str, name_b: str) -> Chart | None:
    """Per seed of every cell, B against A for the final test loss and accuracy, each with its cell's floor."""
    rows = values[values["metric"].isin(PAIRED_METRICS) & np.isfinite(values["a"]) & np.isfinite(values["b"])]
    if rows.empty:
        return None
    data = rows[["scenario", "depth", "seed", "metric", "a", "b", "floor", "versus_floor"]].assign(
        status=rows["versus_floor"].map(status_class)).reset_index(drop=True)
    counts = data.groupby("metric")["status"].value_counts()
    said = "; ".join(f"{PAIRED_METRICS[m]}: " + ", ".join(f"{n} {s}" for (mm, s), n in counts.items() if mm == m)
                     for m in PAIRED_METRICS if m in counts)
    caption = (f"Each point is one seed of one cell: its value under {name_a} (x) and {name_b} (y). On the grey "
               "line they are equal; the bar through a point is its cell's noise floor (the largest move of its "
               "control runs), so a point off the line but inside its bar moved no more than a 1-ulp change of "
               f"the initial weights moves it. {said}.")
    alt = (f"Scatter of paired per-seed values, {name_b} against {name_a}, coloured by their change against the "
           f"floor: {said}.")
    return Chart("paired", data, caption, alt, partial(draw_paired, data, name_a, name_b))


def draw_paired(data: pd.DataFrame, name_a: str, name_b: str) -> Figure:
    figure, axes = new_figure(1, len(PAIRED_METRICS), height=3.4)
    for ax, (metric, label) in zip(axes.flat, PAIRED_METRICS.items()):
        rows = data[data["metric"] == metric]
        floored = rows[rows["floor"] > 0]
        if len(floored):
            ax.errorbar(floored["a"], floored["a"], yerr=floored["a"].abs() * floored["floor"], fmt="none",
                        ecolor="#bbbbbb", elinewidth=3, alpha=0.6)
        for status, colour in STATUS_COLOURS.items():
            group = rows[rows["status"] == status]
            if len(group):
                ax.scatter(group["a"], group["b"], s=14, color=colour, label=status, zorder=3)
        low, high = np.nanmin(rows[["a", "b"]].to_numpy()), np.nanmax(rows[["a", "b"]].to_numpy())
        ax.plot([low, high], [low, high], color="#999999", lw=0.8, zorder=1)
        if spans_decades(pd.concat([rows["a"], rows["b"]])):
            ax.set(xscale="log", yscale="log")
        else:
            ax.xaxis.set_major_locator(ticker.AutoLocator())
        ax.set(xlabel=f"{label}, {name_a}", ylabel=f"{label}, {name_b}")
    handles = {h.get_label(): h for ax in axes.flat for h in ax.collections if not h.get_label().startswith("_")}
    figure.legend(handles.values(), handles.keys(), loc="outside lower center", ncols=len(handles), frameon=False)
    return figure


def pick_cell(values: pd.DataFrame, pairs: pd.DataFrame, changes: tuple[str, ...], metric: str) -> tuple | None:
    """The (scenario, depth) among cells with one of `changes` whose `metric` changed most (median over seeds)."""
    cells = pairs[pairs["change"].isin(changes)][["scenario", "depth"]].drop_duplicates()
    if cells.empty:
        return None
    rows = values[values["metric"] == metric].merge(cells)
    if rows.empty:
        return None
    change = rows.groupby(["scenario", "depth"], sort=False)["rel"].median()
    return change.idxmax()


def step0_profiles(layer_a: pd.DataFrame, layer_b: pd.DataFrame, cell: tuple, name_a: str, name_b: str) -> Chart:
    """‖δ‖ per layer at step 0 of one cell, both sides, a line per seed (layer tables of the paired runs, with seed)."""
    data = pd.concat([layer_a.assign(side=name_a), layer_b.assign(side=name_b)], ignore_index=True)
    data = data[data["step"] == 0][["side", "seed", "layer", "layer_name", "delta_norm"]].sort_values(
        ["side", "seed", "layer"]).reset_index(drop=True)
    wide = data.pivot_table(index=["seed", "layer"], columns="side", values="delta_norm")
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = ((wide[name_b] - wide[name_a]).abs() / np.maximum(wide[name_a].abs(), wide[name_b].abs())).max()
    scenario, depth = cell
    caption = (f"‖δ‖ per layer before the first update, {scenario} depth {depth}: {name_a} solid, {name_b} dashed, "
               "a colour per seed. This is the cell whose step-0 ‖δ‖ changed most among those whose initialisation "
               f"or step-0 arithmetic changed; the largest relative difference of a layer is {fmt(rel)}.")
    alt = (f"Line chart of step-0 ‖δ‖ against layer for {scenario} depth {depth}, {name_a} and {name_b} overlaid per "
           f"seed; largest relative difference {fmt(rel)}.")
    return Chart("step0-profiles", data, caption, alt, partial(draw_profiles, data, name_a, name_b))


def draw_profiles(data: pd.DataFrame, name_a: str, name_b: str) -> Figure:
    figure, axes = new_figure(1, 1, height=3.0)
    ax = axes[0, 0]
    for i, (seed, rows) in enumerate(data.groupby("seed")):
        colour = PALETTE[i % len(PALETTE)]
        for side, style in ((name_a, "-"), (name_b, "--")):
            line = rows[rows["side"] == side]
            ax.plot(line["layer"], line["delta_norm"], style, color=colour, marker=".", label=f"seed {seed}, {side}")
    ax.set(yscale="log", xlabel="layer (input side first)", ylabel="‖δ‖ at step 0")
    legend_below(figure)
    return figure


def parting_steps(step_a: pd.DataFrame, step_b: pd.DataFrame) -> pd.Series:
    """Per seed: the first logged step whose batch loss differs between the sides (nan if none does)."""
    both = step_a[["seed", "step", "loss"]].merge(step_b[["seed", "step", "loss"]], on=["seed", "step"],
                                                  suffixes=("_a", "_b"))
    differ = both[~((both["loss_a"] == both["loss_b"]) | (both["loss_a"].isna() & both["loss_b"].isna()))]
    return differ.groupby("seed")["step"].min().reindex(sorted(both["seed"].unique()))


def loss_curves(step_a: pd.DataFrame, step_b: pd.DataFrame, cell: tuple, name_a: str, name_b: str) -> Chart:
    """Batch loss per step of one cell, both sides, a line per seed, with the step where each seed's pair parts."""
    parts = parting_steps(step_a, step_b)
    data = pd.concat([step_a.assign(side=name_a), step_b.assign(side=name_b)], ignore_index=True)
    data = data[["side", "seed", "step", "loss"]].assign(parts_at=data["seed"].map(parts)).reset_index(drop=True)
    scenario, depth = cell
    where = ", ".join(f"seed {s}: step {int(p)}" if np.isfinite(p) else f"seed {s}: never" for s, p in parts.items())
    caption = (f"Batch loss per step, {scenario} depth {depth} (the cell whose final test loss changed most among "
               f"those whose runs part during training): {name_a} solid, {name_b} dashed, a colour per seed; the "
               f"dotted line marks where each seed's two runs first log a different loss ({where}).")
    alt = f"Loss curves of {scenario} depth {depth} under {name_a} and {name_b}; they first differ at {where}."
    return Chart("loss-curves", data, caption, alt, partial(draw_loss, data, name_a, name_b))


def draw_loss(data: pd.DataFrame, name_a: str, name_b: str) -> Figure:
    figure, axes = new_figure(1, 1, height=3.0)
    ax = axes[0, 0]
    for i, (seed, rows) in enumerate(data.groupby("seed")):
        colour = PALETTE[i % len(PALETTE)]
        for side, style in ((name_a, "-"), (name_b, "--")):
            line = rows[rows["side"] == side]
            ax.plot(line["step"], line["loss"], style, color=colour, lw=0.8, label=f"seed {seed}, {side}")
        part = rows["parts_at"].iloc[0]
        if np.isfinite(part):
            ax.axvline(part, color=colour, ls=":", lw=1)
    if spans_decades(data["loss"]):
        ax.set_yscale("log")
    ax.set(xlabel="step", ylabel="batch loss")
    legend_below(figure)
    return figure


def with_seeds(table: pd.DataFrame, run_seeds: pd.Series) -> pd.DataFrame:
    """The rows of the runs in run_seeds (run_id -> seed), with their seed."""
    rows = table[table["run_id"].isin(run_seeds.index)]
    return rows.assign(seed=rows["run_id"].map(run_seeds))


def charts(diff) -> list[Chart]:
    """The diff page's figures from a report.diff.Diff (after report.floor.attach), those its data can draw."""
    name_a, name_b = diff.a.name, diff.b.name
    if name_a == name_b:
        name_a, name_b = f"A ({name_a})", f"B ({name_b})"
    found = [paired(diff.values, name_a, name_b)]
    for changes, metric, draw, kind in (
        (("initialisation", "step0"), "step0_delta_norm", step0_profiles, "layer"),
        (("dynamics", "step0", "initialisation"), "final_test_loss", loss_curves, "step"),
    ):
        cell = pick_cell(diff.values, diff.pairs, changes, metric)
        if cell is None:
            continue
        runs = diff.pairs[(diff.pairs["scenario"] == cell[0]) & (diff.pairs["depth"] == cell[1])]
        tables = [with_seeds(side.results.table(kind), runs.set_index(f"run_id_{x}")["seed"])
                  for side, x in ((diff.a, "a"), (diff.b, "b"))]
        found.append(draw(*tables, cell, name_a, name_b))
    return [chart for chart in found if chart is not None]
