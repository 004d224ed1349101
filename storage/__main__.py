"""Command line: `python -m storage migrate [--dsn DSN] [--wait SECONDS]`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

from storage.db import create_pool
from storage.migrate import migrate

DSN_ENV_VARS = ("STORAGE_POSTGRES_DSN", "BOT_POSTGRES_DSN")


def _default_dsn() -> str | None:
    return next((os.environ[name] for name in DSN_ENV_VARS if os.environ.get(name)), None)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m storage", description="ArtMatch storage tools")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("migrate", help="apply pending SQL migrations")
    run.add_argument(
        "--dsn",
        default=_default_dsn(),
        help="Postgres DSN (default: $STORAGE_POSTGRES_DSN, else $BOT_POSTGRES_DSN)",
    )
    run.add_argument(
        "--wait", type=float, default=30, help="seconds to wait for Postgres to come up (default 30)"
    )
    return parser


async def _migrate(dsn: str, wait_seconds: float) -> list[str]:
    pool = await create_pool(dsn, min_size=1, max_size=1, wait_seconds=wait_seconds)
    try:
        return await migrate(pool)
    finally:
        await pool.close()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if not args.dsn:
        print("no DSN: pass --dsn or set STORAGE_POSTGRES_DSN or BOT_POSTGRES_DSN", file=sys.stderr)
        return 2
    try:
        applied = asyncio.run(_migrate(args.dsn, args.wait))
    except Exception as exc:  # the DSN is not echoed: it may contain a password
        print(f"migration failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    if applied:
        for name in applied:
            print(f"applied {name}")
    else:
        print("database is up to date; nothing applied")
    return 0


if __name__ == "__main__":
    sys.exit(main())
