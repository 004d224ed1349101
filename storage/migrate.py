"""Numbered SQL migrations (`migrations/NNNN_name.sql`): applied in order, each once, each in a transaction.

Every step holds a transaction-scoped advisory lock, so two processes starting together (two bot replicas, or
the bot and `python -m storage migrate`) apply each migration exactly once: the second waits, then sees it
recorded. The lock is keyed by the current schema, so migrations of different schemas (e.g. parallel test
runs) never wait for each other. A migration cannot use statements that refuse to run in a transaction
(e.g. CREATE INDEX CONCURRENTLY).
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from storage.db import Connection

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_LOCK_NAMESPACE = 0x41_72_74_4D  # "ArtM": first half of the two-part advisory lock key

_LOCK_SQL = "SELECT pg_advisory_xact_lock($1::integer, hashtext(current_schema()))"
_CREATE_TABLE_SQL = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer     PRIMARY KEY,
    name       text        NOT NULL,
    checksum   text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str  # e.g. "0001_init", what `migrate` reports
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """All migration files, ordered by version; a stray or duplicate file name is an error, never skipped."""
    migrations: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _FILE_NAME.match(path.name)
        if match is None:
            raise ValueError(f"migration file name must look like 0001_name.sql: {path.name}")
        version = int(match.group(1))
        if version in migrations:
            raise ValueError(
                f"two migrations with version {version}: {migrations[version].name}, {path.stem}"
            )
        migrations[version] = Migration(version, path.stem, path.read_text(encoding="utf-8"))
    return [migrations[v] for v in sorted(migrations)]


async def migrate(target: asyncpg.Pool | Connection, *, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply pending migrations to the current schema; returns the names applied (empty when up to date)."""
    migrations = load_migrations(directory)
    if isinstance(target, asyncpg.Pool):
        async with target.acquire() as conn:
            return await _migrate(conn, migrations)
    return await _migrate(target, migrations)


async def _migrate(conn: Connection, migrations: list[Migration]) -> list[str]:
    async with conn.transaction():
        await conn.execute(_LOCK_SQL, _LOCK_NAMESPACE)
        await conn.execute(_CREATE_TABLE_SQL)
        rows = await conn.fetch("SELECT version, checksum FROM schema_migrations")
    recorded = {row["version"]: row["checksum"] for row in rows}
    applied: list[str] = []
    for migration in migrations:
        if migration.version in recorded:
            if recorded[migration.version] != migration.checksum:
                logger.warning("migration %s was edited after it was applied; not re-applied", migration.name)
            continue
        async with conn.transaction():
            await conn.execute(_LOCK_SQL, _LOCK_NAMESPACE)
            # Another process may have applied it while we waited for the lock.
            if await conn.fetchval("SELECT 1 FROM schema_migrations WHERE version = $1", migration.version):
                continue
            await conn.execute(migration.sql)
            await conn.execute(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                migration.version,
                migration.name,
                migration.checksum,
            )
        logger.info("applied migration %s", migration.name)
        applied.append(migration.name)
    return applied
