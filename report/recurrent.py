"""Recurrent networks over sequence length T: per-length tables, the bound, the claims.

A recurrent run's depth is its sequence length T, and grading.stats.signal treats its time steps as layers,
so its per-layer factor is the per-time-step factor of ‖∂L/∂h_t‖ and its verdict follows the same
rules as an MLP's. This module adds what only sequences have: whether the recall task was solved at
each T (against chance), the LSTM's forget gate, the Pascanu et al. (2013) bound, and the article's
three recurrent statements graded from the data.
"""

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from bench.data import RECALL_SYMBOLS
from bench.scenarios import RECURRENT, SCENARIOS
from report.grading.claims import Claim
from report.grading.rules import threshold
from report.grading.text import fmt, percent, range_text
from report.grading.values import finite, finite_median

NAMES = tuple(s.name for s in RECURRENT)
GATED = tuple(s.name for s in RECURRENT if s.cell in ("lstm", "gru"))
KERAS_DEFAULT_GATED = ("lstm", "gru")  # the cells as Keras builds them; lstm_forget_bias changes one init
CHANCE = 1 / RECALL_SYMBOLS
GAMMA = {"tanh": 1.0, "relu": 1.0}  # bounds on |φ′| of a SimpleRNN's activation
BOUND_RULE = (
    "Here γ is a bound on |φ′| (1 for tanh and ReLU) and σ_max the largest singular value (Pascanu et al. 2013). Every "
    "singular value of an Orthogonal(gain g) kernel is g, so the bound per time step is γ·g at initialisation. "
    "It is an upper bound: below 1 the temporal signal must vanish, above 1 it may explode. It does not apply "
    "to gated cells (LSTM, GRU), whose additive cell path escapes it."
)


def recurrent_runs(runs: pd.DataFrame) -> pd.DataFrame:
    return runs[runs["scenario"].isin(NAMES)] if len(runs) else runs


def bound_factor(scenario: str) -> float:
    """(γ · σ_max(W_hh)) per time step at initialisation; NaN where the bound does not apply."""
    s = SCENARIOS.get(scenario)
    if s is None or s.cell != "simple" or s.activation not in GAMMA:
        return np.nan
    return GAMMA[s.activation] * s.recurrent_gain


def is_solved(accuracy: float) -> bool:
    return bool(accuracy >= threshold("recall_solved"))


@dataclass(frozen=True)
class LengthRow:
    """One recurrent cell: a scenario at one sequence length, over its seeds."""

    scenario: str
    length: int
    seeds: int
    verdict: str
    factor_init: float  # per-time-step ‖δ‖ factor at step 0 (median over seeds)
    factor_training: float  # the same over training (median over logged steps, then seeds)
    bound: float  # (γ σ_max)^1 per step, NaN where it does not apply
    accuracy: float  # median final test accuracy
    accuracy_range: str
    solved: int  # seeds whose final accuracy reached recall_solved
    forget_init: float  # LSTM: mean forget gate at step 0, and at the last logged step
    forget_final: float
    href: str = ""  # the scenario's page


def length_rows(runs: pd.DataFrame, cells: pd.DataFrame) -> list[LengthRow]:
    """A row per recurrent cell, in catalogue order then length."""
    runs = recurrent_runs(runs)
    rows = []
    for cell in cells[cells["scenario"].isin(NAMES)].itertuples():
        group = runs[runs["cell_id"] == cell.cell_id]
        accuracy = group["final_test_accuracy"]
        rows.append(LengthRow(
            cell.scenario, int(cell.depth), len(group), cell.verdict_label, cell.factor_init,
            cell.per_layer_factor, bound_factor(cell.scenario), finite_median(accuracy),
            range_text(accuracy), sum(is_solved(a) for a in finite(accuracy)),
            cell.forget_init, cell.forget_final,
        ))  # fmt: skip
    return rows


def solved_lengths(rows: list[LengthRow], scenario: str) -> tuple[list[int], list[int]]:
    """(lengths a majority of seeds solved, lengths they did not) of one scenario."""
    mine = [r for r in rows if r.scenario == scenario]
    won = [r.length for r in mine if r.solved * 2 > r.seeds]
    return won, [r.length for r in mine if r.length not in won]


def stops_at(rows: list[LengthRow], scenario: str) -> str:
    """Where a scenario stops solving the task, in words."""
    won, lost = solved_lengths(rows, scenario)
    if not won and not lost:
        return "not trained"
    if not lost:
        return f"solves every length trained (up to T = {max(won)})"
    if not won:
        return f"solves none of the lengths trained (from T = {min(lost)})"
    if min(lost) > max(won):
        return f"solves T ≤ {max(won)}, stops by T = {min(lost)}"
    return f"solves T = {', '.join(map(str, won))}; not T = {', '.join(map(str, lost))}"


# -- the article's recurrent statements ------------------------------------------------------------

STATEMENTS = {
    "rnn_tanh": "RNNs struggle with long-term dependencies",
    "lstm": "gating (LSTM/GRU) mitigates it",
    "rnn_relu_clipnorm": "gradient clipping is used against exploding gradients in RNNs",
}


def factor_text(rows: list[LengthRow], scenario: str) -> str:
    mine = [r for r in rows if r.scenario == scenario]
    return ", ".join(f"T = {r.length}: {fmt(r.factor_init)}" for r in mine) or "n/a"


def accuracy_text(rows: list[LengthRow], scenario: str) -> str:
    mine = [r for r in rows if r.scenario == scenario]
    return ", ".join(f"T = {r.length}: {fmt(r.accuracy)} ({r.solved}/{r.seeds} solved)" for r in mine) or "n/a"


def check_struggle(rows: list[LengthRow]) -> tuple[bool | None, str, str]:
    won, lost = solved_lengths(rows, "rnn_tanh")
    if not won and not lost:
        return None, "no rnn_tanh runs", "nothing to check"
    mine = [r for r in rows if r.scenario == "rnn_tanh"]
    decays = all(r.factor_init < 1 for r in mine)
    reproduced = decays and bool(won) and bool(lost) and min(lost) > max(won)
    measured = (f"per-time-step ‖∂L/∂h_t‖ factor at step 0: {factor_text(rows, 'rnn_tanh')}; final test accuracy "
                f"{accuracy_text(rows, 'rnn_tanh')}; {stops_at(rows, 'rnn_tanh')}")
    evidence = (f"reproduced if the SimpleRNN's temporal signal decays at every length at step 0 (factor < 1) and "
                f"it solves the recall task (a majority of seeds at test accuracy ≥ "
                f"{fmt(threshold('recall_solved'))}; chance {fmt(CHANCE)}) at short lengths but not beyond some T")
    return reproduced, measured, evidence


def check_gating(rows: list[LengthRow]) -> tuple[bool | None, str, str]:
    simple_won, _ = solved_lengths(rows, "rnn_tanh")
    gated = {name: solved_lengths(rows, name) for name in GATED}
    if not any(w or lost for w, lost in gated.values()):
        return None, "no lstm or gru runs", "nothing to check"
    reach = {name: max(won, default=0) for name, (won, _) in gated.items()}
    simple = max(simple_won, default=0)
    reproduced = any(reach.get(name, 0) > simple for name in KERAS_DEFAULT_GATED)
    measured = "; ".join(
        f"{name}: {stops_at(rows, name)}, step-0 factor {factor_text(rows, name)}" for name in gated
    ) + f"; rnn_tanh: {stops_at(rows, 'rnn_tanh')}"
    evidence = ("reproduced if the LSTM or the GRU with Keras's default initialisation — the cells the statement "
                "names — solves the recall task at a longer T than the SimpleRNN of the same width on the same "
                "budget; the LSTM whose forget gate starts open (bias 3) is a variant, listed with the others' reach "
                "but not enough on its own")
    return reproduced, measured, evidence


def check_clipping(runs: pd.DataFrame) -> tuple[bool | None, str, str]:
    runs = recurrent_runs(runs)
    plain, clipped = (runs[runs["scenario"] == name] for name in ("rnn_relu_large", "rnn_relu_clipnorm"))
    if plain.empty or clipped.empty:
        return None, "rnn_relu_large or rnn_relu_clipnorm not trained", "nothing to check"
    pairs = plain.merge(clipped, on=["depth", "seed"], suffixes=("_plain", "_clipped"))
    exploded = [v in ("exploding", "diverged") for v in pairs["verdict_plain"]]
    better = [
        c != "diverged" and (p == "diverged" or lc <= lp)
        for p, c, lp, lc in zip(pairs["status_plain"], pairs["status_clipped"], pairs["final_test_loss_plain"],
                                pairs["final_test_loss_clipped"])
    ]
    ok = [e and b for e, b in zip(exploded, better)]
    reproduced = sum(ok) * 2 > len(ok)
    measured = (
        f"{sum(exploded)}/{len(pairs)} unclipped runs exploding or diverged; clipping fired on "
        f"{percent(finite_median(clipped['clip_fraction']))} of steps (median); final test loss unclipped "
        f"{fmt(finite_median(plain['final_test_loss']))} vs clipped {fmt(finite_median(clipped['final_test_loss']))}"
        f", held-out accuracy {fmt(finite_median(plain['final_test_accuracy']))} vs "
        f"{fmt(finite_median(clipped['final_test_accuracy']))} (medians); {sum(ok)}/{len(ok)} seed × length pairs "
        "meet the criterion"
    )
    evidence = ("reproduced if in a majority of (length, seed) pairs the unclipped ReLU RNN (spectral radius 2) "
                "is exploding or diverged, and the same run with global_clipnorm = 1 does not diverge and ends "
                "with a held-out loss no higher")
    return reproduced, measured, evidence


def claims(runs: pd.DataFrame, cells: pd.DataFrame) -> list[Claim]:
    rows = length_rows(runs, cells)
    found = [check_struggle(rows), check_gating(rows), check_clipping(runs)]
    return [Claim(name, f"{name}, T = {', '.join(str(r.length) for r in rows if r.scenario == name) or 'none'}",
                  STATEMENTS[name], measured, reproduced, evidence)
            for name, (reproduced, measured, evidence) in zip(STATEMENTS, found)]


# -- the page's section ----------------------------------------------------------------------------


@dataclass
class Section:
    """What the recurrent page shows beside the side-by-side comparison."""

    rows: list[LengthRow]
    reach: list[tuple[str, str]]  # scenario, where it stops solving the task
    claims: list[Claim]
    chance: float
    steps: int | None  # the training budget of these runs (median), and their training set size
    samples: int | None
    bound_rule: str = BOUND_RULE


def section(runs: pd.DataFrame, cells: pd.DataFrame, recorded: pd.DataFrame, href: Callable[[str], str]) -> Section:
    """runs, cells: run_table and cell_table; recorded: the runs' metadata (store's runs table)."""
    rows = [replace(r, href=href(r.scenario)) for r in length_rows(runs, cells)]
    steps = finite_median(recurrent_runs(runs)["steps_trained"]) if len(runs) else np.nan
    samples = finite_median(recurrent_runs(recorded)["train_samples"]) if "train_samples" in recorded else np.nan
    reach = [(name, stops_at(rows, name)) for name in NAMES if any(r.scenario == name for r in rows)]
    return Section(rows, reach, claims(runs, cells), CHANCE, None if np.isnan(steps) else int(steps),
                   None if np.isnan(samples) else int(samples))
