"""A non-editable install works: the wheel carries every package and the templates, and renders a site."""

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IGNORED = (".git", ".nox", ".venv", "build", "*.egg-info", "results", "site", "__pycache__", ".*_cache")


def test_a_wheel_installed_away_from_the_source_renders_a_site(smoke_results, tmp_path):
    uv = shutil.which("uv")
    assert uv, "uv is needed to build the wheel: pip install uv (the README's first step)"
    source = tmp_path / "source"  # a copy: no build/ left over from an earlier build is reused or left behind
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*IGNORED))
    built = subprocess.run([uv, "build", "--wheel", "--out-dir", str(tmp_path / "dist"), str(source)],
                           capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    wheel = next((tmp_path / "dist").glob("gradbench-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "report/templates/base.html.j2" in names and "report/templates/style.css" in names
    assert "report/figures/__init__.py" in names
    target = tmp_path / "installed"
    zipfile.ZipFile(wheel).extractall(target)  # what pip puts in site-packages, without the source tree
    code = ("import report.render as r, sys; assert str(r.TEMPLATES).startswith(sys.argv[1]), r.TEMPLATES; "
            "from report.__main__ import main; "
            "sys.exit(main(['build', '--results', sys.argv[2], '--out', sys.argv[3]]))")
    env = {**os.environ, "PYTHONPATH": str(target)}  # ahead of the editable install of the source tree
    done = subprocess.run([sys.executable, "-c", code, str(target), str(smoke_results), str(tmp_path / "site")],
                          cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "<h1>" in (tmp_path / "site" / "index.html").read_text()
    assert (tmp_path / "site" / "style.css").read_text() == (ROOT / "templates" / "style.css").read_text()


def test_every_nox_session_the_readme_names_exists():
    import json
    import re

    readme = (ROOT / "README.md").read_text()
    named = sorted(set(re.findall(r"nox -s ([\w.-]+)", readme)) | set(re.findall(r"`(bench-[\d.]+)`", readme)))
    nox = shutil.which("nox")
    assert nox, "nox is needed: pip install nox (the README's first step)"
    listed = subprocess.run([nox, "-l", "--json", "-s", *named], cwd=ROOT, capture_output=True, text=True)
    assert listed.returncode == 0 and listed.stdout.strip(), listed.stderr  # "Sessions not found: …" otherwise
    assert sorted(entry["session"] for entry in json.loads(listed.stdout)) == named
    assert {"report", "tests", "bench-2.15.1", "diff", "benchmark"} <= set(named)
