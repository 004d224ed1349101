"""/foryou and the buttons under personal sets: likes, "show my picks" after onboarding, "more for me"."""

from __future__ import annotations

import logging

from aiogram import Bot, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command
from aiogram.types import CallbackQuery, Message

from bot.analysis_flow import AnalysisDeps
from bot.callbacks import ForYouCallback, SuggestionLikeCallback
from bot.handlers.feedback_buttons import acknowledge_like
from bot.inference_client import InferenceUnavailable
from bot.keyboards import suggestion_keyboard
from bot.personal import load_history, send_onboarding, send_suggestions
from bot.settings import BotSettings
from bot.texts import t
from feedback.recorder import DATABASE_DOWN, FeedbackRecorder
from storage.repositories import Repo

logger = logging.getLogger(__name__)


async def for_you(message: Message, bot: Bot, lang: str, settings: BotSettings, deps: AnalysisDeps) -> None:
    assert message.from_user is not None
    await _personal_set(bot, message.chat.id, message.from_user.id, lang, settings, deps)


async def more(
    query: CallbackQuery,
    callback_data: ForYouCallback,
    bot: Bot,
    lang: str,
    settings: BotSettings,
    deps: AnalysisDeps,
    recorder: FeedbackRecorder,
) -> None:
    user_id = query.from_user.id
    try:
        if await recorder.suggested_to(callback_data.suggestion_id, user_id) is None:
            await query.answer(t(lang, "forged"), show_alert=True)
            return
        history = await load_history(deps.pool, user_id)
    except DATABASE_DOWN:
        await query.answer(t(lang, "error"), show_alert=True)
        return
    if history.likes == 0:
        await query.answer(t(lang, "pick_a_few_first"), show_alert=True)
        return
    await query.answer()
    chat_id = query.message.chat.id if query.message is not None else user_id
    await _personal_set(bot, chat_id, user_id, lang, settings, deps)


async def like(
    query: CallbackQuery, callback_data: SuggestionLikeCallback, lang: str, recorder: FeedbackRecorder
) -> None:
    recorded = recorder.like_suggestion(
        query.from_user.id, callback_data.suggestion_id, callback_data.artwork_id, callback_data.value
    )
    if await acknowledge_like(query, lang, callback_data.value, recorded):
        await _redraw(query, recorder, lang, callback_data)


async def _personal_set(
    bot: Bot, chat_id: int, user_id: int, lang: str, settings: BotSettings, deps: AnalysisDeps
) -> None:
    """A new user (no ❤️ yet) gets the onboarding sample; everyone else a fresh set for their taste."""
    try:
        history = await load_history(deps.pool, user_id)
        if history.likes == 0:
            await send_onboarding(bot, chat_id, user_id, lang, deps)
        else:
            await send_suggestions(
                bot,
                chat_id,
                user_id,
                lang,
                deps,
                kind="foryou",
                k=settings.foryou_k,
                exploration=settings.foryou_exploration,
            )
    except InferenceUnavailable:
        await bot.send_message(chat_id, t(lang, "service_down"))
    except DATABASE_DOWN as exc:
        logger.warning("personal set not sent: database unavailable (%s)", type(exc).__name__)
        await bot.send_message(chat_id, t(lang, "error"))


async def _redraw(
    query: CallbackQuery, recorder: FeedbackRecorder, lang: str, pressed: SuggestionLikeCallback
) -> None:
    """Show the new marks; a failure here never undoes the recorded like."""
    if query.message is None:
        return
    try:
        async with recorder.pool.acquire(timeout=5) as conn:
            view = await Repo(conn).suggestions.get_for_user(pressed.suggestion_id, query.from_user.id)
    except DATABASE_DOWN:
        view = None
    if view is None:
        return
    likes = await recorder.current_likes(query.from_user.id, set(view.artwork_ids))
    likes[pressed.artwork_id] = pressed.value
    try:
        await query.bot.edit_message_reply_markup(
            chat_id=query.message.chat.id,
            message_id=query.message.message_id,
            reply_markup=suggestion_keyboard(lang, view.id, view.kind, view.artwork_ids, likes),
        )
    except TelegramBadRequest as exc:
        logger.debug("keyboard not redrawn: %s", exc.message)


def create_router() -> Router:
    """A fresh router per dispatcher (a router can belong to one dispatcher only)."""
    router = Router(name="personal")
    router.message.register(for_you, Command("foryou"), flags={"rate_limit": "photo"})
    router.callback_query.register(more, ForYouCallback.filter(), flags={"rate_limit": "photo"})
    router.callback_query.register(like, SuggestionLikeCallback.filter())
    return router
