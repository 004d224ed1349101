"""Inline keyboards: the vote + like panel under each result, and the language picker."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TypedDict

from aiogram.exceptions import TelegramBadRequest
from aiogram.types import CallbackQuery, InlineKeyboardMarkup
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.callbacks import (
    ForgetCallback,
    ForYouCallback,
    LanguageCallback,
    LikeCallback,
    LikesPageCallback,
    SuggestionLikeCallback,
    UnlikeCallback,
    VoteCallback,
)
from bot.texts import t
from inference.contract import SIDES, VOTE_CHOICES, Side, VoteChoice

logger = logging.getLogger(__name__)

SIDE_LABELS: dict[Side, str] = {"left": "A", "right": "B"}
LIKE_MARKS = {0: "🤍", 1: "❤️", -1: "👎"}
NEXT_LIKE_VALUE = {0: 1, 1: -1, -1: 0}


def feedback_keyboard(
    lang: str,
    analysis_id: int,
    sets: Mapping[Side, Sequence[int]],
    likes: Mapping[int, int],
    vote: VoteChoice | str | None = None,
    display_ids: Sequence[int] | None = None,
) -> InlineKeyboardMarkup:
    """Votes on the first two rows; then one row per set with a numbered like button per work.

    `sets` maps side ("left"/"right") to artwork ids in shown order; `likes` maps artwork id to its mark.
    An interleaved analysis (`display_ids`: the one merged set) has no vote: its likes are the verdict; nor has a
    single set (a colour search: only "left"), whose buttons are numbered like the album's captions.
    """
    builder = InlineKeyboardBuilder()
    if display_ids is None and len(sets) == 1:
        display_ids = next(iter(sets.values()))
    if display_ids is not None:
        for position, artwork_id in enumerate(display_ids, start=1):
            builder.button(**_like_button(str(position), analysis_id, artwork_id, likes))
        if display_ids:  # an empty merged set (nothing close) has no buttons
            builder.adjust(len(display_ids) if len(display_ids) <= 5 else (len(display_ids) + 1) // 2)
        return builder.as_markup()
    for choice in VOTE_CHOICES:
        label = t(lang, f"vote_{choice}")
        builder.button(
            text=f"✅ {label}" if vote == choice else label,
            callback_data=VoteCallback(analysis_id=analysis_id, choice=choice),
        )
    widths = [2, 2]
    for side in SIDES:
        ids = list(sets.get(side, ()))
        for position, artwork_id in enumerate(ids, start=1):
            builder.button(**_like_button(f"{SIDE_LABELS[side]}{position}", analysis_id, artwork_id, likes))
        if ids:
            widths.append(len(ids))
    builder.adjust(*widths)
    return builder.as_markup()


class _Button(TypedDict):
    text: str
    callback_data: LikeCallback


def _like_button(label: str, analysis_id: int, artwork_id: int, likes: Mapping[int, int]) -> _Button:
    current = likes.get(artwork_id, 0)
    return {
        "text": f"{label} {LIKE_MARKS[current]}",
        "callback_data": LikeCallback(analysis_id=analysis_id, artwork_id=artwork_id, value=NEXT_LIKE_VALUE[current]),
    }


def suggestion_keyboard(
    lang: str, suggestion_id: int, kind: str, artwork_ids: Sequence[int], likes: Mapping[int, int]
) -> InlineKeyboardMarkup:
    """A numbered like button per work (same cycle as under the sets), then "more for you"."""
    builder = InlineKeyboardBuilder()
    for position, artwork_id in enumerate(artwork_ids, start=1):
        current = likes.get(artwork_id, 0)
        label = f"{position} {LIKE_MARKS[current]}" if len(artwork_ids) > 1 else LIKE_MARKS[current]
        builder.button(
            text=label,
            callback_data=SuggestionLikeCallback(
                suggestion_id=suggestion_id, artwork_id=artwork_id, value=NEXT_LIKE_VALUE[current]
            ),
        )
    more = "show_my_picks" if kind == "onboarding" else "more_for_you"
    builder.button(text=t(lang, more), callback_data=ForYouCallback(suggestion_id=suggestion_id))
    per_row = 4 if len(artwork_ids) > 5 else max(1, len(artwork_ids))
    rows = [per_row] * ((len(artwork_ids) + per_row - 1) // per_row)
    builder.adjust(*rows, 1)
    return builder.as_markup()


def likes_keyboard(page: int, pages: int, works: Sequence[tuple[int, int]]) -> InlineKeyboardMarkup:
    """Under a /likes page: 💔 n for each (position, artwork id) still liked, then ◀ ▶ to the pages around it."""
    builder = InlineKeyboardBuilder()
    for position, artwork_id in works:
        builder.button(
            text=f"💔 {position}", callback_data=UnlikeCallback(artwork_id=artwork_id, position=position, page=page)
        )
    nav = []
    if page > 1:
        nav.append(("◀", page - 1))
    if page < pages:
        nav.append(("▶", page + 1))
    for arrow, target in nav:
        builder.button(text=f"{arrow} {target}/{pages}", callback_data=LikesPageCallback(page=target))
    builder.adjust(*[n for n in (len(works), len(nav)) if n])
    return builder.as_markup()


def language_keyboard() -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text="English 🇬🇧", callback_data=LanguageCallback(code="en"))
    builder.button(text="Русский 🇷🇺", callback_data=LanguageCallback(code="ru"))
    return builder.as_markup()


def forget_keyboard(lang: str) -> InlineKeyboardMarkup:
    """/forget's confirmation: deleting everything is irreversible, so it takes a second, explicit tap."""
    builder = InlineKeyboardBuilder()
    builder.button(text=t(lang, "forget_yes"), callback_data=ForgetCallback(confirm=True))
    builder.button(text=t(lang, "forget_no"), callback_data=ForgetCallback(confirm=False))
    builder.adjust(1)
    return builder.as_markup()


async def redraw(query: CallbackQuery, markup: InlineKeyboardMarkup | None) -> None:
    """Show the new state on the pressed message's buttons; a failure here never undoes what was recorded."""
    if query.message is None or query.bot is None:
        return
    try:
        await query.bot.edit_message_reply_markup(
            chat_id=query.message.chat.id, message_id=query.message.message_id, reply_markup=markup
        )
    except TelegramBadRequest as exc:  # "message is not modified" and friends
        logger.debug("keyboard not redrawn: %s", exc.message)
