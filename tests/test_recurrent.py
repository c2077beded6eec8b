"""Recurrent networks: the recall task, the temporal δ against a numpy oracle, the LSTM's forget gate,
and how the report grades recurrent runs."""

import numpy as np
import pytest
import tensorflow as tf

from bench import data, instrument, store, train
from bench.scenarios import PROFILES, SCENARIOS
from report import recurrent
from report.grading.cells import cell_table
from report.grading.runs import run_table

SMOKE = PROFILES["smoke"]
LENGTH = 6


@pytest.fixture(scope="module")
def task():
    return data.recall(LENGTH, 64, 32)


def test_recall_task_is_deterministic_and_labels_the_first_symbol(task):
    again = data.recall(LENGTH, 64, 32)
    assert np.array_equal(task.x_train, again.x_train) and np.array_equal(task.y_test, again.y_test)
    assert task.x_train.shape == (64, LENGTH, data.RECALL_SYMBOLS + 1)
    assert np.array_equal(task.x_train[:, 0, : data.RECALL_SYMBOLS].argmax(1), task.y_train)
    assert (task.x_train[:, 0, -1] == 1).all() and (task.x_train[:, 1:, -1] == 0).all()
    assert not np.array_equal(data.recall(LENGTH + 1, 64, 32).y_train, task.y_train)  # each T its own draw


def one_step(name: str, task):
    spec = train.RunSpec(SCENARIOS[name], LENGTH, 0, SMOKE)
    run = train.compile_run(spec, task, jit_compile=False)
    run.reset(train.initial_weights(spec, task))
    weights = [w.astype(np.float64) for w in run.model.get_weights()]
    indices = np.arange(SMOKE.batch_size, dtype=np.int32)[None]
    stats = [t.numpy()[0] for t in run.train_chunk(tf.constant(indices))]
    return weights, stats, indices[0], run


def numpy_temporal_deltas(weights, x, y):
    """‖∂L/∂h_t‖ for t = 1..T, ‖∂L/∂W_hh‖, the loss and the hidden states of a tanh SimpleRNN + Dense, by hand."""
    wx, wh, b, wo, bo = weights
    h, hs = np.zeros((len(x), wh.shape[0])), []
    for t in range(x.shape[1]):
        h = np.tanh(x[:, t] @ wx + h @ wh + b)
        hs.append(h)
    logits = h @ wo + bo
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    loss = -np.mean(np.log(p[np.arange(len(y)), y]))
    g = ((p - np.eye(p.shape[1])[y]) / len(y)) @ wo.T  # ∂L/∂h_T
    norms, grad_wh = [], np.zeros_like(wh)
    for t in reversed(range(x.shape[1])):
        norms.insert(0, np.linalg.norm(g))
        da = g * (1 - hs[t] ** 2)
        grad_wh += (hs[t - 1] if t else np.zeros_like(hs[0])).T @ da
        g = da @ wh.T
    return np.array(norms), np.linalg.norm(grad_wh), loss, np.stack(hs, axis=1)


def test_temporal_delta_matches_numpy_backprop_through_time(task):
    weights, (steps, layers, times), batch, run = one_step("rnn_tanh", task)
    x, y = task.x_train[batch].astype(np.float64), task.y_train[batch]
    norms, grad_wh, loss, hs = numpy_temporal_deltas(weights, x, y)
    column = dict(zip(instrument.TIME_STATS, times.T))
    np.testing.assert_allclose(column["delta_norm"], norms, rtol=2e-4)
    assert np.isnan(column["forget_gate"]).all()  # a SimpleRNN has no gate
    layer = dict(zip(instrument.LAYER_STATS, layers.T))
    assert layer["recurrent_grad_norm"][0] == pytest.approx(grad_wh, rel=2e-4)
    assert np.isnan(layer["recurrent_grad_norm"][1])  # the output Dense has no recurrent kernel
    assert layer["delta_norm"][0] == pytest.approx(norms[-1], rel=2e-4)  # the recurrent layer's output: h_T
    assert layer["activation_rms"][0] == pytest.approx(np.sqrt(np.mean(hs**2)), rel=1e-4)  # over every h_t
    assert steps[0] == pytest.approx(loss, rel=1e-5)
    assert run.probe.roles == ["recurrent", "output"]


def test_the_lstm_records_its_forget_gate_and_a_larger_bias_opens_it(task):
    gates = {}
    for name in ("lstm", "lstm_forget_bias"):
        _, (_, _, times), _, _ = one_step(name, task)
        gate = times[:, instrument.TIME_STATS.index("forget_gate")]
        assert gate.shape == (LENGTH,) and np.isfinite(gate).all()
        gates[name] = gate.mean()
    # the gate is σ(bias + small terms) at initialisation: σ(1) = 0.73, σ(3) = 0.95
    assert abs(gates["lstm"] - 0.731) < 0.08 and abs(gates["lstm_forget_bias"] - 0.953) < 0.03


@pytest.fixture(scope="module")
def recurrent_results(recurrent_folder):
    return store.load(recurrent_folder)


def test_a_recurrent_run_is_graded_per_time_step(recurrent_results):
    runs = run_table(recurrent_results)
    runs = runs[runs["scenario"].isin(recurrent.NAMES)]
    time = recurrent_results.time
    for row in runs.itertuples():
        first = time[(time["run_id"] == row.run_id) & (time["step"] == 0)].sort_values("time_step")
        assert len(first) == row.depth and row.hidden_layers == row.depth  # t = 1..T are its "layers"
        ratio = first["delta_norm"].iloc[0] / first["delta_norm"].iloc[-1]
        assert row.delta_ratio_init == pytest.approx(ratio, rel=1e-6)
    amplifying = runs[runs["scenario"] == "rnn_relu_large"]
    assert (amplifying["law"] == "amplifying").all()  # spectral radius 2 at step 0
    # over 4 and 8 steps the product is still small: graded by the whole sequence, not by the per-step factor
    assert (amplifying["verdict_init"] == "healthy").all() and (amplifying["path_ratio_init"] < 1e2).all()


def test_recurrent_page_data_and_claims(recurrent_results):
    runs = run_table(recurrent_results)
    cells = cell_table(runs)
    rows = recurrent.length_rows(runs, cells)
    assert {(r.scenario, r.length) for r in rows} == {(s, t) for s in ("rnn_tanh", "lstm", "rnn_relu_large",
                                                                       "rnn_relu_clipnorm") for t in (4, 8)}
    lstm = [r for r in rows if r.scenario == "lstm"]
    assert all(0.5 < r.forget_init < 0.9 for r in lstm)
    assert all(np.isnan(r.forget_init) for r in rows if r.scenario != "lstm")
    assert {r.bound for r in rows if r.scenario == "rnn_relu_large"} == {2.0}
    claims = recurrent.claims(runs, cells)
    assert [c.claim for c in claims] == list(recurrent.STATEMENTS.values())
    assert claims[1].reproduced is None or "gru" in claims[1].measured  # no gru trained: said, not guessed
    assert all(c.evidence for c in claims)


def test_the_site_has_a_recurrent_page_with_its_figures_and_statements(recurrent_folder, tmp_path):
    from report import site

    index = site.build(recurrent_folder, tmp_path / "site", built_at="test")
    # an MLP on its dataset and recurrent nets on the recall task are shown together, nothing set aside
    assert "does not show" not in index.read_text() and "sigmoid" in (index.parent / "vanishing.html").read_text()
    page = (index.parent / "recurrent.html").read_text()
    for figure in ("recurrent-time-grid", "recurrent-length-ratio", "recurrent-length-accuracy",
                   "recurrent-gradnorm"):
        assert f"figures/recurrent/{figure}.svg" in page
        assert (index.parent / "figures" / "recurrent" / f"{figure}.svg").is_file()
    assert page.count("<tr><td><a href=") == 8  # a row per scenario × length
    assert "does not apply" in page  # the bound, for the LSTM
    article = (index.parent / "article.html").read_text()
    assert all(statement in article for statement in recurrent.STATEMENTS.values())
    assert "recurrent.html" in index.read_text()  # in the navigation
