"""Tests for report.grading: verdicts, cells, seed bands and article claims on planted result tables.

Planted runs go through bench.store (write_run, load), so they have exactly the stored schema.
"""

import math

import numpy as np
import pandas as pd
import pytest

from bench import store
from report.grading.cells import MEDIANS, agreement, cell_table
from report.grading.claims import Claim, article_claims, decreased_steadily
from report.grading.rules import SEVERITY
from report.grading.runs import RUN_COLUMNS, run_table
from report.grading.stats import by_run_and_layer, delta_ratios, seed_band

CONFIG = {
    "sigmoid": {"activation": "sigmoid", "initializer": "glorot_uniform", "architecture": "mlp", "batch_norm": False},
    "relu_he": {"activation": "relu", "initializer": "he_normal", "architecture": "mlp", "batch_norm": False},
    "resnet": {"activation": "relu", "initializer": "he_normal", "architecture": "resnet", "batch_norm": True},
    "linear": {"activation": "linear", "initializer": "glorot_uniform", "architecture": "mlp", "batch_norm": False},
    "linear_clipnorm": {
        "activation": "linear", "initializer": "glorot_uniform", "architecture": "mlp", "batch_norm": False,
    },
    "relu_he_bn": {"activation": "relu", "initializer": "he_normal", "architecture": "mlp", "batch_norm": True},
    "rnn_tanh": {"activation": "tanh", "initializer": "glorot_uniform", "architecture": "rnn", "batch_norm": False},
}  # fmt: skip
CLIPPED = {"linear_clipnorm"}


def planted(
    scenario: str,
    seed: int,
    deltas: np.ndarray,  # [steps, hidden layers], forward order
    grad_norms: np.ndarray | None = None,  # [steps]
    losses: np.ndarray | None = None,  # [steps]
    depth: int | None = None,
    status: str = "completed",
    test_accuracy: list[float] | tuple = (0.5,),
    train_loss: list[float] | None = None,
    diverged_step: int | None = None,
    profile: str = "quick",
    epochs: int | None = None,
) -> tuple[dict, dict[str, pd.DataFrame]]:
    """A run dict and its tables: N steps, the given hidden layers plus an output layer, one row per epoch."""
    steps, hidden = deltas.shape
    grad_norms = np.ones(steps) if grad_norms is None else grad_norms
    losses = np.full(steps, 2.3) if losses is None else losses
    epochs = epochs or max(len(test_accuracy), 1)
    epoch_of_step = 1 + np.arange(steps) * epochs // steps
    run = {
        "run_id": f"{scenario}-d{depth or hidden}-s{seed}", "scenario": scenario, "depth": depth or hidden,
        "seed": seed, "status": status, "diverged_step": diverged_step,
        "diverged_layer": "hidden__00" if status == "diverged" else None, "wall_time_s": 1.5,
        "width": 256, "init_std": 0.0, "input_mean_square": 0.1, "dataset": "mnist", "epochs": epochs,
        "train_samples": 4096, "profile": profile, "batch_size": 32, **CONFIG[scenario],
    }  # fmt: skip
    step = pd.DataFrame({
        "step": np.arange(steps), "epoch": epoch_of_step, "loss": losses, "batch_accuracy": 0.1,
        "grad_norm": grad_norms, "clipped": (grad_norms > 1.0) & (scenario in CLIPPED),
        "grad_norm_clipped": np.minimum(grad_norms, 1.0) if scenario in CLIPPED else grad_norms,
    })  # fmt: skip
    layers = hidden + 1
    delta = np.concatenate([deltas, np.ones((steps, 1))], axis=1)
    layer = pd.DataFrame({
        "step": np.repeat(np.arange(steps), layers), "epoch": np.repeat(epoch_of_step, layers),
        "layer": np.tile(np.arange(layers), steps),
        "layer_name": np.tile([f"hidden__{i:02d}" for i in range(hidden)] + ["output__00"], steps),
        "layer_role": np.tile(["hidden"] * hidden + ["output"], steps),
        "kernel_grad_norm": 0.1, "bias_grad_norm": 0.01, "kernel_norm": 10.0, "update_ratio": 1e-3,
        "delta_norm": delta.ravel(), "inactive_fraction": 0.0,
    })  # fmt: skip
    finished = len(test_accuracy)
    epoch = pd.DataFrame({
        "epoch": np.arange(1, finished + 1), "train_loss": train_loss or [1.0] * finished, "train_accuracy": 0.5,
        "test_loss": 1.0, "test_accuracy": list(test_accuracy),
    })  # fmt: skip
    return run, {"step": step, "layer": layer, "epoch": epoch}


def results_of(tmp_path, *runs) -> store.Results:
    for run, tables in runs:
        store.write_run(tmp_path / f"{run['run_id']}.parquet", run, tables)
    return store.load(tmp_path)


def flat(steps: int = 30, hidden: int = 5) -> np.ndarray:
    return np.ones((steps, hidden))


def decaying(steps: int = 30, hidden: int = 5) -> np.ndarray:
    """δ shrinking 10x per layer towards the input: first/last ratio 10^-(hidden-1)."""
    return np.tile(10.0 ** -np.arange(hidden - 1, -1, -1), (steps, 1))


def verdicts(tmp_path, *runs) -> dict[str, str]:
    table = run_table(results_of(tmp_path, *runs))
    return dict(zip(table["run_id"], table["verdict"]))


# -- per-run verdicts ------------------------------------------------------------------------------


def test_planted_vanishing_run_is_vanishing(tmp_path):
    table = run_table(results_of(tmp_path, planted("sigmoid", 0, decaying())))
    row = table.iloc[0]
    assert row["verdict"] == "vanishing"
    assert row["delta_ratio_init"] == pytest.approx(1e-4, rel=1e-5)
    assert row["delta_ratio_median"] == pytest.approx(1e-4, rel=1e-5)
    assert "whole-path ratio 1.00e-04 (median over training) < 0.01" in row["reason"]


def test_planted_divergence_is_diverged(tmp_path):
    norms, losses = np.ones(30), np.full(30, 2.3)
    norms[-1], losses[-1] = np.inf, np.nan
    deltas = flat()
    deltas[-1, 0] = np.inf
    run = planted("linear", 0, deltas, norms, losses, status="diverged", diverged_step=29, test_accuracy=())
    row = run_table(results_of(tmp_path, run)).iloc[0]
    assert row["verdict"] == "diverged"
    assert "step 29" in row["reason"] and "hidden__00" in row["reason"]
    assert row["grad_norm_max"] == 1.0  # the inf is left out, not taken as a value
    assert math.isnan(row["final_test_accuracy"])  # no epoch finished
    assert row["delta_ratio_final"] == 1.0  # the last finite ratio
    assert math.isinf(row["delta_ratio_init"]) is False


def test_nonfinite_step_values_count_as_divergence_even_if_status_says_completed(tmp_path):
    norms = np.ones(30)
    norms[12] = np.nan
    row = run_table(results_of(tmp_path, planted("relu_he", 0, flat(), norms))).iloc[0]
    assert row["verdict"] == "diverged"
    assert "step 12" in row["reason"]


def test_planted_explosion_is_exploding(tmp_path):
    norms = np.concatenate([np.ones(20), np.geomspace(1.0, 1e4, 10)])  # finite, but 1e4 x its early median
    row = run_table(results_of(tmp_path, planted("linear", 0, flat(), norms))).iloc[0]
    assert row["verdict"] == "exploding"
    assert row["growth"] == pytest.approx(1e4, rel=1e-5)
    assert "1.00e+04× its early median" in row["reason"]
    assert row["clip_fraction"] == 0.0


def test_a_clipped_net_is_graded_by_what_reaches_its_weights(tmp_path):
    """Clipping caps the applied norm: not exploding, though the gradient before clipping grew 1e4×, which is kept."""
    norms = np.concatenate([np.ones(20), np.geomspace(1.0, 1e4, 10)])
    row = run_table(results_of(tmp_path, planted("linear_clipnorm", 0, flat(), norms))).iloc[0]
    assert row["verdict"] == "healthy"
    assert row["growth"] == pytest.approx(1e4, rel=1e-5) and row["growth_applied"] == pytest.approx(1.0)


def test_backward_growth_through_layers_is_exploding(tmp_path):
    growing = 1 / decaying()  # first/last ratio 1e4
    assert verdicts(tmp_path, planted("linear", 0, growing)) == {"linear-d5-s0": "exploding"}


def test_modest_growth_and_decay_are_healthy(tmp_path):
    norms = np.geomspace(1.0, 100.0, 30)
    mild = np.tile([0.64, 0.8, 1.0], (30, 1))  # 0.8 per layer: above the vanishing limit
    found = verdicts(tmp_path, planted("relu_he", 0, mild, norms), planted("relu_he", 1, flat()))
    assert found == {"relu_he-d3-s0": "healthy", "relu_he-d5-s1": "healthy"}


def profile(ratio: float, depth: int, steps: int = 30) -> np.ndarray:
    """‖δ‖ per hidden layer, geometric from ratio at the first to 1 at the last."""
    return np.tile(ratio ** np.linspace(1, 0, depth), (steps, 1))


@pytest.mark.parametrize("ratio, verdict", [(0.9e-2, "vanishing"), (1.1e-2, "healthy"), (0.9e2, "healthy"),
                                            (1.1e2, "exploding"), (0.0, "vanishing")])
@pytest.mark.parametrize("depth", [2, 64])
def test_the_verdict_reads_the_whole_path_on_both_sides_of_each_threshold(tmp_path, ratio, verdict, depth):
    """The whole-path ratio, not a per-layer factor: the same ratio gets the same verdict at depth 2 and 64 (a
    per-layer root would call 1.1e2 over one layer exploding and over 63 layers healthy), and one that underflows
    to 0 is vanishing, not an unknown factor."""
    row = run_table(results_of(tmp_path, planted("relu_he", 0, profile(ratio, depth)))).iloc[0]
    assert (row["verdict"], row["verdict_init"]) == (verdict, verdict)


def test_an_offset_of_order_one_is_healthy_at_any_depth_and_is_the_law_not_the_verdict(tmp_path):
    shallow, deep = (planted("relu_he", d, profile(1.5, d)) for d in (2, 11))  # 1.5× over 1 and over 10 layers
    table = run_table(results_of(tmp_path, shallow, deep)).set_index("depth")
    assert table["verdict"].tolist() == ["healthy", "healthy"]
    assert table.loc[2, "law"] == "amplifying" and table.loc[11, "law"] == "critical"  # 1.5/layer vs 1.04/layer


def planted_sequence(seed: int, length: int, factor: float, accuracy: float) -> tuple[dict, dict[str, pd.DataFrame]]:
    """A recurrent run over T = length steps whose ‖∂L/∂h_t‖ shrinks by factor per time step towards t = 1."""
    run, tables = planted("rnn_tanh", seed, flat(30, 1), test_accuracy=(accuracy,), depth=length)
    tables["layer"] = tables["layer"].assign(layer_role=np.where(tables["layer"]["layer"] == 0, "recurrent",
                                                                 "output"))
    steps = np.repeat(np.arange(30), length)
    tables["time"] = pd.DataFrame({
        "step": steps, "epoch": 1, "time_step": np.tile(np.arange(1, length + 1), 30),
        "delta_norm": np.tile(factor ** np.arange(length - 1, -1, -1), 30), "forget_gate": np.nan,
    })  # fmt: skip
    return run, tables


def test_over_a_sequence_the_product_is_graded_not_the_per_step_factor(tmp_path):
    """0.9 per time step: a 2.6× loss over T = 10, healthy; 200× over T = 50, vanishing — with the page's words."""
    runs = [planted_sequence(0, 10, 0.9, 1.0), planted_sequence(1, 50, 0.9, 0.25)]
    table = run_table(results_of(tmp_path, *runs)).set_index("depth")
    assert table.loc[10, "verdict"] == "healthy" and table.loc[50, "verdict"] == "vanishing"
    assert table.loc[10, "factor_init"] == pytest.approx(0.9) == table.loc[50, "factor_init"]
    assert table.loc[50, "path_ratio_median"] == pytest.approx(0.9 ** 49, rel=1e-5)
    assert (table.loc[10, "effect"], table.loc[50, "effect"]) == ("learns", "stalled")  # chance is 1/4 symbols


def test_batch_norm_is_graded_by_the_scale_free_ratio(tmp_path):
    """Batch norm divides δ by the pre-activation's rms: a raw ‖δ‖ ratio of 1e3 with ‖∂L/∂W‖·‖W‖ equal across
    layers is healthy; the same δ without batch norm is exploding."""
    runs = [planted(name, 0, profile(1e3, 4)) for name in ("relu_he_bn", "relu_he")]
    table = run_table(results_of(tmp_path, *runs)).set_index("scenario")
    assert table.loc["relu_he_bn", "delta_ratio_median"] == pytest.approx(1e3, rel=1e-5)
    assert table.loc["relu_he_bn", "path_ratio_median"] == pytest.approx(1.0)
    assert table.loc[["relu_he_bn", "relu_he"], "verdict"].tolist() == ["healthy", "exploding"]


@pytest.mark.parametrize("path, accuracy, late_loss, effect", [
    (0.09, 0.9, 0.3, "frozen"), (0.11, 0.9, 0.3, "learns"), (1.0, 0.18, 2.3, "stalled"), (1.0, 0.2, 2.3, "learns"),
    (1.0, 0.9, 24.0, "unstable"), (1.0, 0.9, 22.0, "learns"),
])  # fmt: skip
def test_the_effect_on_both_sides_of_each_threshold(tmp_path, path, accuracy, late_loss, effect):
    """Frozen below an update path of 0.1 for hidden layer 2; stalled below chance + 0.1 × (1 − chance) = 0.19 with 10
    classes; unstable when the late loss exceeds 10× the loss of guessing, ln 10 = 2.3 (so 23)."""
    run, tables = planted("relu_he", 0, flat(30, 3), losses=np.r_[np.full(15, 2.3), np.full(15, late_loss)],
                          test_accuracy=(accuracy,))
    layer = tables["layer"]
    tables["layer"] = layer.assign(update_ratio=np.where(layer["layer"] == 1, 1e-3 * path, 1e-3))
    row = run_table(results_of(tmp_path, (run, tables))).iloc[0]
    assert row["effect"] == effect
    assert row["early_update_path"] == pytest.approx(path, rel=1e-5)


def test_windows_count_training_steps_not_logged_rows(tmp_path):
    """A run logged every step and the same run logged every 10th step get the same early window and growth."""
    steps = np.arange(400)
    norms = np.where(steps < 20, 1.0, 50.0)  # the early 20 steps at 1, later 50
    every = planted("linear", 0, flat(400, 3), norms)
    sparse_run, sparse = planted("linear", 1, flat(400, 3), norms)
    sparse = {kind: frame[frame["step"] % 10 == 0] if "step" in frame else frame for kind, frame in sparse.items()}
    table = run_table(results_of(tmp_path, every, (sparse_run, sparse))).set_index("seed")
    assert table.loc[0, "grad_norm_early"] == table.loc[1, "grad_norm_early"] == 1.0
    assert table.loc[0, "growth"] == table.loc[1, "growth"] == 50.0


def test_single_step_single_hidden_layer_run(tmp_path):
    row = run_table(results_of(tmp_path, planted("relu_he", 0, np.array([[0.3]])))).iloc[0]
    assert row["delta_ratio_init"] == 1.0 and row["delta_ratio_median"] == 1.0
    assert row["growth"] == 1.0 and row["logged_steps"] == 1
    assert row["verdict"] == "healthy"
    assert row["predicted_delta_ratio"] == pytest.approx(1.0)


def test_delta_ratios_per_step(tmp_path):
    deltas = np.array([[1e-3, 1.0, 2.0], [4.0, 1.0, 2.0]])
    ratios = delta_ratios(results_of(tmp_path, planted("relu_he", 0, deltas)).layer)
    assert ratios["step"].tolist() == [0, 1]
    assert ratios["ratio"].to_numpy() == pytest.approx([5e-4, 2.0], rel=1e-6)


def test_theory_columns(tmp_path):
    table = run_table(
        results_of(tmp_path, planted("sigmoid", 0, decaying()), planted("resnet", 0, flat(3, 2)))
    )
    sigmoid, resnet = (table[table["scenario"] == s].iloc[0] for s in ("sigmoid", "resnet"))
    assert 0 < sigmoid["predicted_delta_ratio"] < 1e-2 and sigmoid["theory_note"] is None
    assert math.isnan(resnet["predicted_delta_ratio"]) and resnet["theory_note"] == "convolutions"


def test_empty_results(tmp_path):
    results = store.load(tmp_path)
    runs = run_table(results)
    assert runs.empty and list(runs.columns) == RUN_COLUMNS
    assert cell_table(runs).empty
    assert [c.reproduced for c in article_claims(runs, cell_table(runs), results.runs)] == [None] * 4


# -- cells -----------------------------------------------------------------------------------------


def runs_frame(rows: list[tuple[str, int, int, str, float]]) -> pd.DataFrame:
    from bench.scenarios import SCENARIOS

    frame = pd.DataFrame(rows, columns=["scenario", "depth", "seed", "verdict", "final_test_accuracy"])
    expected = [SCENARIOS[s].expected if s in SCENARIOS else None for s in frame["scenario"]]
    medians = {**dict.fromkeys(MEDIANS, 1.0), "predicted_delta_ratio": np.nan, "predicted_factor": np.nan}
    return frame.assign(**medians, theory_note=None, expected=expected, expected_init=None, experiment="e",
                        verdict_init=frame["verdict"], effect="learns",
                        cell_id=frame["scenario"] + frame["depth"].astype(str))  # fmt: skip


def test_cell_majority_and_ties():
    runs = runs_frame([
        ("linear", 21, 0, "diverged", np.nan), ("linear", 21, 1, "healthy", 0.8),
        ("linear", 21, 2, "diverged", np.nan), ("linear", 21, 3, "healthy", 0.9),
        ("sigmoid", 11, 0, "vanishing", 0.11), ("sigmoid", 11, 1, "vanishing", 0.12),
        ("sigmoid", 11, 2, "healthy", 0.5),
        ("sigmoid", 3, 0, "healthy", 0.9), ("sigmoid", 3, 1, "exploding", 0.2),
    ])  # fmt: skip
    cells = cell_table(runs)
    assert list(zip(cells["scenario"], cells["depth"])) == [("sigmoid", 3), ("sigmoid", 11), ("linear", 21)]
    assert cells["verdict_label"].tolist() == ["exploding 1/2", "vanishing 2/3", "diverged 2/4"]
    assert cells["as_expected"].tolist() == [False, True, True]  # diverged counts as the expected exploding
    sigmoid = cells.iloc[1]
    assert (sigmoid["accuracy_median"], sigmoid["accuracy_min"], sigmoid["accuracy_max"]) == (0.12, 0.11, 0.5)
    assert cells.iloc[2]["accuracy_median"] == pytest.approx(0.85)  # NaN accuracies left out


def test_unknown_scenario_goes_last_with_no_expectation():
    cells = cell_table(runs_frame([("zz_custom", 3, 0, "healthy", 0.9), ("relu_he", 3, 0, "healthy", 0.9)]))
    assert cells["scenario"].tolist() == ["relu_he", "zz_custom"]
    assert cells["as_expected"].tolist() == [True, None]


# -- seed bands ------------------------------------------------------------------------------------


def test_seed_band_ignores_and_counts_nonfinite():
    frame = pd.DataFrame({
        "scenario": "s", "seed": [0, 1, 2, 0, 1, 2], "step": [0, 0, 0, 1, 1, 1],
        "value": [1.0, np.inf, 3.0, np.nan, 2.0, 4.0],
    })  # fmt: skip
    band = seed_band(frame, "step", "value", ["scenario"])
    assert list(band.columns) == ["scenario", "step", "median", "min", "max", "n", "n_nonfinite"]
    assert band["median"].tolist() == [2.0, 3.0]
    assert band["min"].tolist() == [1.0, 2.0] and band["max"].tolist() == [3.0, 4.0]
    assert band["n"].tolist() == [2, 2] and band["n_nonfinite"].tolist() == [1, 1]


def test_seed_band_all_nonfinite_and_empty():
    frame = pd.DataFrame({"layer": [0, 0], "seed": [0, 1], "step": [5, 5], "v": [np.inf, -np.inf]})
    band = seed_band(frame, "step", "v", ["layer"]).iloc[0]
    assert math.isnan(band["median"]) and band["n"] == 0 and band["n_nonfinite"] == 2
    assert seed_band(frame.iloc[:0], "step", "v", ["layer"]).empty


# -- the article's claims --------------------------------------------------------------------------


def claims_of(tmp_path, *runs) -> dict[str, Claim]:
    results = results_of(tmp_path, *runs)
    table = run_table(results)
    return {c.experiment.split(",")[0]: c for c in article_claims(table, cell_table(table), results.runs)}


def article_runs(stuck: bool) -> list:
    """Planted sigmoid-11 / linear-21 / linear_clipnorm-21 seeds that do (stuck=True) or do not show the claims."""
    steps = 40
    plateau, falling = np.full(steps, 2.3), np.linspace(2.3, 0.5, steps)
    norms = np.geomspace(1, 1e5, steps) if stuck else np.ones(steps)
    blowup = np.where(np.arange(steps) > 30, 1e3, 2.3) if stuck else falling
    runs = []
    for seed in range(3):
        runs.append(
            planted(
                "sigmoid",
                seed,
                decaying(steps, 11) if stuck else flat(steps, 11),
                losses=plateau if stuck else falling,
                test_accuracy=[0.11 if stuck else 0.95],
            )
        )
        runs.append(planted("linear", seed, flat(steps, 21), norms, blowup, test_accuracy=[0.1] * 3))
        runs.append(
            planted(
                "linear_clipnorm",
                seed,
                flat(steps, 21),
                losses=falling if stuck else plateau,
                test_accuracy=[0.6, 0.8],
                train_loss=[1.5, 1.0] if stuck else [2.3, 2.4],
            )
        )
    return runs  # fmt: skip


def test_article_claims_reproduced_on_planted_data(tmp_path):
    claims = claims_of(tmp_path, *article_runs(stuck=True))
    assert {name: c.reproduced for name, c in claims.items()} == {
        "sigmoid": True, "resnet": None, "linear": True, "linear_clipnorm": True,
    }  # fmt: skip
    sigmoid = claims["sigmoid"]
    assert "3/3 seeds" in sigmoid.measured and "0.11" in sigmoid.measured
    assert "vanishing 3/3" in sigmoid.measured
    assert "trained 40 steps (0.312 epochs) on 4096 training samples of mnist (0.213 % of" in sigmoid.measured
    assert "≤ 0.2" in sigmoid.evidence
    assert "no runs of resnet at depth 6" in claims["resnet"].measured


def test_article_claims_not_reproduced_on_planted_data(tmp_path):
    claims = claims_of(tmp_path, *article_runs(stuck=False))
    assert {name: c.reproduced for name, c in claims.items()} == {
        "sigmoid": False, "resnet": None, "linear": False, "linear_clipnorm": False,
    }  # fmt: skip
    assert "0/3 seeds" in claims["sigmoid"].measured and "0.95" in claims["sigmoid"].measured


def test_resnet_claim_uses_final_accuracy(tmp_path):
    runs = [
        planted("resnet", s, flat(5, 6), test_accuracy=[0.88, acc]) for s, acc in enumerate([0.95, 0.92, 0.5])
    ]
    claim = claims_of(tmp_path, *runs)["resnet"]
    assert claim.reproduced is True and "2/3 seeds" in claim.measured and "0.88" in claim.measured
    assert "> 0.9 (the bar for mnist" in claim.evidence and not claim.budget


# -- a real tiny run -------------------------------------------------------------------------------


def test_tables_of_real_smoke_runs(tmp_path):
    pytest.importorskip("bench.train")
    from bench.__main__ import main

    args = ["run", "--scenario", "sigmoid", "--depth", "1,3", "--profile", "smoke", "--device", "cpu"]
    assert main([*args, "--results", str(tmp_path)]) == 0
    results = store.load(tmp_path)
    runs = run_table(results)
    assert runs["depth"].tolist() == [1, 3]
    one, three = runs.iloc[0], runs.iloc[1]
    assert one["delta_ratio_init"] == 1.0  # a single hidden layer is its own first and last
    assert 0 < three["delta_ratio_init"] < 1  # sigmoid: σ' ≤ 1/4 shrinks δ on the way back
    assert three["predicted_delta_ratio"] == pytest.approx(three["delta_ratio_init"], rel=0.5)
    assert set(runs["verdict"]) <= set(SEVERITY)
    assert runs["logged_steps"].tolist() == results.step.groupby("run_id").size().sort_index().tolist()
    cells = cell_table(runs)
    assert cells["verdict_label"].str.endswith(" 1/1").all()
    claims = article_claims(runs, cells, results.runs)
    assert [c.reproduced for c in claims] == [None] * 4  # no article depth among these runs


# -- cells never pool, and the grading that issue 10 made consistent ------------------------------


def test_two_profiles_in_one_folder_give_separate_cells(tmp_path):
    runs = [planted("sigmoid", s, decaying(), profile=p) for p in ("quick", "full") for s in (0, 1, 2)]
    for run, _ in runs:
        run["run_id"] += f"-{run['profile']}"
        if run["profile"] == "full":
            run["epochs"] = 10
    table = run_table(results_of(tmp_path, *runs))
    cells = cell_table(table)
    assert len(cells) == 2 and cells["seeds"].tolist() == [3, 3]
    assert cells["verdict_label"].tolist() == ["vanishing 3/3", "vanishing 3/3"]
    assert cells["experiment"].nunique() == 2


def test_noisy_but_steady_loss_decreases_steadily_and_a_spike_is_reported(tmp_path):
    rng = np.random.default_rng(0)
    steps = np.arange(800)
    noisy = 2.0 * np.exp(-steps / 300) + 0.3 + rng.normal(0, 0.03, len(steps))  # noisy, falling
    spiked = noisy.copy()
    spiked[500] = 40.0  # one batch: > 10x the median of the 100 steps before it
    rising = noisy.copy()
    rising[600:] *= 1.5  # a late span whose median rises beyond the noise
    runs = [planted("linear_clipnorm", s, flat(800, 21), losses=loss, test_accuracy=[0.7, 0.8])
            for s, loss in enumerate([noisy, spiked, rising])]
    table = run_table(results_of(tmp_path, *runs)).set_index("seed")
    assert [decreased_steadily(table.loc[s]) for s in range(3)] == [True, True, False]
    assert table.loc[0, "loss_spikes"] == [] and table.loc[1, "loss_spikes"][0][:2] == (500, 40.0)
    claim = claims_of(tmp_path, *runs)["linear_clipnorm"]
    assert claim.reproduced is True and "seed 1 step 500 (loss 40" in claim.measured


def test_linear_claim_checks_around_epoch_3_and_names_the_budget_that_would_reach_it(tmp_path):
    norms = np.geomspace(1, 1e5, 40)
    blowup = np.where(np.arange(40) > 30, 1e3, 2.3)
    early = [planted("linear", s, flat(40, 21), norms, blowup, test_accuracy=[0.1]) for s in range(3)]
    claim = claims_of(tmp_path, *early)["linear"]  # blew up, but in epoch 1 of 1: not "around epoch 3"
    assert claim.reproduced is False and "(epoch 1)" in claim.measured
    assert "about 7500 steps on the whole training set" in claim.budget


def test_resnet_claim_uses_the_dataset_s_bar_and_says_when_the_budget_is_short(tmp_path):
    runs = [planted("resnet", s, flat(5, 6), test_accuracy=[0.4, 0.55]) for s in range(3)]
    for run, _ in runs:
        run["dataset"] = "fashion_mnist"
    claim = claims_of(tmp_path, *runs)["resnet"]
    assert claim.reproduced is False and "> 0.85 (the bar for fashion_mnist" in claim.evidence
    assert "not reachable in this budget" in claim.budget


def test_expected_verdict_comes_from_theory_per_depth(tmp_path):
    runs = [planted("sigmoid", 0, decaying(30, 5)), planted("relu_he", 1, flat(30, 3)),
            planted("linear", 2, flat(30, 21)), planted("linear", 3, flat(30, 3)), planted("resnet", 4, flat(3, 2))]
    table = run_table(results_of(tmp_path, *runs)).set_index("run_id")
    expected = table[["expected_init", "expected"]].to_dict("index")
    # the theory at every depth it models, for step 0; the literature at the catalogue's depth, for training
    assert expected["sigmoid-d5-s0"] == {"expected_init": "vanishing", "expected": None}  # (¼)⁴ < 1e-2
    assert expected["relu_he-d3-s1"] == {"expected_init": "healthy", "expected": None}
    assert expected["linear-d21-s2"] == {"expected_init": "healthy", "expected": "exploding"}
    assert expected["linear-d3-s3"] == {"expected_init": "healthy", "expected": None}
    assert expected["resnet-d2-s4"] == {"expected_init": None, "expected": None}


def test_a_mark_stands_beside_the_verdict_of_its_own_moment():
    """exploding in training beside a theory that expects healthy at step 0, with a healthy step 0: ✓ for step 0,
    and no ✓ for training where nothing is expected; a cell whose verdict does not predict its effect is named."""
    runs = runs_frame([("linear", 4, 0, "exploding", 0.9), ("linear", 4, 1, "exploding", 0.9)])
    runs = runs.assign(verdict_init="healthy", expected_init="healthy", expected=None)
    cell = cell_table(runs).iloc[0]
    assert (cell["verdict_init"], cell["as_expected_init"]) == ("healthy", True)
    assert cell["verdict"] == "exploding" and cell["as_expected"] is None
    assert agreement(cell_table(runs)) == (0, 1, ["linear at 4: exploding 2/2, effect learns 2/2"])


# -- the words a page prints -----------------------------------------------------------------------


def table_text(tmp_path, *runs) -> dict[tuple[str, int], str]:
    """The cells table as a reader sees it: one line of text per (scenario, depth)."""
    import html
    import re

    from report.render import environment
    from report.views import cell_view

    results = results_of(tmp_path, *runs)
    cells = cell_table(run_table(results))
    views = [cell_view(cell, results.runs) for _, cell in cells.iterrows()]
    macro = environment().from_string('{% import "macros.html.j2" as m %}{{ m.cells_table("", cells, "") }}')
    rows = re.findall(r"<tr>(.*?)</tr>", macro.render(cells=views), re.S)[1:]
    texts = [re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", row))).strip() for row in rows]
    return {(v.scenario, v.depth): t for v, t in zip(views, texts)}


@pytest.mark.parametrize("depth", [2, 64])
def test_the_table_marks_agreement_with_the_theory_at_step_0_only(tmp_path, depth):
    """A sigmoid net the theory expects to vanish at depth 64 (not at 2): ✓ where the step-0 verdict agrees, ✗ with
    the theory's word where it does not — and no mark for training, about which the theory says nothing."""
    vanishing, healthy = planted("sigmoid", 0, profile(1e-3, depth)), planted("sigmoid", 1, profile(0.5, depth))
    text = table_text(tmp_path, vanishing if depth == 64 else healthy)[("sigmoid", depth)]
    assert text.startswith(f"sigmoid {depth} ordered")
    if depth == 64:
        assert "vanishing 1/1 ✓ theory vanishing 1/1 —" in text
    else:
        assert "healthy 1/1 ✓ theory healthy 1/1 —" in text
    flipped = table_text(tmp_path / "flipped", healthy if depth == 64 else vanishing)[("sigmoid", depth)]
    expected = "vanishing" if depth == 64 else "healthy"
    assert f"✗ theory: {expected}" in flipped and "✓" not in flipped


def test_the_table_flags_a_verdict_that_does_not_predict_the_effect(tmp_path):
    """Healthy by its gradients, yet stuck at chance: the effect column says so with a ✗."""
    stuck = planted("relu_he", 0, flat(30, 3), test_accuracy=(0.1,))
    learning = planted("relu_he", 1, flat(30, 4), test_accuracy=(0.9,))
    text = table_text(tmp_path, stuck, learning)
    assert "stalled 1/1 ✗" in text[("relu_he", 3)]
    assert "learns 1/1" in text[("relu_he", 4)] and "✗" not in text[("relu_he", 4)]


def test_the_scan_grades_each_depth_with_the_same_rules():
    from report.depth_scan import onset

    assert onset([2, 4, 8, 16], [0.5, 0.02, 0.009, 1e-5]) == "vanishing from depth 8"
    assert onset([2, 4, 8], [1.0, 99.0, np.inf]) == "exploding from depth 8"
    assert onset([2, 4], [0.5, 0.0]) == "vanishing from depth 4"  # below float32's range
    assert onset([2, 4], [0.5, 2.0]) == "healthy at every depth"


@pytest.mark.parametrize("runs, layers", [(3, 5), (40, 2000), (0, 0)])  # 80,000 pairs: past the radix sort's 2**16
def test_rows_by_run_step_and_layer_are_put_in_the_order_of_run_layer_and_step(runs, layers):
    """As np.lexsort would order them, with steps and layers missing here and there (early_update_path's rows)."""
    grid = np.array([(r, s, n) for r in range(runs) for s in range(0, 50, 10) for n in range(layers)]).reshape(-1, 3)
    rows = grid[np.random.default_rng(0).random(len(grid)) < 0.7]  # in run, step, layer order
    run, step, layer = rows.T
    assert np.array_equal(by_run_and_layer(run, layer.astype(float)), np.lexsort((step, layer, run)))
