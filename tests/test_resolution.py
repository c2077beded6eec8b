"""Figures at the resolution they are drawn: a long run's lines and heatmaps stay small, spikes and gaps stay."""

import re

import numpy as np
import pandas as pd

from report.figures import common, gradnorm, heatmap, resolution

STEPS, SPIKE, GAP = 5000, 3217, range(4000, 4010)


def long_step_rows() -> pd.DataFrame:
    """Two seeds of a 5,000-step run: noisy norms around 1, one spike of 1e8 at SPIKE, and non-finite norms on
    both seeds over GAP (a gap every seed shares)."""
    rng = np.random.default_rng(0)
    frames = []
    for seed in (0, 1):
        norm = np.exp(rng.normal(0, 0.3, STEPS))
        norm[SPIKE] = 1e8
        norm[list(GAP)] = np.inf
        frames.append(pd.DataFrame({"run_id": f"r{seed}", "scenario": "boom", "depth": 21, "seed": seed,
                                    "step": np.arange(STEPS), "epoch": 1, "loss": 1.0, "grad_norm": norm,
                                    "grad_norm_clipped": norm, "clipped": False}))
    return pd.concat(frames, ignore_index=True)


def runs() -> pd.DataFrame:
    return pd.DataFrame({"run_id": ["r0", "r1"], "scenario": "boom", "depth": 21, "seed": [0, 1],
                         "status": "completed", "diverged_step": None, "diverged_layer": None, "clipnorm": None,
                         "global_clipnorm": None})


def grad_norm_chart() -> common.Chart:
    return gradnorm.chart(long_step_rows(), runs(), [("boom", 21)], "gradnorm-boom")


def test_a_long_line_keeps_at_most_a_few_points_per_bin_and_its_ends():
    data = grad_norm_chart().data
    assert len(data) <= 4 * resolution.LINE_BINS + 2 * 2 + 2 and len(data) < STEPS / 4
    assert data["step"].min() == 0 and data["step"].max() == STEPS - 1


def test_a_spike_survives_and_is_drawn():
    chart = grad_norm_chart()
    assert chart.data["median"].max() == 1e8 and SPIKE in set(chart.data["step"])
    line = next(line for line in chart.figure.axes[0].get_lines() if line.get_label().startswith("boom d21"))
    assert np.nanmax(np.asarray(line.get_ydata(), float)) == 1e8
    assert "peak 1.00e+08" in chart.caption


def test_a_non_finite_stretch_stays_a_gap_in_the_line():
    data = grad_norm_chart().data.sort_values("step")
    inside = data[data["step"].isin(GAP)]
    assert len(inside) and (inside["n_nonfinite"] > 0).all()
    median = common.finite(data["median"]).to_numpy()
    steps = data["step"].to_numpy()
    before, after = steps < GAP.start, steps >= GAP.stop
    assert np.isfinite(median[before][-1]) and np.isfinite(median[after][0])
    between = (steps > steps[before][-1]) & (steps < steps[after][0])
    assert np.isnan(median[between]).any()  # a NaN between the two finite points: matplotlib breaks the line


def test_a_short_band_is_left_whole():
    band = pd.DataFrame({"series": "s", "step": range(50), "median": 1.0, "min": 0.5, "max": 2.0, "n_nonfinite": 0})
    assert resolution.line_rows(band, "step", ["series"]).equals(band)


def test_the_svg_of_a_long_run_has_a_bounded_number_of_path_vertices(tmp_path):
    saved = common.save(grad_norm_chart(), tmp_path, tmp_path)
    svg = (tmp_path / saved.svg).read_text()
    vertices = sum(len(re.findall(r"[ML] ", d)) for d in re.findall(r' d="([^"]*)"', svg))
    assert vertices < 6 * 4 * resolution.LINE_BINS, vertices  # a line, its band's two edges, the clipped line
    assert len(svg) < 150_000 and not re.search(r"\d\.\d{3}", " ".join(re.findall(r' d="([^"]*)"', svg)))


def test_the_data_download_is_gzip_csv_with_the_columns_the_figure_draws(tmp_path):
    chart = grad_norm_chart()
    saved = common.save(chart, tmp_path, tmp_path)
    assert saved.csv.endswith(".csv.gz")
    data = pd.read_csv(tmp_path / saved.csv)
    assert {"series", "step", "median", "min", "max", "n_nonfinite", "quantity"} <= set(data.columns)
    assert len(data) == len(chart.data) and data["median"].max() == 1e8


def long_layer_rows() -> pd.DataFrame:
    """A 5,000-step run of 3 layers, δ = 10^-layer; one non-finite step on layer 1."""
    steps, layers = np.meshgrid(np.arange(STEPS), np.arange(3))
    frame = pd.DataFrame({"run_id": "r0", "scenario": "boom", "depth": 2, "seed": 0, "epoch": 1,
                          "step": steps.ravel(), "layer": layers.ravel(), "layer_role": "hidden",
                          "delta_norm": 10.0 ** -layers.ravel(), "kernel_grad_norm": 1.0})
    frame.loc[(frame["layer"] == 1) & (frame["step"] == SPIKE), "delta_norm"] = np.inf
    return frame


def test_a_long_heatmap_groups_steps_into_columns_and_keeps_a_non_finite_cell():
    chart = heatmap.chart(long_layer_rows(), "boom", 2, "heatmap-boom")
    delta = chart.data[chart.data["quantity"] == "delta_norm"]
    per_layer = delta.groupby("layer").size()
    assert (per_layer <= resolution.HEAT_COLUMNS).all() and (per_layer > resolution.HEAT_COLUMNS / 4).all()
    assert delta.groupby("layer")["log10_median"].mean().round(6).tolist() == [0.0, -1.0, -2.0]  # means of log10
    bad = delta[delta["log10_median"].isna()]
    assert len(bad) == 1 and bad["layer"].item() == 1 and bad["step"].item() <= SPIKE <= bad["step_last"].item()
    assert "Steps in columns of" in chart.caption and "Green cells (1)" in chart.caption
    image = chart.figure.axes[0].get_images()[0]
    assert image.get_array().shape == (3, per_layer.iloc[0])
    assert image.get_extent()[1] == STEPS - 1 + 0.5  # the last column ends at the last step
