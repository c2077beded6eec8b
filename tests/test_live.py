"""A sweep seen while it trains (bench/live.py): its status beside the folder, and the site rebuilt from it."""

import json
import math
import shutil
import socket
import subprocess
import sys

from bench import live, store
from bench.__main__ import main


def copy_of(tiny_results, tmp_path):
    """A results root holding a copy of the tiny sweep (without its control runs) as the set tf-a."""
    root = tmp_path / "results"
    shutil.copytree(tiny_results, root / "tf-a", ignore=shutil.ignore_patterns(store.CONTROLS_FOLDER))
    return root, root / "tf-a"


def test_a_site_built_while_a_sweep_trains_says_how_far_it_is_and_the_final_one_does_not(
        tiny_results, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(live, "REFRESH_EVERY", math.inf)  # a site's first build starts at once, no second one
    root, folder = copy_of(tiny_results, tmp_path)
    out = tmp_path / "site"
    live.report(folder, 3, 7, rebuilding=True)  # as a sweep of this process with --site does
    site = live.Site(root, out)
    site.refresh(3, 7)  # in the background
    assert site.build.wait(timeout=600) == 0
    site.refresh(4, 7)  # says how the last build ended; the next would start REFRESH_EVERY seconds after it
    assert f"site rebuilt (3 of 7 runs done when it started): {out.resolve() / 'index.html'}" in capsys.readouterr().err
    assert site.build is None
    page, landing = (out / "tf-a" / "index.html").read_text(), (out / "index.html").read_text()
    assert "A sweep is still training this set: 3 of 7 runs done at" in page
    assert "This report shows the runs stored then; it is rebuilt as the sweep goes on." in page
    assert "sweep running" in landing

    live.report(folder, 4, 7)  # without --site
    alone = live.Site(folder, tmp_path / "set-site")  # a site of the set's folder alone says it too
    alone.refresh(4, 7)
    assert alone.build.wait(timeout=600) == 0
    own = (alone.out / "index.html").read_text()
    assert "still training this set: 4 of 7 runs done at" in own
    assert "This report shows the runs stored then; build it again when the sweep ends." in own

    site.start(4)
    site.stop()  # a build stopped as the sweep ends leaves the site it would have replaced
    assert (out / "tf-a" / "index.html").read_text() == page

    live.ended(folder)
    assert not store.partial_folder(folder).exists() and live.sweeps(folder) == []
    grid = ["--profile", "smoke", "--scenarios", "sigmoid,relu_he_bn,linear", "--depths", "2", "--seeds", "0,1"]
    assert main(["sweep", *grid, "--results", str(folder), "--site", str(out), "--site-results", str(root)]) == 0
    assert "6 already stored" in capsys.readouterr().err  # nothing trained: the sweep's end builds the site
    assert "still training" not in (out / "tf-a" / "index.html").read_text()
    assert "sweep running" not in (out / "index.html").read_text()
    assert not store.partial_folder(folder).exists()


def test_the_status_of_a_sweep_that_died_is_not_shown(tmp_path):
    folder = tmp_path / "set"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    status = {"done": 1, "total": 9, "updated": "2026-01-01 00:00 UTC", "rebuilding": False}
    store.partial_folder(folder).mkdir(parents=True)
    (store.partial_folder(folder) / f"sweep-{socket.gethostname()}-{dead.pid}.json").write_text(json.dumps(status))
    (store.partial_folder(folder) / "sweep-other.json").write_text('{"done": "many"}')  # not one this code wrote
    assert live.sweeps(folder) == []
    live.report(folder, 2, 5)
    assert [(s.done, s.total) for s in live.sweeps(folder)] == [(2, 5)]
    live.remove_dead(folder)  # as a sweep does when it starts: a sweep killed outright leaves its status
    assert sorted(p.name for p in store.partial_folder(folder).iterdir()) == [live.status_path(folder).name]
