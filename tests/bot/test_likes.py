"""/likes: the works a user liked, newest first, five to an album page with ◀ ▶, and 💔 to take a like back (which
the taste profile follows). Likes are made the way users make them: ❤️ on the /foryou sample."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg
from redis.asyncio import Redis

from bot.callbacks import LikesPageCallback, SuggestionLikeCallback, UnlikeCallback
from feedback.history import load_history
from storage.db import unit_of_work
from storage.repositories import ArtworkRecord, Repo
from tests.bot.conftest import StartBot, bot_on_a_dead_database
from tests.bot.telegram_stub import Call, TelegramStub
from tests.bot.test_foryou import is_suggestion_panel, like_buttons, press_and_answer
from tests.bot.test_photo_flow import buttons

TITLE_OF = "SELECT title FROM artworks WHERE id = $1"


async def like_seven(telegram: TelegramStub, user: int, lang: str) -> list[int]:
    """❤️ on seven works of the /foryou sample, one after the other; their artwork ids, oldest like first."""
    telegram.send_message(user, lang, text="/foryou")
    onboarding = await telegram.wait_for(is_suggestion_panel(user, 0, telegram), timeout=60)
    liked = []
    for button in like_buttons(onboarding)[:7]:
        await press_and_answer(telegram, user, button["callback_data"], lang)
        liked.append(SuggestionLikeCallback.unpack(button["callback_data"]).artwork_id)
    return liked


def is_likes_panel(telegram: TelegramStub, user: int, after: int) -> Any:
    def check(call: Call) -> bool:
        markup = call.params.get("reply_markup") or {}
        data = [str(b.get("callback_data", "")) for row in markup.get("inline_keyboard", []) for b in row]
        return (
            call.method == "sendMessage"
            and str(call.params.get("chat_id")) == str(user)
            and any(d.startswith(("uk:", "lk:")) for d in data)
            and telegram.calls.index(call) >= after
        )

    return check


async def likes_page(telegram: TelegramStub, user: int, lang: str, press: str | None = None) -> tuple[Call, Call]:
    """Send /likes (or press `press`): the album (or lone photo) of the page, and its panel."""
    mark = len(telegram.calls)
    if press is None:
        telegram.send_message(user, lang, text="/likes")
    else:
        telegram.press(user, press, lang=lang)
    panel = await telegram.wait_for(is_likes_panel(telegram, user, mark), timeout=60)
    album = next(
        c
        for c in telegram.calls[mark:]
        if c.method in ("sendMediaGroup", "sendPhoto") and str(c.params.get("chat_id")) == str(user)
    )
    return album, panel


def captions(album: Call) -> list[str]:
    if album.method == "sendPhoto":
        return [str(album.params["caption"])]
    return [str(item["caption"]) for item in album.params["media"]]


def unlikes(panel: Call) -> list[UnlikeCallback]:
    return [UnlikeCallback.unpack(b["callback_data"]) for b in buttons(panel) if b["callback_data"].startswith("uk:")]


def arrows(panel: Call) -> dict[str, str]:
    """◀ / ▶ -> callback data."""
    return {b["text"][0]: b["callback_data"] for b in buttons(panel) if b["callback_data"].startswith("lk:")}


def as_delivered(panel: Call) -> dict[str, Any]:
    """The panel message as Telegram hands it back inside a button press."""
    chat = {"id": int(panel.params["chat_id"]), "type": "private"}
    return {
        "message_id": 5000,
        "date": int(time.time()),
        "chat": chat,
        "text": panel.params["text"],
        "reply_markup": panel.params["reply_markup"],
    }


async def titles(pool: asyncpg.Pool, ids: list[int]) -> list[str]:
    async with pool.acquire() as conn:
        return [await conn.fetchval(TITLE_OF, artwork_id) for artwork_id in ids]


async def test_likes_are_paged_newest_first_with_arrows(
    telegram: TelegramStub, start_bot: StartBot, pool: asyncpg.Pool, new_id: Any
) -> None:
    await start_bot()
    user = new_id()
    liked = await like_seven(telegram, user, "en")
    newest_first = await titles(pool, liked[::-1])

    album, panel = await likes_page(telegram, user, "en")
    assert [c.split(" · ")[1].split(" — ")[0] for c in captions(album)] == newest_first[:5]
    assert captions(album)[0].startswith("1 · ") and " — Painter " in captions(album)[0]  # title — artist, year
    assert "Your likes: 7" in panel.params["text"] and "Page 1/2" in panel.params["text"]
    assert [u.position for u in unlikes(panel)] == [1, 2, 3, 4, 5]
    assert [u.artwork_id for u in unlikes(panel)] == liked[::-1][:5]
    assert set(arrows(panel)) == {"▶"}

    album, panel = await likes_page(telegram, user, "en", press=arrows(panel)["▶"])
    assert [c.split(" · ")[1].split(" — ")[0] for c in captions(album)] == newest_first[5:]
    assert "Page 2/2" in panel.params["text"] and set(arrows(panel)) == {"◀"}
    assert [u.artwork_id for u in unlikes(panel)] == liked[::-1][5:]

    album, panel = await likes_page(telegram, user, "en", press=arrows(panel)["◀"])
    assert [c.split(" · ")[1].split(" — ")[0] for c in captions(album)] == newest_first[:5]
    assert "Page 1/2" in panel.params["text"]


async def test_removing_a_like_updates_likes_the_panel_and_the_taste_profile(
    telegram: TelegramStub, start_bot: StartBot, pool: asyncpg.Pool, new_id: Any
) -> None:
    await start_bot()
    user = new_id()
    liked = await like_seven(telegram, user, "ru")
    _, panel = await likes_page(telegram, user, "ru")
    assert "Вам понравилось: 7" in panel.params["text"]
    second = unlikes(panel)[1]

    mark = len(telegram.calls)
    telegram.press(user, second.pack(), message=as_delivered(panel), lang="ru")
    redrawn = await telegram.wait_for(
        lambda c: c.method == "editMessageText" and telegram.calls.index(c) >= mark, timeout=30
    )
    answer = next(c for c in telegram.calls[mark:] if c.method == "answerCallbackQuery")
    assert answer.params["text"] == "💔 Отметка убрана"
    assert "Вам понравилось: 6" in redrawn.params["text"]
    # the album above keeps its numbers: the removed work's button goes, the others stay as they were
    assert [b["text"] for b in buttons(redrawn) if b["callback_data"].startswith("uk:")] == [
        "💔 1",
        "💔 3",
        "💔 4",
        "💔 5",
    ]

    async with unit_of_work(pool) as repo:
        history = await load_history(repo, user)
    assert history.likes == 6 and second.artwork_id not in {event.artwork_id for event in history.events}

    album, panel = await likes_page(telegram, user, "ru")
    assert "Вам понравилось: 6" in panel.params["text"]
    assert second.artwork_id not in [u.artwork_id for u in unlikes(panel)]
    (removed_title,) = await titles(pool, [second.artwork_id])
    assert not any(f"· {removed_title} —" in c for c in captions(album))
    assert len(liked) == 7

    # the old panel's button again: nothing left to remove, said so, nothing else changes
    mark = len(telegram.calls)
    telegram.press(user, second.pack(), message=as_delivered(panel), lang="ru")
    answer = await telegram.wait_for(
        lambda c: c.method == "answerCallbackQuery" and telegram.calls.index(c) >= mark, timeout=30
    )
    assert "уже нет среди понравившихся" in answer.params["text"]


async def test_forged_and_foreign_likes_buttons_change_nothing(
    telegram: TelegramStub, start_bot: StartBot, pool: asyncpg.Pool, new_id: Any
) -> None:
    await start_bot()
    owner, stranger = new_id(), new_id()
    liked = await like_seven(telegram, owner, "en")

    async def answer_to(user: int, data: str) -> str:
        return await press_and_answer(telegram, user, data)

    # the stranger presses 💔 on the owner's work, and asks for a page of a collection they do not have
    assert "no longer among your likes" in await answer_to(
        stranger, UnlikeCallback(artwork_id=liked[0], position=1, page=1).pack()
    )
    assert "haven't liked any works" in await answer_to(stranger, LikesPageCallback(page=1).pack())
    # a page past the end, a work never liked, and data out of any range we send
    assert "doesn't exist any more" in await answer_to(owner, LikesPageCallback(page=99).pack())
    assert "no longer among your likes" in await answer_to(
        owner, UnlikeCallback(artwork_id=999_999, position=1, page=1).pack()
    )
    for forged in ("uk:99999999999:1:1", "uk:1:0:1", "lk:0", "lk:-3", "lk:1000000000"):
        assert "isn't for you" in await answer_to(owner, forged)
    # a work turned 👎 after the /likes page was sent: its stale 💔 does not wipe the dislike
    onboarding = next(c for c in telegram.calls if is_suggestion_panel(owner, 0, telegram)(c))
    first = SuggestionLikeCallback.unpack(like_buttons(onboarding)[0]["callback_data"])
    dislike = SuggestionLikeCallback(suggestion_id=first.suggestion_id, artwork_id=first.artwork_id, value=-1)
    await answer_to(owner, dislike.pack())
    assert "no longer among your likes" in await answer_to(
        owner, UnlikeCallback(artwork_id=first.artwork_id, position=1, page=1).pack()
    )

    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT artwork_id, value FROM likes WHERE user_id = $1", owner)
        assert await conn.fetchval("SELECT count(*) FROM likes WHERE user_id = $1", stranger) == 0
    assert {row["artwork_id"]: row["value"] for row in rows} == {
        **{artwork_id: 1 for artwork_id in liked},
        first.artwork_id: -1,
    }
    assert not telegram.sent("sendMediaGroup", chat_id=stranger)


async def test_no_likes_yet_is_said_plainly(telegram: TelegramStub, start_bot: StartBot, new_id: Any) -> None:
    await start_bot()
    for lang, said in (("en", "haven't liked any works yet"), ("ru", "пока не отметили ни одной работы")):
        user = new_id()
        telegram.send_message(user, lang, text="/likes")
        await telegram.wait_text(user, said)
        telegram.send_message(user, lang, text="/help")
        await telegram.wait_text(user, "/likes")


async def test_a_like_removed_while_postgres_is_down_is_queued_and_applied_later(
    telegram: TelegramStub,
    start_bot: StartBot,
    inference_url: str,
    pool: asyncpg.Pool,
    bot_redis: Redis,
    new_id: Any,
) -> None:
    user = new_id()
    async with pool.acquire() as conn:
        repo = Repo(conn)
        await repo.users.touch(user, "en")
        await repo.artworks.upsert_many([ArtworkRecord(3, "Composition No. 3", "Painter 3", "1883", "", "", "")])
        await repo.likes.set(user, 3, 1)
    async with bot_on_a_dead_database(telegram, bot_redis, inference_url=inference_url):
        telegram.send_message(user, "en", text="/likes")
        await telegram.wait_text(user, "can't reach my database")
        removal = UnlikeCallback(artwork_id=3, position=1, page=1).pack()
        assert await press_and_answer(telegram, user, removal) == "💔 Like removed"
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT value FROM likes WHERE user_id = $1 AND artwork_id = 3", user) == 1

    await start_bot()  # Postgres is back: the outbox replay takes the like away
    deadline = time.monotonic() + 30
    async with pool.acquire() as conn:
        while await conn.fetchval("SELECT count(*) FROM likes WHERE user_id = $1", user):
            assert time.monotonic() < deadline, "the queued removal was never applied"
            await asyncio.sleep(0.2)
    telegram.send_message(user, "en", text="/likes")
    await telegram.wait_text(user, "haven't liked any works yet")
