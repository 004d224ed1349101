"""/foryou: a new user picks favourites from a diverse sample, then gets fresh works for their taste, each
with a reason; likes there count like any other, and nothing is suggested twice."""

from __future__ import annotations

from typing import Any

import asyncpg

from bot.callbacks import ForYouCallback, SuggestionLikeCallback
from tests.bot.conftest import StartBot
from tests.bot.telegram_stub import Call, TelegramStub
from tests.bot.test_photo_flow import albums, buttons, wait_answer
from tests.fixtures_gallery import GALLERY_SIZE


def is_suggestion_panel(user_id: int, after: int, telegram: TelegramStub) -> Any:
    def check(call: Call) -> bool:
        markup = call.params.get("reply_markup") or {}
        data = [str(b.get("callback_data", "")) for row in markup.get("inline_keyboard", []) for b in row]
        return (
            call.method == "sendMessage"
            and str(call.params.get("chat_id")) == str(user_id)
            and any(d.startswith("fy:") for d in data)
            and telegram.calls.index(call) >= after
        )

    return check


def like_buttons(panel: Call) -> list[dict[str, Any]]:
    return [b for b in buttons(panel) if b["callback_data"].startswith("s:")]


def more_button(panel: Call) -> dict[str, Any]:
    return next(b for b in buttons(panel) if b["callback_data"].startswith("fy:"))


async def press_and_answer(telegram: TelegramStub, user: int, data: str, lang: str = "en") -> str:
    mark = len(telegram.calls)
    telegram.press(user, data, lang=lang)
    return str((await wait_answer(telegram, mark)).params.get("text", ""))


async def test_onboarding_then_personal_suggestions_with_reasons(
    telegram: TelegramStub, start_bot: StartBot, pool: asyncpg.Pool, new_id: Any
) -> None:
    await start_bot()
    user = new_id()
    telegram.send_message(user, "en", text="/foryou")
    onboarding = await telegram.wait_for(is_suggestion_panel(user, 0, telegram), timeout=60)
    (sample,) = albums(telegram, user)
    assert len(sample.params["media"]) == 8 and len(like_buttons(onboarding)) == 8
    assert more_button(onboarding)["text"] == "Show my picks ➜"
    intro = telegram.sent("sendMessage", chat_id=user)[0].params["text"]
    assert "get to know your taste" in intro

    # asking for picks before liking anything gets a nudge, not an empty set
    assert "at least one" in await press_and_answer(telegram, user, more_button(onboarding)["callback_data"])

    first, second = like_buttons(onboarding)[:2]
    assert await press_and_answer(telegram, user, first["callback_data"]) == "❤️ Liked"
    assert await press_and_answer(telegram, user, second["callback_data"]) == "❤️ Liked"
    liked = {SuggestionLikeCallback.unpack(b["callback_data"]).artwork_id for b in (first, second)}
    redraw = await telegram.wait_for(
        lambda c: c.method == "editMessageReplyMarkup" and "2 ❤️" in [b["text"] for b in buttons(c)], timeout=30
    )
    assert "1 ❤️" in [b["text"] for b in buttons(redraw)]

    mark = len(telegram.calls)
    telegram.press(user, more_button(onboarding)["callback_data"])
    panel = await telegram.wait_for(is_suggestion_panel(user, mark, telegram), timeout=60)
    picks = albums(telegram, user)[-1]
    captions = [m["caption"] for m in picks.params["media"]]
    assert len(captions) == 5 and more_button(panel)["text"] == "More for me ➜"
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT kind, artwork_ids, because::text AS because FROM suggestions WHERE user_id = $1 ORDER BY id", user
        )
        titles = {r["id"]: r["title"] for r in await conn.fetch("SELECT id, title FROM artworks")}
    assert [r["kind"] for r in rows] == ["onboarding", "foryou"]
    onboarded, suggested = (list(r["artwork_ids"]) for r in rows)
    assert not set(suggested) & set(onboarded)  # only works not shown before
    # every caption says why: because of a liked work (by title), or that it is there to explore
    for caption in captions:
        reason = caption.split("\n")[1]
        assert reason == "🎲 something new to explore" or any(
            reason == f"💡 because you liked «{titles[work]}»" for work in liked
        )
    assert any("because you liked" in caption for caption in captions)


async def test_suggestions_never_repeat_and_run_out_politely(
    telegram: TelegramStub, start_bot: StartBot, pool: asyncpg.Pool, new_id: Any
) -> None:
    await start_bot()
    user = new_id()
    telegram.send_message(user, "ru", text="/foryou")
    onboarding = await telegram.wait_for(is_suggestion_panel(user, 0, telegram), timeout=60)
    assert more_button(onboarding)["text"] == "Подобрать для меня ➜"
    assert await press_and_answer(telegram, user, like_buttons(onboarding)[0]["callback_data"], "ru") == "❤️ Нравится"
    shown = 8
    while shown < GALLERY_SIZE:
        mark = len(telegram.calls)
        telegram.send_message(user, "ru", text="/foryou")
        await telegram.wait_for(is_suggestion_panel(user, mark, telegram), timeout=60)
        shown += min(5, GALLERY_SIZE - shown)
    mark = len(telegram.calls)
    telegram.send_message(user, "ru", text="/foryou")
    done = await telegram.wait_for(
        lambda c: c.method == "sendMessage" and telegram.calls.index(c) >= mark and "уже видели" in c.params["text"],
        timeout=60,
    )
    assert done.params.get("reply_markup") is None
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT artwork_ids FROM suggestions WHERE user_id = $1", user)
    ids = [i for row in rows for i in row["artwork_ids"]]
    assert len(ids) == len(set(ids)) == GALLERY_SIZE  # the whole gallery, nothing twice


async def test_a_stranger_cannot_like_or_page_someone_elses_suggestions(
    telegram: TelegramStub, start_bot: StartBot, pool: asyncpg.Pool, new_id: Any
) -> None:
    await start_bot()
    owner, stranger = new_id(), new_id()
    telegram.send_message(owner, "en", text="/foryou")
    onboarding = await telegram.wait_for(is_suggestion_panel(owner, 0, telegram), timeout=60)
    like = like_buttons(onboarding)[0]["callback_data"]
    assert "isn't for you" in await press_and_answer(telegram, stranger, like)
    assert "isn't for you" in await press_and_answer(telegram, stranger, more_button(onboarding)["callback_data"])
    forged = SuggestionLikeCallback(
        suggestion_id=ForYouCallback.unpack(more_button(onboarding)["callback_data"]).suggestion_id,
        artwork_id=10_000,
        value=1,
    ).pack()
    assert "isn't for you" in await press_and_answer(telegram, owner, forged)  # a work it never contained
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM likes WHERE user_id = ANY($1)", [owner, stranger]) == 0


async def test_more_for_me_is_rate_limited_like_photos(
    telegram: TelegramStub, start_bot: StartBot, pool: asyncpg.Pool, new_id: Any
) -> None:
    await start_bot(photos_per_minute=2)
    user = new_id()
    telegram.send_message(user, "en", text="/foryou")  # 1 of 2
    onboarding = await telegram.wait_for(is_suggestion_panel(user, 0, telegram), timeout=60)
    assert await press_and_answer(telegram, user, like_buttons(onboarding)[0]["callback_data"]) == "❤️ Liked"
    mark = len(telegram.calls)
    telegram.press(user, more_button(onboarding)["callback_data"])  # 2 of 2
    await telegram.wait_for(is_suggestion_panel(user, mark, telegram), timeout=60)
    refusal = await press_and_answer(telegram, user, more_button(onboarding)["callback_data"])  # over the limit
    assert "faster than I can look at pictures" in refusal and "Try again in" in refusal
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM suggestions WHERE user_id = $1", user) == 2
