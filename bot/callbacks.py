"""Callback data factories. Everything in them comes back from strangers: handlers re-check it server-side."""

from __future__ import annotations

from typing import Literal

from aiogram.filters.callback_data import CallbackData
from pydantic import Field

VoteChoice = Literal["left", "right", "both", "neither"]


class VoteCallback(CallbackData, prefix="v"):
    analysis_id: int
    choice: VoteChoice


class LikeCallback(CallbackData, prefix="l"):
    """`value` is the state the press sets (1 like, -1 dislike, 0 undo), so a repeated press is idempotent."""

    analysis_id: int
    artwork_id: int
    value: int = Field(ge=-1, le=1)


class LanguageCallback(CallbackData, prefix="lang"):
    code: Literal["en", "ru"]


class SuggestionLikeCallback(CallbackData, prefix="s"):
    """A like on a personal suggestion (/foryou, onboarding, daily pick); `value` as in LikeCallback."""

    suggestion_id: int
    artwork_id: int
    value: int = Field(ge=-1, le=1)


class ForYouCallback(CallbackData, prefix="fy"):
    """"More for you" under a personal set (after onboarding: "show my picks")."""

    suggestion_id: int


class ForgetCallback(CallbackData, prefix="forget"):
    """Confirms or cancels /forget. It names no user on purpose: the presser's own data is all it can delete."""

    confirm: bool
