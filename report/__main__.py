"""python -m report build --results DIR --out DIR: render the static site and print the path of index.html. DIR a
folder of run files gives its report; a folder of such folders (results/, holding results/<profile>/tf-<version>/)
gives one site with a landing page listing every result set, each set's report under its path, unchanged sets
reused from the previous build.

python -m report diff A B [C ...] --out DIR: compare result folders in order (e.g. TensorFlow versions), each
against its control runs' noise floor; print the tables and write DIR/diff/<A>__<B>.html per consecutive pair
(and DIR/diff/<A>__<B>__<C>.html, the matrix, for three or more); --fail-on-verdict-change exits 1 when a
cell's verdict changes, --fail-beyond-floor K when a metric moves more than K times its floor.

python -m report benchmark-page BENCHMARK_JSON --out DIR: render DIR/benchmark.html from python -m
bench.benchmark's JSON and print its path.

python -m report serve [SITE] [--port N] [--base PATH]: preview a built site on 127.0.0.1 until Ctrl-C.

python -m report publish [SITE] [--branch gh-pages] [--push] [--remote NAME] [--message TEXT]: commit a built site
to a branch of the current repository with ghp-import (GitHub Pages), pushing it only with --push."""

import argparse
import sys
from pathlib import Path

# the rest loads in main(), where Ctrl-C and SIGTERM are caught
from bench.errors import UserError, folder_argument, held_signals, interrupted, stop_on_signals

EXIT_USER_ERROR = 2
EXIT_GATE = 1  # a diff's --fail-on-verdict-change or --fail-beyond-floor gate failed


class Parser(argparse.ArgumentParser):
    """argparse that reports a bad argument in one line (and exit code 2), without the usage block."""

    def error(self, message: str):
        raise UserError(f"{self.prog}: {message}")


def make_parser() -> Parser:
    parser = Parser(prog="python -m report", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    build_cmd = commands.add_parser("build", help="render the site from a results folder")
    build_cmd.add_argument("--results", type=folder_argument, required=True,
                           help="folder of parquet run files, or a root of such folders (e.g. results)")
    build_cmd.add_argument("--out", type=folder_argument, default=Path("site"), help="site folder (default: site)")
    add_diff_command(commands)
    page_cmd = commands.add_parser("benchmark-page", help="render benchmark.html from a benchmark.json")
    page_cmd.add_argument("source", type=Path, help="benchmark.json written by python -m bench.benchmark")
    page_cmd.add_argument("--out", type=folder_argument, default=Path("site"), help="site folder (default: site)")
    add_serve_command(commands)
    add_publish_command(commands)
    return parser


def add_diff_command(commands) -> None:
    cmd = commands.add_parser("diff", help="compare results folders in order (e.g. TensorFlow versions)")
    cmd.add_argument("folders", type=folder_argument, nargs="+", metavar="FOLDER",
                     help="results folders, the baseline first (two or more; three or more also make the matrix)")
    cmd.add_argument("--out", type=folder_argument, default=Path("site"), help="site to add diff/ to (default: site)")
    cmd.add_argument("--fail-on-verdict-change", action="store_true",
                     help="exit 1 when a scenario × depth changes its majority verdict")
    cmd.add_argument("--fail-beyond-floor", type=positive, metavar="K",
                     help="exit 1 when a cell's metric changes more than K times its noise floor (needs control runs)")


def add_serve_command(commands) -> None:
    cmd = commands.add_parser("serve", help="preview a built site on 127.0.0.1 until Ctrl-C")
    cmd.add_argument("site", type=folder_argument, nargs="?", default=Path("site"), help="site folder (default: site)")
    cmd.add_argument("--port", type=port, default=0, help="port (default: a free one)")
    cmd.add_argument("--base", default="/", help="serve under this path, as a project page /REPO/ (default: /)")


def add_publish_command(commands) -> None:
    from report import deploy

    cmd = commands.add_parser("publish", help="commit a built site to a gh-pages branch (ghp-import)")
    cmd.add_argument("site", type=folder_argument, nargs="?", default=Path("site"), help="site folder (default: site)")
    cmd.add_argument("--branch", default=deploy.DEFAULT_BRANCH,
                     help=f"the branch to commit to (default: {deploy.DEFAULT_BRANCH})")
    cmd.add_argument("--push", action="store_true", help="push the branch to the remote after committing")
    cmd.add_argument("--remote", help=f"the remote to push to (default: {deploy.DEFAULT_REMOTE})")
    cmd.add_argument("--message", default=deploy.DEFAULT_MESSAGE,
                     help=f"the commit message (default: {deploy.DEFAULT_MESSAGE})")


def port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number from 1 to 65535, got '{text}'")
    return int(text)


def positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a number above 0, got '{text}'")
    return value


def diff_command(args) -> int:
    """Print each consecutive diff (and the matrix), write their pages; 1 if a gate asked for fails."""
    from report import diff, floor, matrix
    from report.figures import versions
    from report.publish import SiteError, check_apart, check_target
    from report.site import worker_pool, write_diff, write_matrix

    if len(args.folders) < 2:
        raise SiteError("python -m report diff: give two or more results folders, the baseline first")
    check_target(args.out)  # refuse a foreign --out before the work
    for folder in args.folders:
        check_apart(folder, args.out)
    with worker_pool() as pool:  # summarises the run files not summarised yet, as a build does
        diffs = [floor.compare(a, b, pool.map) for a, b in zip(args.folders, args.folders[1:])]
    limit = args.fail_beyond_floor  # checked before any page is written: without controls it is an error
    beyond = [f"beyond {limit:g}× the floor: {line}" for d in diffs for line in floor.beyond(d, limit)] if limit else []
    pages = [diff.diff_page(d) for d in diffs]
    try:
        for d, page, sources in zip(diffs, pages, zip(args.folders, args.folders[1:])):
            print(diff.terminal_text(d))
            print(write_diff(page, args.out, versions.charts(d), sources=tuple(map(str, sources))))
        if len(diffs) > 1:
            page = matrix.matrix_page(diffs, pages)
            print(matrix.terminal_text(page))
            print(write_matrix(page, args.out, sources=tuple(map(str, args.folders))))
    except OSError as err:  # a read-only or full --out: each page is written whole or not at all
        raise SiteError(f"{args.out}: cannot write the diff pages ({err.strerror or err}); pages already there are "
                        "unchanged: free space or fix its permissions, or choose another --out") from None
    verdicts = [f"verdict changed: {change}" for d in diffs for change in d.verdict_changes()]
    for line in verdicts + beyond:
        print(line, file=sys.stderr)
    return EXIT_GATE if beyond or (verdicts and args.fail_on_verdict_change) else 0


def main(argv: list[str] | None = None) -> int:
    stop_on_signals()
    try:
        args = make_parser().parse_args(argv)
        with held_signals():  # a module cut in half by a stop can crash the interpreter as it exits
            from report import benchmark_page, deploy, serve
            from report.site import build
        if args.command == "diff":
            return diff_command(args)
        if args.command == "serve":
            return serve.serve(args.site, args.port, args.base)
        if args.command == "publish":
            return deploy.publish(args.site, args.branch, args.push, args.remote, args.message)
        if args.command == "benchmark-page":
            print(benchmark_page.write_page(args.source, args.out))
            return 0
        print(build(args.results, args.out, say=lambda line: print(line, file=sys.stderr)))
    except KeyboardInterrupt:  # also while the report modules load, in the first second
        print("\nreport: interrupted; nothing was changed, run the same command again", file=sys.stderr)
        return interrupted()
    except UserError as err:  # a SiteError, StoreError or diff.DiffError is a UserError
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USER_ERROR
    return 0


if __name__ == "__main__":
    sys.exit(main())
