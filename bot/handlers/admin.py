"""/stats for admins: the arena leaderboard chart with the service totals.

Only ids in `settings.admin_ids` pass the filter; for anyone else the update falls through to the catch-all router,
so the command looks exactly like an unknown one and its existence is not revealed.
"""

from __future__ import annotations

import asyncio
import logging

from aiogram import Router
from aiogram.filters import Command
from aiogram.types import BufferedInputFile, Message

from bot.services import Services
from bot.texts import t
from feedback.arena import Leaderboard, leaderboard_png
from feedback.leaderboard import compute_leaderboard
from storage.db import DATABASE_DOWN, UnitOfWork

logger = logging.getLogger(__name__)


def is_admin(message: Message, services: Services) -> bool:
    return message.from_user is not None and message.from_user.id in services.settings.admin_ids


async def _leaderboard(services: Services, uow: UnitOfWork) -> Leaderboard:
    """The board the background refresh cached; computed here when missing or expired (or Redis is away)."""
    board = await services.leaderboard.get()
    if board is not None:
        return board
    board = await compute_leaderboard(uow, services.arena.names(), bootstrap=services.settings.arena_bootstrap)
    await services.leaderboard.put(board)
    return board


def _percent(rate: float) -> str:
    return f"{rate:.0%}"


def caption(lang: str, totals: dict[str, int], board: Leaderboard) -> str:
    bias = board.position_bias
    left_rate = f"{_percent(bias.left_win_rate)} [{_percent(bias.ci_low)}–{_percent(bias.ci_high)}]"
    return t(lang, "stats_caption", **totals, arena_votes=board.total_votes, left_rate=left_rate)


async def stats(message: Message, lang: str, services: Services, uow: UnitOfWork) -> None:
    try:
        async with uow() as repo:
            totals = await repo.stats()
        board = await _leaderboard(services, uow)
    except DATABASE_DOWN as exc:
        logger.warning("/stats: database unavailable (%s)", type(exc).__name__)
        await message.answer(t(lang, "stats_unavailable"))
        return
    png = await asyncio.to_thread(leaderboard_png, board, t(lang, "stats_chart_title"))
    await message.answer_photo(BufferedInputFile(png, filename="arena.png"), caption=caption(lang, totals, board))


def create_router() -> Router:
    """A fresh router per dispatcher (a router can belong to one dispatcher only)."""
    router = Router(name="admin")
    router.message.register(stats, Command("stats"), is_admin)
    return router
