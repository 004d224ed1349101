"""End to end: a person sends a photo, sees two sets, votes and likes; Postgres holds exactly what they did."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from bot.callbacks import LikeCallback, VoteCallback
from inference.contract import VoteChoice
from tests.bot.conftest import StartBot
from tests.bot.telegram_stub import Call, TelegramStub
from tests.factories import image_bytes, synthetic_artwork

_file_ids = itertools.count(1)


def send_photo(telegram: TelegramStub, user_id: int, data: bytes, lang: str = "en") -> None:
    file_id = f"user-photo-{next(_file_ids)}"
    telegram.add_file(file_id, data, f"photos/{file_id}.jpg")
    size = {"file_id": file_id, "file_unique_id": file_id, "width": 96, "height": 80, "file_size": len(data)}
    telegram.send_message(user_id, lang, photo=[size])


def is_panel(user_id: int) -> Any:
    def check(call: Call) -> bool:
        markup = call.params.get("reply_markup") or {}
        return (
            call.method == "sendMessage"
            and str(call.params.get("chat_id")) == str(user_id)
            and any(
                str(b.get("callback_data", "")).startswith("v:")
                for row in markup.get("inline_keyboard", [])
                for b in row
            )
        )

    return check


def buttons(call: Call) -> list[dict[str, Any]]:
    return [b for row in call.params["reply_markup"]["inline_keyboard"] for b in row]


def analysis_id_of(panel: Call) -> int:
    return VoteCallback.unpack(buttons(panel)[0]["callback_data"]).analysis_id


def description_of(call: Call) -> str:
    """The description as shown in its message: after "🖼 ", before the photo's tag line ("🏷 …"), if any."""
    return str(call.params["text"])[2:].split("\n\n🏷")[0].strip()


def albums(telegram: TelegramStub, user_id: int) -> list[Call]:
    return telegram.sent("sendMediaGroup", chat_id=user_id)


def vote_data(analysis_id: int, choice: VoteChoice) -> str:
    return VoteCallback(analysis_id=analysis_id, choice=choice).pack()


async def wait_answer(telegram: TelegramStub, after: int) -> Call:
    return await telegram.wait_for(
        lambda c: c.method == "answerCallbackQuery" and telegram.calls.index(c) >= after, timeout=30
    )


async def test_photo_gets_visual_set_description_meaning_set_and_panel(
    telegram: TelegramStub,
    start_bot: StartBot,
    pool: asyncpg.Pool,
    new_id: Any,
    gallery_source: tuple[Path, Path],
) -> None:
    await start_bot()
    user = new_id()
    images, _ = gallery_source
    send_photo(telegram, user, (images / "work_003.jpg").read_bytes())

    panel = await telegram.wait_for(is_panel(user), timeout=120)
    analysis_id = analysis_id_of(panel)
    sent = [c for c in telegram.calls if str(c.params.get("chat_id")) == str(user)]
    methods = [c.method for c in sent]
    assert "sendChatAction" in methods
    first_album, second_album = albums(telegram, user)
    description = next(c for c in sent if c.method == "sendMessage" and c.params["text"].startswith("🖼"))
    # the visual set comes before the description, the meaning set after it
    assert sent.index(first_album) < sent.index(description) < sent.index(second_album) < sent.index(panel)
    assert len(description.params["text"]) > 3

    async with pool.acquire() as conn:
        sets = {
            r["recommender"]: r
            for r in await conn.fetch("SELECT * FROM shown_sets WHERE analysis_id = $1", analysis_id)
        }
        analysis = await conn.fetchrow("SELECT * FROM analyses WHERE id = $1", analysis_id)
    assert analysis is not None
    assert analysis["user_id"] == user and analysis["description"] == description_of(description)
    assert set(sets) == {"by_look", "by_meaning"}
    assert {sets["by_look"]["side"], sets["by_meaning"]["side"]} == {"left", "right"}

    look_label = "A" if sets["by_look"]["side"] == "left" else "B"
    look_captions = [m["caption"] for m in first_album.params["media"]]
    assert len(look_captions) == 5
    assert all(c.startswith(look_label) for c in look_captions)
    # the sent work is in the gallery: it is named first, and the sets show other works, captioned with title,
    # artist and year
    identified = next(c for c in sent if c.method == "sendMessage")
    assert identified.params["text"] == "📍 This is «Composition No. 3», Painter 3, 1883"
    assert sent.index(identified) < sent.index(first_album)
    assert 3 not in sets["by_look"]["artwork_ids"] and 3 not in sets["by_meaning"]["artwork_ids"]
    assert all(" · Composition No. " in c and " — Painter " in c for c in look_captions)

    labels = [b["text"] for b in buttons(panel)]
    assert labels[:4] == ["A is better", "B is better", "Both good", "Neither"]
    assert sum(1 for label in labels if label.endswith("🤍")) == 10


async def test_vote_and_like_round_trip_is_stored_once(
    telegram: TelegramStub, start_bot: StartBot, pool: asyncpg.Pool, new_id: Any
) -> None:
    await start_bot()
    user = new_id()
    send_photo(telegram, user, image_bytes(synthetic_artwork(101)))
    panel = await telegram.wait_for(is_panel(user), timeout=120)
    analysis_id = analysis_id_of(panel)

    mark = len(telegram.calls)
    telegram.press(user, vote_data(analysis_id, "left"))
    assert (await wait_answer(telegram, mark)).params.get("text") == "Thanks, your vote is saved!"
    mark = len(telegram.calls)
    telegram.press(user, vote_data(analysis_id, "left"))  # the same button again
    assert (await wait_answer(telegram, mark)).params.get("text") == "Your vote is already counted."
    mark = len(telegram.calls)
    telegram.press(user, vote_data(analysis_id, "both"))  # a change of mind
    assert (await wait_answer(telegram, mark)).params.get("text") == "Thanks, your vote is saved!"

    like_button = next(b for b in buttons(panel) if b["text"] == "B2 🤍")
    liked_work = LikeCallback.unpack(like_button["callback_data"]).artwork_id
    mark = len(telegram.calls)
    telegram.press(user, like_button["callback_data"])
    assert (await wait_answer(telegram, mark)).params.get("text") == "❤️ Liked"
    redraw = await telegram.wait_for(
        lambda c: c.method == "editMessageReplyMarkup" and "B2 ❤️" in [b["text"] for b in buttons(c)],
        timeout=30,
    )
    assert "✅ Both good" in [b["text"] for b in buttons(redraw)]
    mark = len(telegram.calls)
    telegram.press(user, like_button["callback_data"])  # pressing the stale 🤍 button again: still one like
    await wait_answer(telegram, mark)

    async with pool.acquire() as conn:
        votes = await conn.fetch("SELECT choice FROM votes WHERE user_id = $1", user)
        likes = await conn.fetch("SELECT artwork_id, value, analysis_id FROM likes WHERE user_id = $1", user)
    assert [v["choice"] for v in votes] == ["both"]
    assert [(r["artwork_id"], r["value"], r["analysis_id"]) for r in likes] == [(liked_work, 1, analysis_id)]

    # dislike, then undo, through the buttons the bot drew
    dislike = LikeCallback(analysis_id=analysis_id, artwork_id=liked_work, value=-1).pack()
    mark = len(telegram.calls)
    telegram.press(user, dislike)
    assert (await wait_answer(telegram, mark)).params.get("text") == "👎 Noted: not for you"
    undo = LikeCallback(analysis_id=analysis_id, artwork_id=liked_work, value=0).pack()
    mark = len(telegram.calls)
    telegram.press(user, undo)
    await wait_answer(telegram, mark)
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM likes WHERE user_id = $1", user) == 0


async def test_forged_and_foreign_buttons_are_refused_and_write_nothing(
    telegram: TelegramStub, start_bot: StartBot, pool: asyncpg.Pool, new_id: Any
) -> None:
    await start_bot()
    owner, stranger = new_id(), new_id()
    send_photo(telegram, owner, image_bytes(synthetic_artwork(102)))
    analysis_id = analysis_id_of(await telegram.wait_for(is_panel(owner), timeout=120))

    attempts = [
        (stranger, vote_data(analysis_id, "left")),  # someone else's analysis
        (owner, vote_data(analysis_id + 10_000, "left")),  # an analysis that does not exist
        (owner, LikeCallback(analysis_id=analysis_id, artwork_id=999_999, value=1).pack()),  # not shown
        (stranger, LikeCallback(analysis_id=analysis_id, artwork_id=0, value=1).pack()),
    ]
    for user, data in attempts:
        mark = len(telegram.calls)
        telegram.press(user, data)
        answer = await wait_answer(telegram, mark)
        assert "isn't for you" in answer.params["text"]
        assert answer.params.get("show_alert") in ("true", True)
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM votes WHERE analysis_id = $1", analysis_id) == 0
        assert (
            await conn.fetchval("SELECT count(*) FROM likes WHERE user_id = ANY($1)", [owner, stranger]) == 0
        )


async def test_artwork_images_are_uploaded_once_then_sent_by_file_id(
    telegram: TelegramStub,
    start_bot: StartBot,
    pool: asyncpg.Pool,
    new_id: Any,
    gallery_source: tuple[Path, Path],
) -> None:
    await start_bot()
    user = new_id()
    images, _ = gallery_source
    photo = (images / "work_005.jpg").read_bytes()
    send_photo(telegram, user, photo)
    await telegram.wait_for(is_panel(user), timeout=120)
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT id, telegram_file_id FROM artworks WHERE telegram_file_id IS NOT NULL")
    cached = {row["id"]: row["telegram_file_id"] for row in rows}
    assert cached, "uploaded artworks should have their Telegram file_id stored"

    mark = len(telegram.calls)
    send_photo(telegram, user, photo)  # same works again
    await telegram.wait_for(lambda c: is_panel(user)(c) and telegram.calls.index(c) >= mark, timeout=120)
    later_albums = [c for c in albums(telegram, user) if telegram.calls.index(c) >= mark]
    media = [m for album in later_albums for m in album.params["media"]]
    assert all(not str(m["media"]).startswith("attach://") for m in media)
    assert {m["media"] for m in media} <= set(cached.values())
    assert all(not album.files for album in later_albums)


async def test_the_same_photo_twice_is_answered_from_cache(
    telegram: TelegramStub, start_bot: StartBot, pool: asyncpg.Pool, new_id: Any
) -> None:
    await start_bot()
    user = new_id()
    photo = image_bytes(synthetic_artwork(103))
    send_photo(telegram, user, photo)
    first = analysis_id_of(await telegram.wait_for(is_panel(user), timeout=120))
    mark = len(telegram.calls)
    send_photo(telegram, user, photo)
    second_panel = await telegram.wait_for(
        lambda c: is_panel(user)(c) and telegram.calls.index(c) >= mark, timeout=120
    )
    second = analysis_id_of(second_panel)
    async with pool.acquire() as conn:
        rows = {
            r["id"]: r
            for r in await conn.fetch(
                "SELECT id, from_cache, description, model_versions::text AS models FROM analyses WHERE id = ANY($1)",
                [first, second],
            )
        }
    assert second != first
    assert rows[first]["from_cache"] is False and rows[second]["from_cache"] is True
    assert rows[first]["description"] == rows[second]["description"]
    assert rows[first]["models"] == rows[second]["models"] != "{}"  # which models answered is kept from the cache


async def test_russian_user_gets_russian_texts(
    telegram: TelegramStub, start_bot: StartBot, new_id: Any
) -> None:
    await start_bot()
    user = new_id()
    telegram.send_message(user, "ru", text="/start")
    await telegram.wait_text(user, "Привет! Я ArtMatch")
    send_photo(telegram, user, image_bytes(synthetic_artwork(104)), lang="ru")
    panel = await telegram.wait_for(is_panel(user), timeout=120)
    assert panel.params["text"].startswith("Какой набор лучше?")
    assert [b["text"] for b in buttons(panel)][:2] == ["A лучше", "B лучше"]


async def test_lang_command_switches_language(
    telegram: TelegramStub, start_bot: StartBot, new_id: Any
) -> None:
    await start_bot()
    user = new_id()
    telegram.send_message(user, "en", text="/lang")
    await telegram.wait_text(user, "Choose your language")
    telegram.press(user, "lang:ru")
    await telegram.wait_text(user, "Язык: русский")
    telegram.send_message(user, "en", text="/help")  # Telegram still says English; the choice wins
    await telegram.wait_text(user, "Как это работает")


@pytest.mark.parametrize("limit", [2])
async def test_rate_limit_tells_the_user_when_to_come_back(
    telegram: TelegramStub, start_bot: StartBot, new_id: Any, limit: int
) -> None:
    await start_bot(photos_per_minute=limit)
    user = new_id()
    telegram.send_message(
        user, "en", document={"file_id": "x", "file_unique_id": "x", "mime_type": "application/pdf"}
    )
    telegram.send_message(
        user, "en", document={"file_id": "y", "file_unique_id": "y", "mime_type": "application/pdf"}
    )
    telegram.send_message(
        user, "en", document={"file_id": "z", "file_unique_id": "z", "mime_type": "application/pdf"}
    )
    call = await telegram.wait_text(user, "faster than I can look at pictures")
    assert "Try again in" in call.params["text"]
