"""A run's verdict from its statistics, and what the theory or the literature expects of it."""

from collections.abc import Mapping

import numpy as np
import pandas as pd

from bench.scenarios import SCENARIOS
from report.grading.rules import (
    EXPECTED_FROM_CATALOGUE,
    EXPECTED_FROM_THEORY,
    EXPECTED_UNMODELLED,
    SEVERITY,
    threshold,
)
from report.grading.text import fmt, step_text


def per_layer_factor(ratio: float, depth: float) -> float:
    """The ‖δ‖ factor per layer implied by a first/last ratio over depth − 1 layers; NaN at depth 1."""
    if depth is None or pd.isna(depth) or depth < 2 or not ratio > 0 or not np.isfinite(ratio):
        return np.nan
    return float(ratio ** (1.0 / (depth - 1)))


def factor_verdict(factor: float) -> str | None:
    """vanishing / exploding by the per-layer factor, None when it is within the limits (or unknown)."""
    if factor < threshold("vanishing_per_layer"):
        return "vanishing"
    if factor > threshold("exploding_per_layer"):
        return "exploding"
    return None


def init_verdict(ratio: float, layers: float, diverged_step: float) -> str:
    """The verdict rules on the step-0 ratio alone; a first-layer ‖δ‖ beyond float32 is exploding."""
    if ratio == np.inf:
        return "exploding"
    if pd.isna(ratio) and diverged_step == 0:
        return "diverged"
    return factor_verdict(per_layer_factor(ratio, layers)) or "healthy"


def verdict(row: Mapping) -> tuple[str, str]:
    """(verdict, why with the numbers) for one run's statistics, by RULES in order of precedence."""
    if row["status"] == "diverged" or not pd.isna(row.get("first_nonfinite_step", np.nan)):
        step = row.get("diverged_step")
        step = row.get("first_nonfinite_step") if step is None or pd.isna(step) else step
        layer = row.get("diverged_layer")
        where = f" in layer {layer}" if isinstance(layer, str) and layer else ""
        loss = row.get("loss_at_stop", np.nan)
        if np.isfinite(loss):  # the loss was finite: a norm's float32 sum of squares overflowed (> 3.4e38)
            return "diverged", (f"a gradient or ‖δ‖ norm overflowed float32 at step {step_text(step)}{where} while the "
                                f"loss, {fmt(loss)}, was still finite; training stopped there")
        return "diverged", f"non-finite values at step {step_text(step)}{where}; training stopped there"
    growth, factor = row["growth"], row["per_layer_factor"]
    factor_text = f"per-layer ‖δ‖ factor {fmt(factor)} (median first/last ratio {fmt(row['delta_ratio_median'])})"
    if growth > threshold("exploding_growth"):
        return "exploding", (
            f"largest global gradient norm {fmt(row['grad_norm_max'])} is {fmt(growth)}× its early median "
            f"{fmt(row['grad_norm_early'])} (> {fmt(threshold('exploding_growth'))}×), first at step "
            f"{step_text(row.get('growth_step'))}"
        )
    found = factor_verdict(factor)
    if found == "exploding":
        return "exploding", f"{factor_text} > {fmt(threshold('exploding_per_layer'))}"
    if found == "vanishing":
        return "vanishing", f"{factor_text} < {fmt(threshold('vanishing_per_layer'))}"
    return "healthy", (
        f"{factor_text if not pd.isna(factor) else 'no per-layer factor at depth 1'}, gradient-norm growth "
        f"{fmt(growth)}× (limits {fmt(threshold('vanishing_per_layer'))}–{fmt(threshold('exploding_per_layer'))} "
        f"and {fmt(threshold('exploding_growth'))}×)"
    )


def expectation(run: Mapping, predicted_factor: float) -> tuple[str | None, str | None]:
    """(expected verdict, where it comes from). The theory, where it applies, speaks of the initialisation
    at this very depth; the catalogue speaks of training at its own depth (a linear net starts at χ = 1
    and explodes only while it trains, at depth 21 in the article)."""
    scenario = SCENARIOS.get(run.get("scenario"))
    from_theory = factor_verdict(predicted_factor)
    if from_theory is not None:
        return from_theory, EXPECTED_FROM_THEORY
    if scenario is not None and scenario.expected == "exploding" and run.get("depth") == scenario.default_depth:
        return "exploding", EXPECTED_FROM_CATALOGUE
    if not pd.isna(predicted_factor):
        return "healthy", EXPECTED_FROM_THEORY
    return (scenario.expected, EXPECTED_UNMODELLED) if scenario is not None else (None, None)


def majority(verdicts: pd.Series) -> tuple[str, int]:
    """The most frequent verdict and its count; a tie goes to the more severe verdict."""
    counts = verdicts.value_counts()
    top = counts[counts == counts.max()].index
    winner = min(top, key=lambda v: SEVERITY.index(v) if v in SEVERITY else len(SEVERITY))
    return winner, int(counts[winner])


def as_expected(found: str, expected: str | None) -> bool | None:
    """Whether the cell's verdict matches the literature's; divergence is the extreme of exploding."""
    if expected is None or (not isinstance(expected, str) and pd.isna(expected)):
        return None
    return found == expected or (expected == "exploding" and found == "diverged")
