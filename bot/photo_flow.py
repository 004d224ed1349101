"""One photo's journey, the thin part that talks to Telegram and the service; the decisions are in photo_plan.

The arena picks two recommenders; their sets and the description are shown as they become ready (the CLIP-only
set first), then the vote panel (or, in interleaving mode, one merged set). Every message replies to the photo.
Nothing is written to Postgres until everything has been shown; then the analysis, its two sets and the works go
in one transaction. If a step fails the user is told why and can resend the photo.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import time
from dataclasses import dataclass

from aiogram.utils.chat_action import ChatActionSender

from bot.albums import caption_for, known_file_ids, send_album, store_works
from bot.arena import Arena, Matchup
from bot.chat import Chat, ChatTurns
from bot.inference_client import ImageRefused, InferenceClient, InferenceUnavailable
from bot.keyboards import SIDE_LABELS, feedback_keyboard
from bot.photo_plan import CachedAnalysis, PhotoPlan, Shown, cache_update, interleave, merge, plan_photo
from bot.texts import identified, t, tag_line
from feedback.history import load_history
from feedback.recorder import FeedbackRecorder, ShownAnalysis
from feedback.taste import FeedbackEvent
from inference.contract import AnalyzeResponse, Hit, Match, Sets, Tag
from storage.cache import AnalysisCache
from storage.db import DATABASE_DOWN, UnitOfWork
from storage.repositories import Recognised, ShownSet

logger = logging.getLogger(__name__)

REFUSAL_TEXTS = {
    "empty": "empty_file",
    "too_large": "too_big",
    "too_many_pixels": "too_many_pixels",
    "unsupported_format": "unsupported_format",
}


class UserTold(Exception):
    """The flow stopped and the user has already been told why."""


@dataclass
class PhotoFlow:
    """The long-lived collaborators of the photo flow (built once in bot/services.py)."""

    inference: InferenceClient
    cache: AnalysisCache
    recorder: FeedbackRecorder
    arena: Arena
    top_k: int
    # Bounds photos in flight: a burst queues here instead of starving the event loop and the database pool.
    in_flight: asyncio.Semaphore
    turns: ChatTurns

    async def answer(self, chat: Chat, image: bytes, uow: UnitOfWork, rng: random.Random) -> int | None:
        """Answer one photo, after the chat's earlier photos; the stored analysis id, or None when told why not."""
        async with self.turns.turn(chat.chat_id), self.in_flight:
            return await self._answer(chat, image, uow, rng)

    async def _answer(self, chat: Chat, image: bytes, uow: UnitOfWork, rng: random.Random) -> int | None:
        started = time.perf_counter()
        sha256 = hashlib.sha256(image).hexdigest()
        events = await self._taste_events(uow, chat.user_id)
        matchup = await self.arena.matchup(rng, has_profile=bool(events))
        cached = CachedAnalysis.parse(await self.cache.get(sha256))
        plan = plan_photo(matchup, cached, is_personal=self.arena.is_personal, is_fast=self.arena.is_fast)
        try:
            async with ChatActionSender.upload_photo(bot=chat.bot, chat_id=chat.chat_id):
                shown = await self._show(chat, image, sha256, plan, events, uow, rng)
        except UserTold:
            return None
        except ImageRefused as refusal:
            await chat.say(t(chat.lang, REFUSAL_TEXTS.get(refusal.code, "not_an_image")))
            return None
        except InferenceUnavailable as down:
            if down.refused_request:
                self.arena.invalidate()
            if down.retry_after:
                await chat.say(t(chat.lang, "service_busy", seconds=down.retry_after))
            else:
                await chat.say(t(chat.lang, "service_down"))
            return None
        latency_ms = int((time.perf_counter() - started) * 1000)
        try:
            analysis_id = await self._store(uow, chat.user_id, sha256, shown, matchup, latency_ms, plan.from_cache)
        except DATABASE_DOWN as exc:
            logger.warning("analysis not stored: database unavailable (%s)", type(exc).__name__)
            await chat.say(t(chat.lang, "not_saved"))
            return None
        remembered = ShownAnalysis(
            analysis_id, chat.user_id, shown.sets_by_side(matchup), matchup.mode, shown.display_ids
        )
        await self.recorder.remember_shown(remembered)
        likes = await self.recorder.current_likes(chat.user_id, remembered.artwork_ids)
        question = "ask_likes_interleaved" if shown.display is not None else "ask_vote"
        await chat.say(
            t(chat.lang, question),
            reply_markup=feedback_keyboard(
                chat.lang, analysis_id, remembered.sets, likes, display_ids=remembered.display_ids
            ),
        )
        return analysis_id

    async def _show(
        self,
        chat: Chat,
        image: bytes,
        sha256: str,
        plan: PhotoPlan,
        events: list[FeedbackEvent],
        uow: UnitOfWork,
        rng: random.Random,
    ) -> Shown:
        """Send the albums and the description in the order they become ready."""
        analyzing = None
        if plan.analyze:
            feedback = events if plan.personal else ()
            analyzing = asyncio.create_task(self.inference.analyze(image, self.top_k, plan.analyze, feedback))
        matchup = plan.matchup
        shown = Shown(hits={}, description=plan.cached.description, models=plan.cached.models, language=chat.lang)
        try:
            looked: Sets = {}
            looked_match = plan.cached.match
            looked_tags: list[Tag] = []
            if plan.first is not None:
                if plan.look is not None:
                    looked, looked_match, looked_tags = await self._look(image, plan.look)
                # The answer starts with what the photo is, when the service recognised it.
                await self._announce(chat, shown, looked_match)
                first = looked[plan.first] if plan.first in looked else plan.cached.recommendations[plan.first]
                await self._album(chat, uow, shown, plan.first, SIDE_LABELS[matchup.sides[plan.first]], first)
            analyzed = await self._analyzed(chat, analyzing, fast_shown=plan.first is not None)
        except BaseException:
            if analyzing is not None:
                analyzing.cancel()
            raise
        merged = merge(plan, looked, analyzed, looked_match, looked_tags)
        have, shown.models = merged.sets, merged.models
        await self._announce(chat, shown, merged.match)
        translations = await self._translations(chat.lang, merged.description, plan.cached)
        shown.description = translations.get(chat.lang, merged.description)
        entry = cache_update(plan, merged, translations, self.arena.is_personal)
        if entry is not None:
            await self.cache.put(sha256, entry.model_dump(mode="json"))
        tags = tag_line(chat.lang, merged.tags)
        description = t(chat.lang, "description", description=shown.description)
        await chat.say(f"{description}\n\n{tags}" if tags else description)
        if matchup.mode == "interleaved":
            display, shown.hits = interleave(matchup, have, self.top_k, rng)
            shown.display = display
            await self._album(chat, uow, shown, None, "", display)
            return shown
        for name in matchup.names:
            if name not in shown.hits:
                await self._album(chat, uow, shown, name, SIDE_LABELS[matchup.sides[name]], have[name])
        return shown

    async def _look(self, image: bytes, name: str) -> tuple[Sets, Match | None, list[Tag]]:
        answer = await self.inference.look(image, self.top_k)
        looked = {name: answer.recommendations[name]} if name in answer.recommendations else {}
        return looked, answer.match, list(answer.tags)

    @staticmethod
    async def _announce(chat: Chat, shown: Shown, match: Match | None) -> None:
        """"This is «Title», Artist, year": said once, before anything else of the answer; nothing without a claim."""
        if match is None or shown.match is not None:
            return
        shown.match = match
        await chat.say(identified(chat.lang, match))

    async def _translations(self, lang: str, description: str, cached: CachedAnalysis) -> dict[str, str]:
        """The description in the user's language (the describer writes English): from the cache, else translated
        now. If the translator is away the English text is shown rather than nothing, and nothing is cached."""
        if lang == "en" or not description:
            return {}
        if lang in cached.translations:
            return {lang: cached.translations[lang]}
        try:
            return {lang: await self.inference.translate(description, lang)}
        except InferenceUnavailable as exc:
            logger.warning("description shown untranslated (%s): %s", lang, exc)
            return {}

    async def _analyzed(
        self, chat: Chat, analyzing: asyncio.Task[AnalyzeResponse] | None, *, fast_shown: bool
    ) -> AnalyzeResponse | None:
        """The /v1/analyze answer (None if nothing was asked). When it fails after the first album went out, the
        user is told the description failed instead of a bare "service down"."""
        if analyzing is None:
            return None
        try:
            return await analyzing
        except InferenceUnavailable:
            if not fast_shown:
                raise
            await chat.say(t(chat.lang, "description_failed"))
            raise UserTold from None

    async def _album(
        self, chat: Chat, uow: UnitOfWork, shown: Shown, name: str | None, label: str, hits: list[Hit]
    ) -> None:
        """The set as an album; an empty set (nothing cleared the relevance floor) is said plainly instead. Either
        way the arena records what was shown, an empty set included."""
        if name is not None:
            shown.hits[name] = hits
        if not hits:
            await chat.say(t(chat.lang, "nothing_close_set" if label else "nothing_close", label=label))
            return
        known = {**await known_file_ids(uow, hits), **shown.uploaded}
        captions = [caption_for(label, position, hit) for position, hit in enumerate(hits, start=1)]
        shown.uploaded.update(await send_album(chat, hits, captions, known, self.inference))

    async def _taste_events(self, uow: UnitOfWork, user_id: int) -> list[FeedbackEvent]:
        """The user's feedback for personal recommenders; none (so no personal matchup) while Postgres is away."""
        try:
            async with uow() as repo:
                history = await load_history(repo, user_id, with_seen=False)
        except DATABASE_DOWN:
            return []
        return history.events if history.has_profile else []

    @staticmethod
    async def _store(
        uow: UnitOfWork,
        user_id: int,
        sha256: str,
        shown: Shown,
        matchup: Matchup,
        latency_ms: int,
        from_cache: bool,
    ) -> int:
        """The analysis, its two sets (or interleaved teams), the works and their new file_ids: one transaction."""
        async with uow() as repo:
            await store_works(repo, shown.works, shown.uploaded)
            return await repo.analyses.create(
                user_id=user_id,
                image_sha256=sha256,
                description=shown.description,
                model_versions=shown.models,
                latency_ms=latency_ms,
                from_cache=from_cache,
                sets=[
                    ShownSet(recommender=name, side=matchup.sides[name], artwork_ids=[h.artwork_id for h in hits])
                    for name, hits in shown.hits.items()
                ],
                mode=matchup.mode,
                display_ids=shown.display_ids,
                match=None if shown.match is None else Recognised(shown.match.artwork_id, shown.match.confidence),
                language=shown.language,
            )
