"""The rule table: every threshold a verdict or a page's sentence reads, with its reason, and the rules in order."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Threshold:
    name: str
    value: float
    meaning: str


THRESHOLDS: dict[str, Threshold] = {
    t.name: t
    for t in (
        Threshold(
            "vanishing_ratio",
            1e-2,
            "a run whose whole-path ratio — the median over logged steps of ‖δ first hidden‖ / ‖δ last hidden‖ "
            "(over a sequence ‖∂L/∂h_1‖ / ‖∂L/∂h_T‖; scale-free under batch norm) — is below this is vanishing: "
            "its first layer gets less than a hundredth of the signal its last one gets. A magnitude over the "
            "whole path, not per layer: a factor 0.9 per time step over 50 steps is a 200× loss, while an offset "
            "of order 1 between first and last layer is not a pathology at any depth",
        ),
        Threshold(
            "exploding_ratio",
            1e2,
            "a run whose whole-path ratio is above this is exploding: its first layer gets a hundred times the "
            "signal its last one gets (the inverse of vanishing_ratio)",
        ),
        Threshold(
            "exploding_growth",
            1e3,
            "a run whose largest applied global gradient norm (after clipping: what reaches the weights) exceeds "
            "this many times its early median is exploding; the norm before clipping is reported beside it",
        ),
        Threshold(
            "early_steps",
            20,
            "the early (and, for losses, the late) window: the logged steps among a run's first (last) this "
            "many training steps, or each half of a run shorter than twice this; counted in steps, so every "
            "profile's logging stride gives the same window",
        ),
        Threshold(
            "frozen_update_path",
            0.1,
            "the effect: a run whose early layers moved less than this share of what its last hidden layer moved — "
            "the update path Σ‖ΔW_t‖/‖W_0‖ of hidden layer 2 over that of the last hidden layer — has frozen early "
            "layers (layer 2, not 1: the first layer's fan-in is the input's). Under Adam it stays near 1 until the "
            "gradient sinks under ε (sigmoid on digits: 1.3 at depth 4, 0.32 at 8, 0.006 at 11)",
        ),
        Threshold(
            "stalled_over_chance",
            0.1,
            "the effect: a final held-out accuracy less than this share of the way from chance to 1 has stalled "
            "(0.19 with 10 classes, 0.325 on the recall task's 4 symbols)",
        ),
        Threshold(
            "law_ordered",
            0.9,
            "the law: a per-layer (per time step) ‖δ‖ factor at step 0 below this is ordered — the signal shrinks "
            "geometrically towards the input",
        ),
        Threshold(
            "law_amplifying",
            1.1,
            "the law: a per-layer factor at step 0 above this is amplifying; between law_ordered and this, critical",
        ),
        Threshold(
            "stuck_accuracy",
            0.2,
            "a final test accuracy at or below this counts as stuck near chance "
            "(0.10 with 10 classes; the article reports 0.112)",
        ),
        Threshold(
            "plateau_drop",
            0.1,
            "a batch loss that falls by less than this fraction between the early "
            "and the late window has plateaued; one that falls by more has decreased",
        ),
        Threshold(
            "loss_blowup", 10.0, "a largest batch loss above this many times its early median has blown up (the "
            "article's linear claim); for the effect, a late batch loss this many times the loss of guessing"
        ),
        Threshold(
            "steady_windows",
            8,
            "'decreases steadily' cuts a run into this many equal spans of training steps and compares the "
            "median batch loss of each span with the one before",
        ),
        Threshold(
            "loss_rise_tolerance",
            0.05,
            "a span's median batch loss may exceed the previous span's by this fraction (noise) and still "
            "count as steady",
        ),
        Threshold(
            "loss_spike",
            10.0,
            "a logged batch loss above this many times the median of the spike_window steps before it is a "
            "spike, reported with its step",
        ),
        Threshold("spike_window", 100, "training steps before a batch whose median loss a spike is measured against"),
        Threshold(
            "blowup_epoch_low", 2, "'around epoch 3': the gradient norm first crosses exploding_growth in this epoch …"
        ),
        Threshold("blowup_epoch_high", 4, "… or later, up to and including this one (1-based, the run's own epochs)"),
        Threshold(
            "resnet_fast",
            0.9,
            "'fast convergence': held-out accuracy after the first epoch is at least this fraction of the final one",
        ),
        Threshold("resnet_accuracy_mnist", 0.9, "the article's final accuracy for its ResNet on MNIST (> 90 %)"),
        Threshold(
            "resnet_accuracy_fashion_mnist",
            0.85,
            "the same bar on Fashion-MNIST: its classes are harder to tell apart (an MLP reaches about 0.88, "
            "a small CNN 0.91), so the article's 'above 90 % on MNIST', ten times a good CNN's error, is about "
            "0.85 here",
        ),
        Threshold(
            "recall_solved",
            0.9,
            "a recurrent run solved the recall task when its final held-out accuracy reaches this (chance is "
            "0.25: four symbols)",
        ),
        Threshold(
            "significance_level",
            0.05,
            "a version diff's exact sign test calls a change significant below this p-value; with n seeds its smallest "
            "p-value is 2^(1−n), so fewer seeds than the smallest n with 2^(1−n) below this are never tested",
        ),
        Threshold(
            "resnet_accuracy_digits",
            0.9,
            "the same bar on scikit-learn's 8×8 digits, which even a linear model classifies at about 0.95",
        ),
    )
}




def threshold(name: str) -> float:
    return THRESHOLDS[name].value


RULES: tuple[tuple[str, str], ...] = (
    ("diverged", "the run produced a non-finite loss, gradient or weight and was stopped"),
    (
        "exploding",
        "whole-path ratio > exploding_ratio, or largest applied global gradient norm > exploding_growth × its "
        "median over the early window (the first early_steps training steps)",
    ),
    ("vanishing", "whole-path ratio < vanishing_ratio (a ratio that underflows to 0 counts)"),
    ("healthy", "none of the above"),
)
EFFECTS: tuple[tuple[str, str], ...] = (
    ("unstable", "the run diverged, or its late batch loss exceeds loss_blowup × the loss of guessing, ln(classes): "
                 "whatever its accuracy, its outputs have blown up"),
    ("frozen", "update path of hidden layer 2 / that of the last hidden layer < frozen_update_path"),
    ("stalled", "final held-out accuracy < chance + stalled_over_chance × (1 − chance): it has not learnt the task"),
    ("learns", "none of the above"),
)
VERDICT_INIT_RULE = (
    "the same limits on the step-0 ratio alone (vanishing, exploding or healthy): what the initialisation does "
    "before training, which is what the theory predicts"
)
SEVERITY = tuple(verdict for verdict, _ in RULES)  # most severe first
