"""/stats for admins: the arena leaderboard chart with the service totals.

Only ids in `settings.admin_ids` pass the filter; for anyone else the update falls through to the catch-all router,
so the command looks exactly like an unknown one and its existence is not revealed.
"""

from __future__ import annotations

import asyncio
import logging

import asyncpg
from aiogram import Router
from aiogram.filters import Command
from aiogram.types import BufferedInputFile, Message

from bot.arena import Arena
from bot.settings import BotSettings
from bot.texts import t
from feedback.arena import Leaderboard, leaderboard_png
from feedback.leaderboard import LeaderboardCache, compute_leaderboard
from feedback.recorder import DATABASE_DOWN
from storage.repositories import Repo

logger = logging.getLogger(__name__)


def is_admin(message: Message, settings: BotSettings) -> bool:
    return message.from_user is not None and message.from_user.id in settings.admin_ids


async def _leaderboard(pool: asyncpg.Pool, cache: LeaderboardCache, names: list[str], bootstrap: int) -> Leaderboard:
    """The board the background refresh cached; computed here (fewer replicates) when missing or expired."""
    try:
        board = await cache.get()
    except Exception:  # Redis trouble only costs a recomputation
        logger.warning("leaderboard cache unavailable", exc_info=True)
        board = None
    if board is not None:
        return board
    board = await compute_leaderboard(pool, names, bootstrap=bootstrap)
    try:
        await cache.put(board)
    except Exception:
        logger.warning("leaderboard not cached", exc_info=True)
    return board


def _percent(rate: float) -> str:
    return f"{rate:.0%}"


def caption(lang: str, totals: dict[str, int], board: Leaderboard) -> str:
    bias = board.position_bias
    left_rate = f"{_percent(bias.left_win_rate)} [{_percent(bias.ci_low)}–{_percent(bias.ci_high)}]"
    return t(lang, "stats_caption", **totals, arena_votes=board.total_votes, left_rate=left_rate)


async def stats(
    message: Message,
    lang: str,
    settings: BotSettings,
    pool: asyncpg.Pool,
    leaderboard_cache: LeaderboardCache,
    arena: Arena,
) -> None:
    try:
        async with pool.acquire(timeout=5) as conn:
            totals = await Repo(conn).stats()
        board = await _leaderboard(pool, leaderboard_cache, arena.names(), settings.arena_bootstrap)
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
