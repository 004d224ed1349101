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

    Repositories never open or commit transactions themselves: `storage.db.unit_of_work` is the one place a
    transaction begins, and the caller decides what goes in it::

        async with unit_of_work(pool) as repo:
            analysis_id = await repo.analyses.create(...)
            await repo.artworks.set_file_id(...)

    (Tools that hold a bare connection, such as the migration runner and benchmarks, may use `Repo(conn)`
    directly; then each statement commits on its own.)
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
