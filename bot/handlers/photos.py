"""Photos and image documents in; everything that is not a still image gets a friendly explanation."""

from __future__ import annotations

import io
import logging
import random

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import Message

from bot.analysis_flow import AnalysisDeps, answer_photo
from bot.settings import BotSettings
from bot.texts import t

logger = logging.getLogger(__name__)

IMAGE_MIME_TYPES = frozenset({"image/jpeg", "image/png", "image/webp"})
_rng = random.SystemRandom()


async def photo(message: Message, bot: Bot, lang: str, settings: BotSettings, deps: AnalysisDeps) -> None:
    largest = message.photo[-1]  # type: ignore[index]
    await _analyse_file(message, bot, lang, settings, deps, largest.file_id, largest.file_size)


async def moving_picture(message: Message, lang: str) -> None:
    await message.answer(t(lang, "unsupported_format"))


async def sticker(message: Message, lang: str) -> None:
    await message.answer(t(lang, "sticker"))


async def document(message: Message, bot: Bot, lang: str, settings: BotSettings, deps: AnalysisDeps) -> None:
    doc = message.document
    assert doc is not None
    mime = (doc.mime_type or "").lower()
    if mime == "image/gif":
        await message.answer(t(lang, "unsupported_format"))
        return
    if mime not in IMAGE_MIME_TYPES:
        await message.answer(t(lang, "not_an_image"))
        return
    await _analyse_file(message, bot, lang, settings, deps, doc.file_id, doc.file_size)


async def _analyse_file(
    message: Message,
    bot: Bot,
    lang: str,
    settings: BotSettings,
    deps: AnalysisDeps,
    file_id: str,
    file_size: int | None,
) -> None:
    if file_size is not None and file_size > settings.max_download_bytes:
        await message.answer(t(lang, "too_big"))
        return
    if file_size == 0:
        await message.answer(t(lang, "empty_file"))
        return
    try:
        buffer = await bot.download(file_id, destination=io.BytesIO())
    except TelegramBadRequest as exc:
        # Telegram refuses getFile for files over 20 MB ("file is too big").
        logger.info("download refused: %s", exc.message)
        await message.answer(t(lang, "too_big" if "too big" in exc.message.lower() else "not_an_image"))
        return
    assert buffer is not None
    data = buffer.getvalue()
    if len(data) > settings.max_download_bytes:
        await message.answer(t(lang, "too_big"))
        return
    if not data:
        await message.answer(t(lang, "empty_file"))
        return
    assert message.from_user is not None
    await answer_photo(bot, message.chat.id, message.from_user.id, data, lang, deps, _rng)


def create_router() -> Router:
    """A fresh router per dispatcher (a router can belong to one dispatcher only)."""
    router = Router(name="photos")
    router.message.register(photo, F.photo, flags={"rate_limit": "photo"})
    router.message.register(moving_picture, F.animation | F.video | F.video_note)
    router.message.register(sticker, F.sticker)
    router.message.register(document, F.document, flags={"rate_limit": "photo"})
    return router
