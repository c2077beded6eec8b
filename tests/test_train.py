"""One run end to end: divergence is data, and one seed gives one set of numbers."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from bench import train
from bench.scenarios import PROFILES, SCENARIOS

SMOKE = PROFILES["smoke"]


def test_forced_divergence_is_recorded_not_raised(synthetic):
    blowup = replace(SCENARIOS["linear"], name="linear_blowup", learning_rate=1e3)
    outcome, tables = train.train(train.RunSpec(blowup, 6, 0, SMOKE), synthetic)
    steps = tables["step"]
    assert outcome["status"] == "diverged"
    first_bad = int(steps.loc[~np.isfinite(steps["loss"]) | ~np.isfinite(steps["grad_norm"]), "step"].min())
    layers = tables["layer"]
    bad_layers = layers[(layers["step"] == first_bad) & ~np.isfinite(layers["delta_norm"])]
    assert outcome["diverged_step"] == first_bad == steps["step"].max()
    assert np.isfinite(steps[steps["step"] < first_bad][["loss", "grad_norm"]].to_numpy()).all()
    assert outcome["diverged_layer"] in (None, *bad_layers["layer_name"])
    assert tables["epoch"].empty  # stopped inside the first epoch


def test_same_seed_gives_identical_tables(synthetic):
    spec = train.RunSpec(SCENARIOS["relu_he_bn"], 3, 0, SMOKE)
    _, first = train.train(spec, synthetic)
    train.train(replace(spec, seed=1), synthetic)  # another seed in between reuses the compiled graph
    _, again = train.train(spec, synthetic)
    for kind in first:
        pd.testing.assert_frame_equal(first[kind], again[kind], check_exact=True)


SIDE_BY_SIDE_CASES = {
    "healthy": (SCENARIOS["sigmoid"], 3, (0, 1), SMOKE),
    # linear at depth 10, learning rate 2: seed 2 diverges in epoch 3 of 4 and seed 3 trains on alone (TF 2.21)
    "one_diverges": (replace(SCENARIOS["linear"], learning_rate=2.0), 10, (2, 3), replace(SMOKE, epochs=4)),
}


@pytest.mark.parametrize("case", SIDE_BY_SIDE_CASES)
def test_runs_trained_side_by_side_get_the_numbers_they_get_alone(case, synthetic):
    scenario, depth, seeds, profile = SIDE_BY_SIDE_CASES[case]
    specs = [train.RunSpec(scenario, depth, seed, profile) for seed in seeds]
    together = train.train_together(specs, synthetic)
    for spec, (outcome, tables) in zip(specs, together):
        alone_outcome, alone = train.train(spec, synthetic)
        assert outcome["runs_side_by_side"] == 2 and alone_outcome["runs_side_by_side"] == 1
        for key in ("status", "diverged_step", "diverged_layer", "steps_run"):
            assert outcome[key] == alone_outcome[key], key
        for kind in alone:
            pd.testing.assert_frame_equal(tables[kind], alone[kind], check_exact=True)
    assert not np.array_equal(together[0][1]["layer"]["kernel_norm"], together[1][1]["layer"]["kernel_norm"])


def test_seeds_differ_and_every_step_and_layer_is_logged(synthetic):
    spec = train.RunSpec(SCENARIOS["sigmoid"], 3, 0, SMOKE)
    outcome, tables = train.train(spec, synthetic)
    _, other = train.train(replace(spec, seed=1), synthetic)
    steps = SMOKE.epochs * (SMOKE.train_samples // SMOKE.batch_size)
    assert outcome["status"] == "completed" and outcome["steps_run"] == steps
    assert list(tables["step"]["step"]) == list(range(steps))
    assert len(tables["layer"]) == steps * (3 + 1)
    assert set(tables["histogram"]["epoch"]) == {0, 1}
    assert not np.array_equal(tables["layer"]["kernel_norm"], other["layer"]["kernel_norm"])


def test_a_budget_in_steps_cuts_the_last_epoch(synthetic):
    """A long cell trains exactly its steps: whole epochs, then part of one, each epoch evaluated."""
    profile = replace(SMOKE, long_cells=("linear",), long_steps=13, epochs=1)
    spec = train.RunSpec(SCENARIOS["linear"], SCENARIOS["linear"].default_depth, 0, profile)
    per_epoch = len(synthetic.y_train) // SMOKE.batch_size  # 8
    assert spec.steps == 13 and spec.train_samples is None and spec.epochs(per_epoch) == 2
    outcome, tables = train.train(spec, synthetic)
    assert outcome["steps_run"] == 13 and tables["step"]["step"].tolist() == list(range(13))
    assert tables["epoch"]["epoch"].tolist() == [1, 2]
    other = train.RunSpec(SCENARIOS["linear"], 2, 0, profile)  # not the long cell: the profile's epochs
    assert other.steps is None and other.train_samples == SMOKE.train_samples


def test_quick_trains_four_depths_per_mlp_and_the_linear_cells_long():
    quick = PROFILES["quick"]
    for scenario in SCENARIOS.values():
        if scenario.architecture in ("mlp", "resmlp"):
            assert len(quick.depths(scenario)) >= 4, scenario.name
        if scenario.architecture == "rnn":  # on a step budget; the vanishing contrast at a length each side of
            # where the SimpleRNN stops, the exploding pair at the default length
            assert quick.budget(scenario, 50)[0] == quick.sequence_steps
            assert len(quick.depths(scenario)) == (2 if scenario.name in quick.sequence_cells else 1), scenario.name
    assert quick.budget(SCENARIOS["linear"], 21) == (quick.long_steps, None) and quick.long_steps >= 5000
    assert quick.budget(SCENARIOS["linear"], 2) == (None, quick.train_samples)


def test_a_cells_graphs_are_traced_once_for_all_its_seeds_and_chunks(tmp_path, synthetic):
    """No retracing: a sweep builds one graph per cell (which tf.function's heuristic warns about, hidden
    without --verbose) and reuses it for every seed, epoch and chunk."""
    from bench import sweep

    profile = replace(SMOKE, epochs=3)
    sweep.sweep(sweep.grid(profile, [SCENARIOS["sigmoid"]], [3], [0, 1, 2]), synthetic, tmp_path, "/CPU:0")
    cell = train._cell[0]
    assert len(cell.runs) == 2 and len(cell.calls) == 1  # seeds 0 and 1 side by side, then seed 2 alone
    counts = [run.train_chunk.experimental_get_tracing_count() for run in cell.runs]
    assert counts == [1, 1] and [call.experimental_get_tracing_count() for call in cell.calls.values()] == [1]


def test_initial_weights_ignore_other_threads_drawing_from_pythons_random(synthetic):
    """A Dask worker's event loop draws from Python's global `random` while a run builds its model."""
    import random
    import threading

    spec = train.RunSpec(SCENARIOS["sigmoid"], 3, 1, SMOKE)
    alone = train.initial_weights(spec, synthetic)
    stop = threading.Event()

    def draw():
        while not stop.is_set():
            random.random()

    thread = threading.Thread(target=draw)
    thread.start()
    try:
        busy = [train.initial_weights(spec, synthetic) for _ in range(3)]
    finally:
        stop.set()
        thread.join()
    assert all(np.array_equal(a, b) for weights in busy for a, b in zip(alone, weights, strict=True))


def test_scenarios_that_differ_only_in_their_initialisation_share_graphs_and_get_their_own_numbers(synthetic):
    """sigmoid_large_init trains with the graphs sigmoid traced (its weights are set from its own draw), and
    gets the numbers it gets with graphs of its own."""
    large = train.RunSpec(SCENARIOS["sigmoid_large_init"], 3, 0, SMOKE)
    train._cell.clear()
    _, alone = train.train(large, synthetic)
    train._cell.clear()
    train.train(train.RunSpec(SCENARIOS["sigmoid"], 3, 0, SMOKE), synthetic)
    traced = train._cell[0].runs[0].train_chunk
    _, shared = train.train(large, synthetic)
    assert train._cell[0].runs[0].train_chunk is traced and traced.experimental_get_tracing_count() == 1
    for kind in alone:
        pd.testing.assert_frame_equal(shared[kind], alone[kind], check_exact=True)


def test_a_sweep_trains_the_cells_that_share_graphs_one_after_the_other():
    from bench import sweep

    quick = PROFILES["quick"]
    names = ["sigmoid", "linear", "relu_glorot", "relu_he", "sigmoid_large_init", "lstm", "lstm_forget_bias"]
    groups = sweep.side_by_side(sweep.grid(quick, [SCENARIOS[n] for n in names], [2, 50], [0, 1, 2]))
    order = [(g[0].scenario.name, g[0].depth, len(g)) for g in groups]
    assert order[:4] == [("sigmoid", 2, 2), ("sigmoid", 2, 1), ("sigmoid_large_init", 2, 2),
                         ("sigmoid_large_init", 2, 1)]
    assert order.index(("relu_he", 2, 2)) == order.index(("relu_glorot", 2, 1)) + 1
    assert order.index(("lstm_forget_bias", 50, 2)) == order.index(("lstm", 50, 1)) + 1
    assert sum(map(len, groups)) == 3 * 2 * len(names)
    units = [[(g[0].scenario.name, len(g)) for g in unit] for unit in sweep.graph_units(groups)]
    assert units[0] == [("sigmoid", 2), ("sigmoid", 1), ("sigmoid_large_init", 2), ("sigmoid_large_init", 1)]
    assert [("linear", 2), ("linear", 1)] in units  # linear_large_init is not in the grid
    assert sum(len(g) for unit in sweep.graph_units(groups) for g in unit) == 3 * 2 * len(names)
