"""The quiet console: native TensorFlow log lines are dropped, everything else reaches the terminal."""

import subprocess
import sys

NATIVE = [
    "W0000 00:00:1795860273.602080   19787 graph_view.cc:849] No registered '' OpKernel for CPU devices",
    "\t.  Registered:  <no registered kernels>",
    "E0000 00:00:1795860273.625341   19787 meta_optimizer.cc:966] remapper failed: NOT_FOUND",
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
]
KEPT = ["F0000 00:00:1795860273.7   19787 check.cc:1] Check failed: a fatal native line",
        "a native line of another kind"]
SCRIPT = f"""
import os, sys, time
from bench import console
console.configure({{verbose}})
console.import_tensorflow()
for line in {NATIVE + KEPT!r}:
    os.write(2, (line + "\\n").encode())
print("[##....] a progress line", file=sys.stderr)
time.sleep(0.5)  # the filter thread forwards what it kept
"""


def stderr_of(verbose: bool) -> str:
    done = subprocess.run([sys.executable, "-c", SCRIPT.format(verbose=verbose)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stderr


def test_native_notices_are_dropped_and_everything_else_kept():
    err = stderr_of(verbose=False)
    assert not any(line in err for line in NATIVE), err
    assert all(line in err for line in KEPT) and "[##....] a progress line" in err
    assert "oneDNN" not in err  # the import's own banners


def test_verbose_shows_native_notices():
    err = stderr_of(verbose=True)
    assert all(line in err for line in NATIVE + KEPT)
