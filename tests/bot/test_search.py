"""End to end, through the real inference service: words in Russian or English (a plain message or /search) get two
sets from two text recommenders, recorded like a photo's and voted on; an empty or over-long search, and a search
nothing matches, are answered plainly; a vote survives a Postgres outage."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from redis.asyncio import Redis

from bot.arena import answers_words
from bot.callbacks import LikeCallback
from bot.inference_client import InferenceClient
from bot.settings import BotSettings
from bot.texts import t
from inference.gallery_store import MANIFEST
from tests.bot.conftest import StartBot, bot_on_a_dead_database, bot_settings, polling
from tests.bot.telegram_stub import Call, TelegramStub
from tests.bot.test_photo_flow import albums, analysis_id_of, buttons, is_panel, vote_data, wait_answer
from tests.fixtures_gallery import SERVICE_TOKEN
from tests.service_process import ServiceProcess


@pytest.fixture
async def text_recommenders(inference_url: str) -> AsyncIterator[set[str]]:
    """What the service lists as text recommenders: the arena picks its pairs among these."""
    client = InferenceClient(inference_url, SERVICE_TOKEN, look_timeout=30, analyze_timeout=60)
    try:
        yield {entry.name for entry in await client.recommenders() if answers_words(entry)}
    finally:
        await client.close()


def after(telegram: TelegramStub, mark: int, check: Any) -> Any:
    return lambda call: check(call) and telegram.calls.index(call) >= mark


async def search(telegram: TelegramStub, user: int, text: str, lang: str) -> Call:
    """Send `text` and wait for the vote panel under its sets."""
    mark = len(telegram.calls)
    telegram.send_message(user, lang, text=text)
    return await telegram.wait_for(after(telegram, mark, is_panel(user)), timeout=120)


@pytest.mark.parametrize(
    ("text", "lang", "query"),
    [
        ("рыцарь на белом коне", "ru", "рыцарь на белом коне"),
        ("/search stormy sea   at night", "en", "stormy sea at night"),
    ],
)
async def test_words_get_two_text_sets_recorded_with_their_recommenders_and_voted_on(
    telegram: TelegramStub,
    start_bot: StartBot,
    pool: asyncpg.Pool,
    new_id: Any,
    text_recommenders: set[str],
    text: str,
    lang: str,
    query: str,
) -> None:
    assert len(text_recommenders) >= 2, text_recommenders
    await start_bot()
    user = new_id()
    panel = await search(telegram, user, text, lang)
    analysis_id = analysis_id_of(panel)

    async with pool.acquire() as conn:
        analysis = await conn.fetchrow("SELECT * FROM analyses WHERE id = $1", analysis_id)
        sets = {r["side"]: r for r in await conn.fetch("SELECT * FROM shown_sets WHERE analysis_id = $1", analysis_id)}
    assert analysis is not None
    assert (analysis["kind"], analysis["query_text"], analysis["image_sha256"]) == ("text", query, None)
    assert analysis["user_id"] == user and analysis["language"] == lang
    assert set(sets) == {"left", "right"}
    names = {sets["left"]["recommender"], sets["right"]["recommender"]}
    assert len(names) == 2 and names <= text_recommenders  # two different text recommenders, from the catalogue

    # Each set is an album captioned with its side, in the order stored; the panel is the usual one.
    shown = albums(telegram, user)
    assert len(shown) == 2
    for album, side, label in zip(shown, ("left", "right"), "AB", strict=True):
        captions = [str(m["caption"]) for m in album.params["media"]]
        assert all(c.startswith(label) for c in captions)
        assert len(captions) == len(sets[side]["artwork_ids"]) == 5
    assert panel.params["text"] == t(lang, "ask_vote")
    labels = [b["text"] for b in buttons(panel)]
    assert labels[:2] == [t(lang, "vote_left"), t(lang, "vote_right")]
    assert sum(1 for label in labels if label.endswith("🤍")) == 10

    mark = len(telegram.calls)
    telegram.press(user, vote_data(analysis_id, "right"), lang=lang)
    assert (await wait_answer(telegram, mark)).params.get("text") == t(lang, "vote_saved")
    like = next(b for b in buttons(panel) if b["text"] == "A1 🤍")
    mark = len(telegram.calls)
    telegram.press(user, like["callback_data"], lang=lang)
    assert (await wait_answer(telegram, mark)).params.get("text") == t(lang, "liked")
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT choice FROM votes WHERE analysis_id = $1", analysis_id) == "right"
        liked = await conn.fetchrow("SELECT artwork_id, value, analysis_id FROM likes WHERE user_id = $1", user)
    assert liked is not None
    assert (liked["artwork_id"], liked["value"], liked["analysis_id"]) == (
        sets["left"]["artwork_ids"][0],
        1,
        analysis_id,
    )


async def test_an_empty_search_gets_examples_and_a_long_one_is_cut_with_a_note(
    telegram: TelegramStub, start_bot: StartBot, pool: asyncpg.Pool, new_id: Any
) -> None:
    await start_bot(search_max_chars=40)
    user = new_id()
    telegram.send_message(user, "ru", text="/search")
    hint = await telegram.wait_text(user, "Напишите, что найти")
    assert "/search рыцарь на белом коне" in hint.params["text"]
    telegram.send_message(user, "en", text="/search    ")
    await telegram.wait_text(user, "Tell me what to look for")
    mark = len(telegram.calls)
    telegram.send_message(user, "en", text="\u200b\u200b")  # zero-width spaces: nothing the service can read
    await telegram.wait_for(
        lambda c: telegram.calls.index(c) >= mark and "Tell me what to look for" in str(c.params.get("text")), 60
    )
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM analyses WHERE user_id = $1", user) == 0
    emoji = await search(telegram, user, "🌊🌙⛵", "en")  # emoji are words too
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT query_text FROM analyses WHERE id = $1", analysis_id_of(emoji)) == "🌊🌙⛵"

    words = "a long quiet river under a grey sky with willows " * 20  # ~1000 characters
    panel = await search(telegram, user, words, "en")
    await telegram.wait_text(user, "Your text is long, so I searched its first 40 characters.")
    async with pool.acquire() as conn:
        asked = await conn.fetchval("SELECT query_text FROM analyses WHERE id = $1", analysis_id_of(panel))
    assert asked == "a long quiet river under a grey sky with"


@pytest.fixture
def floored_inference(
    request: pytest.FixtureRequest, tiny_gallery: Path, tiny_model_env: dict[str, str], tmp_path: Path
) -> Iterator[str]:
    """The real service with relevance floors ON, over a copy of the test gallery: the spaces named by the test's
    parameter keep every hit (floor -1), every other space has a floor no cosine can clear."""
    open_spaces = set(request.param)
    gallery = tmp_path / "floored"
    shutil.copytree(tiny_gallery, gallery)
    manifest = json.loads((gallery / MANIFEST).read_text())
    floor = {"quantile": 0.99, "pairs": 91, "mean": 0.5, "std": 0.1}
    spaces = {*(manifest.get("relevance") or {}), "image", "text", "clip_text", "description_clip"}
    manifest["relevance"] = {space: {**floor, "floor": -1.0 if space in open_spaces else 1.5} for space in spaces}
    (gallery / MANIFEST).write_text(json.dumps(manifest))
    env = {**tiny_model_env, "INFERENCE_TOKEN": SERVICE_TOKEN, "INFERENCE_RELEVANCE_FLOOR": "true"}
    service = ServiceProcess(gallery, env, tmp_path / "inference.log")
    service.start(timeout=300)  # a second service while the first runs: slow to load on a busy 2-core machine
    yield service.url
    service.stop()


@pytest.mark.parametrize("floored_inference", [()], indirect=True)
async def test_a_search_nothing_matches_says_so_plainly(
    telegram: TelegramStub, start_bot: StartBot, pool: asyncpg.Pool, new_id: Any, floored_inference: str
) -> None:
    await start_bot(inference_url=floored_inference)
    user = new_id()
    telegram.send_message(user, "ru", text="бурное море ночью")
    said = await telegram.wait_text(user, "В галерее нет ничего достаточно близкого к «бурное море ночью»")
    assert said.params["text"] == t("ru", "nothing_found", query="бурное море ночью")
    await asyncio.sleep(0.5)
    assert albums(telegram, user) == [] and not any(is_panel(user)(c) for c in telegram.calls)


@pytest.mark.parametrize("floored_inference", [("description_clip",)], indirect=True)
async def test_a_text_set_nothing_clears_is_said_plainly_recorded_empty_and_voted_on(
    telegram: TelegramStub, start_bot: StartBot, pool: asyncpg.Pool, new_id: Any, floored_inference: str
) -> None:
    """words_look searches the image space from the words (clip_text, closed here); words_meaning the descriptions
    (description_clip, open): one set is empty, said so in place of its album, and the matchup still counts."""
    await start_bot(inference_url=floored_inference)
    user = new_id()
    panel = await search(telegram, user, "stormy sea at night", "en")
    analysis_id = analysis_id_of(panel)
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT * FROM shown_sets WHERE analysis_id = $1", analysis_id)
    sets = {row["recommender"]: row for row in rows}
    assert list(sets["words_look"]["artwork_ids"]) == [] and len(sets["words_meaning"]["artwork_ids"]) == 5
    empty = "A" if sets["words_look"]["side"] == "left" else "B"
    said = [c.params["text"] for c in telegram.sent("sendMessage", chat_id=user)]
    assert t("en", "nothing_found_set", label=empty) in said
    (album,) = albums(telegram, user)
    assert all(not str(m["caption"]).startswith(empty) for m in album.params["media"])
    assert sum(1 for b in buttons(panel) if b["text"].endswith("🤍")) == 5
    mark = len(telegram.calls)
    telegram.press(user, vote_data(analysis_id, "right" if empty == "A" else "left"))
    assert (await wait_answer(telegram, mark)).params.get("text") == t("en", "vote_saved")


async def test_a_vote_and_a_like_on_text_sets_survive_a_postgres_outage(
    telegram: TelegramStub,
    pool: asyncpg.Pool,
    pg_dsn: str,
    redis_url: str,
    bot_redis: Redis,
    inference_url: str,
    new_id: Any,
) -> None:
    user = new_id()
    # the setting's own default here, not the two-set flow the other bot tests use
    arena = BotSettings.model_fields["arena_recommenders"].get_default(call_default_factory=True)
    settings = bot_settings(telegram, inference_url, pg_dsn, redis_url, arena_recommenders=arena)
    async with polling(settings, pool=pool):
        panel = await search(telegram, user, "/search портрет женщины в красном", "ru")
    analysis_id = analysis_id_of(panel)
    like = LikeCallback.unpack(next(b for b in buttons(panel) if b["text"] == "B2 🤍")["callback_data"])

    async with bot_on_a_dead_database(telegram, bot_redis, inference_url=inference_url):
        for data, answer in ((vote_data(analysis_id, "both"), "vote_saved"), (like.pack(), "liked")):
            mark = len(telegram.calls)
            telegram.press(user, data, lang="ru")
            assert (await wait_answer(telegram, mark)).params.get("text") == t("ru", answer)  # queued in the outbox
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM votes WHERE analysis_id = $1", analysis_id) == 0

    async with polling(settings, pool=pool):  # Postgres is back: the outbox replay writes both
        deadline = time.monotonic() + 30
        async with pool.acquire() as conn:
            while await conn.fetchval("SELECT count(*) FROM likes WHERE user_id = $1", user) == 0:
                assert time.monotonic() < deadline, "the queued like was never applied"
                await asyncio.sleep(0.2)
            assert await conn.fetchval("SELECT choice FROM votes WHERE analysis_id = $1", analysis_id) == "both"
            liked = await conn.fetchrow("SELECT artwork_id, analysis_id FROM likes WHERE user_id = $1", user)
    assert liked is not None and (liked["artwork_id"], liked["analysis_id"]) == (like.artwork_id, analysis_id)
