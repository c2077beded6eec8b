"""Shared fixtures: the smoke profile, generated data, small real results folders (each trained once a session)
and the site built from one.

`nox -s tests` runs the files in parallel, in pytest-xdist workers (one per core, at most 4; `-n 0` runs them in
this process). A session fixture's folder is made once for all workers (made_once), not once per worker.

Plain helpers that several test modules share are in tests/helpers.py; no test module imports another."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402
from filelock import FileLock  # noqa: E402

from bench import data, store, train  # noqa: E402
from bench.scenarios import PROFILES  # noqa: E402
from tests.helpers import (  # noqa: E402
    ROOT,
    SETS,
    SITE_FOLDER,
    SMOKE_SCENARIOS,
    SMOKE_SEEDS,
    closure_changed,
    run_cli,
    sets_root,
)

train.configure_threads()  # as python -m bench does, before TensorFlow starts its thread pools

SMOKE = PROFILES["smoke"]


def made_once(tmp_path_factory, name: str, make) -> Path:
    """The folder <name> under the session's temporary folder, made by make(folder) once a test session: under
    pytest-xdist the first worker to ask makes it in the folder all workers share, the others wait for it and read it.
    Tests only read such folders (those that add to one copy it first)."""
    root = tmp_path_factory.getbasetemp()
    root = root.parent if "PYTEST_XDIST_WORKER" in os.environ else root
    folder, made = root / name, root / f"{name}.made"
    with FileLock(f"{folder}.lock"):
        if not made.exists():
            make(folder)
            made.touch()
    return folder


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
def smoke_results(results, tmp_path_factory):
    """A folder of real runs and nothing else: the article's four MLP scenarios at depth 3, two seeds (results' runs
    of that depth, copied without its depth scan)."""
    def copy(folder):
        folder.mkdir(parents=True)
        for path in results.glob("*-d3-*.parquet"):
            shutil.copy2(path, folder / path.name)
        assert len(store.run_files(folder)) == 8

    return made_once(tmp_path_factory, "smoke-d3", lambda folder: copy(folder / "runs")) / "runs"


@pytest.fixture(scope="session")
def results(tmp_path_factory) -> Path:
    """The smoke sweep the site tests read: the article's four MLP scenarios at the smoke depths, seeds 0 and 1, with
    its depth scan; by the CLI in a process of its own, so that its runs record the command a user typed (a set's
    page offers it to train them again)."""
    def sweep(folder):
        seeds = ",".join(map(str, SMOKE_SEEDS))
        trained = ["sweep", "--profile", "smoke", "--results", str(folder), "--scenarios", SMOKE_SCENARIOS,
                   "--seeds", seeds]
        for argv in (trained, ["scan", "--profile", "smoke", "--results", str(folder)]):
            done = subprocess.run([sys.executable, "-m", "bench", *argv], cwd=ROOT, capture_output=True, text=True,
                                  timeout=1800)
            assert done.returncode == 0, f"bench {argv[0]} failed:\n{done.stderr[-3000:]}"

    return made_once(tmp_path_factory, "smoke-results", sweep)


@pytest.fixture(scope="session")
def built(results, tmp_path_factory) -> Path:
    """The site, built by the CLI as a user would."""
    def build(out):
        done = run_cli("build", "--results", str(results), "--out", str(out))
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == str(out / "index.html")

    return made_once(tmp_path_factory, SITE_FOLDER, build)


@pytest.fixture(scope="session")
def tiny_results(tmp_path_factory):
    """The smallest real sweep with every kind of cell a page distinguishes: sigmoid, relu_he_bn (batch norm) and
    linear at depth 2, seeds 0 and 1, with their control runs (seconds)."""
    from bench.__main__ import main

    grid = ["--profile", "smoke", "--scenarios", "sigmoid,relu_he_bn,linear", "--depths", "2", "--seeds", "0,1"]

    def sweep(folder):
        assert main(["sweep", *grid, "--results", str(folder)]) == 0
        assert main(["sweep", *grid, "--results", str(folder), "--control", "init_ulp"]) == 0

    return made_once(tmp_path_factory, "tiny", lambda folder: sweep(folder / "tf-a")) / "tf-a"


PAIR_GRID = ["--profile", "smoke", "--scenarios", "sigmoid,linear", "--depths", "2", "--seeds", "0,1"]


@pytest.fixture(scope="session")
def pair_sweep(tiny_results, tmp_path_factory):
    """A real sweep of PAIR_GRID: sigmoid and linear at depth 2, seeds 0 and 1, the same runs as tiny_results' of
    those cells (a run does not depend on the other cells of its sweep), copied from it. Read-only: the diff, floor
    and fault tests copy it into a folder of their own (named for the TensorFlow version it stands for) before they
    add to it."""

    def copy(folder):
        folder.mkdir(parents=True)
        for path in store.run_files(tiny_results):
            if path.parent == tiny_results and path.name.startswith(("sigmoid-d2-", "linear-d2-")):
                shutil.copy2(path, folder / path.name)
        assert len(store.run_files(folder)) == 4

    return made_once(tmp_path_factory, "pair", lambda folder: copy(folder / "results")) / "results"


@pytest.fixture(scope="session")
def sets_site(results, tmp_path_factory) -> Path:
    """A site of two result sets and their diff, built and compared by the CLI as a user would."""
    def build(out):
        root = sets_root(results, out.parent / "sets-root")
        done = run_cli("build", "--results", str(root), "--out", str(out))
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == str(out / "index.html")
        assert done.stderr.splitlines() == [f"{path}: rendered" for path in SETS]
        done = run_cli("diff", str(root / SETS[0]), str(root / SETS[1]), "--out", str(out))
        assert done.returncode == 0, done.stderr

    return made_once(tmp_path_factory, "sets-site", build)


@pytest.fixture(scope="session")
def recurrent_folder(tmp_path_factory):
    """A real sweep of recurrent nets at two sequence lengths, beside an MLP: read by the recurrent grading tests
    and by the figure tests, which draw every registered figure from it. Tests only read it."""
    from bench.__main__ import main

    def sweep(folder):
        assert main(["sweep", "--profile", "smoke", "--results", str(folder), "--scenarios",
                     "sigmoid,rnn_tanh,lstm,rnn_relu_large,rnn_relu_clipnorm", "--depths", "4,8", "--seeds", "0"]) == 0

    return made_once(tmp_path_factory, "recurrent", sweep)


@pytest.fixture
def tree(tmp_path, monkeypatch) -> Path:
    """A copy of the project's packages that a test may edit, read by bench.closure in place of the real ones."""
    from bench import closure

    for package in closure.PACKAGES:
        shutil.copytree(closure.ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(closure, "ROOT", tmp_path)
    closure_changed()
    yield tmp_path
    closure_changed()
