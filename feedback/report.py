"""`python -m feedback report`: the arena leaderboard printed from the live database, for people and for scripts.

It only reads: the session is opened with `default_transaction_read_only`, so even a bug here cannot write, and it
never migrates (a database without the ArtMatch tables is reported, not created).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import sys
from pathlib import Path

import asyncpg

from feedback.arena import Leaderboard, format_table, leaderboard_dict, leaderboard_png
from feedback.leaderboard import compute_leaderboard
from storage.db import create_pool, unit_of_work

DSN_ENV_VARS = ("FEEDBACK_POSTGRES_DSN", "BOT_POSTGRES_DSN")
FALLBACK_DSN = "postgresql://postgres@127.0.0.1:5432/artmatch"
EXIT_FAILED = 1
EXIT_UNREACHABLE = 2
CONNECT_TIMEOUT_S = 10.0


class DatabaseUnreachable(Exception):
    """Connecting failed (refused, timed out, bad credentials, no such database): nothing was read."""


def default_dsn() -> str:
    return next((os.environ[name] for name in DSN_ENV_VARS if os.environ.get(name)), FALLBACK_DSN)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dsn",
        default=default_dsn(),
        help="Postgres DSN (default: $FEEDBACK_POSTGRES_DSN, else $BOT_POSTGRES_DSN, else the local artmatch)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap replicates for the intervals")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap random seed (same seed, same intervals)")
    parser.add_argument("--chart", type=Path, metavar="PATH.png", help="also write the leaderboard chart here")


async def load(dsn: str, *, bootstrap: int, seed: int) -> Leaderboard:
    try:
        pool = await create_pool(
            dsn,
            min_size=1,
            max_size=1,
            wait_seconds=0,
            connect_timeout=CONNECT_TIMEOUT_S,
            server_settings={"default_transaction_read_only": "on"},
        )
    except Exception as exc:
        raise DatabaseUnreachable(f"{type(exc).__name__}: {exc}") from exc
    try:
        return await compute_leaderboard(functools.partial(unit_of_work, pool), bootstrap=bootstrap, seed=seed)
    finally:
        await pool.close()


def run(args: argparse.Namespace) -> int:
    """Print the board (a table or JSON) and optionally write the chart; the DSN is never echoed (passwords)."""
    if args.bootstrap < 0:
        print("--bootstrap must be >= 0", file=sys.stderr)
        return EXIT_FAILED
    try:
        board = asyncio.run(load(args.dsn, bootstrap=args.bootstrap, seed=args.seed))
    except DatabaseUnreachable as exc:
        print(f"cannot reach the database: {_one_line(str(exc))}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except asyncpg.UndefinedTableError:
        print("the database has no ArtMatch tables: run `python -m storage migrate` first", file=sys.stderr)
        return EXIT_FAILED
    except Exception as exc:
        print(f"report failed: {type(exc).__name__}: {_one_line(str(exc))}", file=sys.stderr)
        return EXIT_FAILED
    if args.json:
        print(json.dumps(leaderboard_dict(board), indent=2, ensure_ascii=False))
    else:
        print(format_table(board))
    if args.chart is not None:
        args.chart.write_bytes(leaderboard_png(board))
        print(f"chart written to {args.chart}", file=sys.stderr)  # stderr: stdout stays parseable JSON
    return 0


def _one_line(text: str) -> str:
    return " ".join(text.split()) or "no details"
