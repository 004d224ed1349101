"""Photos and image documents in (videos, GIFs and stickers: handlers/media.py).

The parts of an album arrive as separate updates; they are collected and answered one photo at a time, in the
order sent, each answer replying to its own photo.
"""

from __future__ import annotations

import io
import logging
import random

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import Message

from bot.chat import Chat
from bot.services import Services
from bot.texts import t
from storage.db import UnitOfWork

logger = logging.getLogger(__name__)

IMAGE_MIME_TYPES = frozenset({"image/jpeg", "image/png", "image/webp"})
_rng = random.SystemRandom()


async def photo(message: Message, bot: Bot, lang: str, services: Services, uow: UnitOfWork) -> None:
    if message.media_group_id is None:
        await _analyse(message, bot, lang, services, uow)
        return
    album = await services.albums.collect(message)
    for part in album or ():  # None: another part's handler answers the whole album
        await _analyse(part, bot, lang, services, uow)


async def document(message: Message, bot: Bot, lang: str, services: Services, uow: UnitOfWork) -> None:
    mime = ((message.document and message.document.mime_type) or "").lower()
    if mime not in IMAGE_MIME_TYPES:
        await message.reply(t(lang, "not_an_image"))
        return
    await photo(message, bot, lang, services, uow)


async def _analyse(message: Message, bot: Bot, lang: str, services: Services, uow: UnitOfWork) -> None:
    assert message.from_user is not None
    chat = Chat(bot, message.chat.id, message.from_user.id, lang, reply_to=message.message_id)
    if message.photo:
        file_id, file_size = message.photo[-1].file_id, message.photo[-1].file_size
    else:
        assert message.document is not None
        file_id, file_size = message.document.file_id, message.document.file_size
    data = await download(chat, file_id, file_size, services.settings.max_download_bytes)
    if data is not None:
        await services.photos.answer(chat, data, uow, _rng)


async def download(
    chat: Chat,
    file_id: str,
    file_size: int | None,
    cap: int,
    *,
    too_big: str = "too_big",
    unreadable: str = "not_an_image",
) -> bytes | None:
    """The file's bytes, or None after telling the user why not (too big, empty, refused by Telegram). A size over
    the cap is refused before anything is downloaded; `too_big` and `unreadable` name the texts that say so."""
    if file_size is not None and file_size > cap:
        await chat.say(t(chat.lang, too_big))
        return None
    if file_size == 0:
        await chat.say(t(chat.lang, "empty_file"))
        return None
    buffer = io.BytesIO()
    try:
        await chat.bot.download(file_id, destination=buffer)
    except TelegramBadRequest as exc:
        # Telegram refuses getFile for files over 20 MB ("file is too big").
        logger.info("download refused: %s", exc.message)
        await chat.say(t(chat.lang, too_big if "too big" in exc.message.lower() else unreadable))
        return None
    data = buffer.getvalue()
    if len(data) > cap:
        await chat.say(t(chat.lang, too_big))
        return None
    if not data:
        await chat.say(t(chat.lang, "empty_file"))
        return None
    return data


def create_router() -> Router:
    """A fresh router per dispatcher (a router can belong to one dispatcher only)."""
    router = Router(name="photos")
    router.message.register(photo, F.photo, flags={"rate_limit": "photo"})
    router.message.register(document, F.document, flags={"rate_limit": "photo"})
    return router
