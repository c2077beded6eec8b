"""bench/provenance.py: what a run records of where it was measured, and the measurement code version that
decides whether a stored run may be resumed beside new ones."""

import importlib.util
import platform
import re
import shutil
from datetime import datetime
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from bench import closure, provenance

BENCH = Path(provenance.__file__).resolve().parent


def code_of_copy(bench: Path) -> dict:
    """code() of a copy of bench/ (provenance hashes the modules beside it)."""
    spec = importlib.util.spec_from_file_location(f"provenance_copy_{abs(hash(bench))}", bench / "provenance.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.code()


def measurement_code_of(bench: Path) -> str:
    return code_of_copy(bench)["measurement_code"]


@pytest.fixture
def bench_copy(tmp_path) -> Path:
    return Path(shutil.copytree(BENCH, tmp_path / "bench", ignore=shutil.ignore_patterns("__pycache__")))


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, (path, old)
    path.write_text(text.replace(old, new, 1))


def test_the_measurement_code_is_stable_and_the_same_for_a_copy_of_the_code(bench_copy):
    first = provenance.measurement_code()
    provenance.measurement_code.cache_clear()
    assert provenance.measurement_code() == first
    assert re.fullmatch("[0-9a-f]{12}", first)
    assert measurement_code_of(bench_copy) == first


@pytest.mark.parametrize("module", provenance.MEASURING)
def test_a_change_of_measuring_code_changes_the_measurement_code(bench_copy, module):
    path = bench_copy / f"{module}.py"
    path.write_text(path.read_text() + "\nCHANGED = 1\n")
    assert measurement_code_of(bench_copy) != provenance.measurement_code()


def test_comments_docstrings_and_other_modules_leave_the_measurement_code_alone(bench_copy):
    train = bench_copy / "train.py"
    edit(train, '"""', '"""Reworded. ')  # the module docstring
    train.write_text(train.read_text().replace("  # ", "  # reworded: ", 3) + "\n# a closing comment\n")
    assert train.read_text().count("# reworded: ") == 3
    (bench_copy / "console.py").write_text((bench_copy / "console.py").read_text() + "\nCHANGED = 1\n")
    assert measurement_code_of(bench_copy) == provenance.measurement_code()
    adam = bench_copy / "adam.py"
    adam.write_text(adam.read_text() + "\n\ndef unused():\n    pass\n")  # code, not words
    assert measurement_code_of(bench_copy) != provenance.measurement_code()


def changed_statistics(bench: Path) -> list[str]:
    theirs, ours = code_of_copy(bench)["statistic_code"], provenance.statistic_code()
    return sorted(name for name in theirs.keys() | ours.keys() if theirs.get(name) != ours.get(name))


def test_each_statistic_of_the_train_step_has_its_own_code_version():
    declared = {f"{s.kind}.{s.name}" for s in provenance.statistics.measured()}
    assert provenance.statistic_code().keys() == declared
    assert len(set(provenance.statistic_code().values())) == len(declared)


def test_a_new_statistic_leaves_the_shared_code_and_the_other_statistics_versions_alone(bench_copy):
    measures = bench_copy / "measures.py"
    measures.write_text(measures.read_text() + "\n\ndef rms(z):\n    return tf.sqrt(tf.reduce_mean(z * z))\n\n\n"
                        "def layer_new_statistic(seen):\n    return tf.stack([rms(z) for z in seen.zs])\n")
    assert measurement_code_of(bench_copy) == provenance.measurement_code()
    assert changed_statistics(bench_copy) == []  # it is not declared in this test: nothing measures it


def test_a_statistics_own_code_changes_its_version_alone_and_a_shared_helper_changes_the_measurement_code(bench_copy):
    measures = bench_copy / "measures.py"
    edit(measures, "return tf.norm(seen.grad_norms)", "return tf.norm(seen.grad_norms) * 1")
    assert changed_statistics(bench_copy) == ["step.grad_norm"]
    assert measurement_code_of(bench_copy) == provenance.measurement_code()
    edit(measures, "SATURATION = 0.01", "SATURATION = 0.02")  # a constant one statistic's helper reads
    assert changed_statistics(bench_copy) == ["layer.inactive_fraction", "step.grad_norm"]
    edit(measures, "return tf.sqrt(2 * tf.stack(", "return tf.sqrt(2.0 * tf.stack(")  # norms: instrument's too
    assert measurement_code_of(bench_copy) != provenance.measurement_code()


def test_code_of_keeps_code_and_drops_words():
    code = "def f(x):\n    '''doc'''\n    return x + 1  # note\n"
    assert closure.code_of(code) == closure.code_of("def f(x):\n    return x + 1\n")
    assert closure.code_of(code) != closure.code_of("def f(x):\n    return x + 2\n")
    assert closure.code_of(code) != closure.code_of("def f(x):\n    '''doc'''\n    return 'x + 1'\n")


def test_versions_are_the_running_libraries():
    assert provenance.versions() == {"tf_version": tf.__version__, "keras_version": keras.__version__,
                                     "python_version": platform.python_version(), "numpy_version": np.__version__}


def test_devices_resolve_to_tensorflow_s_names():
    assert provenance.resolve_device("cpu") == "/CPU:0"
    if provenance.gpus():
        assert provenance.resolve_device("gpu") == provenance.resolve_device("auto") == "/GPU:0"
    else:
        assert provenance.resolve_device("auto") == "/CPU:0"
        with pytest.raises(provenance.DeviceError, match="sees no GPU"):
            provenance.resolve_device("gpu")
    assert provenance.device_kind("/GPU:0") == "gpu" and provenance.device_kind("/CPU:0") == "cpu"


def test_a_run_s_provenance_names_versions_device_commit_and_time():
    record = provenance.provenance("/CPU:0")
    assert record.items() >= provenance.versions().items()
    assert record["device_kind"] == "cpu" and record["device"] == provenance.cpu_model() != ""
    assert record["determinism"] is True and record["gradbench_version"] == provenance.GRADBENCH_VERSION
    assert re.fullmatch(r"[0-9a-f]{40}(\+dirty)?|unknown", record["git_commit"])
    started = datetime.fromisoformat(record["started_at"])
    assert started.utcoffset().total_seconds() == 0
    assert {"intra_op_threads", "inter_op_threads", "host", "platform", "command"} <= record.keys()
