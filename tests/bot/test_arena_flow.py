"""The arena in the photo flow: any two recommenders, never one against itself; personal ones only with a taste
profile; the interleaving mode shows one merged set whose likes are its verdict."""

from __future__ import annotations

import hashlib
from typing import Any

import asyncpg
from redis.asyncio import Redis

from bot.callbacks import LikeCallback
from bot.texts import tag_line
from inference.contract import Tag
from storage.cache import AnalysisCache
from tests.bot.conftest import StartBot
from tests.bot.telegram_stub import Call, TelegramStub
from tests.bot.test_photo_flow import (
    albums,
    analysis_id_of,
    buttons,
    description_of,
    is_panel,
    send_photo,
    vote_data,
    wait_answer,
)
from tests.factories import image_bytes, synthetic_artwork


def is_like_panel(user_id: int) -> Any:
    """The panel of an interleaved analysis: like buttons only."""

    def check(call: Call) -> bool:
        markup = call.params.get("reply_markup") or {}
        data = [str(b.get("callback_data", "")) for row in markup.get("inline_keyboard", []) for b in row]
        return (
            call.method == "sendMessage"
            and str(call.params.get("chat_id")) == str(user_id)
            and bool(data)
            and all(d.startswith("l:") for d in data)
        )

    return check


async def shown_sets(pool: asyncpg.Pool, analysis_id: int) -> dict[str, asyncpg.Record]:
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT * FROM shown_sets WHERE analysis_id = $1", analysis_id)
    return {r["recommender"]: r for r in rows}


async def test_every_photo_gets_two_different_recommenders_and_no_personal_one_without_likes(
    telegram: TelegramStub, start_bot: StartBot, pool: asyncpg.Pool, new_id: Any
) -> None:
    await start_bot(arena_recommenders=[])  # everything the service offers
    user = new_id()
    for seed in range(4):
        before = len(telegram.calls)
        send_photo(telegram, user, image_bytes(synthetic_artwork(300 + seed)))
        panel = await telegram.wait_for(
            lambda c, before=before: is_panel(user)(c) and telegram.calls.index(c) >= before, timeout=120
        )
        sets = await shown_sets(pool, analysis_id_of(panel))
        assert len(sets) == 2 and {r["side"] for r in sets.values()} == {"left", "right"}
        assert "for_you" not in sets  # no likes yet, so no profile to personalise with
        assert set(sets) <= {"by_look", "by_meaning", "by_text_clip", "fused"}


async def test_a_pair_without_the_fast_recommender_shows_the_description_first(
    telegram: TelegramStub, start_bot: StartBot, pool: asyncpg.Pool, new_id: Any
) -> None:
    await start_bot(arena_recommenders=["by_meaning", "by_text_clip"])
    user = new_id()
    send_photo(telegram, user, image_bytes(synthetic_artwork(311)))
    panel = await telegram.wait_for(is_panel(user), timeout=120)
    sent = [c for c in telegram.calls if str(c.params.get("chat_id")) == str(user)]
    description = next(c for c in sent if c.method == "sendMessage" and c.params["text"].startswith("🖼"))
    first, second = albums(telegram, user)
    assert sent.index(description) < sent.index(first) < sent.index(second) < sent.index(panel)
    sets = await shown_sets(pool, analysis_id_of(panel))
    assert set(sets) == {"by_meaning", "by_text_clip"}
    # albums go out left (A) first, then right (B), each caption carrying its side's label
    assert [m["caption"][:2] for m in first.params["media"]] == [f"A{i}" for i in range(1, 6)]
    assert [m["caption"][:2] for m in second.params["media"]] == [f"B{i}" for i in range(1, 6)]


async def test_for_you_joins_the_arena_once_the_user_has_likes(
    telegram: TelegramStub, start_bot: StartBot, pool: asyncpg.Pool, new_id: Any
) -> None:
    await start_bot(arena_recommenders=["by_look", "for_you"])
    user = new_id()
    send_photo(telegram, user, image_bytes(synthetic_artwork(320)))
    panel = await telegram.wait_for(is_panel(user), timeout=120)
    # without likes for_you is out, which leaves one recommender: the bot falls back to the default pair
    first_sets = await shown_sets(pool, analysis_id_of(panel))
    assert "for_you" not in first_sets
    like = next(b for b in buttons(panel) if b["text"].endswith("🤍"))
    mark = len(telegram.calls)
    telegram.press(user, like["callback_data"])
    assert (await wait_answer(telegram, mark)).params.get("text") == "❤️ Liked"

    before = len(telegram.calls)
    send_photo(telegram, user, image_bytes(synthetic_artwork(321)))
    panel = await telegram.wait_for(lambda c: is_panel(user)(c) and telegram.calls.index(c) >= before, timeout=120)
    sets = await shown_sets(pool, analysis_id_of(panel))
    assert set(sets) == {"by_look", "for_you"}
    assert len(sets["for_you"]["artwork_ids"]) == 5


async def test_interleaved_mode_shows_one_merged_set_credited_by_likes(
    telegram: TelegramStub, start_bot: StartBot, pool: asyncpg.Pool, new_id: Any
) -> None:
    await start_bot(arena_mode="interleaved")
    user = new_id()
    send_photo(telegram, user, image_bytes(synthetic_artwork(330)))
    panel = await telegram.wait_for(is_like_panel(user), timeout=120)
    (album,) = albums(telegram, user)
    assert len(album.params["media"]) == 5
    like_buttons = buttons(panel)
    assert [b["text"] for b in like_buttons] == [f"{i} 🤍" for i in range(1, 6)]
    analysis_id = LikeCallback.unpack(like_buttons[0]["callback_data"]).analysis_id
    async with pool.acquire() as conn:
        analysis = await conn.fetchrow("SELECT mode, display_ids FROM analyses WHERE id = $1", analysis_id)
    sets = await shown_sets(pool, analysis_id)
    assert analysis is not None
    assert analysis["mode"] == "interleaved" and set(sets) == {"by_look", "by_meaning"}
    teams = [list(r["artwork_ids"]) for r in sets.values()]
    display = list(analysis["display_ids"])
    assert sorted(display) == sorted(teams[0] + teams[1]) and len(set(display)) == 5
    assert abs(len(teams[0]) - len(teams[1])) <= 1  # team draft: the two recommenders share the set fairly
    assert [LikeCallback.unpack(b["callback_data"]).artwork_id for b in like_buttons] == display

    mark = len(telegram.calls)
    telegram.press(user, like_buttons[1]["callback_data"])
    assert (await wait_answer(telegram, mark)).params.get("text") == "❤️ Liked"
    mark = len(telegram.calls)
    telegram.press(user, vote_data(analysis_id, "left"))  # a forged vote: interleaved sets take no votes
    assert "isn't for you" in (await wait_answer(telegram, mark)).params.get("text", "")
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM votes WHERE analysis_id = $1", analysis_id) == 0
        assert await conn.fetchval("SELECT count(*) FROM likes WHERE user_id = $1", user) == 1


async def test_a_partly_cached_photo_only_computes_the_missing_set(
    telegram: TelegramStub, start_bot: StartBot, pool: asyncpg.Pool, bot_redis: Redis, new_id: Any
) -> None:
    """The photo's description and meaning set are cached (from a matchup without by_look): by_look is fetched
    by /v1/look alone, the description is the cached one, and the cache learns the new set."""
    photo = image_bytes(synthetic_artwork(340))
    sha256 = hashlib.sha256(photo).hexdigest()
    cache = AnalysisCache(bot_redis, ttl_seconds=3600)
    meaning = [{"artwork_id": i, "title": f"Composition No. {i}", "artist": f"Painter {i % 4}"} for i in range(5)]
    await cache.put(
        sha256,
        {"description": "A cached description.", "models": {"clip": "x"}, "recommendations": {"by_meaning": meaning}},
    )
    await start_bot()  # by_look against by_meaning
    user = new_id()
    send_photo(telegram, user, photo)
    panel = await telegram.wait_for(is_panel(user), timeout=120)
    description = next(
        c for c in telegram.sent("sendMessage", chat_id=user) if c.params["text"].startswith("🖼")
    )
    assert description_of(description) == "A cached description."  # with the tags /v1/look found
    sets = await shown_sets(pool, analysis_id_of(panel))
    assert list(sets["by_meaning"]["artwork_ids"]) == [0, 1, 2, 3, 4]
    entry = await cache.get(sha256)
    assert entry is not None and set(entry["recommendations"]) == {"by_look", "by_meaning"}
    assert entry["description"] == "A cached description."
    assert entry["tags"] and description.params["text"].endswith(tag_line("en", [Tag(**tag) for tag in entry["tags"]]))
