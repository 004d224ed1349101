"""/stats: admins get the arena chart with the totals; everyone else sees an unknown command."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import asyncpg
import pytest
from redis.asyncio import Redis

from bot.texts import t
from feedback.arena import VoteTable, fit
from feedback.leaderboard import LeaderboardCache
from storage.repositories import Repo
from tests.bot.conftest import StartBot, bot_on_a_dead_database
from tests.bot.telegram_stub import Call, TelegramStub

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def photo_to(user: int) -> Callable[[Call], bool]:
    return lambda c: c.method == "sendPhoto" and str(c.params.get("chat_id")) == str(user)


def uploaded_photo(call: Call) -> bytes:
    """The uploaded bytes: aiogram sends `photo=attach://<field>` and the file in that multipart field."""
    reference = str(call.params["photo"])
    assert reference.startswith("attach://"), reference
    return call.files[reference.removeprefix("attach://")]


async def test_admin_gets_the_chart_with_the_totals(
    telegram: TelegramStub, start_bot: StartBot, pool: asyncpg.Pool, new_id: Callable[[], int]
) -> None:
    admin = new_id()
    await start_bot(admin_ids=[admin])
    telegram.send_message(admin, "en", text="/stats")
    call = await telegram.wait_for(photo_to(admin), timeout=60)

    assert uploaded_photo(call).startswith(PNG_MAGIC)
    async with pool.acquire() as conn:
        totals = await Repo(conn).stats()
    caption = call.params["caption"]
    labels = {
        "users": "Users",
        "analyses": "Analyses",
        "votes": "Votes",
        "likes": "Likes and dislikes",
        "suggestions": "Suggestions",
        "daily_subscribers": "Daily subscribers",
    }
    for key, label in labels.items():
        assert f"{label}: {totals[key]}\n" in caption
    assert "left side wins" in caption and "%" in caption


async def test_admin_sees_the_cached_board_in_their_language(
    telegram: TelegramStub, start_bot: StartBot, bot_redis: Redis, new_id: Callable[[], int]
) -> None:
    admin = new_id()
    board = fit(VoteTable.from_rows([("by_look", "by_meaning", "left", 700), ("by_meaning", "by_look", "both", 77)]))
    await LeaderboardCache(bot_redis).put(board)
    await start_bot(admin_ids=[new_id(), admin])
    telegram.send_message(admin, "ru", text="/stats")
    call = await telegram.wait_for(photo_to(admin), timeout=60)

    caption = call.params["caption"]
    assert "Пользователи:" in caption
    assert "учтено голосов — 777" in caption  # the cached board, not a fresh fit of the (smaller) database
    assert uploaded_photo(call).startswith(PNG_MAGIC)


@pytest.mark.parametrize("lang", ["en", "ru"])
async def test_non_admin_gets_the_unknown_command_answer_and_no_photo(
    telegram: TelegramStub, start_bot: StartBot, new_id: Callable[[], int], lang: str
) -> None:
    stranger = new_id()
    await start_bot(admin_ids=[new_id()])
    telegram.send_message(stranger, lang, text="/stats")
    await telegram.wait_text(stranger, t(lang, "unknown_command"), timeout=30)
    await asyncio.sleep(0.3)
    sent = [c for c in telegram.calls if str(c.params.get("chat_id")) == str(stranger)]
    assert [c.method for c in sent] == ["sendMessage"]
    assert sent[0].params["text"] == t(lang, "unknown_command")  # exactly what any unknown command gets


@pytest.fixture
async def admin_of_a_bot_on_a_dead_database(
    telegram: TelegramStub, bot_redis: Redis, new_id: Callable[[], int]
) -> AsyncIterator[int]:
    """A bot whose Postgres is down; yields its admin's id."""
    admin = new_id()
    async with bot_on_a_dead_database(telegram, bot_redis, admin_ids=[admin]):
        yield admin


async def test_database_down_gets_a_friendly_message(
    telegram: TelegramStub, admin_of_a_bot_on_a_dead_database: int
) -> None:
    admin = admin_of_a_bot_on_a_dead_database
    telegram.send_message(admin, "en", text="/stats")
    await telegram.wait_text(admin, t("en", "stats_unavailable"), timeout=30)
    assert not telegram.sent("sendPhoto", chat_id=admin)
