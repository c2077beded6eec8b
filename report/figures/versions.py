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
    """Among cells whose pairs changed in one of `changes` (tried one at a time, in order), the (scenario, depth)
    with the most layers for `metric`, then the largest change of it (median over seeds)."""
    for change in changes:
        cells = pairs[pairs["change"] == change][["scenario", "depth"]].drop_duplicates()
        rows = values[values["metric"] == metric].merge(cells)
        if rows.empty:
            continue
        by_cell = rows.groupby(["scenario", "depth"], sort=False).agg(layers=("layer", "nunique"),
                                                                      change=("rel", "median"))
        return by_cell.sort_values(["layers", "change"], ascending=False, kind="stable").index[0]
    return None


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
               "a colour per seed: the deepest cell whose step-0 arithmetic (or else initialisation) changed, the one "
               f"whose ‖δ‖ changed most if several; the largest relative difference of a layer is {fmt(rel)}.")
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


def paired_losses(step_a: pd.DataFrame, step_b: pd.DataFrame) -> pd.DataFrame:
    """Per seed and logged step: both batch losses and their relative difference |B − A| / max(|A|, |B|)."""
    both = step_a[["seed", "step", "loss"]].merge(step_b[["seed", "step", "loss"]], on=["seed", "step"],
                                                  suffixes=("_a", "_b"))
    with np.errstate(divide="ignore", invalid="ignore"):
        gap = (both["loss_b"] - both["loss_a"]).abs() / np.maximum(both["loss_a"].abs(), both["loss_b"].abs())
    same = (both["loss_a"] == both["loss_b"]) | (both["loss_a"].isna() & both["loss_b"].isna())
    return both.assign(difference=gap.where(~same, 0.0)).sort_values(["seed", "step"]).reset_index(drop=True)


def loss_curves(step_a: pd.DataFrame, step_b: pd.DataFrame, cell: tuple, name_a: str, name_b: str) -> Chart:
    """Batch loss per step of one cell, both sides, a line per seed; below, how far apart each seed's two runs
    are, from the step where they part."""
    data = paired_losses(step_a, step_b)
    parts = data[data["difference"] != 0].groupby("seed")["step"].min().reindex(sorted(data["seed"].unique()))
    data = data.assign(parts_at=data["seed"].map(parts))
    scenario, depth = cell
    where = ", ".join(f"seed {s}: step {int(p)}" if np.isfinite(p) else f"seed {s}: never" for s, p in parts.items())
    last = data.groupby("seed")["difference"].last()
    caption = (f"Batch loss per step, {scenario} depth {depth} (of the cells whose runs part during training, or "
               f"else at step 0, the one whose losses end furthest apart): {name_a} solid, {name_b} dashed, a "
               "colour per seed. Below, their relative difference |B − A| / max(|A|, |B|) from the step where each "
               f"seed's two runs first log a different loss ({where}), dotted; at the last step it is "
               + ", ".join(f"{fmt(v)} (seed {k})" for k, v in last.items()) + ".")
    alt = (f"Loss curves of {scenario} depth {depth} under {name_a} and {name_b}, and their relative difference per "
           f"step; they first differ at {where}.")
    return Chart("loss-curves", data, caption, alt, partial(draw_loss, data, name_a, name_b))


def draw_loss(data: pd.DataFrame, name_a: str, name_b: str) -> Figure:
    figure, axes = new_figure(2, 1, height=4.6, sharex=True)
    top, bottom = axes[0, 0], axes[1, 0]
    for i, (seed, rows) in enumerate(data.groupby("seed")):
        colour = PALETTE[i % len(PALETTE)]
        for column, side, style in (("loss_a", name_a, "-"), ("loss_b", name_b, "--")):
            top.plot(rows["step"], rows[column], style, color=colour, lw=0.8, label=f"seed {seed}, {side}")
        gap = rows[rows["difference"] > 0]
        bottom.plot(gap["step"], gap["difference"], color=colour, lw=0.8)
        part = rows["parts_at"].iloc[0]
        if np.isfinite(part):
            for ax in (top, bottom):
                ax.axvline(part, color=colour, ls=":", lw=1)
    if spans_decades(pd.concat([data["loss_a"], data["loss_b"]])):
        top.set_yscale("log")
    top.set(ylabel="batch loss")
    if (data["difference"] > 0).any():
        bottom.set_yscale("log")
    bottom.set(xlabel="step", ylabel="|B − A| / max")
    legend_below(figure)
    return figure


def with_seeds(table: pd.DataFrame, run_seeds: pd.Series) -> pd.DataFrame:
    """The rows of the runs in run_seeds (run_id -> seed), with their seed."""
    rows = table[table["run_id"].isin(run_seeds.index)]
    return rows.assign(seed=rows["run_id"].map(run_seeds))


def cell_tables(diff, cell: tuple, kind: str) -> list[pd.DataFrame]:
    """One kind's rows of a cell's paired runs on each side, with their seed."""
    runs = diff.pairs[(diff.pairs["scenario"] == cell[0]) & (diff.pairs["depth"] == cell[1])]
    return [with_seeds(side.rows(kind, runs[f"run_id_{x}"]), runs.set_index(f"run_id_{x}")["seed"])
            for side, x in ((diff.a, "a"), (diff.b, "b"))]


def parting_cell(diff) -> tuple | None:
    """The cell whose batch losses end furthest apart (median over seeds), among those whose runs part during
    training, or else from step 0 on; None if no cell's batch losses differ."""
    for change in ("dynamics", "step0", "initialisation"):
        cells = diff.pairs[diff.pairs["change"] == change][["scenario", "depth"]].drop_duplicates()
        apart = {cell: paired_losses(*cell_tables(diff, cell, "step")).groupby("seed")["difference"].last().median()
                 for cell in cells.itertuples(index=False, name=None)}
        apart = {cell: gap for cell, gap in apart.items() if gap > 0}
        if apart:
            return max(apart, key=apart.get)
    return None


def charts(diff) -> list[Chart]:
    """The diff page's figures from a report.diff.Diff (after report.floor.attach), those its data can draw."""
    name_a, name_b = diff.a.name, diff.b.name
    if name_a == name_b:
        name_a, name_b = f"A ({name_a})", f"B ({name_b})"
    found = [paired(diff.values, name_a, name_b)]
    if (cell := pick_cell(diff.values, diff.pairs, ("step0", "initialisation"), "step0_delta_norm")) is not None:
        found.append(step0_profiles(*cell_tables(diff, cell, "layer"), cell, name_a, name_b))
    if (cell := parting_cell(diff)) is not None:
        found.append(loss_curves(*cell_tables(diff, cell, "step"), cell, name_a, name_b))
    return [chart for chart in found if chart is not None]
