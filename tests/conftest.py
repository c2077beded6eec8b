"""Shared fixtures: the smoke profile, generated data, and small real results folders, each trained once a
session."""

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

from bench import data, train  # noqa: E402
from bench.scenarios import PROFILES  # noqa: E402

train.configure_threads()  # as python -m bench does, before TensorFlow starts its thread pools

SMOKE = PROFILES["smoke"]


@pytest.fixture(scope="session", autouse=True)
def summary_cache(tmp_path_factory):
    """Site builds keep their run summaries (report/summaries.py) in the session's folder, not the user's cache;
    the commands tests start inherit it."""
    os.environ["GRADBENCH_CACHE"] = str(tmp_path_factory.mktemp("summary-cache"))
    return Path(os.environ["GRADBENCH_CACHE"])


@pytest.fixture(scope="session")
def synthetic():
    return data.load("synthetic", train_samples=SMOKE.train_samples, test_samples=SMOKE.test_samples)


@pytest.fixture(scope="session")
def smoke_results(tmp_path_factory):
    """A real sweep: the article's four MLP scenarios at small depth, two seeds."""
    from bench.__main__ import main

    folder = tmp_path_factory.mktemp("results")
    code = main(["sweep", "--profile", "smoke", "--results", str(folder), "--scenarios",
                 "sigmoid,relu_he,linear,linear_clipnorm", "--depths", "4", "--seeds", "0,1"])
    assert code == 0
    return folder


PAIR_GRID = ["--profile", "smoke", "--scenarios", "sigmoid,linear", "--depths", "2", "--seeds", "0,1"]


@pytest.fixture(scope="session")
def pair_sweep(tmp_path_factory):
    """A real sweep: sigmoid and linear at depth 2, seeds 0 and 1. Read-only: the diff and floor tests copy it
    into a folder of their own (named for the TensorFlow version it stands for) before they add to it."""
    from bench.__main__ import main

    folder = tmp_path_factory.mktemp("pair") / "results"
    assert main(["sweep", *PAIR_GRID, "--results", str(folder)]) == 0
    return folder


@pytest.fixture(scope="session")
def recurrent_folder(tmp_path_factory):
    """A real sweep of recurrent nets at two sequence lengths, beside an MLP: read by the recurrent grading tests
    and by the figure tests, which draw every registered figure from it. Tests only read it."""
    from bench.__main__ import main

    folder = tmp_path_factory.mktemp("recurrent")
    code = main(["sweep", "--profile", "smoke", "--results", str(folder), "--scenarios",
                 "sigmoid,rnn_tanh,lstm,rnn_relu_large,rnn_relu_clipnorm", "--depths", "4,8", "--seeds", "0"])
    assert code == 0
    return folder
