"""Vote and like buttons. The callback data is a stranger's claim; FeedbackRecorder checks it."""

from __future__ import annotations

import logging
from collections.abc import Awaitable

from aiogram import Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import CallbackQuery

from bot.callbacks import LikeCallback, VoteCallback
from bot.keyboards import feedback_keyboard
from bot.texts import t
from feedback.recorder import DATABASE_DOWN, FeedbackRecorder, Outcome

logger = logging.getLogger(__name__)

LIKE_ANSWERS = {1: "liked", -1: "disliked", 0: "like_cleared"}


async def vote(
    query: CallbackQuery, callback_data: VoteCallback, lang: str, recorder: FeedbackRecorder
) -> None:
    try:
        outcome = await recorder.vote(query.from_user.id, callback_data.analysis_id, callback_data.choice)
    except DATABASE_DOWN:
        await query.answer(t(lang, "error"), show_alert=True)
        return
    if outcome is Outcome.REFUSED:
        await query.answer(t(lang, "forged"), show_alert=True)
        return
    await query.answer(t(lang, "vote_unchanged" if outcome is Outcome.UNCHANGED else "vote_saved"))
    if outcome is not Outcome.UNCHANGED:
        await _redraw(query, recorder, lang, callback_data.analysis_id, vote=callback_data.choice)


async def like(
    query: CallbackQuery, callback_data: LikeCallback, lang: str, recorder: FeedbackRecorder
) -> None:
    recorded = recorder.like(
        query.from_user.id, callback_data.analysis_id, callback_data.artwork_id, callback_data.value
    )
    if not await acknowledge_like(query, lang, callback_data.value, recorded):
        return
    await _redraw(
        query,
        recorder,
        lang,
        callback_data.analysis_id,
        override={callback_data.artwork_id: callback_data.value},
    )


async def acknowledge_like(query: CallbackQuery, lang: str, value: int, recorded: Awaitable[Outcome]) -> bool:
    """Answer a like press (under sets or under a personal set alike); True when it counted and the
    buttons should be redrawn."""
    try:
        outcome = await recorded
    except DATABASE_DOWN:
        await query.answer(t(lang, "error"), show_alert=True)
        return False
    if outcome is Outcome.REFUSED:
        await query.answer(t(lang, "forged"), show_alert=True)
        return False
    await query.answer(t(lang, LIKE_ANSWERS[value]))
    return True


async def _redraw(
    query: CallbackQuery,
    recorder: FeedbackRecorder,
    lang: str,
    analysis_id: int,
    vote: str | None = None,
    override: dict[int, int] | None = None,
) -> None:
    """Show the new state on the buttons; a failure here never undoes the recorded feedback."""
    if query.message is None:
        return
    shown = await recorder.shown_to(analysis_id, query.from_user.id)
    if shown is None:
        return
    likes = await recorder.current_likes(query.from_user.id, shown.artwork_ids)
    likes.update(override or {})
    if vote is None and shown.display_ids is None:
        vote = await recorder.current_vote(query.from_user.id, analysis_id)
    try:
        await query.bot.edit_message_reply_markup(
            chat_id=query.message.chat.id,
            message_id=query.message.message_id,
            reply_markup=feedback_keyboard(
                lang, analysis_id, shown.sets, likes, vote=vote, display_ids=shown.display_ids
            ),
        )
    except TelegramBadRequest as exc:  # "message is not modified" and friends
        logger.debug("keyboard not redrawn: %s", exc.message)


def create_router() -> Router:
    """A fresh router per dispatcher (a router can belong to one dispatcher only)."""
    router = Router(name="feedback")
    router.callback_query.register(vote, VoteCallback.filter())
    router.callback_query.register(like, LikeCallback.filter())
    return router
