"""Recurrent: final held-out accuracy on the recall task against sequence length T, beside chance."""

from functools import partial

import pandas as pd
from matplotlib.figure import Figure

from report import recurrent
from report.figures.common import (
    Chart,
    Key,
    Tables,
    fmt,
    legend_below,
    length_band,
    length_lines,
    new_figure,
)
from report.grading.rules import threshold


def chart(runs: pd.DataFrame, scenarios: list[str], name: str) -> Chart | None:
    data = length_band(runs, scenarios, "final_test_accuracy")
    if data is None:
        return None
    return Chart(name, data, caption(data), alt(data), partial(draw, data, scenarios))


def draw(data: pd.DataFrame, scenarios: list[str]) -> Figure:
    figure, axes = new_figure(height=2.8)
    ax = axes[0, 0]
    length_lines(ax, data, scenarios)
    ax.axhline(recurrent.CHANCE, color="#888", lw=0.8, ls=":")
    ax.axhline(threshold("recall_solved"), color="#888", lw=0.8, ls="--")
    ax.set_ylim(0, 1.02)
    ax.set_xscale("log")
    lengths = sorted(data["length"].astype(int).unique())
    ax.set_xticks(lengths, [str(t) for t in lengths])
    ax.minorticks_off()
    ax.set_xlabel("sequence length T")
    ax.set_ylabel("held-out accuracy")
    legend_below(figure, f"dotted: chance ({fmt(recurrent.CHANCE)}), dashed: solved "
                         f"({fmt(threshold('recall_solved'))})")
    return figure


def caption(data: pd.DataFrame) -> str:
    parts = [f"{s}: " + ", ".join(f"{fmt(m)} (T = {t})" for m, t in zip(rows["median"], rows["length"]))
             for s, rows in data.sort_values("length").groupby("scenario", sort=False)]
    return ("Final held-out accuracy on the recall task (name the first of T symbols), median and range over "
            f"seeds, against T; chance is {fmt(recurrent.CHANCE)}, solved is ≥ "
            f"{fmt(threshold('recall_solved'))}. {'; '.join(parts)}.")


def alt(data: pd.DataFrame) -> str:
    return "Lines of held-out accuracy against sequence length, with chance and solved levels. " + caption(data)


def from_data(data: Tables, keys: list[Key], seeds: list[int], name: str) -> Chart | None:
    """The registry's entry point: every trained length of the keys' scenarios."""
    return chart(data.runs, list(dict.fromkeys(k[0] for k in keys)), name)
