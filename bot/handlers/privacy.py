"""/forget: after a confirming tap, delete everything the bot knows about the person who tapped.

The confirm button carries no user id: whoever presses it (even on a forwarded or forged button) can only ever
delete their own data, `query.from_user.id`.
"""

from __future__ import annotations

import logging

from aiogram import Router
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message

from bot.callbacks import ForgetCallback
from bot.handlers.feedback_buttons import NOT_RECORDED
from bot.keyboards import forget_keyboard, redraw
from bot.services import Services
from bot.texts import t
from storage.repositories import ForgottenUser

logger = logging.getLogger(__name__)


def report(lang: str, forgotten: ForgottenUser | None) -> str:
    """What was deleted, in counts; a user we never stored anything for gets zeros."""
    if forgotten is None:
        forgotten = ForgottenUser(0, 0, 0, 0, False, (), (), ())
    return t(
        lang,
        "forget_done",
        analyses=forgotten.analyses,
        votes=forgotten.votes,
        likes=forgotten.likes,
        suggestions=forgotten.suggestions,
        daily=t(lang, "forget_daily_off" if forgotten.daily else "forget_daily_none"),
    )


async def ask(message: Message, lang: str) -> None:
    await message.answer(t(lang, "forget_confirm"), reply_markup=forget_keyboard(lang))


async def answer(
    query: CallbackQuery,
    callback_data: ForgetCallback,
    lang: str,
    state: FSMContext,
    services: Services,
) -> None:
    await query.answer()
    await redraw(query, None)  # the confirmation is single-use: its buttons go once pressed
    chat_id = query.message.chat.id if query.message is not None else query.from_user.id
    if not callback_data.confirm:
        await services.bot.send_message(chat_id, t(lang, "forget_cancelled"))
        return
    try:
        forgotten = await services.recorder.forget(query.from_user.id)
    except NOT_RECORDED as exc:
        logger.warning("/forget: storage unavailable (%s); nothing deleted", type(exc).__name__)
        await services.bot.send_message(chat_id, t(lang, "forget_failed"))
        return
    await state.clear()
    await services.bot.send_message(chat_id, report(lang, forgotten))


def create_router() -> Router:
    """A fresh router per dispatcher (a router can belong to one dispatcher only)."""
    router = Router(name="privacy")
    router.message.register(ask, Command("forget"))
    router.callback_query.register(answer, ForgetCallback.filter())
    return router
