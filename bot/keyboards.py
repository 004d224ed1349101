"""Inline keyboards: the vote + like panel under each result, and the language picker."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.callbacks import LanguageCallback, LikeCallback, VoteCallback
from bot.texts import t

SIDE_LABELS = {"left": "A", "right": "B"}
LIKE_MARKS = {0: "🤍", 1: "❤️", -1: "👎"}
NEXT_LIKE_VALUE = {0: 1, 1: -1, -1: 0}


def feedback_keyboard(
    lang: str,
    analysis_id: int,
    sets: Mapping[str, Sequence[int]],
    likes: Mapping[int, int],
    vote: str | None = None,
) -> InlineKeyboardMarkup:
    """Votes on the first two rows; then one row per set with a numbered like button per work.

    `sets` maps side ("left"/"right") to artwork ids in shown order; `likes` maps artwork id to its mark.
    """
    builder = InlineKeyboardBuilder()
    for choice in ("left", "right", "both", "neither"):
        label = t(lang, f"vote_{choice}")
        builder.button(
            text=f"✅ {label}" if vote == choice else label,
            callback_data=VoteCallback(analysis_id=analysis_id, choice=choice),
        )
    widths = [2, 2]
    for side in ("left", "right"):
        ids = list(sets.get(side, ()))
        for position, artwork_id in enumerate(ids, start=1):
            current = likes.get(artwork_id, 0)
            builder.button(
                text=f"{SIDE_LABELS[side]}{position} {LIKE_MARKS[current]}",
                callback_data=LikeCallback(
                    analysis_id=analysis_id, artwork_id=artwork_id, value=NEXT_LIKE_VALUE[current]
                ),
            )
        if ids:
            widths.append(len(ids))
    builder.adjust(*widths)
    return builder.as_markup()


def language_keyboard() -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text="English 🇬🇧", callback_data=LanguageCallback(code="en"))
    builder.button(text="Русский 🇷🇺", callback_data=LanguageCallback(code="ru"))
    return builder.as_markup()
