"""Which two recommenders a photo (or a word search) gets: the service's catalogue, the cached leaderboard and
the scheduler.

The bot only decides the matchup (and stores it with the analysis); the recommenders themselves run in the
inference service. The catalogue is fetched from the service and refreshed now and then, so a recommender
added there joins the arena without a bot release. Photo recommenders and text recommenders (those that answer
words, /v1/search/text) are never pitted against each other: each kind of question has its own pairs.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass

from bot.inference_client import InferenceClient, InferenceUnavailable
from feedback.arena import Leaderboard, PairScheduler
from feedback.leaderboard import LeaderboardCache
from inference.contract import ArenaMode, RecommenderInfo, Side

logger = logging.getLogger(__name__)

# What the bot assumes until the service's catalogue has been read once.
FALLBACK = (
    RecommenderInfo(name="by_look", needs=["image_vector"], fast=True),
    RecommenderInfo(name="by_meaning", needs=["description", "text_vector"]),
)
CATALOGUE_TTL_S = 300.0
CATALOGUE_RETRY_S = 30.0


def answers_words(entry: RecommenderInfo) -> bool:
    """A text recommender: it answers words (/v1/search/text), not a photo."""
    return entry.text


@dataclass(frozen=True)
class Matchup:
    left: str
    right: str
    mode: ArenaMode

    @property
    def names(self) -> tuple[str, str]:
        return self.left, self.right

    @property
    def sides(self) -> dict[str, Side]:
        return {self.left: "left", self.right: "right"}


class Arena:
    def __init__(
        self,
        inference: InferenceClient,
        leaderboard: LeaderboardCache,
        *,
        allowed: Sequence[str] = (),
        allowed_text: Sequence[str] = (),
        mode: ArenaMode = "sides",
        scheduler: PairScheduler | None = None,
    ) -> None:
        self._inference = inference
        self._leaderboard = leaderboard
        self._allowed = set(allowed)
        self._allowed_text = set(allowed_text)
        self.mode = mode
        self._scheduler = scheduler or PairScheduler()
        self._catalogue: list[RecommenderInfo] = list(FALLBACK)
        self._fetched_at = float("-inf")

    def names(self) -> list[str]:
        """Every recommender the arena rates (what the leaderboard lists, votes or not), text ones included."""
        return [entry.name for entry in self._catalogue]

    def photo_names(self) -> list[str]:
        """The recommenders a photo can get."""
        return [entry.name for entry in self._catalogue if not answers_words(entry)]

    def text_names(self) -> list[str]:
        """The recommenders words (/search) can get."""
        return [entry.name for entry in self._catalogue if answers_words(entry)]

    def is_personal(self, name: str) -> bool:
        return any(entry.name == name and entry.personal for entry in self._catalogue)

    def is_fast(self, name: str) -> bool:
        """Served by /v1/look (CLIP only): its album can go out before the description is ready."""
        return any(entry.name == name and entry.fast for entry in self._catalogue)

    def invalidate(self) -> None:
        """The service refused a matchup: re-read its catalogue before the next photo."""
        self._fetched_at = float("-inf")

    async def refresh(self) -> None:
        """Re-read the service's registry when stale; on failure keep the last known one."""
        if time.monotonic() - self._fetched_at < CATALOGUE_TTL_S:
            return
        try:
            entries = await self._inference.recommenders()
        except InferenceUnavailable:
            logger.warning("recommender catalogue unavailable; using the last known one")
            self._fetched_at = time.monotonic() - CATALOGUE_TTL_S + CATALOGUE_RETRY_S
            return
        usable = [entry for entry in entries if self._permits(entry)]
        if sum(1 for entry in usable if not answers_words(entry)) >= 2:
            self._catalogue = usable
        self._fetched_at = time.monotonic()

    def _permits(self, entry: RecommenderInfo) -> bool:
        """Each kind has its own allow-list (BOT_ARENA_RECOMMENDERS, BOT_SEARCH_RECOMMENDERS); empty allows all."""
        allowed = self._allowed_text if answers_words(entry) else self._allowed
        return not allowed or entry.name in allowed

    async def matchup(self, rng: random.Random, *, has_profile: bool) -> Matchup:
        """Two different recommenders, sides random; personal ones only for users with a taste profile."""
        await self.refresh()
        available = [name for name in self.photo_names() if has_profile or not self.is_personal(name)]
        if len(available) < 2:  # e.g. only one plain recommender allowed and no profile yet
            available = [entry.name for entry in FALLBACK]
        board = await self._cached_board()
        left, right = self._scheduler.pick(available, board, rng)
        return Matchup(left, right, self.mode)

    async def text_matchup(self, rng: random.Random) -> Matchup | None:
        """Two different text recommenders for words, sides random, always shown side by side with a vote; None
        while the service lists fewer than two (then its only set is shown alone)."""
        await self.refresh()
        available = self.text_names()
        if len(available) < 2:
            return None
        left, right = self._scheduler.pick(available, await self._cached_board(), rng)
        return Matchup(left, right, "sides")

    async def _cached_board(self) -> Leaderboard | None:
        """None while Redis is away (storage.cache decides): the pick is then only less informed."""
        return await self._leaderboard.get()
