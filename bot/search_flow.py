"""Answers to words (/search, or a plain text message) and to a colour (/color).

Words get two sets from two text recommenders the arena picks from the service's catalogue, shown as set A and
set B with the usual vote and like buttons; a colour gets the palette strip, then one set with like buttons. Both
are recorded like a photo's answer (an analysis of kind `text` or `colour`, its sets and works, in one
transaction), so votes and likes on them go through the same FeedbackRecorder (and its outbox while Postgres is
away), and the arena rates text recommenders from the votes.
"""

from __future__ import annotations

import logging
import random
import re
import time
from dataclasses import dataclass, field

from aiogram.types import BufferedInputFile
from aiogram.utils.chat_action import ChatActionSender

from bot.albums import caption_for, known_file_ids, send_album, store_works
from bot.arena import Arena
from bot.chat import Chat, ChatTurns
from bot.inference_client import InferenceClient, InferenceUnavailable, NothingToSearch, UnknownColour
from bot.keyboards import SIDE_LABELS, feedback_keyboard
from bot.palette_strip import draw_strip
from bot.texts import t
from feedback.recorder import FeedbackRecorder, ShownAnalysis
from inference.contract import Hit, SearchResponse, Side
from storage.db import DATABASE_DOWN, UnitOfWork
from storage.repositories import AnalysisKind, ShownSet

logger = logging.getLogger(__name__)

MAX_COLOUR_CHARS = 64  # the contract's cap on a colour; anything longer is no colour name
_HEX = re.compile(r"^#[0-9a-f]{6}$")


@dataclass
class Answered:
    """What one search showed: each recommender's side and hits, and the file_ids of images uploaded meanwhile."""

    kind: AnalysisKind
    query: str
    sides: dict[str, Side]
    hits: dict[str, list[Hit]] = field(default_factory=dict)
    uploaded: dict[int, str] = field(default_factory=dict)

    def sets_by_side(self) -> dict[Side, list[int]]:
        return {self.sides[name]: [hit.artwork_id for hit in hits] for name, hits in self.hits.items()}


def clean_words(text: str) -> str:
    """The words as searched: runs of whitespace (newlines included) collapsed to one space."""
    return " ".join(text.split())


@dataclass
class SearchFlow:
    """The long-lived collaborators of both searches (built once in bot/services.py)."""

    inference: InferenceClient
    recorder: FeedbackRecorder
    arena: Arena
    top_k: int
    max_chars: int
    # Shared with the photo flow: one answer at a time per chat, so a search never interleaves with a photo's.
    turns: ChatTurns

    async def words(self, chat: Chat, text: str, uow: UnitOfWork, rng: random.Random) -> int | None:
        """Answer words with two sets (one when the service has a single text recommender); the stored analysis
        id, or None when the user was told why not (nothing asked, nothing found, service or database away)."""
        query = clean_words(text)
        if not query:
            await chat.say(t(chat.lang, "search_hint"))
            return None
        if len(query) > self.max_chars:
            query = query[: self.max_chars].rstrip()
            await chat.say(t(chat.lang, "search_cut", limit=self.max_chars))
        async with self.turns.turn(chat.chat_id):
            started = time.perf_counter()
            matchup = await self.arena.text_matchup(rng)
            names = None if matchup is None else matchup.names
            try:
                async with ChatActionSender.upload_photo(bot=chat.bot, chat_id=chat.chat_id):
                    answer = await self.inference.search_text(query, self.top_k, names)
            except NothingToSearch:  # only invisible characters: nothing the service can read
                await chat.say(t(chat.lang, "search_hint"))
                return None
            except InferenceUnavailable as down:
                self.arena.invalidate()  # a pair the service refused, or a service that changed: re-read it
                await self._say_unavailable(chat, down)
                return None
            if matchup is not None:
                sides = matchup.sides
                sets = {name: answer.recommendations.get(name, []) for name in matchup.names}
            else:  # fewer than two text recommenders: the one set, without a vote
                sets = dict(list(answer.recommendations.items())[:1])
                sides = {name: "left" for name in sets}
            if not any(sets.values()):
                await chat.say(t(chat.lang, "nothing_found", query=query))
                return None
            answered = Answered("text", query, sides)
            for name, hits in sets.items():
                label = SIDE_LABELS[sides[name]] if len(sets) > 1 else ""
                await self._album(chat, uow, answered, name, label, hits)
            return await self._record(chat, uow, answered, started)

    async def colour(self, chat: Chat, text: str, uow: UnitOfWork) -> int | None:
        """Answer a colour with the palette strip and one set; the stored analysis id, or None when told why not."""
        asked = clean_words(text)
        if not asked:
            await chat.say(t(chat.lang, "color_hint"))
            return None
        if len(asked) > MAX_COLOUR_CHARS:
            await chat.say(t(chat.lang, "color_unknown", color=asked[:MAX_COLOUR_CHARS] + "…"))
            return None
        async with self.turns.turn(chat.chat_id):
            started = time.perf_counter()
            try:
                async with ChatActionSender.upload_photo(bot=chat.bot, chat_id=chat.chat_id):
                    answer = await self.inference.search_color(asked, self.top_k)
            except UnknownColour:
                await chat.say(t(chat.lang, "color_unknown", color=asked))
                return None
            except InferenceUnavailable as down:
                await self._say_unavailable(chat, down)
                return None
            name, hits = next(iter(answer.recommendations.items()), ("by_colour", []))
            await self._strip(chat, answer, hits)
            if not hits:
                return None
            answered = Answered("colour", answer.query, {name: "left"})
            await self._album(chat, uow, answered, name, "", hits)
            return await self._record(chat, uow, answered, started)

    async def _strip(self, chat: Chat, answer: SearchResponse, hits: list[Hit]) -> None:
        """The colour asked for and each hit's palette, as one small picture; its caption says how to read it."""
        query = answer.query.lower()
        key = "color_strip" if hits else "color_nothing"
        if not _HEX.match(query):  # the service echoes the hex; never fail the answer over a drawing
            logger.warning("colour search echoed %r, not a hex colour: no strip drawn", answer.query)
            await chat.say(t(chat.lang, key, hex=answer.query))
            return
        palettes = [answer.palettes.get(hit.artwork_id, []) for hit in hits]
        strip = BufferedInputFile(draw_strip(query, palettes), filename="palette.png")
        caption = t(chat.lang, key, hex=query)
        await chat.bot.send_photo(chat.chat_id, strip, caption=caption, reply_parameters=chat.reply)

    async def _album(
        self, chat: Chat, uow: UnitOfWork, answered: Answered, name: str, label: str, hits: list[Hit]
    ) -> None:
        """A set as an album; an empty one of a pair is said plainly (and still recorded as shown)."""
        answered.hits[name] = hits
        if not hits:
            await chat.say(t(chat.lang, "nothing_found_set", label=label))
            return
        known = {**await known_file_ids(uow, hits), **answered.uploaded}
        captions = [caption_for(label, position, hit) for position, hit in enumerate(hits, start=1)]
        answered.uploaded.update(await send_album(chat, hits, captions, known, self.inference))

    async def _record(self, chat: Chat, uow: UnitOfWork, answered: Answered, started: float) -> int | None:
        """Store the analysis, its sets and works in one transaction, then the vote and like panel."""
        latency_ms = int((time.perf_counter() - started) * 1000)
        try:
            async with uow() as repo:
                works = [hit for hits in answered.hits.values() for hit in hits]
                await store_works(repo, works, answered.uploaded)
                analysis_id = await repo.analyses.create(
                    user_id=chat.user_id,
                    image_sha256=None,
                    description="",
                    model_versions={},
                    latency_ms=latency_ms,
                    from_cache=False,
                    sets=[
                        ShownSet(recommender=name, side=answered.sides[name], artwork_ids=[h.artwork_id for h in hits])
                        for name, hits in answered.hits.items()
                    ],
                    language=chat.lang,
                    kind=answered.kind,
                    query_text=answered.query,
                )
        except DATABASE_DOWN as exc:
            logger.warning("search not stored: database unavailable (%s)", type(exc).__name__)
            await chat.say(t(chat.lang, "search_not_saved"))
            return None
        remembered = ShownAnalysis(analysis_id, chat.user_id, answered.sets_by_side())
        await self.recorder.remember_shown(remembered)
        likes = await self.recorder.current_likes(chat.user_id, remembered.artwork_ids)
        question = "ask_vote" if len(answered.hits) > 1 else "ask_likes_interleaved"
        await chat.say(
            t(chat.lang, question), reply_markup=feedback_keyboard(chat.lang, analysis_id, remembered.sets, likes)
        )
        return analysis_id

    @staticmethod
    async def _say_unavailable(chat: Chat, down: InferenceUnavailable) -> None:
        if down.retry_after:
            await chat.say(t(chat.lang, "search_busy", seconds=down.retry_after))
        else:
            await chat.say(t(chat.lang, "search_down"))
