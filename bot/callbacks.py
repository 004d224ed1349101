"""Callback data factories. Everything in them comes back from strangers: the ranges below refuse what cannot be
ours before any database call (a row id beyond Postgres' bigint would otherwise reach the driver), and handlers
re-check ownership server-side. Data that matches no factory gets the polite refusal (handlers/fallback.py).
"""

from __future__ import annotations

from typing import Annotated, Literal

from aiogram.filters.callback_data import CallbackData
from pydantic import Field

from inference.contract import VoteChoice

RowId = Annotated[int, Field(ge=1, lt=2**63)]
"""An analysis or suggestion id: a Postgres bigserial."""
ArtworkId = Annotated[int, Field(ge=0, lt=2**31)]
"""A gallery artwork id: a Postgres integer."""
LikeValue = Annotated[int, Field(ge=-1, le=1)]


class VoteCallback(CallbackData, prefix="v"):
    analysis_id: RowId
    choice: VoteChoice


class LikeCallback(CallbackData, prefix="l"):
    """`value` is the state the press sets (1 like, -1 dislike, 0 undo), so a repeated press is idempotent."""

    analysis_id: RowId
    artwork_id: ArtworkId
    value: LikeValue


class LanguageCallback(CallbackData, prefix="lang"):
    code: Literal["en", "ru"]


class SuggestionLikeCallback(CallbackData, prefix="s"):
    """A like on a personal suggestion (/foryou, onboarding, daily pick); `value` as in LikeCallback."""

    suggestion_id: RowId
    artwork_id: ArtworkId
    value: LikeValue


class ForYouCallback(CallbackData, prefix="fy"):
    """"More for you" under a personal set (after onboarding: "show my picks")."""

    suggestion_id: RowId


class ForgetCallback(CallbackData, prefix="forget"):
    """Confirms or cancels /forget. It names no user on purpose: the presser's own data is all it can delete."""

    confirm: bool


PageNumber = Annotated[int, Field(ge=1, le=100_000)]
"""A /likes page; one past the collection's end is answered politely."""


class LikesPageCallback(CallbackData, prefix="lk"):
    """◀ ▶ under a /likes page: the page to send, counted on the collection as it is when pressed."""

    page: PageNumber


class UnlikeCallback(CallbackData, prefix="uk"):
    """💔 under a /likes page: removes the presser's own ❤️ on `artwork_id` (it names no user on purpose).
    `position` (its number in the album above) and `page` only redraw the panel."""

    artwork_id: ArtworkId
    position: Annotated[int, Field(ge=1, le=10)]
    page: PageNumber
