"""python -m report build --results DIR --out DIR: render the static site and print the path of index.html."""

import argparse
import sys
from pathlib import Path

from bench.store import StoreError
from report.site import SiteError, build

EXIT_USER_ERROR = 2


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
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = make_parser().parse_args(argv)
        print(build(args.results, args.out))
    except (StoreError, SiteError) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USER_ERROR
    return 0


if __name__ == "__main__":
    sys.exit(main())
