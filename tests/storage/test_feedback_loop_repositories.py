"""Repositories behind the feedback loop: suggestions, history, daily subscriptions, arena rows and /forget."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from storage.repositories import Repo, ShownSet, next_run
from tests.storage.test_repositories import _analysis, _artwork


async def test_suggestion_belongs_to_its_user_and_likes_on_it_are_recorded(
    pool: asyncpg.Pool, new_id: Callable[[], int]
) -> None:
    owner, stranger = new_id(), new_id()
    works = [new_id() for _ in range(3)]
    async with pool.acquire() as conn, conn.transaction():
        repo = Repo(conn)
        for user in (owner, stranger):
            await repo.users.touch(user, "en")
        await repo.artworks.upsert_many([_artwork(i) for i in works])
        suggestion_id = await repo.suggestions.create(owner, "foryou", works, {works[0]: works[2]})
    async with pool.acquire() as conn:
        repo = Repo(conn)
        view = await repo.suggestions.get_for_user(suggestion_id, owner)
        assert view is not None and view.artwork_ids == tuple(works) and view.because == {works[0]: works[2]}
        assert await repo.suggestions.get_for_user(suggestion_id, stranger) is None
        assert await repo.likes.set(owner, works[1], 1, suggestion_id=suggestion_id)
        with pytest.raises(asyncpg.ForeignKeyViolationError):  # someone else's suggestion
            await repo.likes.set(stranger, works[1], 1, suggestion_id=suggestion_id)
        with pytest.raises(ValueError):
            await repo.suggestions.create(owner, "spam", works)  # type: ignore[arg-type]


async def test_history_lists_likes_votes_and_everything_seen(pool: asyncpg.Pool, new_id: Callable[[], int]) -> None:
    user_id = new_id()
    analysis_id, works = await _analysis(pool, new_id, user_id)
    extra = new_id()
    async with pool.acquire() as conn, conn.transaction():
        repo = Repo(conn)
        await repo.artworks.upsert_many([_artwork(extra)])
        assert not await repo.history.has_likes(user_id)
        await repo.votes.upsert(user_id, analysis_id, "left")
        await repo.likes.set(user_id, works[0], 1, analysis_id)
        await repo.likes.set(user_id, works[4], -1, analysis_id)
        await repo.suggestions.create(user_id, "daily", [extra])
    async with pool.acquire() as conn:
        history = Repo(conn).history
        assert await history.has_likes(user_id)
        likes = {entry.artwork_id: entry.value for entry in await history.likes(user_id)}
        assert likes == {works[0]: 1, works[4]: -1}
        (vote,) = await history.votes(user_id)
        assert vote.choice == "left" and vote.left_ids == tuple(works[:3]) and vote.right_ids == tuple(works[3:])
        assert await history.seen_artwork_ids(user_id) == {*works, extra}


def test_next_run_is_the_next_local_hour() -> None:
    now = datetime(2026, 11, 23, 10, 30, tzinfo=UTC)
    assert next_run(9, 0, now) == datetime(2026, 11, 24, 9, 0, tzinfo=UTC)  # 09:00 has passed today
    assert next_run(11, 0, now) == datetime(2026, 11, 23, 11, 0, tzinfo=UTC)
    # 09:00 in UTC+3 is 06:00 UTC; at 10:30 UTC it is 13:30 there, so tomorrow
    assert next_run(9, 180, now) == datetime(2026, 11, 24, 6, 0, tzinfo=UTC)
    # 09:00 in UTC-5 is 14:00 UTC, still today
    assert next_run(9, -300, now) == datetime(2026, 11, 23, 14, 0, tzinfo=UTC)


async def test_daily_claims_each_due_subscription_once_and_moves_it_a_day(
    pool: asyncpg.Pool, new_id: Callable[[], int]
) -> None:
    user_id = new_id()
    now = datetime.now(UTC)
    async with pool.acquire() as conn:
        repo = Repo(conn)
        await repo.users.touch(user_id, "en")
        sub = await repo.daily.subscribe(user_id, 9, 0, now)
        assert now < sub.next_run_at <= now + timedelta(days=1)
        # three days of downtime: one pick is sent, not three, and the next is in the future
        later = sub.next_run_at + timedelta(days=3, hours=1)
        claimed = [s for s in await repo.daily.claim_due(later, 1000) if s.user_id == user_id]
        assert len(claimed) == 1 and later < claimed[0].next_run_at <= later + timedelta(days=1)
        assert claimed[0].next_run_at.astimezone(UTC).hour == 9
        assert [s for s in await repo.daily.claim_due(later, 1000) if s.user_id == user_id] == []
        assert not await repo.daily.mark_failed(user_id, max_failures=2)
        assert await repo.daily.mark_failed(user_id, max_failures=2)  # dropped after two failures in a row
        assert await repo.daily.get(user_id) is None
        assert not await repo.daily.unsubscribe(user_id)


async def test_arena_rows_count_votes_per_recommender_pair(pool: asyncpg.Pool, new_id: Callable[[], int]) -> None:
    async with pool.acquire() as conn:
        before = {(a, b, c): n for a, b, c, n in await Repo(conn).arena.vote_rows()}
    for choice in ("left", "left", "both"):
        user_id = new_id()
        analysis_id, _ = await _analysis(pool, new_id, user_id)
        async with pool.acquire() as conn:
            await Repo(conn).votes.upsert(user_id, analysis_id, choice)
    async with pool.acquire() as conn:
        after = {(a, b, c): n for a, b, c, n in await Repo(conn).arena.vote_rows()}
    gained = {key: n - before.get(key, 0) for key, n in after.items() if n != before.get(key, 0)}
    assert gained == {("by_look", "by_meaning", "left"): 2, ("by_look", "by_meaning", "both"): 1}


async def test_interleaved_analysis_is_credited_from_likes(pool: asyncpg.Pool, new_id: Callable[[], int]) -> None:
    user_id = new_id()
    works = [new_id() for _ in range(4)]
    async with pool.acquire() as conn, conn.transaction():
        repo = Repo(conn)
        await repo.users.touch(user_id, "en")
        await repo.artworks.upsert_many([_artwork(i) for i in works])
        analysis_id = await repo.analyses.create(
            user_id=user_id,
            image_sha256="cd" * 32,
            description="d",
            model_versions={},
            latency_ms=1,
            from_cache=False,
            mode="interleaved",
            display_ids=[works[0], works[2], works[1], works[3]],
            sets=[
                ShownSet(recommender="fused", side="left", artwork_ids=works[:2]),
                ShownSet(recommender="by_look", side="right", artwork_ids=works[2:]),
            ],
        )
        await repo.likes.set(user_id, works[2], 1, analysis_id)
        await repo.likes.set(user_id, works[0], -1, analysis_id)
    async with pool.acquire() as conn:
        records = [r for r in await Repo(conn).arena.interleaved() if set(r.left_ids) == set(works[:2])]
        view = await Repo(conn).analyses.get_for_user(analysis_id, user_id)
    assert view is not None and view.mode == "interleaved"
    (record,) = records
    assert (record.left_recommender, record.right_recommender) == ("fused", "by_look")
    assert record.likes == {works[2]: 1, works[0]: -1}


async def test_forget_deletes_everything_and_reports_it(pool: asyncpg.Pool, new_id: Callable[[], int]) -> None:
    user_id, other = new_id(), new_id()
    analysis_id, works = await _analysis(pool, new_id, user_id)
    other_analysis, _ = await _analysis(pool, new_id, other)
    async with pool.acquire() as conn, conn.transaction():
        repo = Repo(conn)
        await repo.votes.upsert(user_id, analysis_id, "right")
        await repo.likes.set(user_id, works[1], 1, analysis_id)
        suggestion_id = await repo.suggestions.create(user_id, "foryou", works[:2])
        await repo.likes.set(user_id, works[5], -1, suggestion_id=suggestion_id)
        await repo.daily.subscribe(user_id, 8, 0, datetime.now(UTC))
    async with pool.acquire() as conn, conn.transaction():
        forgotten = await Repo(conn).users.forget(user_id)
    assert forgotten is not None
    assert (forgotten.analyses, forgotten.votes, forgotten.likes, forgotten.suggestions, forgotten.daily) == (
        1,
        1,
        2,
        1,
        True,
    )
    assert forgotten.analysis_ids == (analysis_id,) and forgotten.suggestion_ids == (suggestion_id,)
    async with pool.acquire() as conn:
        repo = Repo(conn)
        assert await repo.history.seen_artwork_ids(user_id) == set()
        assert await repo.history.likes(user_id) == []
        assert await repo.daily.get(user_id) is None
        assert await repo.users.forget(user_id) is None
        assert await repo.analyses.get_for_user(other_analysis, other) is not None  # nobody else's data
