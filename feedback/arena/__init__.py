"""The recommender arena: ratings from side-by-side votes, pair scheduling, interleaving, charts and tables.

Pure logic: no Telegram, HTTP or database code (votes come in as aggregated rows or index arrays). The chart pulls
in matplotlib, so `leaderboard_png` is imported on first use: the bot's hot path needs only the scheduler.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from feedback.arena.interleaving import Interleaved, credit, team_draft
from feedback.arena.ratings import CHOICES, Leaderboard, PositionBias, Rating, VoteTable, fit
from feedback.arena.scheduler import PairScheduler, UniformScheduler
from feedback.arena.table import format_table, leaderboard_dict

if TYPE_CHECKING:
    from feedback.arena.chart import leaderboard_png

__all__ = [
    "CHOICES",
    "Interleaved",
    "Leaderboard",
    "PairScheduler",
    "PositionBias",
    "Rating",
    "UniformScheduler",
    "VoteTable",
    "credit",
    "fit",
    "format_table",
    "leaderboard_dict",
    "leaderboard_png",
    "team_draft",
]


def __getattr__(name: str) -> Any:
    if name == "leaderboard_png":
        from feedback.arena.chart import leaderboard_png

        return leaderboard_png
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
