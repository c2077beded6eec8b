"""The benchmark end to end on tiny settings: every figure, a valid JSON and a page. No timing is asserted."""

import json
import math
import os
import sys

import pytest

from bench import benchmark, sizes, store
from report import benchmark_page
from tests.helpers import check_links

EXPECTED = {
    *(f"samples_per_s.{k}" for k in ("gradbench.side_by_side", "gradbench.instrumented", "default.fit", "gradbench.fit",
                                     "default.instrumented_xla", "default.instrumented")),
    *(f"speedup_over_fit.{k}" for k in ("gradbench", "one_run", "same_threads", "xla")),
    *(f"compile_s.{c}.{k}" for c, k in benchmark.LABELS if k != "side_by_side"),
    "instrumentation_cost.gradbench", "instrumentation_cost.xla", "step_mflop",
    *(f"{figure}.{k}" for figure in ("matmul_gflops", "floor_ms", "step_ms", "floor_ratio")
      for k in ("gradbench", "xla")),
    *(f"{figure}.{state}.x{scale}" for figure in ("render_s", "render_peak_rss_mib") for state in ("cold", "cached")
      for scale in benchmark.TINY.render_scales),
    "render_growth_exponent.cold", "render_growth_exponent.cached",
    *(f"{figure}.{state}" for figure in ("diff_s", "diff_peak_rss_mib") for state in ("cold", "cached")),
    *(f"site_mb.{kind}" for kind in ("total", "html", "svg", "data")),
    f"site_mb.total.x{benchmark.TINY.render_scales[-1]}",
    "sweep_peak_rss_mib", "sweep_wall_s", "parquet_kib_per_run", "scan_s", "scan_wall_s", "scan_peak_rss_mib",
    *(f"sweep_runs_per_min_{mode}" for mode in benchmark.TINY.sweep_modes),
    *(f"recorder.{kind}_{what}" for kind in ("mlp", "conv", "lstm")
      for what in ("every_1", "every_10", "step_ratio", "cost_every_1", "cost_every_10")),
}
SIGNED = {"instrumentation_cost.gradbench", "instrumentation_cost.xla", "render_growth_exponent.cold",
          "render_growth_exponent.cached"}  # noise may flip


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("benchmark") / "site"
    assert benchmark.main(["--tiny", "--out", str(out)]) == 0
    return out


def test_every_figure_is_a_finite_positive_range(tiny):
    report = json.loads((tiny / "benchmark.json").read_text())
    figures = {f["key"]: f for f in report["figures"]}
    assert set(figures) == EXPECTED
    for key, f in figures.items():
        assert all(math.isfinite(v) for v in f["values"]), key
        assert f["min"] <= f["median"] <= f["max"], key
        assert key in SIGNED or f["min"] > 0, key
    assert len(figures["samples_per_s.default.fit"]["values"]) == benchmark.TINY.repeats
    assert figures["step_mflop"]["median"] == pytest.approx(6 * 32 * (784 * 32 + 32 * 32 + 32 * 10) / 1e6)


def test_the_two_training_processes_take_turns_a_round_each(tiny):
    """model.fit's rounds (TensorFlow's thread pools) and the sweep's (gradbench's) are measured seconds apart, one
    process at a time: no two rounds overlap, and they alternate."""
    times = json.loads((tiny / "benchmark.json").read_text())["settings"]["round_times"]
    assert [len(times[c]) for c in benchmark.CONFIGURATIONS] == [benchmark.TINY.repeats] * 2
    rounds = sorted((start, end, c) for c, intervals in times.items() for start, end in intervals)
    assert all(end <= next_start for (_, end, _), (next_start, _, _) in zip(rounds, rounds[1:]))
    order = [c for _, _, c in rounds]
    assert all(order[i:i + 2].count(c) == 1 for i in range(0, len(order), 2) for c in benchmark.CONFIGURATIONS)


def test_the_site_size_is_measured_in_total_and_by_kind(tiny):
    figures = {f["key"]: f for f in json.loads((tiny / "benchmark.json").read_text())["figures"]}
    total = figures["site_mb.total"]["median"]
    parts = sum(figures[f"site_mb.{kind}"]["median"] for kind in ("html", "svg", "data"))
    assert 0 < parts <= total and figures["site_mb.data"]["median"] > 0


def test_site_bytes_sorts_files_by_kind(tmp_path):
    for name, size in (("a.html", 3), ("f/x.svg", 5), ("f/x.csv.gz", 7), ("benchmark.json", 11), ("style.css", 13)):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x" * size)
    assert sizes.site_bytes(tmp_path) == {"html": 3, "svg": 5, "data": 18, "other": 13, "total": 39}


def test_targets_and_provenance_are_recorded(tiny):
    report = json.loads((tiny / "benchmark.json").read_text())
    targeted = {f["key"]: f for f in report["figures"] if f["target"]}
    assert {"speedup_over_fit.gradbench", "instrumentation_cost.gradbench", "render_growth_exponent.cold",
            "sweep_peak_rss_mib", "recorder.mlp_cost_every_1", "recorder.mlp_cost_every_10"} <= set(targeted)
    assert targeted["recorder.mlp_cost_every_1"]["target"] == "≤ 1.1" and "recorder.conv_cost_every_1" not in targeted
    cost = {f["key"]: f["median"] for f in report["figures"] if f["key"].startswith("recorder.mlp_")}
    assert cost["recorder.mlp_cost_every_10"] == pytest.approx(1 + (cost["recorder.mlp_step_ratio"] - 1) / 10)
    assert all(isinstance(f["met"], bool) for f in targeted.values())
    meta = report["provenance"]
    assert len(meta["load_average_start"]) == len(meta["load_average_end"]) == 3
    assert meta["cpu"] and meta["tf_version"] and meta["started_at"] <= meta["finished_at"]
    cores = len(os.sched_getaffinity(0))
    assert report["settings"]["threads_gradbench"] == {"intra_op_threads": max(1, cores // 2), "inter_op_threads": 2}
    assert report["settings"]["threads_default"] == {"intra_op_threads": 0, "inter_op_threads": 0}


def test_page_is_a_site_page(tiny):
    html = (tiny / "benchmark.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and "speed-up, gradbench sweep over model.fit" in html
    assert "load_average_start" in html and "threads_gradbench" in html
    assert (tiny / "style.css").exists()
    assert check_links(tiny) > 0 and "index.html" not in html  # written alone: links only to what is there


def test_replicated_runs_load_as_new_runs(smoke_results, tmp_path):
    source = store.load(smoke_results).runs
    benchmark.replicate(smoke_results, tmp_path / "x2", 2 * len(source))
    copied = store.load(tmp_path / "x2")
    runs = copied.runs
    assert set(copied.layer["seed"]) == set(runs["seed"]) and set(copied.step["run_id"]) == set(runs["run_id"])
    assert runs["run_id"].is_unique and len(runs) == 2 * len(source)
    assert sorted(runs["seed"]) == sorted([*source["seed"], *(source["seed"] + benchmark.SEED_STRIDE)])


def test_growth_exponent_and_targets():
    assert benchmark.growth_exponent([1, 4, 16], [2.0, 8.0, 32.0]) == pytest.approx(1.0)
    fast = benchmark.Figure("k", "s", "name", "×", [1.0, 3.0, 2.5], bound=2.0)
    assert fast.median == 2.5 and fast.met and fast.target == "≥ 2"
    assert benchmark.Figure("k", "s", "name", "%", [12.0], bound=10.0, higher_is_better=False).met is False


def test_the_page_prints_three_significant_digits_without_everyday_exponents():
    expected = {1.5e-5: "1.50e-05", 0.0123: "0.0123", 2.5: "2.5", 99.94: "99.9", 123456.7: "123,457", -3.2: "-3.2",
                math.inf: "inf"}
    for value, text in expected.items():
        shown = benchmark_page.row({"name": "n", "unit": "s", "min": value, "median": value, "max": value,
                                    "target": "", "met": None, "values": [value]})
        assert shown.min == shown.median == shown.max == text, value


def test_only_the_sections_asked_for_are_measured(tmp_path, capsys):
    assert benchmark.main(["--tiny", "--only", "footprint", "--out", str(tmp_path)]) == 0  # the quickest section
    figures = json.loads((tmp_path / "benchmark.json").read_text())["figures"]
    assert {f["key"] for f in figures} == {"sweep_peak_rss_mib", "sweep_wall_s", "parquet_kib_per_run"}
    with pytest.raises(SystemExit) as exit_:
        benchmark.main(["--only", "rendering,plots"])
    assert exit_.value.code == 2
    assert "unknown section plots; valid: training, footprint, rendering, scan, throughput" in capsys.readouterr().err


def test_peak_memory_counts_every_process_of_the_tree(tmp_path):
    """Two children holding 200 MiB each: the peak counts both, above 400 MiB, which neither reaches alone."""
    hold = "import time; b = bytearray(200 * 2**20); b[::4096] = b'x' * len(b[::4096]); time.sleep(1.5)"
    parent = f"import subprocess, sys; ps = [subprocess.Popen([sys.executable, '-c', {hold!r}]) for _ in range(2)]; " \
             "[p.wait() for p in ps]"
    peak, _ = benchmark.run_measured([sys.executable, "-c", parent], tmp_path / "log")
    assert peak > 400
