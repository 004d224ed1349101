"""/forget: after a confirming tap the user's analyses, votes, likes, picks, daily pick, cached photos, FSM state
and old buttons are gone, and nobody else's; cancelling or a database outage deletes nothing."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import asyncpg
from aiogram.fsm.storage.base import StorageKey
from aiogram.fsm.storage.redis import RedisStorage
from redis.asyncio import Redis

from bot.callbacks import ForgetCallback
from storage.cache import AnalysisCache
from storage.repositories import Repo
from tests.bot.conftest import StartBot, bot_on_a_dead_database
from tests.bot.telegram_stub import BOT_ID, Call, TelegramStub
from tests.bot.test_foryou import is_suggestion_panel
from tests.bot.test_photo_flow import analysis_id_of, buttons, is_panel, send_photo, vote_data, wait_answer
from tests.factories import image_bytes, synthetic_artwork

CONFIRM = ForgetCallback(confirm=True).pack()
CANCEL = ForgetCallback(confirm=False).pack()
TABLES = ("analyses", "votes", "likes", "suggestions", "daily_subscriptions")


async def counts(pool: asyncpg.Pool, user: int) -> dict[str, int]:
    """The user's rows per table (and whether the user row itself exists)."""
    async with pool.acquire() as conn:
        found = {
            table: await conn.fetchval(f"SELECT count(*) FROM {table} WHERE user_id = $1", user) for table in TABLES
        }
        found["users"] = await conn.fetchval("SELECT count(*) FROM users WHERE telegram_id = $1", user)
    return found


async def press(telegram: TelegramStub, user: int, data: str) -> Call:
    mark = len(telegram.calls)
    telegram.press(user, data)
    return await wait_answer(telegram, mark)


async def ask_to_forget(telegram: TelegramStub, user: int, lang: str = "en") -> Call:
    mark = len(telegram.calls)
    telegram.send_message(user, lang, text="/forget")
    return await telegram.wait_for(
        lambda c: (
            c.method == "sendMessage"
            and str(c.params.get("chat_id")) == str(user)
            and any(c is new for new in telegram.calls[mark:])  # identical replies compare equal
            and bool(c.params.get("reply_markup"))
        ),
        timeout=30,
    )


async def person_with_history(telegram: TelegramStub, pool: asyncpg.Pool, user: int, seed: int) -> tuple[int, str]:
    """A photo with a vote and a like, an onboarding set, a daily pick: returns (analysis id, a like button)."""
    photo = image_bytes(synthetic_artwork(seed))
    send_photo(telegram, user, photo)
    panel = await telegram.wait_for(is_panel(user), timeout=120)
    analysis_id = analysis_id_of(panel)
    assert "saved" in str((await press(telegram, user, vote_data(analysis_id, "left"))).params.get("text"))
    like = next(b["callback_data"] for b in buttons(panel) if b["callback_data"].startswith("l:"))
    assert (await press(telegram, user, like)).params.get("text") == "❤️ Liked"
    mark = len(telegram.calls)
    telegram.send_message(user, "en", text="/foryou")
    await telegram.wait_for(is_suggestion_panel(user, mark, telegram), timeout=60)
    mark = len(telegram.calls)
    telegram.send_message(user, "en", text="/daily on 8")
    await telegram.reply_after(user, mark)
    return analysis_id, like


async def test_forget_deletes_everything_of_the_user_and_nothing_of_anyone_else(
    telegram: TelegramStub, start_bot: StartBot, pool: asyncpg.Pool, bot_redis: Redis, new_id: Any
) -> None:
    await start_bot()
    user, other = new_id(), new_id()
    analysis_id, like = await person_with_history(telegram, pool, user, seed=301)
    other_analysis, _ = await person_with_history(telegram, pool, other, seed=302)
    before_other = await counts(pool, other)
    assert await counts(pool, user) == {table: 1 for table in (*TABLES, "users")}
    cache = AnalysisCache(bot_redis, ttl_seconds=60)
    own_photo = hashlib.sha256(image_bytes(synthetic_artwork(301))).hexdigest()
    other_photo = hashlib.sha256(image_bytes(synthetic_artwork(302))).hexdigest()
    assert await cache.get(own_photo) is not None
    fsm = RedisStorage(bot_redis)
    state_key = StorageKey(bot_id=BOT_ID, chat_id=user, user_id=user)
    await fsm.set_state(state_key, "waiting:for_something")

    confirmation = await ask_to_forget(telegram, user)
    assert "cannot be undone" in confirmation.params["text"]
    assert [b["callback_data"] for b in buttons(confirmation)] == [CONFIRM, CANCEL]
    mark = len(telegram.calls)
    await press(telegram, user, CONFIRM)
    report = await telegram.reply_after(user, mark)
    assert report.startswith("Done: I have forgotten you.")
    assert "analyses: 1\nvotes: 1\nlikes and dislikes: 1\npersonal picks: 1\nThe daily pick is turned off." in report

    assert await counts(pool, user) == {table: 0 for table in (*TABLES, "users")}
    assert await cache.get(own_photo) is None and await cache.get(other_photo) is not None
    assert await fsm.get_state(state_key) is None
    assert await counts(pool, other) == before_other  # the other user is untouched

    # the old buttons now belong to nobody: refused, and nothing is written
    for data in (vote_data(analysis_id, "right"), like):
        answer = await press(telegram, user, data)
        assert "isn't for you" in answer.params["text"] and answer.params.get("show_alert") in ("true", True)
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM votes WHERE analysis_id = $1", analysis_id) == 0
        assert await conn.fetchval("SELECT count(*) FROM likes WHERE user_id = $1", user) == 0
        assert await conn.fetchval("SELECT count(*) FROM votes WHERE analysis_id = $1", other_analysis) == 1


async def test_a_stranger_pressing_confirm_forgets_only_themselves(
    telegram: TelegramStub, start_bot: StartBot, pool: asyncpg.Pool, new_id: Any
) -> None:
    await start_bot()
    owner, stranger = new_id(), new_id()
    await person_with_history(telegram, pool, owner, seed=303)
    before = await counts(pool, owner)
    await ask_to_forget(telegram, owner)
    mark = len(telegram.calls)
    await press(telegram, stranger, CONFIRM)  # the owner's confirmation, pressed by someone else
    report = await telegram.reply_after(stranger, mark)
    assert "analyses: 0\nvotes: 0" in report and "There was no daily pick" in report
    assert await counts(pool, owner) == before


async def test_cancel_deletes_nothing(
    telegram: TelegramStub, start_bot: StartBot, pool: asyncpg.Pool, new_id: Any
) -> None:
    await start_bot()
    user = new_id()
    await person_with_history(telegram, pool, user, seed=304)
    before = await counts(pool, user)
    confirmation = await ask_to_forget(telegram, user, lang="ru")
    assert [b["text"] for b in buttons(confirmation)] == ["🗑 Да, удалить всё", "Отмена"]
    mark = len(telegram.calls)
    await press(telegram, user, CANCEL)
    assert await telegram.reply_after(user, mark) == "Cancelled: nothing was deleted."
    assert await counts(pool, user) == before
    # the confirmation lost its buttons once answered
    await telegram.wait_for(
        lambda c: c.method == "editMessageReplyMarkup" and str(c.params.get("chat_id")) == str(user), timeout=30
    )


async def test_with_the_database_down_nothing_is_deleted_and_the_user_is_told(
    telegram: TelegramStub, inference_url: str, pool: asyncpg.Pool, bot_redis: Redis, new_id: Any
) -> None:
    user = new_id()
    async with pool.acquire() as conn:
        repo = Repo(conn)
        await repo.users.touch(user, "en")
        await repo.daily.subscribe(user, 9, 0, datetime.now(UTC))
    async with bot_on_a_dead_database(telegram, bot_redis, inference_url=inference_url):
        await ask_to_forget(telegram, user)
        mark = len(telegram.calls)
        await press(telegram, user, CONFIRM)
        reply = await telegram.reply_after(user, mark)
    assert "nothing was deleted" in reply and "try /forget again" in reply
    async with pool.acquire() as conn:
        repo = Repo(conn)
        assert await repo.users.get(user) is not None and await repo.daily.get(user) is not None


def test_confirmation_buttons_name_no_user() -> None:
    assert CONFIRM == "forget:1" and CANCEL == "forget:0"  # whoever presses is whose data goes
