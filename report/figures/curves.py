"""Figure 4: batch loss against step and held-out accuracy against epoch, one line per series."""

from functools import partial

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from report.figures.common import (
    Chart,
    Key,
    Tables,
    diverged,
    divergence_text,
    draw_series,
    finite,
    fmt,
    keyed_bands,
    legend_below,
    log_axis,
    mark_divergence,
    new_figure,
    seeds_text,
    select,
)

MAX_EPOCH_TICKS = 12


def chart(
    step: pd.DataFrame, epoch: pd.DataFrame, runs: pd.DataFrame, keys: list[Key], name: str
) -> Chart:
    """Figure 4: batch loss against step and held-out accuracy against epoch, median with band."""
    loss = keyed_bands(step, keys, "step", "loss")
    accuracy = keyed_bands(epoch, keys, "epoch", "test_accuracy")
    stops = diverged(runs, keys)
    data = pd.concat([loss, accuracy], ignore_index=True)
    caption = curves_caption(accuracy, stops, step, keys, loss_is_log(loss))
    alt = curves_alt(loss, accuracy)
    return Chart(name, data, caption, alt, partial(draw_curves, data, stops, keys))


def draw_curves(data: pd.DataFrame, stops: pd.DataFrame, keys: list[Key]) -> Figure:
    figure, axes = new_figure(1, 2)
    loss, accuracy = (data[data["quantity"] == q] for q in ("loss", "test_accuracy"))
    draw_series(axes[0, 0], loss, keys, "step")
    mark_divergence(axes[0, 0], stops)
    loss_axis(axes[0, 0], loss)
    draw_series(axes[0, 1], accuracy, keys, "epoch")
    epochs = sorted(accuracy["epoch"].astype(int).unique())
    axes[0, 1].set(xlabel="epoch", ylabel="held-out accuracy", ylim=(0, 1))
    if len(epochs) <= MAX_EPOCH_TICKS:  # every epoch named; more would overlap (new_figure's locator picks)
        axes[0, 1].set_xticks(epochs)
    axes[0, 1].set_xlim(min(epochs, default=1) - 0.5, max(epochs, default=1) + 0.5)
    legend_below(figure)
    return figure


def loss_is_log(loss: pd.DataFrame) -> bool:
    """A loss that spans more than a decade (it blew up) is drawn on a log scale."""
    values = finite(loss["max"]).dropna()
    return bool(len(values) and values.min() > 0 and values.max() / values.min() > 10)


def loss_axis(ax: Axes, loss: pd.DataFrame) -> None:
    if loss_is_log(loss):
        log_axis(ax, "training step", "batch loss (log)")
    else:
        ax.set(xlabel="training step", ylabel="batch loss")


def final_accuracy(accuracy: pd.DataFrame) -> dict[str, float]:
    last = accuracy.sort_values("epoch").groupby("series").last()
    return last["median"].to_dict()


def curves_caption(
    accuracy: pd.DataFrame, stops: pd.DataFrame, step: pd.DataFrame, keys: list[Key], log: bool
) -> str:
    finals = "; ".join(f"{s} {fmt(v)}" for s, v in final_accuracy(accuracy).items())
    scale = ", log scale" if log else ""
    return (
        f"Batch loss per step (left{scale}) and held-out accuracy per epoch (right), median over "
        f"{seeds_text(select(step, keys))} with min–max band. Final held-out accuracy (median): {finals}."
        + divergence_text(stops)
    )


def curves_alt(loss: pd.DataFrame, accuracy: pd.DataFrame) -> str:
    finals = "; ".join(f"{s} ends at accuracy {fmt(v)}" for s, v in final_accuracy(accuracy).items())
    return f"Two line charts: loss against step and accuracy against epoch. {finals}."


def from_data(data: Tables, keys: list[Key], seeds: list[int], name: str) -> Chart:
    """The registry's entry point."""
    return chart(data.rows("step", keys, seeds), data.rows("epoch", keys, seeds), data.rows("runs", keys, seeds),
                 keys, name)
