"""The report's figures, one module per figure, and FIGURES: the registry pages name them from.

matplotlib is used only in this package. Every figure module has `chart(...)`, a pure function of
result tables that returns a `common.Chart` (its data, caption, alt text and a picklable `draw`),
and `from_data(data, keys, seeds, name)`, which picks those tables from a page's data. A new
figure is one module and one entry below.
"""

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from bench.statistics import summarised
from report.figures import (
    curves,
    flow,
    gradnorm,
    grid,
    heatmap,
    histograms,
    inactive,
    layer_flow,
    layer_statistic,
    length_accuracy,
    length_ratio,
    sweep,
    time_grid,
)
from report.figures.common import ENGINE, Chart, Key, SavedChart, Tables, describe, stamped, write


@dataclass(frozen=True)
class Entry:
    """A figure as a page asks for it: `build(data, keys, seeds, name)`, None when the data cannot draw it."""

    build: Callable[[Tables, list[Key], list[int], str], Chart | None]
    shows: str


FIGURES: dict[str, Entry] = {
    # comparisons: one line (or panel) per (scenario, depth) key, on the seeds they share
    "flow": Entry(flow.from_data, "‖δ‖ per layer at step 0 and at the end of training"),
    "grid": Entry(grid.from_data, "log10 ‖δ‖ heatmaps, layer by step, on one colour scale"),
    "curves": Entry(curves.from_data, "batch loss per step and held-out accuracy per epoch"),
    "gradnorm": Entry(gradnorm.from_data, "global gradient norm per step, before and after clipping"),
    "sweep": Entry(sweep.from_data, "step-0 first/last δ ratio against depth, measured and predicted"),
    # one scenario × depth, per layer
    "layer-flow": Entry(layer_flow.from_data, "‖δ‖ and ‖∂L/∂W‖ per layer at step 0 and each epoch's end"),
    "heatmap": Entry(heatmap.from_data, "log10 ‖δ‖ and ‖∂L/∂W‖, layer by step"),
    "histograms": Entry(histograms.from_data, "weights and log10 |g| per layer, first and last epoch"),
    "inactive": Entry(inactive.from_data, "saturated or dead unit fraction per hidden layer"),
    # recurrent networks: keys are (scenario, sequence length T)
    "time-grid": Entry(time_grid.from_data, "log10 ‖∂L/∂h_t‖ heatmaps, time step by training step"),
    "length-ratio": Entry(length_ratio.from_data, "step-0 ‖∂L/∂h_1‖/‖∂L/∂h_T‖ against T, with the Pascanu bound"),
    "length-accuracy": Entry(length_accuracy.from_data, "held-out recall accuracy against T, beside chance"),
    # one scenario × depth, per hidden layer: each statistic declared with a summary (bench/statistics.py)
    **{f"layer-{s.name}": Entry(partial(layer_statistic.from_data, s), f"{s.label} per hidden layer")
       for s in summarised()},
}

__all__ = ["ENGINE", "FIGURES", "Chart", "Entry", "Key", "SavedChart", "Tables", "describe", "stamped", "write"]
