"""Videos, video notes, GIFs (as animations or as files) and stickers.

A moving picture is answered like a photo of its sharpest sampled frame (bot/keyframes.py), after a line saying
a frame was used. A sticker gets a friendly note on what the bot takes; so does everything else no router takes
(voice, audio, locations, …: handlers/fallback.py).
"""

from __future__ import annotations

import logging
import random
from typing import Literal

from aiogram import Bot, F, Router
from aiogram.types import Message

from bot.chat import Chat
from bot.handlers.photos import download
from bot.keyframes import UnreadableVideo
from bot.services import Services
from bot.texts import t
from storage.db import UnitOfWork

logger = logging.getLogger(__name__)

MovingKind = Literal["video", "animation"]
# What Telegram lets people send as a file that is a moving picture (mp4, webm, mov, mkv, …, and GIF).
GIF_MIME_TYPES = frozenset({"image/gif"})
_rng = random.SystemRandom()


def is_moving_document(message: Message) -> bool:
    mime = ((message.document and message.document.mime_type) or "").lower()
    return mime.startswith("video/") or mime in GIF_MIME_TYPES


def _what_was_sent(message: Message) -> tuple[MovingKind, str, int | None]:
    """(kind, file_id, file_size) of the moving picture in the message."""
    if message.animation is not None:
        return "animation", message.animation.file_id, message.animation.file_size
    if message.video is not None:
        return "video", message.video.file_id, message.video.file_size
    if message.video_note is not None:
        return "video", message.video_note.file_id, message.video_note.file_size
    assert message.document is not None
    kind: MovingKind = "animation" if (message.document.mime_type or "").lower() in GIF_MIME_TYPES else "video"
    return kind, message.document.file_id, message.document.file_size


async def moving_picture(message: Message, bot: Bot, lang: str, services: Services, uow: UnitOfWork) -> None:
    assert message.from_user is not None
    chat = Chat(bot, message.chat.id, message.from_user.id, lang, reply_to=message.message_id)
    kind, file_id, file_size = _what_was_sent(message)
    cap = services.settings.max_download_bytes
    data = await download(chat, file_id, file_size, cap, too_big="video_too_big", unreadable="video_unreadable")
    if data is None:
        return
    try:
        still = await services.keyframes.extract(data)
    except UnreadableVideo as exc:
        logger.info("no key frame from a %s of %d bytes: %s", kind, len(data), exc)
        await chat.say(t(lang, "video_unreadable"))
        return
    await chat.say(t(lang, f"keyframe_{kind}"))
    await services.photos.answer(chat, still, uow, _rng)


async def sticker(message: Message, lang: str) -> None:
    await message.reply(t(lang, "sticker"))


def create_router() -> Router:
    """A fresh router per dispatcher (a router can belong to one dispatcher only). It goes before the photos
    router, whose document handler would otherwise take a GIF or a video sent as a file."""
    router = Router(name="media")
    moving = F.animation | F.video | F.video_note
    router.message.register(moving_picture, moving, flags={"rate_limit": "photo"})
    router.message.register(moving_picture, F.document, is_moving_document, flags={"rate_limit": "photo"})
    router.message.register(sticker, F.sticker)
    return router
