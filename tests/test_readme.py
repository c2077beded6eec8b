"""The README's "Check your own model" example runs as written, and the report builds a page for the model."""

import os
import re
import subprocess
import sys

from tests.helpers import ROOT


def example() -> str:
    section = (ROOT / "README.md").read_text(encoding="utf-8").split("## Check your own model", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readme_example_records_a_model_and_the_report_shows_it(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    trained = subprocess.run([sys.executable, "-c", example()], cwd=tmp_path, env=env, capture_output=True, text=True,
                             timeout=600)
    assert trained.returncode == 0, trained.stderr[-2000:]
    assert len(list((tmp_path / "results" / "mine").glob("my_mlp-*.parquet"))) == 1
    built = subprocess.run([sys.executable, "-m", "report", "build", "--results", "results/mine", "--out", "site-mine"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr[-2000:]
    page = (tmp_path / "site-mine" / "scenarios" / "my_mlp.html").read_text(encoding="utf-8")
    assert "<h1>Scenario <code>my_mlp</code></h1>" in page and "vanishing" in page
