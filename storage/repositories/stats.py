"""Totals for the admin stats line."""

from __future__ import annotations

from storage.db import Connection


async def fetch_stats(conn: Connection) -> dict[str, int]:
    """Exact counts of users, analyses, votes, likes, suggestions and daily subscribers."""
    row = await conn.fetchrow(
        """
        SELECT (SELECT count(*) FROM users)    AS users,
               (SELECT count(*) FROM analyses) AS analyses,
               (SELECT count(*) FROM votes)    AS votes,
               (SELECT count(*) FROM likes)    AS likes,
               (SELECT count(*) FROM suggestions) AS suggestions,
               (SELECT count(*) FROM daily_subscriptions) AS daily_subscribers
        """
    )
    assert row is not None  # a SELECT of scalar subqueries always returns one row
    return {key: int(value) for key, value in row.items()}
