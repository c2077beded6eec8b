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
            "vanishing_per_layer",
            0.75,
            "a run whose per-layer factor of ‖δ‖ — (median over logged steps of the ratio of first- to "
            "last-hidden-layer ‖δ‖)^(1/(L−1)) — is below this is vanishing: each layer passes back less than "
            "three quarters of the signal it gets (at step 0, ReLU with Glorot init, at 0.71, is; tanh, at "
            "0.84–0.97, is not)",
        ),
        Threshold(
            "exploding_per_layer",
            1 / 0.75,
            "a run whose per-layer factor of ‖δ‖ is above this (the inverse of vanishing_per_layer) is "
            "exploding at that depth",
        ),
        Threshold(
            "exploding_growth",
            1e3,
            "a run whose largest global gradient norm exceeds this many times its early median is exploding",
        ),
        Threshold(
            "early_steps",
            20,
            "the early (and, for losses, the late) window: the logged steps among a run's first (last) this "
            "many training steps, or each half of a run shorter than twice this; counted in steps, so every "
            "profile's logging stride gives the same window",
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
            "loss_blowup", 10.0, "a largest batch loss above this many times its early median has blown up"
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
            "resnet_accuracy_digits",
            0.9,
            "the same bar on scikit-learn's 8×8 digits, which even a linear model classifies at about 0.95",
        ),
    )
}


EXPECTED_FROM_THEORY = "mean-field theory at this depth, for step 0"


EXPECTED_FROM_CATALOGUE = "the literature at the catalogue's depth, for training"


EXPECTED_UNMODELLED = "the catalogue, for a network the theory does not model"


def threshold(name: str) -> float:
    return THRESHOLDS[name].value


RULES: tuple[tuple[str, str], ...] = (
    ("diverged", "the run produced a non-finite loss, gradient or weight and was stopped"),
    (
        "exploding",
        (
            "largest global gradient norm > exploding_growth × its median over the early window (the first "
            "early_steps training steps), or per-layer ‖δ‖ factor > exploding_per_layer"
        ),
    ),
    (
        "vanishing",
        "per-layer ‖δ‖ factor < vanishing_per_layer: (median over logged steps of ‖δ first hidden‖ / "
        "‖δ last hidden‖)^(1/(L−1)), so depth 3 and depth 21 are graded alike (none at depth 1)",
    ),
    ("healthy", "none of the above"),
)


VERDICT_INIT_RULE = (
    "the same per-layer limits on the step-0 ratio alone (vanishing, exploding or healthy): what the "
    "initialisation does before training, which is what the theory predicts"
)


SEVERITY = tuple(verdict for verdict, _ in RULES)  # most severe first
