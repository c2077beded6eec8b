"""python -m report build --results DIR --out DIR: render the static site and print the path of index.html.

python -m report diff A B --out DIR: compare two result folders (e.g. two TensorFlow versions), print the
table and write DIR/diff/<A>__<B>.html; --fail-on-verdict-change exits 1 when a cell's verdict changes.

python -m report benchmark-page BENCHMARK_JSON --out DIR: render DIR/benchmark.html from python -m
bench.benchmark's JSON and print its path."""

import argparse
import signal
import sys
from pathlib import Path

from bench.errors import UserError
from report import benchmark_page, diff
from report.publish import SiteError, check_target
from report.site import build, write_diff

EXIT_USER_ERROR = 2
EXIT_VERDICT_CHANGED = 1
EXIT_INTERRUPTED = 130


class Parser(argparse.ArgumentParser):
    """argparse that reports a bad argument in one line (and exit code 2), without the usage block."""

    def error(self, message: str):
        raise SiteError(f"{self.prog}: {message}")


def make_parser() -> Parser:
    parser = Parser(prog="python -m report", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    build_cmd = commands.add_parser("build", help="render the site from a results folder")
    build_cmd.add_argument("--results", type=Path, required=True, help="folder of parquet run files")
    build_cmd.add_argument("--out", type=Path, default=Path("site"), help="site folder (default: site)")
    add_diff_command(commands)
    page_cmd = commands.add_parser("benchmark-page", help="render benchmark.html from a benchmark.json")
    page_cmd.add_argument("source", type=Path, help="benchmark.json written by python -m bench.benchmark")
    page_cmd.add_argument("--out", type=Path, default=Path("site"), help="site folder (default: site)")
    return parser


def add_diff_command(commands) -> None:
    cmd = commands.add_parser("diff", help="compare two results folders (e.g. two TensorFlow versions)")
    cmd.add_argument("a", type=Path, help="results folder A (the baseline)")
    cmd.add_argument("b", type=Path, help="results folder B")
    cmd.add_argument("--out", type=Path, default=Path("site"), help="site to add diff/ to (default: site)")
    cmd.add_argument("--fail-on-verdict-change", action="store_true",
                     help="exit 1 when a scenario × depth changes its majority verdict")


def diff_command(args) -> int:
    """Print the diff, write its page; 1 if asked to fail on a verdict change and one happened."""
    check_target(args.out)  # refuse a foreign --out before the work
    result = diff.compare(args.a, args.b)
    print(diff.terminal_text(result))
    print(write_diff(diff.diff_page(result), args.out))
    changes = result.verdict_changes()
    for change in changes:
        print(f"verdict changed: {change}", file=sys.stderr)
    return EXIT_VERDICT_CHANGED if changes and args.fail_on_verdict_change else 0


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # SIGTERM stops a build as Ctrl-C does
    try:
        args = make_parser().parse_args(argv)
        if args.command == "diff":
            return diff_command(args)
        if args.command == "benchmark-page":
            print(benchmark_page.write_page(args.source, args.out))
            return 0
        print(build(args.results, args.out))
    except (SiteError, UserError) as err:  # a StoreError or diff.DiffError is a UserError
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("\nreport: interrupted; nothing was changed, run the same command again", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0


if __name__ == "__main__":
    sys.exit(main())
