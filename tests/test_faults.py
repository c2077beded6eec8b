"""Fault injection: real processes killed, disks filled, files corrupted, arguments mangled.

Every user-caused failure must be one line on stderr, exit code 2 and no traceback; nothing finished may be
lost and nothing may be left behind. Processes are real `python -m bench` / `python -m report` runs; a full
disk is RLIMIT_FSIZE in the child (no root needed); a kill mid-write is a SIGKILL from inside the parquet
writer, after it wrote half a file.
"""

import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bench import benchmark, store
from bench.__main__ import main as bench_main
from report.__main__ import main as report_main
from tests.helpers import site_copy

ROOT = Path(__file__).resolve().parent.parent
SWEEP = ["sweep", "--profile", "smoke", "--scenarios", "sigmoid,linear", "--depths", "2", "--seeds", "0,1"]
RUNS = 4  # the runs of SWEEP (conftest.PAIR_GRID's: the pair_sweep fixture holds them)


def command(module: str, *argv: str) -> list[str]:
    return [sys.executable, "-m", module, *map(str, argv)]


def start(module: str, *argv: str, **kwargs) -> subprocess.Popen:
    """A command as a user starts it in a terminal: Ctrl-C (SIGINT) not ignored, even when these tests run in
    the background of a shell, whose children inherit an ignored SIGINT (Python then never raises
    KeyboardInterrupt)."""
    return subprocess.Popen(command(module, *argv), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL), **kwargs)


def assert_one_line_error(code: int, err: str, *expected: str) -> None:
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert all(text in lines[0] for text in expected), lines[0]


def litter(folder: Path) -> list[Path]:
    """Anything a sweep or build may leave besides its results: temporary files, partial and staging folders."""
    beside = [p for p in folder.parent.iterdir() if p.name.startswith(f".{folder.name}.")]
    inside = [p for p in folder.rglob("*") if p.name.startswith(".") and p.name != ".gradbench-site"]
    return beside + inside


def tables(folder: Path) -> dict[str, pd.DataFrame]:
    results = store.load(folder)
    return {kind: results.table(kind).sort_values(list(results.table(kind).columns)).reset_index(drop=True)
            for kind in store.KINDS}


@pytest.fixture(scope="module")
def uninterrupted(pair_sweep, tmp_path_factory) -> Path:
    """SWEEP's runs, trained by one uninterrupted sweep (conftest's, copied)."""
    folder = tmp_path_factory.mktemp("whole") / "results"
    shutil.copytree(pair_sweep, folder)
    return folder


@pytest.fixture(scope="module")
def uninterrupted_site(uninterrupted, tmp_path_factory) -> Path:
    """The site of uninterrupted, built once for the tests that need one a build made (they copy it)."""
    out = tmp_path_factory.mktemp("whole-site") / "site"
    assert report_main(["build", "--results", str(uninterrupted), "--out", str(out)]) == 0
    return out


# -- SIGKILL at many points, then resume ------------------------------------------------------------------

KILL_MID_WRITE = """
import os, signal, sys
import pyarrow.parquet as pq
def half_then_die(table, where, **kwargs):
    open(where, "wb").write(b"PAR1" + b"\\0" * 512)  # half a file on disk, then the power goes
    os.kill(os.getpid(), signal.SIGKILL)
pq.write_table = half_then_die
from bench.__main__ import main
sys.exit(main(sys.argv[1:]))
"""


def kill_when(process: subprocess.Popen, seen: str | None, delay: float = 0.0) -> None:
    """SIGKILL a sweep once a line starting with `seen` is on its stderr or stdout (None: after `delay`)."""
    if seen is not None:
        stream = process.stderr if seen.startswith("[") else process.stdout
        for line in stream:
            if line.startswith(seen):
                break
    time.sleep(delay)
    process.kill()
    process.wait()


def test_sigkill_at_many_points_then_resume_gives_the_uninterrupted_tables_and_no_litter(tmp_path, uninterrupted):
    folder = tmp_path / "results"
    argv = [*SWEEP, "--results", folder]
    kill_when(start("bench", *argv), None, delay=1.0)  # while TensorFlow loads
    kill_when(start("bench", *argv), "[")  # as the first group starts training
    kill_when(start("bench", *argv), "sigmoid ")  # right after the first run is written: the second is being
    mid_write = subprocess.run([sys.executable, "-c", KILL_MID_WRITE, *map(str, argv)], cwd=ROOT,
                               capture_output=True, text=True)
    assert mid_write.returncode == -signal.SIGKILL
    kill_when(start("bench", *argv), "[", delay=0.5)  # mid-training of a later group
    resumed = subprocess.run(command("bench", *argv), cwd=ROOT, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert all(re.match(r"dataset |\d+ runs on |\[|\d+ trained, ", line) for line in resumed.stderr.splitlines()), \
        resumed.stderr  # gradbench's lines only: no TensorFlow banners, warnings or download lines
    assert len(store.run_files(folder)) == RUNS and litter(folder) == []
    for kind, expected in tables(uninterrupted).items():
        pd.testing.assert_frame_equal(tables(folder)[kind], expected, check_exact=True, obj=kind)


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_an_interrupted_sweep_says_so_keeps_what_finished_and_leaves_nothing(tmp_path, how):
    folder = tmp_path / "results"
    process = start("bench", *SWEEP, "--results", folder)
    process.stdout.readline()  # the first run is stored: stop the sweep while it trains the next
    process.send_signal(how)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130 and "Traceback" not in err
    assert err.strip().splitlines()[-1] == ("bench: interrupted; finished runs are stored, run the same command "
                                            "again to resume")
    assert 1 <= len(store.run_files(folder)) < RUNS and litter(folder) == []


def test_an_interrupt_between_claiming_runs_and_holding_them_leaves_no_claim(tmp_path, monkeypatch):
    from bench import claims

    def interrupted(paths):  # Ctrl-C lands after the group's claims are taken, before they are held
        raise KeyboardInterrupt

    monkeypatch.setattr(claims, "kept", interrupted)
    folder = tmp_path / "results"
    assert bench_main([*SWEEP, "--results", str(folder)]) == 130
    assert litter(folder) == [] and store.run_files(folder) == []


def test_an_interrupt_as_a_claim_is_written_leaves_no_claim(tmp_path, monkeypatch):
    from bench import claims

    def interrupted(source, target):  # the stop lands once the claim's holder is written aside, before it is linked
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "link", interrupted)
    folder = tmp_path / "results"
    assert bench_main([*SWEEP, "--results", str(folder)]) == 130
    assert litter(folder) == [] and store.run_files(folder) == []
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    partial = store.partial_folder(folder)
    partial.mkdir()
    (partial / f"{socket.gethostname()}-{dead.pid}-1.claiming").write_text("what a SIGKILL there leaves")
    claims.remove_stale(folder)  # as the next sweep does first
    assert litter(folder) == []


def test_an_interrupt_while_the_sweep_writes_its_status_leaves_no_status(tmp_path, monkeypatch):
    replace, statuses = os.replace, []

    def interrupted(source, target):  # the stop lands between writing the second status and renaming it into place
        if Path(target).name.startswith("sweep-"):
            statuses.append(target)
            if len(statuses) == 2:
                raise KeyboardInterrupt
        return replace(source, target)

    monkeypatch.setattr(os, "replace", interrupted)
    folder = tmp_path / "results"
    assert bench_main([*SWEEP, "--results", str(folder)]) == 130
    assert litter(folder) == [] and 1 <= len(store.run_files(folder)) < RUNS


def test_a_sweep_of_two_jobs_splits_the_grid_and_trains_the_numbers_of_one_process(tmp_path, uninterrupted):
    folder = tmp_path / "results"  # two sweeps sharing a folder through the claims: the second started by the first
    argv = ["sweep", "--profile", "smoke", "--scenarios", "sigmoid,relu_he,linear", "--depths", "2,3",
            "--seeds", "0,1", "--jobs", "2", "--results", folder, "--site", tmp_path / "site"]
    out, err = start("bench", *argv).communicate(timeout=600)
    trained = [tuple(line.split()[:6]) for line in out.splitlines() if " depth " in line]  # not the site's path
    assert len(trained) == 12 and len(set(trained)) == 12, err  # each run trained once, by one of the two
    by_others = re.search(r"^12 trained \((\d+) of them by the other --jobs processes\), 0 already stored;", err, re.M)
    assert by_others and 1 <= int(by_others.group(1)) <= 11, err  # both trained a share
    assert len(store.run_files(folder)) == 12 and litter(folder) == []
    assert re.search(r"^site rebuilt \(\d+ of 12 runs done when it started\)", err, re.M), err  # the first process
    index = (tmp_path / "site" / "index.html").read_text()  # waited for a build as the others trained, then the last
    assert "12 runs" in index and "still training" not in index
    one = {path.name for path in store.run_files(uninterrupted)}  # SWEEP's runs, trained by one process
    for path in store.run_files(folder):
        if path.name not in one:
            path.unlink()
    assert len(store.run_files(folder)) == RUNS
    for kind, expected in tables(uninterrupted).items():
        pd.testing.assert_frame_equal(tables(folder)[kind], expected, check_exact=True, obj=kind)


# -- a full disk ------------------------------------------------------------------------------------------


def small_files(limit: int):
    """A child whose files cannot grow beyond `limit` bytes: writes fail as on a full disk (EFBIG). A sweep
    needs 10 kB: TensorFlow's autograph writes its generated code (up to 7 kB) to temporary files; a smoke run
    file is 17 kB."""
    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def test_a_full_disk_in_a_sweep_keeps_the_stored_runs_and_says_so(tmp_path, uninterrupted):
    folder = tmp_path / "results"
    shutil.copytree(uninterrupted, folder)
    before = {p.name: p.read_bytes() for p in store.run_files(folder)}
    done = subprocess.run(command("bench", *SWEEP[:-4], "--depths", "3", "--seeds", "0", "--results", folder),
                          cwd=ROOT, capture_output=True, text=True, preexec_fn=small_files(10_000))
    assert_one_line_error(done.returncode, done.stderr.splitlines()[-1] + "\n", "cannot write it",
                          "the runs already stored are kept")
    assert "Traceback" not in done.stderr
    assert {p.name: p.read_bytes() for p in store.run_files(folder)} == before and litter(folder) == []


def test_a_full_disk_in_a_build_leaves_the_previous_site_in_place(tmp_path, uninterrupted, uninterrupted_site):
    site = site_copy(uninterrupted_site, tmp_path / "site")
    before = {p: p.read_bytes() for p in site.rglob("*") if p.is_file()}
    subprocess.run([sys.executable, "-c", "import matplotlib.pyplot"], check=True)  # font cache written
    done = subprocess.run(command("report", "build", "--results", uninterrupted, "--out", site), cwd=ROOT,
                          capture_output=True, text=True, preexec_fn=small_files(4096))
    assert_one_line_error(done.returncode, done.stderr, f"{site}: cannot write the site",
                          "the previous site is unchanged")
    assert {p: p.read_bytes() for p in site.rglob("*") if p.is_file()} == before and litter(site) == []


# -- a build stopped: SIGKILL, Ctrl-C, SIGTERM --------------------------------------------------------------


def gone(pids: list[int], within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not any(store.process_alive(pid) and "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]
                   for pid in pids if Path(f"/proc/{pid}").exists()):
            return True
        time.sleep(0.2)
    return False


def wait_for_staging(site: Path, process: subprocess.Popen) -> None:
    staging = site.with_name(f".{site.name}.{process.pid}.building")
    while not (staging / "figures").exists():
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)


def test_a_killed_build_leaves_workers_that_exit_and_a_staging_folder_the_next_build_removes(tmp_path,
                                                                                              uninterrupted):
    site = tmp_path / "site"
    build = start("report", "build", "--results", uninterrupted, "--out", site)
    wait_for_staging(site, build)
    workers = benchmark.descendants(build.pid)
    build.kill()
    build.wait()
    assert gone(workers), "drawing workers outlived their build"
    assert litter(site) != []  # the dead build's staging folder
    assert report_main(["build", "--results", str(uninterrupted), "--out", str(site)]) == 0
    assert litter(site) == [] and (site / "index.html").is_file()


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_an_interrupted_build_stops_at_once_and_changes_nothing(tmp_path, uninterrupted, uninterrupted_site, how):
    site = site_copy(uninterrupted_site, tmp_path / "site")
    (site / "index.html").write_text("the site as published")
    shutil.rmtree(site / "figures")  # so that the rebuild draws for a while
    before = {p: p.read_bytes() for p in site.rglob("*") if p.is_file()}
    build = start("report", "build", "--results", uninterrupted, "--out", site)
    wait_for_staging(site, build)
    workers = benchmark.descendants(build.pid)
    sent = time.monotonic()
    build.send_signal(how)
    _, err = build.communicate(timeout=30)
    assert time.monotonic() - sent < 5.0
    assert build.returncode == 130 and err.strip().splitlines() == [
        "report: interrupted; nothing was changed, run the same command again"]
    assert gone(workers) and litter(site) == []
    assert {p: p.read_bytes() for p in site.rglob("*") if p.is_file()} == before


def test_folders_of_the_user_named_like_a_builds_survive_it_and_so_do_empty_folders(tmp_path, uninterrupted,
                                                                                     uninterrupted_site):
    site = site_copy(uninterrupted_site, tmp_path / "site")
    (site / "drafts").mkdir()
    shutil.copytree(site, tmp_path / ".site.2023.old")  # the user's copy of the site, under a dead build's name
    (tmp_path / ".site.2023.old" / "important.txt").write_text("mine")
    (tmp_path / ".site.2024.building").mkdir()
    (tmp_path / ".site.2024.building" / "important.txt").write_text("mine")
    assert report_main(["build", "--results", str(uninterrupted), "--out", str(site)]) == 0
    assert (tmp_path / ".site.2023.old" / "important.txt").read_text() == "mine"
    assert (tmp_path / ".site.2024.building" / "important.txt").read_text() == "mine"
    assert (site / "drafts").is_dir()


def test_a_site_given_as_a_link_is_updated_where_it_lies(tmp_path, uninterrupted, uninterrupted_site):
    real, link = site_copy(uninterrupted_site, tmp_path / "www" / "site"), tmp_path / "linksite"
    (real / "index.html").write_text("stale")
    link.symlink_to(real)
    assert report_main(["build", "--results", str(uninterrupted), "--out", str(link)]) == 0
    assert link.is_symlink() and (real / "index.html").read_text() != "stale"
    assert litter(real) == [] and [p.name for p in tmp_path.iterdir()] == ["www", "linksite"]


def test_a_diff_on_a_full_disk_is_one_line_and_leaves_no_truncated_page(tmp_path, uninterrupted):
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-c", "import matplotlib.pyplot"], check=True)  # font cache written
    done = subprocess.run(command("report", "diff", uninterrupted, uninterrupted, "--out", site), cwd=ROOT,
                          capture_output=True, text=True, preexec_fn=small_files(2048))
    assert_one_line_error(done.returncode, done.stderr, f"{site}: cannot write the diff pages")
    assert all(page.stat().st_size < 2048 and page.read_text().rstrip().endswith("</html>")
               for page in site.rglob("*.html")), "a truncated page"


def test_a_diff_into_the_results_folder_is_refused_as_a_build_is(tmp_path, uninterrupted, capsys):
    results = tmp_path / "results"
    shutil.copytree(uninterrupted, results)
    code = report_main(["diff", str(results), str(results), "--out", str(results / "site")])
    assert_one_line_error(code, capsys.readouterr().err, "must not be, hold or lie inside the results folder")
    assert not (results / "site").exists()


def test_a_stop_whose_interrupt_a_library_swallowed_still_leaves_the_previous_site(tmp_path, uninterrupted,
                                                                                    uninterrupted_site, monkeypatch):
    """A Ctrl-C whose KeyboardInterrupt lands in a library's `except:` (an import, a callback) is still a stop: the
    build checks for one before it replaces the site."""
    from bench import errors
    from report import site

    out = site_copy(uninterrupted_site, tmp_path / "site")
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    monkeypatch.setattr(errors, "STOPPED", [signal.SIGINT])
    with pytest.raises(KeyboardInterrupt):
        site.build(uninterrupted, out)
    assert report_main(["build", "--results", str(uninterrupted), "--out", str(out)]) == 130
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before and litter(out) == []


def test_a_stop_that_lands_where_python_cannot_raise_prints_no_traceback():
    """A signal that comes while Python runs a callback it cannot raise from (an import lock's weakref
    callback, a __del__) printed "Exception ignored in ..." and a traceback before the one line."""
    script = """if True:
        import os, signal
        from bench.errors import check_stopped, stop_on_signals
        stop_on_signals()
        class StoppedWhileCollected:
            def __del__(self):
                os.kill(os.getpid(), signal.SIGTERM)
        StoppedWhileCollected()
        try:
            check_stopped()
        except KeyboardInterrupt:
            print("stopped")
    """
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True)
    assert (done.returncode, done.stdout, done.stderr) == (0, "stopped\n", "")


def test_a_stop_caught_in_code_exec_ran_from_a_string_still_exits_130_under_python_m(tmp_path):
    """CI saw `python -m report` end by SIGINT (-2) after its one line, where a stop landed in a dataclass's exec'd
    methods while modules loaded."""
    (tmp_path / "stopped_in_exec.py").write_text("""if True:
        import sys
        from bench.errors import interrupted, stop_on_signals
        stop_on_signals()
        try:
            exec("import os, signal\\nos.kill(os.getpid(), signal.SIGTERM)\\nwaited = [0 for _ in range(1000)]")
        except KeyboardInterrupt:
            sys.exit(interrupted())
    """)
    done = subprocess.run([sys.executable, "-m", "stopped_in_exec"], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert (done.returncode, done.stderr) == (130, "")


def test_a_stop_while_signals_are_held_is_raised_when_they_are_let_go(monkeypatch):
    """What held_signals guards (the build's worker processes being started) runs to its end, then the stop."""
    from bench import errors

    monkeypatch.setattr(errors, "STOPPED", [])
    finished = []
    with pytest.raises(KeyboardInterrupt):
        with errors.held_signals():
            errors.stop(signal.SIGTERM, None)
            finished.append(True)
    assert finished == [True] and errors.STOPPED == [signal.SIGTERM] and errors.HELD == []
    with errors.held_signals():  # a stop that came before is not raised again
        pass


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_build_stopped_while_it_starts_says_so_in_one_line(tmp_path, uninterrupted, how):
    build = start("report", "build", "--results", uninterrupted, "--out", tmp_path / "site")
    time.sleep(0.3)  # python is up, the report modules (pandas, matplotlib) still load
    build.send_signal(how)
    _, err = build.communicate(timeout=30)
    assert build.returncode == 130 and err.strip().splitlines() == [
        "report: interrupted; nothing was changed, run the same command again"], err
    assert list(tmp_path.iterdir()) == []


# -- corrupt and foreign files ------------------------------------------------------------------------------


def with_metadata(table: pa.Table, value: bytes) -> pa.Table:
    return table.replace_schema_metadata({store.METADATA_KEY: value})


def real_run(source: Path) -> Path:
    return store.run_files(source)[0]


def corrupt_body(path: Path) -> bytes:
    """The file with its data pages overwritten and its footer (metadata) intact."""
    raw = bytearray(path.read_bytes())
    footer = int.from_bytes(raw[-8:-4], "little") + 8
    raw[4 : len(raw) - footer] = b"\xff" * (len(raw) - footer - 4)
    return bytes(raw)


def write_case(folder: Path, source: Path, case: str) -> str:
    """Put one corrupt or foreign file into a folder; returns the file name the error must name."""
    run = real_run(source)
    table = pq.read_table(run)
    meta = json.loads(table.schema.metadata[store.METADATA_KEY])
    name = "bad.parquet"
    target = folder / name
    if case == "garbage":
        target.write_bytes(b"PAR1 not parquet at all")
    elif case == "empty":
        target.write_bytes(b"")
    elif case == "truncated":
        target.write_bytes(run.read_bytes()[: run.stat().st_size // 2])
    elif case == "foreign parquet":
        pq.write_table(pa.table({"x": [1, 2, 3]}), target)
    elif case == "metadata not json":
        pq.write_table(with_metadata(table, b"{not json"), target)
    elif case == "metadata without run":
        pq.write_table(with_metadata(table, json.dumps({"schema_version": store.SCHEMA_VERSION}).encode()), target)
    elif case == "metadata a list":
        pq.write_table(with_metadata(table, b"[1, 2]"), target)
    elif case == "old schema":
        pq.write_table(with_metadata(table, json.dumps({**meta, "schema_version": 1}).encode()), target)
    elif case == "copied run":
        shutil.copyfile(run, folder / run.name)
        shutil.copyfile(run, target)
    elif case == "corrupt data pages":
        target.write_bytes(corrupt_body(run))
    elif case == "foreign columns":
        pq.write_table(with_metadata(pa.table({"x": [1.0]}), table.schema.metadata[store.METADATA_KEY]), target)
    elif case == "corrupt scan":
        (folder / store.SCAN_FOLDER).mkdir()
        name = f"{store.SCAN_FOLDER}/bad.parquet"
        (folder / name).write_bytes(b"PAR1 garbage")
    elif case == "one bit flipped":
        target.write_bytes(flipped(run.read_bytes(), len(store.body(run.read_bytes())) // 2))
    elif case == "depth not a number":
        unsealed = {k: v for k, v in meta.items() if k != store.CHECKSUM}
        pq.write_table(with_metadata(table, json.dumps({**unsealed, "run": {**meta["run"], "depth": "deep"}})
                                     .encode()), target)
    elif case == "no rows":
        unsealed = {k: v for k, v in meta.items() if k != store.CHECKSUM}
        pq.write_table(with_metadata(table.slice(0, 0), json.dumps(unsealed).encode()), target)
    elif case == "a folder named .parquet":
        target.mkdir()
    elif case == "a broken link":
        target.symlink_to(folder / "nowhere.parquet")
    elif case == "renamed run":
        shutil.copyfile(run, target)
    elif case == "rows of another scenario":  # the metadata of one run over the rows of another
        unsealed = {k: v for k, v in meta.items() if k != store.CHECKSUM}
        other = "relu_he" if meta["run"]["scenario"] != "relu_he" else "sigmoid"
        pq.write_table(with_metadata(table, json.dumps({**unsealed, "run": {**meta["run"], "scenario": other}})
                                     .encode()), target)
    return name


def flipped(raw: bytes, bit: int) -> bytes:
    """The bytes with one bit inverted, counted from the first data page (after the 4-byte magic)."""
    out = bytearray(raw)
    out[4 + bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


REFUSED_BY_SWEEP = ["garbage", "empty", "truncated", "foreign parquet", "metadata not json", "metadata without run",
                    "metadata a list", "old schema", "copied run", "corrupt data pages", "one bit flipped",
                    "depth not a number", "no rows", "a folder named .parquet", "a broken link", "renamed run",
                    "rows of another scenario"]
REFUSED_BY_BUILD = [*(c for c in REFUSED_BY_SWEEP if c != "renamed run"), "foreign columns", "corrupt scan"]


@pytest.mark.parametrize("case", REFUSED_BY_SWEEP)
def test_a_corrupt_or_foreign_file_stops_a_sweep_before_training(tmp_path, uninterrupted, case, capsys):
    name = write_case(tmp_path, uninterrupted, case)
    before = {p.name: p.read_bytes() for p in tmp_path.rglob("*.parquet") if p.is_file()}
    code = bench_main([*SWEEP, "--results", str(tmp_path)])
    assert_one_line_error(code, capsys.readouterr().err, name)
    after = {p.name: p.read_bytes() for p in tmp_path.rglob("*.parquet") if p.is_file()}
    assert after == before  # nothing trained, nothing lost


@pytest.mark.parametrize("case", REFUSED_BY_BUILD)
def test_a_corrupt_or_foreign_file_stops_a_build(tmp_path, uninterrupted, case, capsys):
    results = tmp_path / "results"
    shutil.copytree(uninterrupted, results)
    name = write_case(results, uninterrupted, case)
    code = report_main(["build", "--results", str(results), "--out", str(tmp_path / "site")])
    assert_one_line_error(code, capsys.readouterr().err, name)
    assert not (tmp_path / "site").exists()


def test_a_file_whose_data_is_corrupt_is_retrained_once_deleted(tmp_path, uninterrupted, capsys):
    shutil.copytree(uninterrupted, tmp_path / "results")
    victim = real_run(tmp_path / "results")
    victim.write_bytes(corrupt_body(victim))
    assert report_main(["build", "--results", str(tmp_path / "results"), "--out", str(tmp_path / "site")]) == 2
    assert "move it away and run the sweep again" in capsys.readouterr().err
    victim.unlink()
    assert bench_main([*SWEEP, "--results", str(tmp_path / "results")]) == 0
    pd.testing.assert_frame_equal(tables(tmp_path / "results")["layer"], tables(uninterrupted)["layer"])


def test_a_column_name_that_is_no_longer_utf8_is_refused_naming_it(tmp_path, uninterrupted):
    """A flipped high bit in a column's name in the parquet footer (found by the bit-flip test below, where the
    file's layout put a name under one of its bits)."""
    run = real_run(uninterrupted)
    raw = bytearray(run.read_bytes())
    footer = len(raw) - 8 - int.from_bytes(raw[-8:-4], "little")  # the footer's length precedes "PAR1"
    raw[raw.index(b"kernel_grad_norm", footer)] ^= 0x80  # its schema names the columns first
    victim = tmp_path / run.name
    victim.write_bytes(bytes(raw))
    with pytest.raises(store.StoreError, match=f"{victim}: not a readable parquet file"):
        store.read_metadata(victim)


def test_every_bit_flip_in_a_run_file_is_refused_naming_it_or_changes_no_number(tmp_path, uninterrupted):
    run = real_run(uninterrupted)
    raw, expected = run.read_bytes(), store.kind_tables([run])
    victim = tmp_path / run.name
    refused = 0
    for bit in range(0, (len(raw) - 8) * 8, (len(raw) - 8) * 8 // 97):  # data pages, footer and metadata alike
        victim.write_bytes(flipped(raw, bit))
        try:
            store.read_metadata(victim)
            read = store.kind_tables([victim])
        except store.StoreError as err:
            assert str(err).startswith(str(victim)) and "\n" not in str(err)
            refused += 1
            continue
        for kind, frame in expected.items():
            pd.testing.assert_frame_equal(read[kind], frame, check_exact=True, obj=f"bit {bit}: {kind}")
    assert refused > 60  # the rest hit footer bytes no reader uses (statistics, sizes)


def test_a_run_file_written_before_checksums_still_reads(tmp_path, uninterrupted):
    run = real_run(uninterrupted)
    table = pq.read_table(run)
    meta = json.loads(table.schema.metadata[store.METADATA_KEY])
    assert store.CHECKSUM in meta
    del meta[store.CHECKSUM]
    pq.write_table(with_metadata(table, json.dumps(meta).encode()), tmp_path / run.name)
    assert store.read_metadata(tmp_path / run.name) == meta["run"]
    pd.testing.assert_frame_equal(store.kind_tables([tmp_path / run.name])["layer"], store.kind_tables([run])["layer"])


def test_a_damaged_depth_scan_is_named_by_the_scan_that_would_skip_it(tmp_path):
    from bench import data, scan

    digits = data.load("digits")
    path, _ = scan.scan(digits, tmp_path, "/CPU:0", depths=(1, 2), seeds=(0,), names=["sigmoid"])
    path.write_bytes(flipped(path.read_bytes(), 40))
    with pytest.raises(store.StoreError, match="not match its checksum.*'python -m bench scan' again") as refused:
        scan.scan(digits, tmp_path, "/CPU:0", depths=(1, 2), seeds=(0,), names=["sigmoid"])
    assert str(refused.value).startswith(str(path))


@pytest.mark.parametrize("case", ["metadata of no scan", "foreign columns"])
def test_a_broken_scan_file_says_to_run_the_scan_again_not_the_sweep(tmp_path, uninterrupted, case, capsys):
    results = tmp_path / "results"
    shutil.copytree(uninterrupted, results)
    (results / store.SCAN_FOLDER).mkdir()
    bad = results / store.SCAN_FOLDER / "bad.parquet"
    record = {"schema_version": store.SCHEMA_VERSION, **({} if case == "metadata of no scan" else {"scan": {}})}
    pq.write_table(with_metadata(pa.table({"x": [1.0]}), json.dumps(record).encode()), bad)
    code = report_main(["build", "--results", str(results), "--out", str(tmp_path / "site")])
    err = capsys.readouterr().err
    assert_one_line_error(code, err, str(bad), "run 'python -m bench scan' again")
    assert "sweep" not in err


@pytest.mark.parametrize("statistics", [True, False])
def test_rows_of_another_run_than_the_metadata_names_are_refused_as_untrustworthy(tmp_path, uninterrupted,
                                                                                statistics):
    name = write_case(tmp_path, uninterrupted, "rows of another scenario")
    if not statistics:  # a footer without column statistics: the rows themselves are read
        table = pq.read_table(tmp_path / name)
        pq.write_table(table, tmp_path / name, write_statistics=False)
    with pytest.raises(store.StoreError, match="its rows are of scenario .*, its metadata names scenario") as err:
        store.read_metadata(tmp_path / name)
    assert str(err.value).startswith(str(tmp_path / name))


def test_a_sweeps_run_file_says_by_its_statistics_that_every_row_is_its_run(uninterrupted):
    """So a build checks its run keys without reading them (store.mislabelled)."""
    run = real_run(uninterrupted)
    file, info = pq.ParquetFile(run), store.read_metadata(run)
    assert all(store.all_rows_hold(file, key, info[key]) for key in store.RUN_KEYS)
    assert not store.all_rows_hold(file, "scenario", "another")


def test_a_sweep_of_another_profile_into_a_folder_names_the_profile_not_only_the_dataset(tmp_path, uninterrupted,
                                                                                        capsys):
    folder = tmp_path / "results"
    shutil.copytree(uninterrupted, folder)
    before = sorted(p.name for p in folder.iterdir())
    code = bench_main(["sweep", "--profile", "quick", "--dataset", "digits", "--scenarios", "sigmoid", "--depths", "2",
                       "--seeds", "0", "--results", str(folder)])
    assert_one_line_error(code, capsys.readouterr().err, "holds runs of the smoke profile on synthetic",
                          "these of the quick profile would train on digits", f"--results {folder}-quick",
                          "--profile smoke")
    assert sorted(p.name for p in folder.iterdir()) == before


def test_control_runs_into_a_controls_folder_of_another_dataset_are_refused(tmp_path, uninterrupted, capsys):
    folder = tmp_path / "results"
    shutil.copytree(uninterrupted, folder)
    controls = folder / store.CONTROLS_FOLDER
    controls.mkdir()
    run = real_run(uninterrupted)
    table = pq.read_table(run)
    meta = json.loads(table.schema.metadata[store.METADATA_KEY])
    unsealed = {k: v for k, v in meta.items() if k != store.CHECKSUM}
    pq.write_table(with_metadata(table, json.dumps({**unsealed, "run": {**meta["run"], "dataset": "digits"}})
                                 .encode()), controls / run.name)
    code = bench_main(["sweep", "--control", "init_ulp", "--results", str(folder)])
    err = capsys.readouterr().err  # the dataset's line, then the error
    assert_one_line_error(code, err.strip().splitlines()[-1], f"{controls}: holds runs on digits",
                          "these would train on synthetic")
    assert [p.name for p in controls.iterdir()] == [run.name]


def test_a_sweep_into_a_folder_of_another_datasets_runs_says_where_they_go_before_training(tmp_path, uninterrupted,
                                                                                           capsys):
    folder = tmp_path / "results"
    shutil.copytree(uninterrupted, folder)
    before = sorted(p.name for p in folder.iterdir())
    code = bench_main([*SWEEP, "--dataset", "digits", "--results", str(folder)])
    assert_one_line_error(code, capsys.readouterr().err, f"{folder}: holds runs on synthetic",
                          "these would train on digits", f"--results {folder}-digits", "--dataset synthetic")
    assert sorted(p.name for p in folder.iterdir()) == before


@pytest.mark.parametrize("argv", [["bench", *SWEEP, "--results", ""], ["report", "build", "--results", ""],
                                  ["report", "build", "--results", "r", "--out", " "]], ids=["sweep", "build", "out"])
def test_an_empty_folder_argument_is_refused(tmp_path, argv, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = (bench_main if argv[0] == "bench" else report_main)(argv[1:])
    assert_one_line_error(code, capsys.readouterr().err, "expected a folder, got ''")
    assert list(tmp_path.iterdir()) == []


BENCHMARK_INPUTS = {
    "missing": (None, "cannot read it"), "empty": (b"", "not JSON"), "not json": (b"{figures", "not JSON"),
    "a list": (b"[1, 2]", "not a benchmark report"), "{}": (b"{}", "not a benchmark report"),
    "a folder": ("folder", "cannot read it"), "binary": (bytes(range(256)), "not JSON"),
}


@pytest.mark.parametrize("case", BENCHMARK_INPUTS)
def test_a_benchmark_page_from_what_is_not_a_benchmark_report_is_one_line(tmp_path, case, capsys):
    content, expected = BENCHMARK_INPUTS[case]
    source = tmp_path / "benchmark.json"
    if content == "folder":
        source.mkdir()
    elif content is not None:
        source.write_bytes(content)
    code = report_main(["benchmark-page", str(source), "--out", str(tmp_path / "site")])
    assert_one_line_error(code, capsys.readouterr().err, str(source), expected, "python -m bench.benchmark")
    assert not (tmp_path / "site").exists()


def test_training_without_tensorflow_installed_says_what_to_install(tmp_path):
    absent = ("import sys; sys.modules['tensorflow'] = None  # as if not installed\n"
              "from bench.__main__ import main; sys.exit(main(sys.argv[1:]))")
    done = subprocess.run([sys.executable, "-c", absent, *SWEEP, "--results", str(tmp_path / "results")], cwd=ROOT,
                          capture_output=True, text=True)
    assert_one_line_error(done.returncode, done.stderr, "TensorFlow is not installed", "pip install 'gradbench[cpu]'")


@pytest.mark.parametrize("address", ["", "not an address", "tcp://", "tcp://host:port", "host:8786/x"])
def test_a_malformed_scheduler_address_is_one_line_before_any_connection(tmp_path, address, capsys, monkeypatch):
    code = bench_main([*SWEEP, "--results", str(tmp_path / "results"), "--scheduler", address])
    assert_one_line_error(code, capsys.readouterr().err, "expected a Dask scheduler address such as tcp://HOST:8786")
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", address or "::")
    assert bench_main([*SWEEP, "--results", str(tmp_path / "results")]) == 2
    assert not (tmp_path / "results").exists()


# -- corrupt datasets ---------------------------------------------------------------------------------------


def npz(path: Path, **override) -> None:
    rng = np.random.default_rng(0)
    arrays = {"x_train": rng.integers(0, 255, (64, 28, 28), dtype=np.uint8), "y_train": np.arange(64) % 10,
              "x_test": rng.integers(0, 255, (32, 28, 28), dtype=np.uint8), "y_test": np.arange(32) % 10}
    arrays.update(override)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})


DATA_CASES = {
    "npz garbage": (lambda d: (d / "mnist.npz").write_bytes(b"PK\x03\x04 not a zip"), "cannot read"),
    "npz truncated": (lambda d: (npz(d / "mnist.npz"), (d / "mnist.npz").write_bytes(
        (d / "mnist.npz").read_bytes()[:3000])), "cannot read"),
    "npz without y_test": (lambda d: npz(d / "mnist.npz", y_test=None), "cannot read"),
    "labels above 9": (lambda d: npz(d / "mnist.npz", y_train=np.full(64, 12)), "labels must be whole numbers 0-9"),
    "negative labels": (lambda d: npz(d / "mnist.npz", y_test=-np.ones(32, int)), "labels must be whole numbers 0-9"),
    "float labels": (lambda d: npz(d / "mnist.npz", y_train=np.full(64, 0.5)), "labels must be whole numbers 0-9"),
    "npz images all NaN": (lambda d: npz(d / "mnist.npz", x_train=np.full((64, 28, 28), np.nan, np.float32)),
                           f"{64 * 28 * 28} pixel values are NaN or infinite"),
    "npz of 0 samples": (lambda d: npz(d / "mnist.npz", x_train=np.zeros((0, 28, 28), np.uint8),
                                       y_train=np.zeros(0, np.uint8)), "holds no training samples"),
    "idx of 0 samples": (lambda d: [(d / f).write_bytes(b"\x00\x00\x08" + (b"\x03" if "images" in f else b"\x01")
                                                        + b"\x00" * 4 + (b"\x00\x00\x00\x1c" * 2 if "images" in f
                                                                          else b"")) for f in store_idx()],
                         "holds no training samples"),
    "idx bad magic": (lambda d: [(d / f).write_bytes(b"\x01\x02\x03\x04" * 4) for f in store_idx()], "bad magic"),
    "idx truncated": (lambda d: [(d / f).write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x09") for f in store_idx()],
                      "truncated or corrupt"),
}


def store_idx() -> tuple[str, ...]:
    from bench.data import IDX_FILES

    return IDX_FILES


@pytest.mark.parametrize("case", DATA_CASES)
def test_a_corrupt_dataset_is_one_line_naming_the_file(tmp_path, case, capsys):
    make, expected = DATA_CASES[case]
    (tmp_path / "data").mkdir()
    make(tmp_path / "data")
    code = bench_main(["run", "--scenario", "sigmoid", "--depth", "2", "--profile", "smoke", "--dataset", "mnist",
                       "--data-dir", str(tmp_path / "data"), "--results", str(tmp_path / "results")])
    err = capsys.readouterr().err
    assert_one_line_error(code, err, expected, str(tmp_path / "data"))
    assert store.run_files(tmp_path / "results") == []


# -- bad arguments to report ----------------------------------------------------------------------------------


def report_cases(tmp: Path, results: Path) -> dict[str, tuple[list[str], str]]:
    inside = results / "site"
    return {
        "--out the results": (["build", "--results", results, "--out", results], "must not be, hold or lie inside"),
        "--out inside the results": (["build", "--results", results, "--out", inside], "must not be, hold or lie"),
        "--out holding the results": (["build", "--results", results, "--out", results.parent], "must not be, hold"),
        "--out .": (["build", "--results", results, "--out", "."], "must not be the current folder"),
        "--out a file": (["build", "--results", results, "--out", tmp / "notes.txt"], "is not a gradbench site"),
        "--out a user's folder": (["build", "--results", results, "--out", tmp / "mine"], "is not a gradbench site"),
        "--results missing": (["build", "--results", tmp / "nowhere"], "no such results folder"),
        "diff of a missing folder": (["diff", results, tmp / "nowhere", "--out", tmp / "d"], "nowhere"),
        "unknown command": (["upload"], "invalid choice: 'upload'"),
    }


CASE_NAMES = list(report_cases(Path("/t"), Path("/t/r")))


@pytest.mark.parametrize("case", CASE_NAMES)
def test_bad_report_arguments_are_one_line(tmp_path, uninterrupted, case, capsys, monkeypatch):
    results = tmp_path / "box" / "results"
    shutil.copytree(uninterrupted, results)
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    (tmp_path / "here").mkdir()
    monkeypatch.chdir(tmp_path / "here")
    argv, expected = report_cases(tmp_path, results)[case]
    before = sorted(p for p in tmp_path.rglob("*"))
    code = report_main([str(a) for a in argv])
    assert_one_line_error(code, capsys.readouterr().err, expected)
    assert sorted(p for p in tmp_path.rglob("*")) == before  # nothing written, nothing removed
