"""The bot's matchups follow the arena: the service's catalogue, the cached leaderboard, the scheduler."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import AsyncIterator

import numpy as np
import pytest
from redis.asyncio import Redis

from bot.arena import Arena
from bot.inference_client import InferenceClient
from feedback.arena import VoteTable, fit
from feedback.leaderboard import LeaderboardCache
from tests.fixtures_gallery import SERVICE_TOKEN

PLAIN = ["by_look", "by_meaning", "by_text_clip", "fused"]


@pytest.fixture
async def client(inference_url: str) -> AsyncIterator[InferenceClient]:
    client = InferenceClient(inference_url, SERVICE_TOKEN, look_timeout=30, analyze_timeout=60)
    yield client
    await client.close()


def settled_board(names: list[str], settled: tuple[str, str], votes: int):  # type: ignore[no-untyped-def]
    """A leaderboard where only `settled` has been compared, many times, one clearly better."""
    a, b = names.index(settled[0]), names.index(settled[1])
    rng = np.random.default_rng(0)
    left = np.where(rng.random(votes) < 0.5, a, b)
    right = np.where(left == a, b, a)
    choice = np.where(rng.random(votes) < 0.8, np.where(left == a, 0, 1), np.where(left == a, 1, 0))
    return fit(VoteTable.from_arrays(left, right, choice, names), bootstrap=200)


async def test_matchups_use_the_services_catalogue_and_never_pair_a_recommender_with_itself(
    client: InferenceClient, redis: Redis, key_prefix: str
) -> None:
    arena = Arena(client, LeaderboardCache(redis, prefix=key_prefix))
    rng = random.Random(1)
    without = [await arena.matchup(rng, has_profile=False) for _ in range(200)]
    assert sorted(arena.photo_names()) == sorted([*PLAIN, "for_you"])
    assert all(m.left != m.right for m in without)
    assert {name for m in without for name in m.names} == set(PLAIN)  # no personal set without a profile
    with_profile = [await arena.matchup(rng, has_profile=True) for _ in range(200)]
    assert any("for_you" in m.names for m in with_profile)
    lefts = Counter(m.left for m in without)
    assert all(lefts[name] > 20 for name in PLAIN)  # sides are random, so every recommender plays on the left


async def test_words_get_two_text_recommenders_and_photos_never_do(
    client: InferenceClient, redis: Redis, key_prefix: str
) -> None:
    """Text recommenders answer words only: a photo never gets one, words never get a photo recommender, and the
    allow-list of photo recommenders (BOT_ARENA_RECOMMENDERS) does not empty the text pairs."""
    words = {entry.name for entry in await client.recommenders() if entry.text}
    assert len(words) >= 2
    arena = Arena(client, LeaderboardCache(redis, prefix=key_prefix), allowed=["by_look", "by_meaning"])
    rng = random.Random(3)
    photos = [await arena.matchup(rng, has_profile=True) for _ in range(50)]
    assert {name for m in photos for name in m.names} == {"by_look", "by_meaning"}
    texts = [await arena.text_matchup(rng) for _ in range(200)]
    assert all(m is not None and m.left != m.right and m.mode == "sides" for m in texts)
    assert {name for m in texts if m is not None for name in m.names} == words
    assert set(arena.names()) == {"by_look", "by_meaning"} | words  # the leaderboard rates both kinds

    only = sorted(words)[0]
    narrowed = Arena(client, LeaderboardCache(redis, prefix=key_prefix), allowed_text=[only])
    assert await narrowed.text_matchup(rng) is None  # one text recommender: its set is shown alone


async def test_a_settled_comparison_is_shown_less_once_the_leaderboard_says_so(
    client: InferenceClient, redis: Redis, key_prefix: str
) -> None:
    cache = LeaderboardCache(redis, prefix=key_prefix)
    arena = Arena(client, cache, allowed=PLAIN)
    rng = random.Random(2)
    settled = frozenset({"by_look", "by_meaning"})
    before = Counter(frozenset(m.names) for m in [await arena.matchup(rng, has_profile=False) for _ in range(600)])
    await cache.put(settled_board(sorted(PLAIN), ("by_look", "by_meaning"), 5000))
    after = Counter(frozenset(m.names) for m in [await arena.matchup(rng, has_profile=False) for _ in range(600)])
    assert before[settled] > 60  # one pair in six while nothing is known
    assert after[settled] < before[settled] / 3  # votes go where they still decide something
