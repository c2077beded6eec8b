"""Figures: planted data in, checked drawings, data, captions and bytes out.

The frames follow bench/store.py's long tables (one row per run x step x layer, and so on); a
diverged run carries inf in its last step, as a real one does.
"""

import math

import numpy as np
import pandas as pd
import pytest

from bench.statistics import summarised
from report.figures import FIGURES, common, curves, flow, gradnorm, heatmap, histograms, inactive, layer_flow, sweep
from report.figures.common import Chart, fmt
from report.grading import text

STEPS, LAYERS = 6, 4  # 3 hidden layers + the output layer


def run_id(scenario: str, depth: int, seed: int) -> str:
    return f"{scenario}-d{depth}-s{seed}"


def keys(scenario: str, seed: int) -> dict:
    return {
        "run_id": run_id(scenario, LAYERS - 1, seed),
        "scenario": scenario,
        "depth": LAYERS - 1,
        "seed": seed,
    }


def layer_rows(scenario: str, seed: int, gain: float, inactive: float | None) -> list[dict]:
    """delta_norm = gain ** (distance from the output layer): the first/last ratio is gain ** (LAYERS - 1)."""
    return [
        {**keys(scenario, seed),
         "step": float(step), "epoch": 1 + step // 3, "layer": float(layer), "layer_name": f"dense_{layer}",
         "layer_role": "output" if layer == LAYERS - 1 else "hidden",
         "kernel_grad_norm": 2 * gain ** (LAYERS - 1 - layer) * (1 + seed), "bias_grad_norm": 0.1,
         "kernel_norm": 1.0, "update_ratio": 1e-3, "delta_norm": gain ** (LAYERS - 1 - layer) * (1 + seed),
         "inactive_fraction": inactive, **{s.name: 0.5 + 0.1 * layer for s in summarised()}}
        for step in range(STEPS) for layer in range(LAYERS)
    ]  # fmt: skip


def step_rows(scenario: str, seed: int, clip: bool) -> list[dict]:
    return [
        {**keys(scenario, seed),
         "step": float(step), "epoch": 1 + step // 3, "loss": 2.3 - 0.1 * step, "batch_accuracy": 0.1 * step,
         "grad_norm": 0.5 + step, "grad_norm_clipped": min(0.5 + step, 1.0) if clip else 0.5 + step,
         "clipped": bool(clip and 0.5 + step > 1.0)}
        for step in range(STEPS)
    ]  # fmt: skip


def run_row(scenario: str, seed: int, diverged_step: int | None) -> dict:
    return {
        "run_id": run_id(scenario, LAYERS - 1, seed), "scenario": scenario, "depth": LAYERS - 1, "seed": seed,
        "status": "diverged" if diverged_step is not None else "completed", "diverged_step": diverged_step,
        "diverged_layer": "dense_0" if diverged_step is not None else None,
        "clipnorm": 1.0 if scenario.endswith("clip") else None, "global_clipnorm": None,
    }  # fmt: skip


@pytest.fixture
def planted() -> dict[str, pd.DataFrame]:
    """'fade' halves δ per layer; 'boom' diverges on seed 1 at its last step (inf there); 'boomclip' clips."""
    layer, step, runs, epoch = [], [], [], []
    for scenario, gain in (("fade", 0.5), ("boom", 1.0), ("boomclip", 1.0)):
        for seed in (0, 1):
            layer += layer_rows(scenario, seed, gain, None if scenario != "fade" else 0.1 * (seed + 1))
            step += step_rows(scenario, seed, clip=scenario == "boomclip")
            runs.append(run_row(scenario, seed, STEPS - 1 if (scenario, seed) == ("boom", 1) else None))
            epoch += [
                {
                    "run_id": run_id(scenario, LAYERS - 1, seed),
                    "scenario": scenario,
                    "depth": LAYERS - 1,
                    "seed": seed,
                    "epoch": e,
                    "test_accuracy": 0.2 * e + 0.1 * seed,
                }
                for e in (1, 2)
            ]
    frames = {
        "layer": pd.DataFrame(layer),
        "step": pd.DataFrame(step),
        "runs": pd.DataFrame(runs),
        "epoch": pd.DataFrame(epoch),
    }
    boom_last = (frames["layer"]["run_id"] == run_id("boom", LAYERS - 1, 1)) & (
        frames["layer"]["step"] == STEPS - 1
    )
    frames["layer"].loc[boom_last & (frames["layer"]["layer"] == 0), ["delta_norm", "kernel_grad_norm"]] = (
        np.inf
    )
    frames["step"].loc[
        (frames["step"]["run_id"] == run_id("boom", LAYERS - 1, 1)) & (frames["step"]["step"] == STEPS - 1),
        "loss",
    ] = np.nan
    return frames


def of(frame: pd.DataFrame, scenario: str) -> pd.DataFrame:
    return frame[frame["scenario"] == scenario]


def line_values(chart: Chart, label: str) -> np.ndarray:
    lines = [line for ax in chart.figure.axes for line in ax.get_lines() if line.get_label() == label]
    assert lines, f"no line labelled {label!r}"
    return np.asarray(lines[0].get_ydata(), dtype=float)


def red_crosses(chart: Chart) -> int:
    return sum(
        len(c.get_offsets())
        for ax in chart.figure.axes
        for c in ax.collections
        if c.get_label() == "non-finite"
    )


def test_gradient_flow_draws_the_seed_median_of_each_layer(planted):
    chart = layer_flow.chart(of(planted["layer"], "fade"), "fade", LAYERS - 1, "flow")
    step0 = line_values(chart, "step 0")[:LAYERS]
    # seeds scale δ by 1 and 2: the median is 1.5 × 0.5 ** (distance to the output layer)
    expected = [1.5 * 0.5 ** (LAYERS - 1 - layer) for layer in range(LAYERS)]
    np.testing.assert_allclose(step0, expected, rtol=1e-6)
    assert fmt(expected[0]) in chart.caption and fmt(expected[-1]) in chart.caption
    assert "fade" in chart.alt and fmt(expected[0]) in chart.alt


def test_a_nonfinite_value_is_marked_never_drawn_as_a_number(planted):
    chart = layer_flow.chart(of(planted["layer"], "boom"), "boom", LAYERS - 1, "flow")
    last = chart.data[(chart.data["snapshot"] == "end of epoch 2") & (chart.data["quantity"] == "delta_norm")]
    first_layer = last[last["layer"] == 0].iloc[0]
    assert first_layer["n_nonfinite"] == 1 and first_layer["n"] == 1  # seed 0's value only, seed 1's counted
    assert first_layer["median"] == pytest.approx(1.0)
    assert red_crosses(chart) >= 1 and "non-finite" in chart.caption
    drawn = np.concatenate([line.get_ydata() for ax in chart.figure.axes for line in ax.get_lines()])
    assert not np.any(np.asarray(drawn, float) == 0.0)


def test_a_point_where_every_seed_is_nonfinite_is_a_gap(planted):
    layer = of(planted["layer"], "boom").copy()
    layer.loc[(layer["step"] == STEPS - 1) & (layer["layer"] == 0), "delta_norm"] = np.inf
    chart = layer_flow.chart(layer, "boom", LAYERS - 1, "flow")
    end = line_values(chart, "end of epoch 2")[:LAYERS]
    assert np.isnan(end[0]) and np.isfinite(end[1:]).all()
    assert red_crosses(chart) >= 1


def test_heatmap_masks_nonfinite_cells(planted):
    chart = heatmap.chart(of(planted["layer"], "boom"), "boom", LAYERS - 1, "heatmap-boom-d3")
    image = chart.figure.axes[0].get_images()[0].get_array()
    assert image.shape == (LAYERS, STEPS)
    assert image.mask[0, STEPS - 1] and image.mask.sum() == 1  # layer 0 at the last step only
    assert "Green cells (2)" in chart.caption  # one per panel: δ and the kernel gradient


def test_depth_sweep_draws_measured_and_predicted(planted):
    runs = pd.DataFrame({
        "scenario": ["fade"] * 4, "depth": [3, 3, 6, 6], "seed": [0, 1, 0, 1],
        "delta_ratio_init": [0.1, 0.3, 0.01, np.inf], "predicted_delta_ratio": [0.2] * 2 + [0.02] * 2,
        "theory_note": [None] * 4,
    })  # fmt: skip
    chart = sweep.chart(runs, ["fade"], "depth-sweep")
    np.testing.assert_allclose(line_values(chart, "fade"), [0.2, 0.01])  # medians of the finite values
    assert chart.data.set_index("depth").loc[6, "n_nonfinite"] == 1
    assert fmt(0.01) in chart.alt


def test_training_curves_mark_the_divergence(planted):
    keys = [("boom", LAYERS - 1)]
    chart = curves.chart(planted["step"], planted["epoch"], planted["runs"], keys, "curves")
    loss_axis = chart.figure.axes[0]
    vertical = [line for line in loss_axis.get_lines() if line.get_xdata()[0] == line.get_xdata()[-1]]
    assert [float(line.get_xdata()[0]) for line in vertical] == [STEPS - 1]
    assert f"seed 1 at step {STEPS - 1}" in chart.caption
    accuracy = chart.data[chart.data["quantity"] == "test_accuracy"].set_index("epoch")["median"]
    assert accuracy.to_dict() == pytest.approx({1: 0.25, 2: 0.45})


def test_global_grad_norm_reports_how_often_clipping_fired(planted):
    keys = [("boom", LAYERS - 1), ("boomclip", LAYERS - 1)]
    chart = gradnorm.chart(planted["step"], planted["runs"], keys, "gradnorm")
    fired = of(planted["step"], "boomclip")["clipped"].mean()
    assert f"boomclip d{LAYERS - 1} {fmt(100 * fired)} %" in chart.caption
    assert set(chart.data["quantity"]) == {"grad_norm", "grad_norm_clipped"}
    clipped = chart.data[chart.data["quantity"] == "grad_norm_clipped"]
    assert set(clipped["series"]) == {f"boomclip d{LAYERS - 1}"} and clipped["median"].max() == 1.0


def test_inactive_units_is_none_without_data_and_drawn_with_it(planted):
    assert inactive.chart(of(planted["layer"], "boom"), "boom", LAYERS - 1, "i") is None
    chart = inactive.chart(of(planted["layer"], "fade"), "fade", LAYERS - 1, "i")
    assert set(chart.data["layer"]) == set(range(LAYERS - 1))  # hidden layers only
    assert chart.data["median"].unique() == pytest.approx([0.15])


def test_histograms_keep_epoch_zero_and_the_last_and_drop_nonfinite_bins():
    rows = [
        {"run_id": "r", "scenario": "s", "depth": 1, "seed": seed, "epoch": epoch, "layer": float(layer),
         "quantity": quantity, "bin_left": float(b), "bin_right": float(b + 1), "count": 10 + b}
        for seed in (0, 1) for epoch in (0, 1, 2) for layer in (0, 1)
        for quantity in ("weight", "log10_abs_grad") for b in range(4)
    ]  # fmt: skip
    rows.append({**rows[0], "bin_left": -math.inf})
    chart = histograms.chart(pd.DataFrame(rows), "s", 1, "h")
    assert set(chart.data["epoch"]) == {0, 2} and set(chart.data["seed"]) == {0}
    assert np.isfinite(chart.data["bin_left"]).all()
    assert "epoch 2" in chart.caption


def test_comparison_figures_colour_each_scenario_as_the_catalogue_does(planted):
    keys = [("sigmoid", 3), ("relu_he", 3)]
    layer = planted["layer"].replace({"scenario": {"fade": "sigmoid", "boom": "relu_he"}})
    chart = flow.chart(layer[layer["scenario"].isin(["sigmoid", "relu_he"])], keys, "cmp")
    palette = common.colours(keys)
    assert palette["sigmoid d3"] == common.PALETTE[common.CATALOGUE_ORDER.index("sigmoid")]
    assert palette["sigmoid d3"] != palette["relu_he d3"]
    ratios = flow.ratio_by_series(chart.data, keys)
    assert list(ratios) == ["sigmoid d3", "relu_he d3"]  # in the order of the keys
    assert ratios["sigmoid d3"] == pytest.approx(0.5 ** (LAYERS - 2))  # first over last hidden layer


def test_saved_figures_are_byte_identical_small_svgs_with_their_data(planted, tmp_path):
    def save(folder):
        chart = heatmap.chart(of(planted["layer"], "boom"), "boom", LAYERS - 1, "heatmap-boom-d3")
        return common.save(chart, tmp_path / folder, tmp_path), chart

    (first, chart), (second, _) = save("a"), save("b")
    svg_a, svg_b = (tmp_path / first.svg).read_bytes(), (tmp_path / second.svg).read_bytes()
    assert svg_a == svg_b and (tmp_path / first.csv).read_bytes() == (tmp_path / second.csv).read_bytes()
    assert first.svg == "a/heatmap-boom-d3.svg" and first.caption == chart.caption
    assert b"<dc:date>" not in svg_a and len(svg_a) < 200_000
    assert len(pd.read_csv(tmp_path / first.csv)) == len(chart.data)


def test_fmt_is_the_grading_format():
    assert fmt is text.fmt
    assert fmt(2.5e-7) == "2.50e-07" and fmt(0.25) == "0.25" and fmt(None) == "n/a"


def test_every_registered_figure_builds_from_a_page_s_tables(planted):
    class Tables:  # what report's Data gives a figure: rows of a results table, and the run table
        runs = planted["runs"].assign(delta_ratio_init=0.5, predicted_delta_ratio=0.5, theory_note=None)

        def rows(self, kind, keys, seeds):
            frame = planted.get(kind, planted["layer"].iloc[:0])
            return common.select(frame, keys).drop(columns="series")

    keys = [("fade", LAYERS - 1)]
    for name, entry in FIGURES.items():
        chart = entry.build(Tables(), keys, [0, 1], f"{name}-x")
        if name in NOT_FROM_PLANTED:
            assert chart is None, name
        else:
            assert chart.name == f"{name}-x" and chart.caption and chart.alt, name


# what the planted MLP tables cannot draw, and why (test_every_registered_figure_draws_from_real_runs draws them)
NOT_FROM_PLANTED = {
    "histograms": "the planted tables have no histogram rows",
    "time-grid": "a recurrent figure: 'fade' is an MLP",
    "length-ratio": "a recurrent figure: 'fade' is an MLP",
    "length-accuracy": "a recurrent figure: 'fade' is an MLP",
}
ONE_CELL = {"layer-flow", "heatmap", "histograms", "inactive", *(f"layer-{s.name}" for s in summarised())}  # one cell
RECURRENT = {"time-grid", "length-ratio", "length-accuracy"}


def test_every_registered_figure_draws_from_real_runs(recurrent_folder, tmp_path):
    """Real tiny runs (an MLP and recurrent nets at T = 4 and 8): every figure is drawn, saved and readable."""
    from report import data as report_data

    data = report_data.load(recurrent_folder)
    for name, entry in FIGURES.items():
        scenarios = ("rnn_tanh", "lstm") if name in RECURRENT else ("sigmoid",)
        keys = [(s, d) for s in scenarios for d in (4, 8)][: 1 if name in ONE_CELL else None]
        chart = entry.build(data, keys, [0], name)
        assert chart is not None and chart.caption and chart.alt, name
        axes = chart.figure.axes
        assert any(ax.get_lines() or ax.get_images() or ax.collections or ax.patches for ax in axes), name
        saved = common.save(chart, tmp_path, tmp_path)
        assert (tmp_path / saved.svg).stat().st_size > 0 and len(pd.read_csv(tmp_path / saved.csv)) == len(chart.data)


def test_a_run_of_many_epochs_shows_at_most_six_epoch_ends_first_and_last_included():
    steps = range(0, 200)
    layer = pd.DataFrame([{"run_id": "r", "step": s, "epoch": s // 2 + 1, "layer": 0, "delta_norm": 1.0}
                          for s in steps])  # 100 epochs of 2 logged steps
    shown = common.with_snapshots(layer)
    assert shown["snapshot"].tolist()[0] == "step 0" and len(shown) == 1 + common.MAX_EPOCH_SNAPSHOTS
    assert {"end of epoch 1", "end of epoch 100"} <= set(shown["snapshot"])
