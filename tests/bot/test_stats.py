"""/stats: admins get the arena chart with the totals; everyone else sees an unknown command."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import asyncpg
import pytest
from redis.asyncio import Redis

from bot.app import create_bot, create_dispatcher
from bot.inference_client import InferenceClient
from bot.settings import BotSettings
from bot.texts import t
from feedback.arena import VoteTable, fit
from feedback.leaderboard import LeaderboardCache
from storage.repositories import Repo
from tests.bot.conftest import BOT_TOKEN, StartBot
from tests.bot.telegram_stub import Call, TelegramStub
from tests.fixtures_gallery import SERVICE_TOKEN

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
    await telegram.wait_text(stranger, t(lang, "send_photo"), timeout=30)
    await asyncio.sleep(0.3)
    sent = [c for c in telegram.calls if str(c.params.get("chat_id")) == str(stranger)]
    assert [c.method for c in sent] == ["sendMessage"]
    assert sent[0].params["text"] == t(lang, "send_photo")  # exactly what any unknown command gets


@pytest.fixture
async def bot_on_a_dead_database(
    telegram: TelegramStub, bot_redis: Redis, new_id: Callable[[], int]
) -> AsyncIterator[int]:
    """A bot whose Postgres is down (nothing listens on its port); yields its admin's id."""
    admin = new_id()
    dead_pool = await asyncpg.create_pool("postgresql://postgres@127.0.0.1:1/test", min_size=0, max_size=2)
    settings = BotSettings(
        token=BOT_TOKEN,
        api_base_url=telegram.base_url,
        inference_url="http://127.0.0.1:1",
        inference_token=SERVICE_TOKEN,
        redis_url="unused",
        admin_ids=[admin],
    )
    inference = InferenceClient(settings.inference_url, SERVICE_TOKEN, look_timeout=1, analyze_timeout=1)
    bot = create_bot(settings)
    dp = create_dispatcher(settings, dead_pool, bot_redis, inference)
    task = asyncio.create_task(dp.start_polling(bot, polling_timeout=1, handle_signals=False))
    try:
        yield admin
    finally:
        with contextlib.suppress(RuntimeError):
            await dp.stop_polling()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)
        await inference.close()
        await bot.session.close()
        await dead_pool.close()


async def test_database_down_gets_a_friendly_message(telegram: TelegramStub, bot_on_a_dead_database: int) -> None:
    admin = bot_on_a_dead_database
    telegram.send_message(admin, "en", text="/stats")
    await telegram.wait_text(admin, t("en", "stats_unavailable"), timeout=30)
    assert not telegram.sent("sendPhoto", chat_id=admin)
