"""Strangers send all sorts of things: each gets a clear answer in their language, nothing is stored, the bot
stays up."""

from __future__ import annotations

import itertools
from typing import Any

import asyncpg
import pytest

from bot.inference_client import ImageRefused, InferenceClient, InferenceUnavailable
from tests.bot.conftest import StartBot
from tests.bot.telegram_stub import TelegramStub
from tests.factories import image_bytes, png_claiming_size, synthetic_artwork
from tests.fixtures_gallery import SERVICE_TOKEN

_ids = itertools.count(1)


def send_document(
    telegram: TelegramStub, user: int, data: bytes, mime: str, lang: str = "en", **extra: Any
) -> str:
    file_id = f"doc-{next(_ids)}"
    telegram.add_file(file_id, data)
    document = {"file_id": file_id, "file_unique_id": file_id, "mime_type": mime, "file_name": "upload"}
    document["file_size"] = extra.pop("file_size", len(data))
    telegram.send_message(user, lang, document=document, **extra)
    return file_id


JPEG = image_bytes(synthetic_artwork(7))

CASES = [
    # (what the person sends, mime Telegram reports, expected fragment in English, in Russian)
    (
        "pdf",
        b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n%%EOF",
        "application/pdf",
        "couldn't read this",
        "Не получилось открыть",
    ),
    (
        "text named .jpg",
        b"just some notes, not a picture\n" * 20,
        "image/jpeg",
        "couldn't read this",
        "Не получилось открыть",
    ),
    ("corrupt jpeg", JPEG[: len(JPEG) // 3], "image/jpeg", "couldn't read this", "Не получилось открыть"),
    ("zero-byte jpeg", b"", "image/jpeg", "file is empty", "Файл пустой"),
    ("100-megapixel bomb", png_claiming_size(12_000, 9_000), "image/png", "enormous", "огромное"),
    ("broken gif as a file", b"GIF89a" + b"\x00" * 64, "image/gif", "couldn't read this video", "открыть это видео"),
]


@pytest.mark.parametrize(("case", "data", "mime", "english", "russian"), CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("lang", ["en", "ru"])
async def test_bad_file_gets_a_clear_answer_and_nothing_is_stored(
    telegram: TelegramStub,
    start_bot: StartBot,
    pool: asyncpg.Pool,
    new_id: Any,
    case: str,
    data: bytes,
    mime: str,
    english: str,
    russian: str,
    lang: str,
) -> None:
    await start_bot()
    user = new_id()
    send_document(telegram, user, data, mime, lang=lang)
    await telegram.wait_text(user, english if lang == "en" else russian, timeout=60)
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM analyses WHERE user_id = $1", user) == 0
    # and the bot is still there
    telegram.send_message(user, lang, text="/help")
    await telegram.wait_text(user, "/lang")


async def test_file_over_telegrams_download_limit_is_refused_without_downloading(
    telegram: TelegramStub, start_bot: StartBot, new_id: Any
) -> None:
    await start_bot()
    user = new_id()
    file_id = send_document(telegram, user, b"", "image/jpeg", file_size=25 * 1024 * 1024)
    await telegram.wait_text(user, "too big")
    assert not [c for c in telegram.sent("getFile") if c.params.get("file_id") == file_id]


async def test_telegram_refusing_the_download_is_explained(
    telegram: TelegramStub, start_bot: StartBot, new_id: Any
) -> None:
    await start_bot()
    user = new_id()
    file_id = f"doc-{next(_ids)}"
    telegram.refuse_download.add(file_id)
    telegram.send_message(
        user, "en", document={"file_id": file_id, "file_unique_id": file_id, "mime_type": "image/jpeg"}
    )
    await telegram.wait_text(user, "too big")


async def test_animated_sticker_and_gif_animation(
    telegram: TelegramStub, start_bot: StartBot, new_id: Any
) -> None:
    await start_bot()
    user = new_id()
    telegram.send_message(
        user,
        "en",
        sticker={
            "file_id": "st",
            "file_unique_id": "st",
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": True,
            "is_video": False,
        },
    )
    await telegram.wait_text(user, "Nice sticker")
    animation = {"file_id": "an", "file_unique_id": "an", "width": 10, "height": 10, "duration": 1}
    telegram.send_message(user, "en", animation=animation, document={"file_id": "an", "file_unique_id": "an"})
    await telegram.wait_text(user, "couldn't read this video")  # an animation Telegram cannot serve


async def test_an_unknown_command_gets_a_hint(telegram: TelegramStub, start_bot: StartBot, new_id: Any) -> None:
    """Plain text is a search by words (tests/bot/test_search.py); a command the bot lacks is told what it does."""
    await start_bot()
    user = new_id()
    telegram.send_message(user, "en", text="/paint me a picture")
    await telegram.wait_text(user, "I don't know this command. Send a photo")


async def test_inference_down_tells_the_user_and_stores_nothing(
    telegram: TelegramStub, start_bot: StartBot, pool: asyncpg.Pool, new_id: Any
) -> None:
    await start_bot(inference_url="http://127.0.0.1:9")  # nothing listens there
    user = new_id()
    send_document(telegram, user, JPEG, "image/jpeg")
    await telegram.wait_text(user, "unavailable right now")
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM analyses WHERE user_id = $1", user) == 0
    telegram.send_message(user, "en", text="/start")
    await telegram.wait_text(user, "I'm ArtMatch")


async def test_a_matchup_the_service_refuses_is_our_fault_not_the_photos(inference_url: str) -> None:
    """A recommender the service no longer has (or a personal one without a profile) must not be reported to the
    user as a bad image: the client calls it unavailable, so the user is asked to retry."""
    client = InferenceClient(inference_url, SERVICE_TOKEN, look_timeout=30, analyze_timeout=120)
    try:
        with pytest.raises(InferenceUnavailable) as gone:
            await client.analyze(JPEG, 5, ["by_look", "retired_recommender"])
        assert str(gone.value) == "unknown_recommender"
        with pytest.raises(InferenceUnavailable) as no_profile:
            await client.analyze(JPEG, 5, ["for_you", "by_look"])
        assert str(no_profile.value) == "needs_profile"
        with pytest.raises(ImageRefused):  # a bad image is still the image's fault
            await client.analyze(b"%PDF-1.4 not an image", 5, ["by_look", "by_meaning"])
    finally:
        await client.close()
