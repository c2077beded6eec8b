"""What a run is, from its statistics: its law (how ‖δ‖ changes per layer at step 0), its verdict (vanishing,
exploding, diverged or healthy, from whole-path magnitudes), its effect (whether it learns), and what the theory
or the literature expects of it."""

from collections.abc import Mapping

import numpy as np
import pandas as pd

from bench.data import CLASSES, RECALL_SYMBOLS
from bench.scenarios import SCENARIOS
from report.grading.rules import SEVERITY, threshold
from report.grading.text import fmt, step_text


def per_layer_factor(ratio: float, depth: float) -> float:
    """The ‖δ‖ factor per layer implied by a first/last ratio over depth − 1 layers; NaN at depth 1."""
    if depth is None or pd.isna(depth) or depth < 2 or not ratio > 0 or not np.isfinite(ratio):
        return np.nan
    return float(ratio ** (1.0 / (depth - 1)))


def law(factor: float) -> str | None:
    """How ‖δ‖ changes per layer (per time step) at step 0: a description of the network, not a verdict."""
    if not np.isfinite(factor):
        return None
    if factor < threshold("law_ordered"):
        return "ordered"
    return "amplifying" if factor > threshold("law_amplifying") else "critical"


def ratio_verdict(ratio: float) -> str | None:
    """vanishing / exploding by a whole-path ratio, None within the limits or unknown (0 is vanishing)."""
    if ratio < threshold("vanishing_ratio"):
        return "vanishing"
    if ratio > threshold("exploding_ratio"):
        return "exploding"
    return None


def init_verdict(ratio: float, diverged_step: float) -> str:
    """The verdict rules on the step-0 whole-path ratio alone; a first-layer ‖δ‖ beyond float32 is exploding."""
    if pd.isna(ratio) and diverged_step == 0:
        return "diverged"
    return ratio_verdict(ratio) or "healthy"


def diverged_reason(row: Mapping) -> str:
    step = row.get("diverged_step")
    step = row.get("first_nonfinite_step") if step is None or pd.isna(step) else step
    layer = row.get("diverged_layer")
    where = f" in layer {layer}" if isinstance(layer, str) and layer else ""
    loss = row.get("loss_at_stop", np.nan)
    if np.isfinite(loss):  # the loss was finite: a norm's float32 sum of squares overflowed (> 3.4e38)
        return (f"a gradient or ‖δ‖ norm overflowed float32 at step {step_text(step)}{where} while the loss, "
                f"{fmt(loss)}, was still finite; training stopped there")
    return f"non-finite values at step {step_text(step)}{where}; training stopped there"


def is_diverged(row: Mapping) -> bool:
    return row["status"] == "diverged" or not pd.isna(row.get("first_nonfinite_step", np.nan))


def verdict(row: Mapping) -> tuple[str, str]:
    """(verdict, why with the numbers) for one run's statistics, by RULES in order of precedence."""
    if is_diverged(row):
        return "diverged", diverged_reason(row)
    ratio, growth = row["path_ratio_median"], row["growth_applied"]
    ratio_text = f"whole-path ratio {fmt(ratio)} (median over training)"
    if growth > threshold("exploding_growth"):
        return "exploding", (
            f"largest applied global gradient norm {fmt(row['grad_norm_max'])} is {fmt(growth)}× its early median "
            f"(> {fmt(threshold('exploding_growth'))}×), first at step {step_text(row.get('growth_step'))}"
        )
    found = ratio_verdict(ratio)
    if found == "exploding":
        return "exploding", f"{ratio_text} > {fmt(threshold('exploding_ratio'))}"
    if found == "vanishing":
        return "vanishing", f"{ratio_text} < {fmt(threshold('vanishing_ratio'))}"
    return "healthy", (
        f"{ratio_text if not pd.isna(ratio) else 'no whole-path ratio (one hidden layer)'}, applied gradient-norm "
        f"growth {fmt(growth)}× (limits {fmt(threshold('vanishing_ratio'))}–{fmt(threshold('exploding_ratio'))} "
        f"and {fmt(threshold('exploding_growth'))}×)"
    )


def chance(run: Mapping) -> float:
    """Accuracy by guessing: the classes a run records (a user's model, bench/recorder.py), else the recall task's
    symbols for a recurrent net, else the datasets' 10 classes."""
    classes = pd.to_numeric(run.get("classes"), errors="coerce")
    if classes is not None and np.isfinite(classes) and classes >= 2:
        return 1 / float(classes)
    return 1 / (RECALL_SYMBOLS if run.get("architecture") == "rnn" else CLASSES)


def effect(row: Mapping) -> tuple[str, str]:
    """(effect, why with the numbers): whether the network learns, by EFFECTS in order of precedence."""
    if is_diverged(row):
        return "unstable", "diverged"
    guess, late = chance(row), row.get("loss_late")
    if late > threshold("loss_blowup") * -np.log(guess):
        return "unstable", f"late batch loss {fmt(late)}, guessing's {fmt(-np.log(guess))}"
    path = row.get("early_update_path")
    if path < threshold("frozen_update_path"):
        return "frozen", f"hidden layer 2 moved {fmt(path)} of what the last hidden layer moved"
    accuracy = row.get("final_test_accuracy")
    if accuracy < guess + threshold("stalled_over_chance") * (1 - guess):
        return "stalled", f"held-out accuracy {fmt(accuracy)}, chance {fmt(guess)}"
    moved = "" if pd.isna(path) else f"hidden layer 2 moved {fmt(path)} of the last hidden layer's path; "
    return "learns", f"{moved}held-out accuracy {fmt(accuracy)} (chance {fmt(guess)})"


def expectations(run: Mapping, predicted_ratio: float) -> tuple[str | None, str | None]:
    """(at step 0, in training): the verdict the theory predicts at this depth from its predicted ratio, where it
    applies; the one the literature states for training at the catalogue's own depth (a linear net starts at
    χ = 1 and explodes only while it trains, at depth 21 in the article)."""
    scenario = SCENARIOS.get(run.get("scenario"))
    at_init = None if pd.isna(predicted_ratio) else ratio_verdict(predicted_ratio) or "healthy"
    at_depth = scenario is not None and run.get("depth") == scenario.default_depth
    return at_init, scenario.expected if at_depth else None


def majority(words: pd.Series, order: tuple[str, ...] = SEVERITY) -> tuple[str, int]:
    """The most frequent word (verdict, effect) and its count; a tie goes to the one first in order (more severe)."""
    counts = words.value_counts()
    top = counts[counts == counts.max()].index
    winner = min(top, key=lambda v: order.index(v) if v in order else len(order))
    return winner, int(counts[winner])


def agrees(verdict: str, effect: str) -> bool:
    """Whether a verdict predicts its effect: healthy where the network learns, a pathology where it does not."""
    return (verdict == "healthy") == (effect == "learns")


def as_expected(found: str, expected: str | None) -> bool | None:
    """Whether the cell's verdict matches the literature's; divergence is the extreme of exploding."""
    if expected is None or (not isinstance(expected, str) and pd.isna(expected)):
        return None
    return found == expected or (expected == "exploding" and found == "diverged")
