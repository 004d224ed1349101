"""Personal sets: /foryou, the onboarding sample for new users, and the daily pick share this flow.

The bot sends the user's feedback events and the works already seen (feedback/history.py); the inference service
builds the taste profile and ranks. A suggestion is stored after its album was sent (like an analysis), so a
like on it can be checked for ownership.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from bot.albums import caption_for, ids_of, known_file_ids, send_album, store_works
from bot.chat import Chat
from bot.inference_client import InferenceClient
from bot.keyboards import suggestion_keyboard
from bot.texts import t
from feedback.history import History, load_history
from feedback.recorder import FeedbackRecorder
from inference.contract import Artwork, Suggestion
from storage.db import UnitOfWork
from storage.repositories import SuggestionKind

logger = logging.getLogger(__name__)

ONBOARDING_SIZE = 8
PANELS: dict[SuggestionKind, str] = {"onboarding": "onboarding_panel", "foryou": "foryou_panel", "daily": "daily_panel"}


def suggestion_caption(lang: str, position: int, item: Suggestion) -> str:
    """`1 · title — artist, year` and one short line saying why: because you liked X, or something new."""
    caption = caption_for("", position, item)
    if item.because is not None and item.because.title:
        caption += "\n" + t(lang, "because_you_liked", title=item.because.title)
    elif item.explored:
        caption += "\n" + t(lang, "something_new")
    return caption


@dataclass
class PersonalFlow:
    """Long-lived collaborators of the personal sets (built once in bot/services.py)."""

    inference: InferenceClient
    recorder: FeedbackRecorder
    foryou_k: int
    exploration: float

    async def history(self, uow: UnitOfWork, user_id: int) -> History:
        async with uow() as repo:
            return await load_history(repo, user_id)

    async def for_you(self, chat: Chat, uow: UnitOfWork, history: History | None = None) -> int | None:
        """A new user (no ❤️ yet) gets the onboarding sample; everyone else a fresh set for their taste.

        Raises InferenceUnavailable / DATABASE_DOWN errors for the caller to explain; returns None (after telling
        the user) when the gallery has nothing left they have not seen.
        """
        history = history or await self.history(uow, chat.user_id)
        if not history.has_profile:
            return await self.onboarding(chat, uow, history)
        return await self.suggestions(chat, uow, history, kind="foryou", k=self.foryou_k)

    async def daily(self, chat: Chat, uow: UnitOfWork) -> int | None:
        """One work for the daily pick."""
        history = await self.history(uow, chat.user_id)
        return await self.suggestions(chat, uow, history, kind="daily", k=1)

    async def suggestions(
        self, chat: Chat, uow: UnitOfWork, history: History, *, kind: SuggestionKind, k: int
    ) -> int | None:
        answer = await self.inference.suggest(history.events, history.seen, k, exploration=self.exploration)
        items = answer.suggestions[:k]
        if not items:
            await chat.say(t(chat.lang, "nothing_new"))
            return None
        if kind == "daily":
            await chat.say(t(chat.lang, "daily_intro"))
        captions = [suggestion_caption(chat.lang, position, item) for position, item in enumerate(items, start=1)]
        because = {item.artwork_id: item.because.artwork_id for item in items if item.because is not None}
        return await self._send_and_store(chat, uow, kind, items, captions, because)

    async def onboarding(self, chat: Chat, uow: UnitOfWork, history: History) -> int | None:
        """A new user picks a few works they like from a diverse sample; that seeds their taste profile."""
        items = await self.inference.onboarding(ONBOARDING_SIZE, history.seen)
        if not items:
            await chat.say(t(chat.lang, "nothing_new"))
            return None
        await chat.say(t(chat.lang, "onboarding_intro"))
        captions = [caption_for("", position, item) for position, item in enumerate(items, start=1)]
        return await self._send_and_store(chat, uow, "onboarding", items, captions, {})

    async def _send_and_store(
        self,
        chat: Chat,
        uow: UnitOfWork,
        kind: SuggestionKind,
        items: Sequence[Artwork],
        captions: list[str],
        because: dict[int, int],
    ) -> int:
        known = await known_file_ids(uow, items)
        uploaded = await send_album(chat, items, captions, known, self.inference)
        ids = ids_of(items)
        async with uow() as repo:
            await store_works(repo, items, uploaded)
            suggestion_id = await repo.suggestions.create(chat.user_id, kind, ids, because)
        await self.recorder.remember_suggestion(suggestion_id, chat.user_id, ids)
        await chat.say(
            t(chat.lang, PANELS[kind]), reply_markup=suggestion_keyboard(chat.lang, suggestion_id, kind, ids, {})
        )
        return suggestion_id
