"""Layering is one-way: report imports bench, never the reverse."""

import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench"
IMPORT_REPORT = re.compile(r"^\s*(from\s+report\b|import\s+report\b)", re.MULTILINE)


def test_no_bench_source_imports_report():
    offenders = [path.name for path in sorted(BENCH.glob("*.py")) if IMPORT_REPORT.search(path.read_text())]
    assert offenders == []


def test_importing_every_bench_module_loads_no_report_module():
    modules = [f"bench.{path.stem}" for path in sorted(BENCH.glob("*.py")) if path.stem != "__init__"]
    code = (f"import importlib, sys\nfor m in {modules!r}: importlib.import_module(m)\n"
            "print(sorted(m for m in sys.modules if m == 'report' or m.startswith('report.')))")
    done = subprocess.run([sys.executable, "-c", code], cwd=BENCH.parent, capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"
