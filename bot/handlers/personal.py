"""/foryou and the buttons under personal sets: likes, "show my picks" after onboarding, "more for me"."""

from __future__ import annotations

import logging

from aiogram import Bot, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, Message

from bot.callbacks import ForYouCallback, SuggestionLikeCallback
from bot.chat import Chat
from bot.handlers.feedback_buttons import LIKE_ANSWERS, NOT_RECORDED, acknowledge
from bot.inference_client import InferenceUnavailable
from bot.keyboards import redraw, suggestion_keyboard
from bot.services import Services
from bot.texts import t
from feedback.history import History
from storage.db import DATABASE_DOWN, UnitOfWork

logger = logging.getLogger(__name__)

async def for_you(message: Message, bot: Bot, lang: str, services: Services, uow: UnitOfWork) -> None:
    assert message.from_user is not None
    await _personal_set(Chat(bot, message.chat.id, message.from_user.id, lang), services, uow)


async def more(
    query: CallbackQuery, callback_data: ForYouCallback, bot: Bot, lang: str, services: Services, uow: UnitOfWork
) -> None:
    """"More for me" (or "show my picks"): the user's history is read once and handed down."""
    user_id = query.from_user.id
    try:
        if await services.recorder.suggested_to(callback_data.suggestion_id, user_id) is None:
            await query.answer(t(lang, "forged"), show_alert=True)
            return
        history = await services.personal.history(uow, user_id)
    except DATABASE_DOWN:
        await query.answer(t(lang, "error"), show_alert=True)
        return
    if not history.has_profile:
        await query.answer(t(lang, "pick_a_few_first"), show_alert=True)
        return
    await query.answer()
    chat_id = query.message.chat.id if query.message is not None else user_id
    await _personal_set(Chat(bot, chat_id, user_id, lang), services, uow, history)


async def like(query: CallbackQuery, callback_data: SuggestionLikeCallback, lang: str, services: Services) -> None:
    recorder = services.recorder
    user_id = query.from_user.id
    pressed = callback_data
    recorded = recorder.like_suggestion(user_id, pressed.suggestion_id, pressed.artwork_id, pressed.value)
    answer = LIKE_ANSWERS[callback_data.value]
    if await acknowledge(query, lang, recorded, saved=answer, unchanged=answer) is None:
        return
    try:
        view = await recorder.suggestion(callback_data.suggestion_id, user_id)
    except DATABASE_DOWN:
        return  # the like is queued; the buttons catch up on the next press
    if view is None:
        return
    likes = await recorder.current_likes(user_id, set(view.artwork_ids))
    likes[callback_data.artwork_id] = callback_data.value
    await redraw(query, suggestion_keyboard(lang, view.id, view.kind, view.artwork_ids, likes))


async def _personal_set(chat: Chat, services: Services, uow: UnitOfWork, history: History | None = None) -> None:
    try:
        await services.personal.for_you(chat, uow, history)
    except InferenceUnavailable:
        await chat.say(t(chat.lang, "service_down"))
    except NOT_RECORDED as exc:
        logger.warning("personal set not sent: storage unavailable (%s)", type(exc).__name__)
        await chat.say(t(chat.lang, "error"))


def create_router() -> Router:
    """A fresh router per dispatcher (a router can belong to one dispatcher only)."""
    router = Router(name="personal")
    router.message.register(for_you, Command("foryou"), flags={"rate_limit": "photo"})
    router.callback_query.register(more, ForYouCallback.filter(), flags={"rate_limit": "photo"})
    router.callback_query.register(like, SuggestionLikeCallback.filter())
    return router
