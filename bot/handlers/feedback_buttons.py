"""Vote and like buttons under the sets. The callback data is a stranger's claim; FeedbackRecorder checks it."""

from __future__ import annotations

import logging
from collections.abc import Awaitable

from aiogram import Router
from aiogram.types import CallbackQuery

from bot.callbacks import LikeCallback, VoteCallback
from bot.keyboards import feedback_keyboard, redraw
from bot.services import Services
from bot.texts import t
from feedback.recorder import FeedbackRecorder, Outcome
from storage.cache import REDIS_DOWN
from storage.db import DATABASE_DOWN

logger = logging.getLogger(__name__)

LIKE_ANSWERS = {1: "liked", -1: "disliked", 0: "like_cleared"}
# Postgres down and Redis (the outbox) away too, or Postgres down with no Redis record of ownership: nothing
# could be written, so the press is answered "try again", never "saved".
NOT_RECORDED = (*DATABASE_DOWN, *REDIS_DOWN)


async def vote(query: CallbackQuery, callback_data: VoteCallback, lang: str, services: Services) -> None:
    recorder = services.recorder
    recorded = recorder.vote(query.from_user.id, callback_data.analysis_id, callback_data.choice)
    outcome = await acknowledge(query, lang, recorded, saved="vote_saved", unchanged="vote_unchanged")
    if outcome in (Outcome.SAVED, Outcome.QUEUED):
        await _redraw(query, recorder, lang, callback_data.analysis_id, vote=callback_data.choice)


async def like(query: CallbackQuery, callback_data: LikeCallback, lang: str, services: Services) -> None:
    recorder, pressed = services.recorder, callback_data
    recorded = recorder.like(query.from_user.id, pressed.analysis_id, pressed.artwork_id, pressed.value)
    answer = LIKE_ANSWERS[callback_data.value]
    if await acknowledge(query, lang, recorded, saved=answer, unchanged=answer) is None:
        return
    override = {callback_data.artwork_id: callback_data.value}
    await _redraw(query, recorder, lang, callback_data.analysis_id, override=override)


async def acknowledge(
    query: CallbackQuery, lang: str, recorded: Awaitable[Outcome], *, saved: str, unchanged: str
) -> Outcome | None:
    """Answer a vote or like press (under sets or under a personal set alike): every press gets an answer.
    Returns the outcome when the press counted, None when it was refused or could not be recorded."""
    try:
        outcome = await recorded
    except NOT_RECORDED as exc:
        logger.warning("press not recorded: storage unavailable (%s)", type(exc).__name__)
        await query.answer(t(lang, "error"), show_alert=True)
        return None
    if outcome is Outcome.REFUSED:
        await query.answer(t(lang, "forged"), show_alert=True)
        return None
    await query.answer(t(lang, unchanged if outcome is Outcome.UNCHANGED else saved))
    return outcome


async def _redraw(
    query: CallbackQuery,
    recorder: FeedbackRecorder,
    lang: str,
    analysis_id: int,
    vote: str | None = None,
    override: dict[int, int] | None = None,
) -> None:
    """Show the new state on the buttons; a failure here never undoes the recorded feedback."""
    try:
        shown = await recorder.shown_to(analysis_id, query.from_user.id)
    except DATABASE_DOWN:
        return
    if shown is None:
        return
    likes = await recorder.current_likes(query.from_user.id, shown.artwork_ids)
    likes.update(override or {})
    if vote is None and shown.display_ids is None:
        vote = await recorder.current_vote(query.from_user.id, analysis_id)
    markup = feedback_keyboard(lang, analysis_id, shown.sets, likes, vote=vote, display_ids=shown.display_ids)
    await redraw(query, markup)


def create_router() -> Router:
    """A fresh router per dispatcher (a router can belong to one dispatcher only)."""
    router = Router(name="feedback")
    router.callback_query.register(vote, VoteCallback.filter())
    router.callback_query.register(like, LikeCallback.filter())
    return router
