"""Sessions: tests, lint, bench, report, diff, publish, benchmark. `nox -l` lists them."""

import argparse
import shutil
from pathlib import Path

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_existing_virtualenvs = True  # TensorFlow is ~80 s to install: do it once per venv
nox.options.sessions = ["tests", "lint"]

DEFAULT_TF = "2.21.0"
RESULTS = "results"  # the root of result sets: results/<profile>/tf-<version>/
TF_VERSIONS = ["2.15.1", "2.18.1", DEFAULT_TF]  # Keras 2 line, one in between, the newest


def tensorflow(version: str) -> str:
    """The TensorFlow distribution for this machine: the GPU build when a GPU driver is present."""
    return f"tensorflow[and-cuda]=={version}" if shutil.which("nvidia-smi") else f"tensorflow-cpu=={version}"


def install(session: nox.Session, tf_version: str = DEFAULT_TF) -> None:
    # TF < 2.16 needs numpy < 2, which pyarrow >= 21 no longer supports
    old = ["pyarrow<21"] if tuple(map(int, tf_version.split(".")[:2])) < (2, 16) else []
    session.install(tensorflow(tf_version), *old, "-e", ".[test]")
    compile_bytecode(session)


def compile_bytecode(session: nox.Session) -> None:
    """Compile the venv's packages to bytecode where it is missing or stale (the first time ~30 s of CPU, then ~4 s
    to check). uv installs no .pyc files, and where PYTHONDONTWRITEBYTECODE is set (as in many containers) Python
    never writes them: then every process compiles TensorFlow's, pandas' and matplotlib's sources again, 6 s of
    CPU per `python -m bench`, twice the import's cost, in every command and in the tests' many subprocesses."""
    session.run("python", "-c", "import compileall, sysconfig; "
                "compileall.compile_dir(sysconfig.get_path('purelib'), quiet=2, workers=0)", silent=True)


@nox.session(python="3.11")
def tests(session: nox.Session) -> None:
    """Run the test suite (real tiny training on generated data; browser tests skip without chromium)."""
    install(session)
    session.run("pytest", *session.posargs)


OWN_MODEL_TESTS = ["tests/test_recorder.py", "tests/test_probe.py", "tests/test_own_models.py", "tests/test_readme.py"]


@nox.session(python="3.11", name=f"tests-{TF_VERSIONS[0]}")
def tests_keras_2(session: nox.Session) -> None:
    """The own-model tests (recorder, probe, Your models page, the README's example) under TensorFlow 2.15's Keras 2."""
    install(session, TF_VERSIONS[0])
    session.run("pytest", *(session.posargs or OWN_MODEL_TESTS))


@nox.session(python="3.11")
def lint(session: nox.Session) -> None:
    """ruff check of the whole tree."""
    session.install("ruff")
    session.run("ruff", "check", ".", *session.posargs)


def bench_session(tf: str):
    def bench(session: nox.Session) -> None:
        install(session, tf)
        session.run("python", "-m", "bench", "sweep", *(session.posargs or ["--profile", "quick"]))

    bench.__doc__ = f"Sweep a profile under TensorFlow {tf} into results/<profile>/tf-{tf}/: -- --profile full"
    return nox.session(python="3.11", name=f"bench-{tf}")(bench)


for _tf in TF_VERSIONS:  # named as the README calls them: nox -s bench-2.15.1
    globals()[f"bench_{_tf.replace('.', '_')}"] = bench_session(_tf)


DIFF_OPTIONS_WITH_VALUE = ("--out", "--fail-beyond-floor")


def folders_of(args: list[str]) -> list[str]:
    """The results folders among python -m report diff's arguments."""
    folders, skip = [], False
    for arg in args:
        if not skip and not arg.startswith("-"):
            folders.append(arg)
        skip = arg in DIFF_OPTIONS_WITH_VALUE
    return folders


@nox.session(python="3.11")
def diff(session: nox.Session) -> None:
    """Compare results folders in order against their noise floor into site/diff/: nox -s diff -- A B [C …] [options].

    Without folders: results/quick/tf-<v> of every bench matrix version swept, after site/ is built again from
    results/ (so it lists the sets compared). First, each folder named tf-<v> of the matrix gets its control runs
    where missing, trained under its own TensorFlow (nox -s bench-<v> -- --control)."""
    install(session)
    given = folders_of(session.posargs)
    folders = given or [f for tf in TF_VERSIONS if Path(f := f"{RESULTS}/quick/tf-{tf}").is_dir()]
    if len(folders) < 2:
        session.error("two or more results folders are needed: sweep them first, e.g. nox -s bench-2.15.1 "
                      "and nox -s bench-2.21.0, or name them: nox -s diff -- A B")
    for folder in folders:
        tf = Path(folder).name.removeprefix("tf-")
        if tf in TF_VERSIONS:
            session.run("nox", "-r", "-s", f"bench-{tf}", "--", "--results", folder, "--control", "init_ulp",
                        external=True)
        else:
            session.log(f"{folder}: not a bench matrix folder (tf-<version>); its control runs, if any, are used as "
                        "they are (python -m bench sweep --results FOLDER --control init_ulp trains them)")
    if not given and "--out" not in session.posargs:  # site/ lists every result set swept, beside their diff
        session.run("python", "-m", "report", "build", "--results", RESULTS, "--out", "site")
    session.run("python", "-m", "report", "diff", *(session.posargs if given else [*folders, *session.posargs]))


@nox.session(python="3.11")
def report(session: nox.Session) -> None:
    """Measure the quick profile's depth scan and sweep it where missing (resumes), building site/ from every result
    set in results/ as the runs are stored and once more at the end: a landing page and each set's report
    (unchanged sets reused). -- --out DIR: another site folder."""
    options = argparse.ArgumentParser(prog="nox -s report --")
    options.add_argument("--out", default="site", help="the site folder (default: site)")
    site = options.parse_args(session.posargs).out
    install(session)
    results = f"{RESULTS}/quick/tf-{DEFAULT_TF}"
    session.log(f"the report is written to {Path(site).resolve() / 'index.html'}: first once the depth scan and the "
                f"first runs are stored, then again as the sweep ({results}/, resumable) goes on, complete at the end")
    session.run("python", "-m", "bench", "scan", "--profile", "quick", "--results", results)
    jobs = "1" if shutil.which("nvidia-smi") else "2"  # two CPU processes: one trains while the other traces
    session.run("python", "-m", "bench", "sweep", "--profile", "quick", "--results", results, "--jobs", jobs,
                "--site", site, "--site-results", RESULTS)


@nox.session(python="3.11")
def publish(session: nox.Session) -> None:
    """Commit site/ to the gh-pages branch with ghp-import (no new commit when unchanged): -- --push to push it.

    Options after --: python -m report publish's ([SITE] --branch NAME --push --remote NAME --message TEXT). It needs
    no TensorFlow: the site is built (nox -s report, nox -s diff) before."""
    session.install("-e", ".")
    session.run("python", "-m", "report", "publish", *session.posargs)


@nox.session(python="3.11")
def benchmark(session: nox.Session) -> None:
    """Measure speed against model.fit, instrumentation cost, floor, render time, footprint and the recorder's cost:
    site/benchmark.html.

    It reports and never fails on a timing: nox -s benchmark -- --tiny for a quick look."""
    install(session)
    session.run("python", "-m", "bench.benchmark", *session.posargs)
