"""/likes: the works the user liked, newest first, a page at a time, and 💔 to take a like back.

A page is an album (numbered captions: title, artist, year) followed by a panel: 💔 n per work, ◀ ▶ to the pages
around it. Albums cannot be edited into other albums, so ◀ ▶ send the wanted page anew; pages are counted on the
collection as it is when pressed, so an old panel's arrows lead to a real page (or to a polite "gone"). 💔 names
the work, never a position on a page, so an old panel can only remove the very work it shows, and only the
presser's own ❤️. It goes through FeedbackRecorder like any undo, so the taste profile follows.
"""

from __future__ import annotations

import logging
import math

from aiogram import Bot, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message

from bot.albums import caption_for, send_album
from bot.callbacks import LikesPageCallback, UnlikeCallback
from bot.chat import Chat
from bot.handlers.feedback_buttons import acknowledge
from bot.inference_client import InferenceUnavailable
from bot.keyboards import likes_keyboard
from bot.services import Services
from bot.texts import t
from inference.contract import Artwork
from storage.db import DATABASE_DOWN, UnitOfWork
from storage.repositories import LikedPage

logger = logging.getLogger(__name__)

PAGE_SIZE = 5


async def likes(message: Message, bot: Bot, lang: str, services: Services, uow: UnitOfWork) -> None:
    assert message.from_user is not None
    chat = Chat(bot, message.chat.id, message.from_user.id, lang)
    try:
        page = await _load(uow, chat.user_id, 1)
    except DATABASE_DOWN:
        await chat.say(t(lang, "likes_unavailable"))
        return
    if page.total == 0:
        await chat.say(t(lang, "likes_empty"))
        return
    await _send(chat, services, uow, 1, page)


async def turn_page(
    query: CallbackQuery, callback_data: LikesPageCallback, bot: Bot, lang: str, services: Services, uow: UnitOfWork
) -> None:
    user_id = query.from_user.id
    try:
        page = await _load(uow, user_id, callback_data.page)
    except DATABASE_DOWN:
        await query.answer(t(lang, "likes_unavailable"), show_alert=True)
        return
    if not page.works:  # forged, or the collection shrank since that panel was sent
        await query.answer(t(lang, "likes_page_gone" if page.total else "likes_empty"), show_alert=True)
        return
    await query.answer()
    chat_id = query.message.chat.id if query.message is not None else user_id
    await _send(Chat(bot, chat_id, user_id, lang), services, uow, callback_data.page, page)


async def unlike(
    query: CallbackQuery, callback_data: UnlikeCallback, lang: str, services: Services, uow: UnitOfWork
) -> None:
    recorder = services.recorder
    removing = recorder.remove_like(query.from_user.id, callback_data.artwork_id)
    if await acknowledge(query, lang, removing, saved="like_removed", unchanged="like_not_there") is None:
        return
    await _redraw_panel(query, lang, services, uow, callback_data)


async def _load(uow: UnitOfWork, user_id: int, page: int) -> LikedPage:
    async with uow() as repo:
        return await repo.likes.liked_page(user_id, (page - 1) * PAGE_SIZE, PAGE_SIZE)


async def _send(chat: Chat, services: Services, uow: UnitOfWork, number: int, page: LikedPage) -> None:
    """The page's album (uploading images Telegram has not seen yet), then its panel."""
    works = [Artwork(artwork_id=w.artwork_id, title=w.title, artist=w.artist, year=w.year) for w in page.works]
    captions = [caption_for("", position, work) for position, work in enumerate(works, start=1)]
    known = {w.artwork_id: w.file_id for w in page.works if w.file_id}
    try:
        uploaded = await send_album(chat, works, captions, known, services.inference)
    except InferenceUnavailable:
        await chat.say(t(chat.lang, "service_down"))
        return
    try:
        async with uow() as repo:
            for artwork_id, file_id in uploaded.items():
                await repo.artworks.set_file_id(artwork_id, file_id)
    except DATABASE_DOWN:
        pass  # uploaded again next time
    pages = math.ceil(page.total / PAGE_SIZE)
    on_page = [(position, w.artwork_id) for position, w in enumerate(page.works, start=1)]
    await chat.say(
        t(chat.lang, "likes_panel", total=page.total, page=number, pages=pages),
        reply_markup=likes_keyboard(number, pages, on_page),
    )


async def _redraw_panel(
    query: CallbackQuery, lang: str, services: Services, uow: UnitOfWork, pressed: UnlikeCallback
) -> None:
    """The panel again without the works no longer liked (the album above it keeps its numbers) and with the new
    count; a failure here never undoes the removal."""
    message = query.message
    if message is None or query.bot is None or not isinstance(message, Message):
        return
    shown = _works_on(message.reply_markup)
    try:
        async with uow() as repo:
            total = await repo.likes.count_liked(query.from_user.id)
    except DATABASE_DOWN:
        return  # the removal is queued; the next /likes shows it
    liked = await services.recorder.current_likes(query.from_user.id, {artwork_id for _, artwork_id in shown})
    liked.pop(pressed.artwork_id, None)  # gone even while the removal waits in the outbox
    still = [(position, artwork_id) for position, artwork_id in shown if liked.get(artwork_id) == 1]
    pages = max(1, math.ceil(total / PAGE_SIZE))
    text = (
        t(lang, "likes_panel", total=total, page=pressed.page, pages=max(pages, pressed.page))
        if total
        else t(lang, "likes_panel_empty")
    )
    try:
        await query.bot.edit_message_text(
            text=text,
            chat_id=message.chat.id,
            message_id=message.message_id,
            reply_markup=likes_keyboard(pressed.page, pages if total else 0, still),
        )
    except TelegramBadRequest as exc:  # "message is not modified" and friends
        logger.debug("likes panel not redrawn: %s", exc.message)


def _works_on(markup: InlineKeyboardMarkup | None) -> list[tuple[int, int]]:
    """(position, artwork id) of the 💔 buttons on a panel; anything else on it is ignored."""
    works = []
    for row in markup.inline_keyboard if markup is not None else []:
        for button in row:
            data = button.callback_data or ""
            if data.startswith(UnlikeCallback.__prefix__ + ":"):
                try:
                    unpacked = UnlikeCallback.unpack(data)
                except ValueError:
                    continue
                works.append((unpacked.position, unpacked.artwork_id))
    return works


def create_router() -> Router:
    """A fresh router per dispatcher (a router can belong to one dispatcher only)."""
    router = Router(name="likes")
    # A page is an album: paging shares the photos' budget, so ◀ ▶ cannot be used to flood a chat.
    router.message.register(likes, Command("likes"), flags={"rate_limit": "photo"})
    router.callback_query.register(turn_page, LikesPageCallback.filter(), flags={"rate_limit": "photo"})
    router.callback_query.register(unlike, UnlikeCallback.filter())
    return router
