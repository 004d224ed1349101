"""The facade handlers use: one object per connection giving every repository."""

from __future__ import annotations

from storage.db import Connection
from storage.repositories.analyses import AnalysesRepository
from storage.repositories.arena import ArenaRepository
from storage.repositories.artworks import ArtworksRepository
from storage.repositories.daily import DailyRepository
from storage.repositories.history import HistoryRepository
from storage.repositories.likes import LikesRepository
from storage.repositories.stats import fetch_stats
from storage.repositories.suggestions import SuggestionsRepository
from storage.repositories.users import UsersRepository
from storage.repositories.votes import VotesRepository


class Repo:
    """All repositories over one asyncpg connection.

    Repositories never open or commit transactions themselves: the caller decides what must be atomic::

        async with pool.acquire() as conn, conn.transaction():
            repo = Repo(conn)
            analysis_id = await repo.analyses.create(...)
            await repo.artworks.set_file_id(...)

    Outside a transaction each statement commits on its own (fine for single-statement calls such as
    `users.touch` or `likes.for_user`). `analyses.create` writes two tables: always call it in a transaction.
    """

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.users = UsersRepository(conn)
        self.artworks = ArtworksRepository(conn)
        self.analyses = AnalysesRepository(conn)
        self.votes = VotesRepository(conn)
        self.likes = LikesRepository(conn)
        self.suggestions = SuggestionsRepository(conn)
        self.history = HistoryRepository(conn)
        self.daily = DailyRepository(conn)
        self.arena = ArenaRepository(conn)

    async def stats(self) -> dict[str, int]:
        """Totals for the admin /stats message."""
        return await fetch_stats(self.conn)
