"""Command line: `python -m feedback report [--dsn DSN] [--json] [--bootstrap N] [--seed S] [--chart PATH.png]`."""

from __future__ import annotations

import argparse
import logging
import sys

from feedback import report


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m feedback", description="ArtMatch feedback tools")
    commands = parser.add_subparsers(dest="command", required=True)
    report.add_arguments(commands.add_parser("report", help="print the recommender arena leaderboard (read-only)"))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("storage.db").setLevel(logging.CRITICAL)  # the report says itself, in one line, why it failed
    return report.run(args)


if __name__ == "__main__":
    sys.exit(main())
