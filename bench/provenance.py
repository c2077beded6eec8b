"""What is needed to know why two results differ: versions, device, determinism, commit."""

import ast
import hashlib
import platform
import socket
import subprocess
import sys
from datetime import datetime, timezone
from functools import cache
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from bench import statistics
from bench.closure import code_of, definitions_code
from bench.errors import UserError

GRADBENCH_VERSION = "0.1.0"
# the modules whose code decides a run's numbers: a run measured by other code is another run
MEASURING = ("adam", "data", "instrument", "models", "train")
BENCH = Path(__file__).resolve().parent


class DeviceError(UserError):
    """The requested device is not available here."""


def gpus() -> list:
    return tf.config.list_physical_devices("GPU")


def resolve_device(choice: str) -> str:
    """auto|cpu|gpu -> a TF device string; gpu without a GPU is an error."""
    if choice == "gpu" and not gpus():
        raise DeviceError("--device gpu: TensorFlow sees no GPU here; use --device cpu or auto")
    return "/GPU:0" if choice == "gpu" or (choice == "auto" and gpus()) else "/CPU:0"


def device_kind(device: str) -> str:
    """The kind a run's config records of a TF device string: gpu or cpu."""
    return "gpu" if device.startswith("/GPU") else "cpu"


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def device_name(device: str) -> str:
    if device.startswith("/GPU"):
        details = tf.config.experimental.get_device_details(gpus()[0])
        return details.get("device_name", "GPU")
    return cpu_model()


def git_commit() -> str:
    """HEAD of the gradbench checkout, '+dirty' when it has uncommitted changes."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head.stdout.strip() + ("+dirty" if dirty else "")


@cache
def versions() -> dict:
    """The versions that go into a run's identity (a new TF is a new run)."""
    return {"tf_version": tf.__version__, "keras_version": keras.__version__,
            "python_version": platform.python_version(), "numpy_version": np.__version__}


@cache
def measurement_code() -> str:
    """The version of the code every statistic shares — training and the train step: a hash of MEASURING's code
    (not its comments) and of the helpers of bench/measures.py that bench/instrument.py imports."""
    code = "".join(code_of((BENCH / f"{name}.py").read_text(encoding="utf-8")) for name in MEASURING)
    return short_hash(code + definitions_code(BENCH / "measures.py", shared_measures()))


def shared_measures() -> list[str]:
    """The names bench/instrument.py imports from bench/measures.py (the rest is called by statistic)."""
    tree = ast.parse((BENCH / "instrument.py").read_text(encoding="utf-8"))
    return [alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
            and node.module == "bench.measures" for alias in node.names]


@cache
def statistic_code() -> dict[str, str]:
    """Each train-step statistic's own version, "kind.name": hash: its function in bench/measures.py with the
    helpers it uses, and its dtype. A new statistic leaves the others' versions, and measurement_code, alone."""
    return {f"{s.kind}.{s.name}": short_hash(definitions_code(BENCH / "measures.py", [s.measure]) + str(s.dtype))
            for s in statistics.measured()}


def code() -> dict:
    """What a run records of the code that measured it; bench/store.py compares it before resuming the run."""
    return {"measurement_code": measurement_code(), "statistic_code": statistic_code()}


def short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def threads() -> dict:
    """TensorFlow's thread pool sizes (train.configure_threads); 0 is the default, one thread per core."""
    return {"intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
            "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads()}


def provenance(device: str) -> dict:
    return {
        **versions(),
        **threads(),
        "platform": platform.platform(),
        "host": socket.gethostname(),  # the machine that trained the run (a cluster worker's)
        "device": device_name(device),
        "device_kind": device_kind(device),
        "determinism": True,  # train.seed_everything enables TF op determinism for every run
        "git_commit": git_commit(),
        "gradbench_version": GRADBENCH_VERSION,
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(sys.argv),
    }
