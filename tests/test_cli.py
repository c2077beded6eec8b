"""Bad input: one line on stderr that says what is wrong and what is valid, exit code 2."""

import subprocess
import sys

import pytest

from bench.__main__ import main

BAD = [
    (["run", "--scenario", "nope", "--depth", "3"], "unknown scenario 'nope'; valid: sigmoid"),
    (["run", "--scenario", "sigmoid", "--depth", "0"], "between 1 and 256"),
    (["run", "--scenario", "sigmoid", "--depth", "100000"], "between 1 and 256"),
    (["run", "--scenario", "sigmoid", "--depth", "x"], "whole numbers"),
    (["run", "--scenario", "sigmoid", "--depth", "3", "--seed", "-1"], "between 0 and"),
    (["run", "--scenario", "sigmoid", "--depth", "3", "--dataset", "cifar"], "unknown dataset 'cifar'; valid: auto"),
    (["sweep", "--profile", "huge"], "unknown profile 'huge'; valid: smoke, quick, full"),
    (["sweep", "--shard", "5/4"], "--shard must be i/N"),
    (["sweep", "--shard", "a"], "--shard must be i/N"),
    (["sweep", "--scenarios", "sigmoid,bogus"], "unknown scenario 'bogus'"),
    (["run", "--scenario", "sigmoid", "--depth", "3", "--dataset", "mnist", "--data-dir", "/no/such/dir"],
     "/no/such/dir does not exist"),
    (["run", "--scenario", "sigmoid", "--depth", "3", "--device", "gpu"], "no GPU"),
    (["sweep", "--scenarios", ""], "--scenarios names none; valid: sigmoid"),
    (["sweep", "--scenarios", " , "], "--scenarios names none"),
    (["sweep", "--scenarios", "sigmoid,sigmoid"], "--scenarios repeats sigmoid"),
    (["sweep", "--epochs", "1,5"], "--epochs takes one number, got '1,5'"),
    (["sweep", "--seeds", "0,1,0"], "--seeds repeats 0"),
    (["sweep", "--depths", "3,3"], "--depths repeats 3"),
    (["run", "--scenario", "sigmoid", "--depth", "3", "--dataset", "digits", "--data-dir", "/no/such/dir"],
     "/no/such/dir does not exist"),
    (["run", "--scenario", "sigmoid", "--depth", "3", "--dataset", "synthetic", "--data-dir", "/no/such/dir"],
     "/no/such/dir does not exist"),
    (["sweep", "--workers", "2", "--scheduler", "tcp://127.0.0.1:8786"],
     "--scheduler: not allowed with argument --workers"),
    (["sweep", "--workers", "0"], "--workers must be between 1 and 256"),
    (["sweep", "--jobs", "0"], "--jobs must be between 1 and 64"),
    (["sweep", "--jobs", "2", "--workers", "2"], "--workers: not allowed with argument --jobs"),
    (["sweep", "--site-results", "results"], "--site-results: names what --site is built from; add --site DIR"),
    (["sweep", "--results", "r", "--site", "r/site"], "--site r/site: the site and the results it is built from (r)"),
    (["sweep", "--site", "results"], "--site results: the site and the results it is built from (results/quick)"),
    (["sweep", "--site-results", "out", "--site", "out/site"], "must be apart; choose a folder outside them"),
]


@pytest.mark.parametrize("argv, message", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_input_is_one_line_and_exit_2(argv, message, capsys):
    if "gpu" in argv:
        import tensorflow as tf
        assert not tf.config.list_physical_devices("GPU"), "this test expects a machine without a GPU"
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_corrupt_results_folder_is_refused(tmp_path, capsys):
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 garbage")
    assert main(["run", "--scenario", "sigmoid", "--depth", "2", "--profile", "smoke", "--results", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "broken.parquet: not a readable parquet file" in err and len(err.splitlines()) == 1


def test_list_prints_every_scenario_and_profile():
    out = subprocess.run([sys.executable, "-m", "bench", "list"], capture_output=True, text=True, check=True).stdout
    for name in ("sigmoid", "resnet", "linear_clipnorm", "linear_global_clipnorm", "smoke", "quick", "full"):
        assert name in out


def test_a_results_path_that_is_a_file_is_refused_before_training(tmp_path, capsys):
    (tmp_path / "results.txt").write_text("not a folder")
    argv = ["run", "--scenario", "sigmoid", "--depth", "2", "--profile", "smoke",
            "--results", str(tmp_path / "results.txt")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "results.txt: a file, not a folder" in err and len(err.splitlines()) == 1
    assert (tmp_path / "results.txt").read_text() == "not a folder"


def test_a_run_file_copied_under_a_second_name_is_refused(tmp_path, smoke_results, capsys):
    import shutil

    from bench import store

    first = store.run_files(smoke_results)[0]
    shutil.copyfile(first, tmp_path / first.name)
    shutil.copyfile(first, tmp_path / "copy.parquet")
    assert main(["sweep", "--profile", "smoke", "--scenarios", "sigmoid", "--results", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert f"copy.parquet, {first.name} hold the same run" in err and len(err.splitlines()) == 1
    with pytest.raises(store.StoreError, match="hold the same run"):
        store.load(tmp_path)
