"""Every statistic a run records, declared once.

A declaration names a statistic's kind (which rows of a run file hold it: step, layer, time or epoch), its
parquet dtype, what it means, and — when the report should show it generically — its table label, unit, how a
run summarises it and how a cell aggregates its runs. From the declarations follow the instrument's outputs
(bench/instrument.py computes each statistic of the train step with the function of its name in
bench/measures.py), the run files' columns (bench/store.py), the run and cell tables' columns
(report/grading/) and the pages' tables and per-layer figures.

Adding a statistic is a declaration here, its function in bench/measures.py and, if it needs one, a figure; runs
stored before it read it as missing, and a sweep resumes them (bench/provenance.statistic_code versions each
statistic by its own code).
"""

from dataclasses import dataclass

import pyarrow as pa

KINDS = ("step", "layer", "time", "epoch", "histogram")
# how a run summarises a layer statistic, at step 0 (_init) and at the last logged step (_final)
SUMMARIES = {
    "median": "median over the hidden layers",
    "last/first": "last hidden layer's over the first's",
}


@dataclass(frozen=True)
class Statistic:
    name: str  # the parquet column
    kind: str  # one of KINDS: the rows that hold it
    dtype: pa.DataType
    meaning: str  # one line, read by the parquet docs, table tooltips and the Methods page
    label: str = ""  # a short table heading; "" keeps it out of the generic tables and figures
    unit: str = ""
    summary: str | None = None  # a key of SUMMARIES: the run table's <name>_init and <name>_final
    aggregate: str = "median"  # over a cell's seeds (of the runs that recorded it)
    in_step: bool = True  # computed in the compiled train step (bench/measures.py), else by bench/train.py
    # it reads the forward pass's outputs: computed once the backward pass is done, not among its ops, which it slows
    after_backward: bool = False

    @property
    def summaries(self) -> tuple[str, str]:
        """The run table's columns of this statistic."""
        return (f"{self.name}_init", f"{self.name}_final") if self.summary else ()

    @property
    def measure(self) -> str:
        """Its function's name in bench/measures.py."""
        return f"{self.kind}_{self.name}"


F32 = pa.float32()
STATISTICS = (
    Statistic("loss", "step", F32, "batch cross-entropy before the update"),
    Statistic("batch_accuracy", "step", F32, "accuracy on the step's batch before the update"),
    Statistic("grad_norm", "step", F32, "global L2 norm over all trainable variables, before clipping"),
    Statistic("grad_norm_clipped", "step", F32, "the same after the optimizer's clipping"),
    Statistic("clipped", "step", pa.bool_(), "clipping changed the gradient"),
    Statistic("kernel_grad_norm", "layer", F32, "||dL/dW||"),
    Statistic("bias_grad_norm", "layer", F32, "||dL/db|| (null when the layer has no bias)"),
    Statistic("kernel_norm", "layer", F32, "||W|| before the update"),
    Statistic("update_ratio", "layer", F32, "||W_after - W_before|| / ||W_before||"),
    Statistic("delta_norm", "layer", F32, "||dL/dz||, z the layer's pre-activation output, over the batch"),
    Statistic("inactive_fraction", "layer", F32,
              "saturated (sigmoid/tanh) or dead (ReLU family) units; null if linear", after_backward=True),
    Statistic("recurrent_grad_norm", "layer", F32, "||dL/dW_hh|| of a recurrent layer (null for the others)"),
    Statistic("activation_rms", "layer", F32, "rms over batch and units of the layer's output after its "
              "nonlinearity (z where none follows): the forward signal", label="forward rms", summary="last/first",
              after_backward=True),
    Statistic("delta_norm", "time", F32,
              "||dL/dh_t|| over the batch: through every later step (the temporal δ)"),
    Statistic("forget_gate", "time", F32, "LSTM: mean forget gate f_t over batch and units (null for other cells)"),
    Statistic("train_loss", "epoch", F32, "mean of the epoch's batch losses", in_step=False),
    Statistic("train_accuracy", "epoch", F32, "mean of the epoch's batch accuracies", in_step=False),
    Statistic("test_loss", "epoch", F32, "on the held-out set after the epoch", in_step=False),
    Statistic("test_accuracy", "epoch", F32, "on the held-out set after the epoch", in_step=False),
)


def of_kind(kind: str) -> tuple[Statistic, ...]:
    return tuple(s for s in STATISTICS if s.kind == kind)


def measured() -> tuple[Statistic, ...]:
    """The statistics the train step computes, each by its function in bench/measures.py."""
    return tuple(s for s in STATISTICS if s.in_step)


def summarised() -> tuple[Statistic, ...]:
    """The statistics the run and cell tables summarise, and the pages show, generically."""
    return tuple(s for s in STATISTICS if s.summary)
