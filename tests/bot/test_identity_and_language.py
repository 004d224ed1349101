"""End to end, through the real inference service: "this is «Title», Artist, year" for a photographed gallery work
(and no claim otherwise), honest empty sets, and the description in the user's language."""

from __future__ import annotations

import hashlib
import itertools
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import numpy as np
import pytest
from PIL import Image
from redis.asyncio import Redis

from bot.photo_plan import CachedAnalysis
from bot.texts import t
from inference.contract import VoteChoice
from inference.gallery_store import MANIFEST
from inference.identify.synthetic import painting, photograph
from storage.cache import AnalysisCache
from tests.bot.conftest import StartBot
from tests.bot.telegram_stub import Call, TelegramStub
from tests.bot.test_photo_flow import (
    albums,
    analysis_id_of,
    description_of,
    is_panel,
    send_photo,
    vote_data,
    wait_answer,
)
from tests.fixtures_gallery import SERVICE_TOKEN
from tests.service_process import ServiceProcess

_seeds = itertools.count(100)


def phone_photo_of(path: Path) -> bytes:
    """A museum-visitor photo of a gallery work: framed on a wall, tilted, with glare, blur, noise and JPEG 60."""
    work = np.asarray(Image.open(path).convert("RGB"))
    shot = photograph(np.random.default_rng(next(_seeds)), work, max_tilt_deg=25, fill=(0.5, 0.9), max_cut=0.1)
    return shot.jpeg


def photo_of_a_work_not_in_the_gallery() -> bytes:
    rng = np.random.default_rng(next(_seeds) + 10_000)
    return photograph(rng, painting(rng), max_tilt_deg=20, fill=(0.5, 0.9), max_cut=0.1).jpeg


def texts_to(telegram: TelegramStub, user: int) -> list[Call]:
    return list(telegram.sent("sendMessage", chat_id=user))


def answer_to(telegram: TelegramStub, user: int) -> list[Call]:
    """Everything the bot sent this user but chat actions, in order."""
    return [c for c in telegram.calls if str(c.params.get("chat_id")) == str(user) and c.method != "sendChatAction"]


async def test_a_photographed_gallery_work_is_named_first_and_left_out_of_both_sets(
    telegram: TelegramStub, start_bot: StartBot, pool: asyncpg.Pool, new_id: Any, gallery_source: tuple[Path, Path]
) -> None:
    await start_bot()
    user = new_id()
    images, _ = gallery_source
    send_photo(telegram, user, phone_photo_of(images / "work_003.jpg"))
    panel = await telegram.wait_for(is_panel(user), timeout=120)

    answer = answer_to(telegram, user)
    assert answer[0].method == "sendMessage"
    assert answer[0].params["text"] == "📍 This is «Composition No. 3», Painter 3, 1883"
    for album in albums(telegram, user):
        titles = [str(m["caption"]) for m in album.params["media"]]
        assert len(titles) == 5, titles  # still a full set: the recognised work's place goes to the next one
        assert not any("Composition No. 3 —" in title for title in titles)
    async with pool.acquire() as conn:
        analysis = await conn.fetchrow("SELECT * FROM analyses WHERE id = $1", analysis_id_of(panel))
        shown = await conn.fetch("SELECT artwork_ids FROM shown_sets WHERE analysis_id = $1", analysis_id_of(panel))
    assert analysis is not None and analysis["matched_artwork_id"] == 3 and analysis["match_confidence"] >= 0.99
    assert all(3 not in row["artwork_ids"] for row in shown)


async def test_a_photo_of_no_gallery_work_makes_no_claim(
    telegram: TelegramStub, start_bot: StartBot, pool: asyncpg.Pool, new_id: Any
) -> None:
    await start_bot()
    user = new_id()
    send_photo(telegram, user, photo_of_a_work_not_in_the_gallery())
    panel = await telegram.wait_for(is_panel(user), timeout=120)

    assert not any(c.params["text"].startswith("📍") for c in texts_to(telegram, user))
    async with pool.acquire() as conn:
        analysis = await conn.fetchrow("SELECT * FROM analyses WHERE id = $1", analysis_id_of(panel))
    assert analysis is not None and analysis["matched_artwork_id"] is None and analysis["match_confidence"] is None


async def test_a_russian_user_gets_the_description_in_russian_translated_once(
    telegram: TelegramStub,
    start_bot: StartBot,
    pool: asyncpg.Pool,
    new_id: Any,
    gallery_source: tuple[Path, Path],
    bot_redis: Redis,
    inference_url: str,
) -> None:
    await start_bot()
    user = new_id()
    images, _ = gallery_source
    photo = (images / "work_005.jpg").read_bytes()
    send_photo(telegram, user, photo, lang="ru")
    panel = await telegram.wait_for(is_panel(user), timeout=120)

    description = next(c for c in texts_to(telegram, user) if c.params["text"].startswith("🖼"))
    shown = description_of(description)
    cached = CachedAnalysis.parse(await AnalysisCache(bot_redis, ttl_seconds=60).get(hashlib.sha256(photo).hexdigest()))
    # The describer writes English; the user reads the service's Russian translation of it, cached with the photo.
    assert cached.description and cached.translations["ru"] == shown != cached.description
    async with httpx.AsyncClient(base_url=inference_url, headers={"Authorization": f"Bearer {SERVICE_TOKEN}"}) as c:
        translated = (await c.post("/v1/translate", json={"text": cached.description, "language": "ru"})).json()
    assert translated["text"] == shown
    async with pool.acquire() as conn:
        analysis = await conn.fetchrow("SELECT * FROM analyses WHERE id = $1", analysis_id_of(panel))
    assert analysis is not None and analysis["language"] == "ru" and analysis["description"] == shown

    # An English user sending the same photo gets the English description from the cache.
    other = new_id()
    send_photo(telegram, other, photo, lang="en")
    await telegram.wait_for(is_panel(other), timeout=120)
    english = next(c for c in texts_to(telegram, other) if c.params["text"].startswith("🖼"))
    assert description_of(english) == cached.description


@pytest.fixture
def floored_inference(
    tiny_gallery: Path, tiny_model_env: dict[str, str], tmp_path: Path
) -> Iterator[str]:
    """The real service with relevance floors ON, over a copy of the test gallery whose image-space floor no cosine
    can clear (random weights cannot make a photo that is truly far from everything) and whose text floor keeps all."""
    gallery = tmp_path / "floored"
    shutil.copytree(tiny_gallery, gallery)
    manifest = json.loads((gallery / MANIFEST).read_text())
    floor = {"quantile": 0.99, "pairs": 91, "mean": 0.5, "std": 0.1}
    manifest["relevance"] = {
        "image": {**floor, "floor": 1.5},
        "clip_text": {**floor, "floor": 1.5},
        "text": {**floor, "floor": -1.0},
    }
    (gallery / MANIFEST).write_text(json.dumps(manifest))
    env = {**tiny_model_env, "INFERENCE_TOKEN": SERVICE_TOKEN, "INFERENCE_RELEVANCE_FLOOR": "true"}
    service = ServiceProcess(gallery, env, tmp_path / "inference.log")
    service.start()
    yield service.url
    service.stop()


async def test_a_set_nothing_clears_is_said_plainly_voted_on_and_recorded_empty(
    telegram: TelegramStub, start_bot: StartBot, pool: asyncpg.Pool, new_id: Any, floored_inference: str
) -> None:
    await start_bot(inference_url=floored_inference)
    user = new_id()
    send_photo(telegram, user, photo_of_a_work_not_in_the_gallery(), lang="ru")
    panel = await telegram.wait_for(is_panel(user), timeout=120)
    analysis_id = analysis_id_of(panel)

    async with pool.acquire() as conn:
        sets = {
            r["recommender"]: r
            for r in await conn.fetch("SELECT * FROM shown_sets WHERE analysis_id = $1", analysis_id)
        }
    assert list(sets["by_look"]["artwork_ids"]) == []  # the arena still records what was shown: nothing
    assert len(sets["by_meaning"]["artwork_ids"]) == 5
    empty_label = "A" if sets["by_look"]["side"] == "left" else "B"
    said = [c.params["text"] for c in texts_to(telegram, user)]
    assert t("ru", "nothing_close_set", label=empty_label) in said
    assert said[0].startswith(f"Набор {empty_label}: в галерее нет ничего достаточно близкого")
    (only_album,) = albums(telegram, user)  # no album of weak matches, the other set as usual
    assert all(str(m["caption"]).startswith("AB".replace(empty_label, "")) for m in only_album.params["media"])
    like_buttons = [b for row in panel.params["reply_markup"]["inline_keyboard"] for b in row if "🤍" in b["text"]]
    assert len(like_buttons) == 5

    # The vote on a matchup with an empty side counts like any other.
    winner: VoteChoice = "right" if empty_label == "A" else "left"
    mark = len(telegram.calls)
    telegram.press(user, vote_data(analysis_id, winner), lang="ru")
    assert (await wait_answer(telegram, mark)).params.get("text") == "Спасибо, голос учтён!"
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT choice FROM votes WHERE analysis_id = $1", analysis_id) == winner
