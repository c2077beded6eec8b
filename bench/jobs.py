"""`bench sweep --jobs N`: one sweep trained by N processes of this machine.

The first process is the command itself; it starts N - 1 more sweeps of the same grid into the same folder
(`python -m bench sweep` with the same options), which share the runs through the claims (bench/claims.py) as
sweeps started by hand do, claiming the cells that train with the same graphs together (sweep.graph_units). While
one process traces a cell's graphs (Python, one core) another trains: on 2 cores two processes store the quick
profile's runs in 362 s against 441 s for one. Each run's numbers are the ones it gets in a sweep of one process:
the thread pools per process are the same. The command waits for the others before it says what was trained and
builds its site.
"""

import subprocess
import sys
import tempfile
from dataclasses import dataclass, field

from bench import live
from bench.errors import UserError


def sweep_argv(args) -> list[str]:
    """The options of this sweep as another process takes them: the grid, data, folder and device; no site, no jobs."""
    argv = ["sweep", "--profile", args.profile, "--device", args.device, "--xla", args.xla,
            "--shard", "/".join(map(str, args.shard))]
    given = {"--results": args.results, "--dataset": args.dataset, "--data-dir": args.data_dir,
             "--epochs": args.epochs, "--control": args.control, "--scenarios": args.scenarios,
             "--depths": args.depths, "--seeds": args.seeds}
    for flag, value in given.items():
        if value is not None:
            argv += [flag, ",".join(map(str, value)) if isinstance(value, list) else str(value)]
    return argv + (["--verbose"] if args.verbose else [])


@dataclass
class Others:
    """The other processes of a --jobs sweep; their console output is kept aside (their progress lines would
    garble the command's), their summary lines go to its standard output."""

    processes: list[subprocess.Popen] = field(default_factory=list)
    logs: list = field(default_factory=list)

    def running(self) -> bool:
        return any(process.poll() is None for process in self.processes)

    def stop(self) -> None:
        """Stop those still training (a stopped sweep keeps what it stored and leaves no claim)."""
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            process.wait()
        for log in self.logs:
            log.close()

    def check(self) -> None:
        """After they ended: refuse to go on if one failed, with its last line."""
        for process, log in zip(self.processes, self.logs):
            if process.returncode:
                raise UserError(f"--jobs: a sweep process failed (exit {process.returncode}): {live.last_line(log)}; "
                                "the runs stored are kept, run the same command again to train the rest")


def start(args, count: int) -> Others:
    """Start `count` more sweeps of the options in args."""
    others = Others()
    for _ in range(count):
        log = tempfile.TemporaryFile()
        others.logs.append(log)
        others.processes.append(subprocess.Popen([sys.executable, "-m", "bench", *sweep_argv(args)],
                                                 stdout=None, stderr=log))
    return others
