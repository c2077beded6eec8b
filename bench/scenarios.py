"""The scenario catalogue and the run profiles, as plain frozen data.

A variant is its base scenario with the properties that differ overridden by
`dataclasses.replace`; nothing else about it is written twice.
"""

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Scenario:
    name: str
    summary: str
    architecture: str = "mlp"  # mlp | resmlp (residual Dense blocks) | resnet (the article's conv net) | rnn
    cell: str = ""  # rnn only: simple (SimpleRNN) | lstm | gru
    recurrent_gain: float = 1.0  # rnn only: the recurrent kernel is Orthogonal(gain), Keras's default at 1
    forget_bias: float = 1.0  # lstm only: initial forget-gate bias (Keras's unit_forget_bias gives 1)
    activation: str = "sigmoid"  # any Keras activation name
    initializer: str = "glorot_uniform"  # glorot_uniform | he_normal | normal (RandomNormal(init_std))
    init_std: float = 0.0  # only for initializer "normal"
    batch_norm: bool = False  # Dense -> BatchNormalization -> activation
    learning_rate: float = 1e-3  # Adam
    clipnorm: float | None = None  # Adam(clipnorm=): each gradient tensor clipped to this norm
    global_clipnorm: float | None = None  # Adam(global_clipnorm=): all gradients scaled together
    width: int = 256  # units of every hidden Dense layer
    default_depth: int = 11  # hidden Dense layers (MLPs), residual blocks (resnet) or sequence length T (rnn)
    expected: str = "healthy"  # the verdict the literature predicts: healthy | vanishing | exploding
    article: bool = False  # one of the article's four experiments


SIGMOID = Scenario(
    "sigmoid",
    "sigmoid MLP, Glorot uniform init: the article's vanishing-gradient network",
    expected="vanishing",
    article=True,
)
LINEAR = Scenario(
    "linear",
    "linear (identity) MLP, Glorot uniform init: the article's exploding-gradient network",
    activation="linear",
    default_depth=21,
    expected="exploding",
    article=True,
)
RELU_HE = replace(
    SIGMOID,
    name="relu_he",
    summary="ReLU with He normal init (the initialisation fix)",
    activation="relu",
    initializer="he_normal",
    expected="healthy",
    article=False,
)

# Recurrent networks: depth is the sequence length T of the recall task (bench/data.py), width the state size
RNN_TANH = Scenario(
    "rnn_tanh",
    "SimpleRNN (tanh), Keras's default inits (Glorot uniform input, orthogonal recurrent kernel)",
    architecture="rnn", cell="simple", activation="tanh", width=64, default_depth=50, expected="vanishing",
)
RNN_RELU_LARGE = replace(
    RNN_TANH, name="rnn_relu_large",
    summary="SimpleRNN (ReLU), recurrent kernel Orthogonal(gain 2): spectral radius 2, explodes",
    activation="relu", recurrent_gain=2.0, expected="exploding",
)
RECURRENT: tuple[Scenario, ...] = (
    RNN_TANH,
    replace(RNN_TANH, name="lstm", summary="LSTM of the same width, Keras's default inits (forget bias 1)",
            cell="lstm", expected="healthy"),
    replace(RNN_TANH, name="lstm_forget_bias",
            summary="LSTM with forget-gate bias 3 (f ≈ 0.95 at step 0): a gate that starts open",
            cell="lstm", forget_bias=3.0, expected="healthy"),
    replace(RNN_TANH, name="gru", summary="GRU of the same width, Keras's default inits", cell="gru",
            expected="healthy"),
    RNN_RELU_LARGE,
    replace(RNN_RELU_LARGE, name="rnn_relu_clipnorm",
            summary="as rnn_relu_large, with Adam(global_clipnorm=1.0): the clipping of Pascanu et al. 2013",
            global_clipnorm=1.0, expected="healthy"),
)

CATALOGUE: tuple[Scenario, ...] = (
    SIGMOID,
    Scenario(
        "resnet",
        "the article's conv ResNet: 7x7/2 stem, residual blocks conv-ReLU-BN x2 + skip, He init",
        architecture="resnet",
        activation="relu",
        initializer="he_normal",
        batch_norm=True,
        default_depth=6,
        article=True,
    ),
    LINEAR,
    replace(
        LINEAR,
        name="linear_clipnorm",
        summary="as linear, with Adam(clipnorm=1.0): the article's clipping fix",
        clipnorm=1.0,
        expected="healthy",
    ),
    replace(
        SIGMOID, name="tanh", summary="tanh MLP, Glorot uniform init", activation="tanh",
        expected="healthy", article=False,
    ),
    replace(
        RELU_HE, name="relu_glorot", summary="ReLU with Glorot uniform init",
        initializer="glorot_uniform",
    ),
    RELU_HE,
    replace(
        RELU_HE, name="relu_he_bn", summary="ReLU, He init, batch norm (Dense -> BN -> ReLU)",
        batch_norm=True,
    ),
    replace(
        RELU_HE, name="resmlp", summary="residual Dense blocks x + ReLU(BN(Dense(x))), He init",
        architecture="resmlp", batch_norm=True,
    ),
    replace(RELU_HE, name="leaky_relu", summary="leaky ReLU, He init", activation="leaky_relu"),
    replace(RELU_HE, name="elu", summary="ELU, He init", activation="elu"),
    replace(
        SIGMOID, name="sigmoid_large_init", summary="sigmoid MLP, RandomNormal(std 1.0) init",
        initializer="normal", init_std=1.0, article=False,
    ),
    replace(
        LINEAR, name="linear_large_init", summary="linear MLP, RandomNormal(std 1.0) init",
        initializer="normal", init_std=1.0, article=False,
    ),
    replace(
        LINEAR, name="linear_global_clipnorm",
        summary="as linear, with Adam(global_clipnorm=1.0): clipping of Pascanu et al. 2013",
        global_clipnorm=1.0, expected="healthy", article=False,
    ),
    replace(
        LINEAR, name="linear_high_lr", summary="as linear, with learning rate 1e-2",
        learning_rate=1e-2, article=False,
    ),
    *RECURRENT,
)
SCENARIOS: dict[str, Scenario] = {s.name: s for s in CATALOGUE}
NOT_CONFIG = ("name", "summary", "expected", "article")  # Scenario fields that do not change a run's numbers

# Control runs: a run again with a perturbation that changes nothing real, to measure how far
# training moves under a last-bit difference, the noise floor a version diff is held against.
CONTROLS = {
    "init_ulp": "every non-zero initial weight moved one float32 ulp, up or down by a seeded coin per weight",
}


@dataclass(frozen=True)
class Profile:
    name: str
    summary: str
    dataset: str  # default dataset; "auto" picks the first of mnist, fashion_mnist, digits
    epochs: int
    train_samples: int | None  # None: the whole training set
    test_samples: int | None
    seeds: tuple[int, ...]
    mlp_depths: tuple[int, ...]  # swept besides each scenario's default depth
    resnet_depths: tuple[int, ...]
    batch_size: int = 32
    log_every: int = 1  # record statistics every this many steps
    width: int | None = None  # overrides every scenario's width (smoke only)
    long_cells: tuple[str, ...] = ()  # scenarios that train long_steps at their default depth ...
    long_steps: int | None = None  # ... on the whole training set: a budget in steps, not epochs
    sequence_lengths: tuple[int, ...] = ()  # recurrent scenarios: swept besides the default length ...
    sequence_cells: tuple[str, ...] = ()  # ... by these scenarios only (empty: every recurrent one)
    sequence_steps: int | None = None  # recurrent budget in steps (None: epochs) ...
    sequence_samples: int = 2048  # ... on a generated recall set of this size

    def depths(self, scenario: Scenario) -> tuple[int, ...]:
        lengths = self.sequence_lengths if scenario.name in (self.sequence_cells or (scenario.name,)) else ()
        extra = {"resnet": self.resnet_depths, "rnn": lengths}.get(scenario.architecture, self.mlp_depths)
        return tuple(sorted({scenario.default_depth, *extra}))

    def budget(self, scenario: Scenario, depth: int) -> tuple[int | None, int | None]:
        """(optimizer steps or None for whole epochs, training samples or None for all) of one cell."""
        if scenario.architecture == "rnn":
            return self.sequence_steps, self.sequence_samples
        if scenario.name in self.long_cells and depth == scenario.default_depth:
            return self.long_steps, None
        return None, self.train_samples


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile(
            "smoke", "tests: generated data, narrow layers, seconds per run",
            dataset="synthetic", epochs=1, train_samples=256, test_samples=128,
            seeds=(0,), mlp_depths=(3,), resnet_depths=(1,), width=32, sequence_lengths=(6,),
            sequence_samples=256,
        ),
        # The article's linear net blows up after 3,300-4,900 steps of Fashion-MNIST at learning rate 1e-3
        # (seeds 0-2, TF 2.21 on a 2-core CPU): so its cell, and its clipped twin for comparison, train
        # 5,000 steps on the whole training set (3 minutes of the budget); every other cell 2 epochs of
        # 2,048 samples (128 steps), enough for the other phenomena, which show from the first steps.
        # Recurrent cells: 300 steps of the recall task at T = 50, and at T = 10 for the vanishing contrast
        # (the SimpleRNN solves 10, not 50; the LSTM with an open forget gate solves 50 on every seed):
        # 2 minutes on the same CPU. The exploding ReLU RNN and its clipped twin show at T = 50 alone.
        Profile(
            "quick", "default of nox -s report: every phenomenon visible in minutes on 2 CPU cores",
            dataset="auto", epochs=2, train_samples=2048, test_samples=2000,
            seeds=(0, 1, 2), mlp_depths=(2, 4, 8), resnet_depths=(), log_every=1,
            long_cells=("linear", "linear_clipnorm"), long_steps=5000,
            sequence_lengths=(10,), sequence_cells=("rnn_tanh", "lstm", "lstm_forget_bias", "gru"),
            sequence_steps=300, sequence_samples=9600,
        ),
        Profile(
            "full", "the article's settings: full training set, 10 epochs, batch 32, 5 seeds (GPU advised)",
            dataset="auto", epochs=10, train_samples=None, test_samples=None,
            seeds=(0, 1, 2, 3, 4), mlp_depths=(3, 6, 16), resnet_depths=(3,), log_every=10,
            sequence_lengths=(10, 25, 100, 200), sequence_steps=3000, sequence_samples=96000,
        ),
    )
}
