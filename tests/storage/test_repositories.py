"""Repositories on the real schema: the photo → analysis → vote/like flow, ownership and deletion."""

from __future__ import annotations

from collections.abc import Callable

import asyncpg
import pytest

from storage.repositories import ArtworkRecord, Recognised, Repo, ShownSet


def _artwork(artwork_id: int, title: str = "Water Lilies") -> ArtworkRecord:
    return ArtworkRecord(
        id=artwork_id,
        title=title,
        artist="Claude Monet",
        year="1906",
        style="Impressionism",
        genre="landscape",
        source_path=f"images/{artwork_id}.jpg",
    )


async def _analysis(pool: asyncpg.Pool, new_id: Callable[[], int], user_id: int) -> tuple[int, list[int]]:
    """A stored analysis for `user_id` with six works shown (three per side), as the bot stores it."""
    works = [new_id() for _ in range(6)]
    async with pool.acquire() as conn, conn.transaction():
        repo = Repo(conn)
        await repo.users.touch(user_id, "en")
        await repo.artworks.upsert_many([_artwork(i) for i in works])
        analysis_id = await repo.analyses.create(
            user_id=user_id,
            image_sha256="ab" * 32,
            description="Water lilies on a pond, soft blues and greens; calm.",
            model_versions={"clip": "ViT-B-32", "describer": "llava-1.6"},
            latency_ms=1234,
            from_cache=False,
            sets=[
                ShownSet(recommender="by_look", side="left", artwork_ids=works[:3]),
                ShownSet(recommender="by_meaning", side="right", artwork_ids=works[3:]),
            ],
        )
    return analysis_id, works


async def test_touch_creates_then_updates_and_language_choice_wins(
    pool: asyncpg.Pool, new_id: Callable[[], int]
) -> None:
    user_id = new_id()
    async with pool.acquire() as conn:
        repo = Repo(conn)
        first = await repo.users.touch(user_id, "ru")
        assert (first.telegram_id, first.language, first.language_code) == (user_id, None, "ru")
        assert first.effective_language == "ru"
        again = await repo.users.touch(user_id, None)  # Telegram sometimes omits it: keep what we know
        assert again.language_code == "ru"
        assert again.first_seen == first.first_seen
        assert again.last_seen >= first.last_seen
        chosen = await repo.users.set_language(user_id, "en")
        assert chosen.language == "en"
        after = await repo.users.touch(user_id, "ru")
        assert (after.language, after.effective_language) == ("en", "en")
        await repo.users.set_language(user_id, None)
        assert (await repo.users.touch(user_id, "de")).effective_language == "de"


async def test_set_language_creates_an_unknown_user(pool: asyncpg.Pool, new_id: Callable[[], int]) -> None:
    user_id = new_id()
    async with pool.acquire() as conn:
        row = await Repo(conn).users.set_language(user_id, "ru")
        assert (row.language, row.language_code) == ("ru", None)


async def test_full_flow_analysis_and_votes(pool: asyncpg.Pool, new_id: Callable[[], int]) -> None:
    user_id = new_id()
    analysis_id, works = await _analysis(pool, new_id, user_id)
    async with pool.acquire() as conn:
        repo = Repo(conn)
        view = await repo.analyses.get_for_user(analysis_id, user_id)
        assert view is not None
        assert (view.id, view.user_id, view.latency_ms, view.from_cache) == (
            analysis_id,
            user_id,
            1234,
            False,
        )
        assert view.model_versions == {"clip": "ViT-B-32", "describer": "llava-1.6"}
        assert view.description.startswith("Water lilies")
        assert [(s.recommender, s.side, list(s.artwork_ids)) for s in view.sets] == [
            ("by_look", "left", works[:3]),
            ("by_meaning", "right", works[3:]),
        ]
        right = view.side("right")
        assert right is not None and list(right.artwork_ids) == works[3:]
        assert view.artwork_ids == frozenset(works)

        assert await repo.votes.upsert(user_id, analysis_id, "left") is True
        assert await repo.votes.upsert(user_id, analysis_id, "left") is False  # pressing twice counts once
        assert await repo.votes.get(user_id, analysis_id) == "left"
        assert await repo.votes.upsert(user_id, analysis_id, "both") is True  # re-voting changes it
        assert await repo.votes.get(user_id, analysis_id) == "both"
        assert await conn.fetchval("SELECT count(*) FROM votes WHERE analysis_id = $1", analysis_id) == 1


async def test_get_for_user_refuses_someone_elses_analysis(
    pool: asyncpg.Pool, new_id: Callable[[], int]
) -> None:
    owner, stranger = new_id(), new_id()
    analysis_id, _ = await _analysis(pool, new_id, owner)
    async with pool.acquire() as conn:
        repo = Repo(conn)
        await repo.users.touch(stranger, "en")
        assert await repo.analyses.get_for_user(analysis_id, stranger) is None
        assert await repo.analyses.get_for_user(analysis_id + 1_000_000, owner) is None
        assert await repo.analyses.get_for_user(analysis_id, owner) is not None


async def test_database_refuses_feedback_on_someone_elses_analysis(
    pool: asyncpg.Pool, new_id: Callable[[], int]
) -> None:
    owner, stranger = new_id(), new_id()
    analysis_id, works = await _analysis(pool, new_id, owner)
    async with pool.acquire() as conn:
        repo = Repo(conn)
        await repo.users.touch(stranger, "en")
        with pytest.raises(asyncpg.exceptions.ForeignKeyViolationError):
            await repo.votes.upsert(stranger, analysis_id, "left")
        with pytest.raises(asyncpg.exceptions.ForeignKeyViolationError):
            await repo.likes.set(stranger, works[0], 1, analysis_id)


async def test_invalid_values_are_refused_before_the_database(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        repo = Repo(conn)
        with pytest.raises(ValueError):
            await repo.votes.upsert(1, 1, "up")  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            await repo.likes.set(1, 1, 2, None)
        with pytest.raises(ValueError):
            bad_side = [ShownSet("r", "middle", [1])]  # type: ignore[arg-type]
            await repo.analyses.create(1, "x", "d", {}, 1, False, bad_side)


async def test_create_is_atomic_inside_the_callers_transaction(
    pool: asyncpg.Pool, new_id: Callable[[], int]
) -> None:
    user_id = new_id()
    async with pool.acquire() as conn:
        await Repo(conn).users.touch(user_id, "en")
        with pytest.raises(asyncpg.exceptions.UniqueViolationError):
            async with conn.transaction():
                same_recommender_twice = [ShownSet("by_look", "left", [1]), ShownSet("by_look", "right", [2])]
                await Repo(conn).analyses.create(
                    user_id, "cd" * 32, "d", {}, 10, True, same_recommender_twice
                )
        assert await conn.fetchval("SELECT count(*) FROM analyses WHERE user_id = $1", user_id) == 0


async def test_like_dislike_undo(pool: asyncpg.Pool, new_id: Callable[[], int]) -> None:
    user_id = new_id()
    analysis_id, works = await _analysis(pool, new_id, user_id)
    async with pool.acquire() as conn:
        likes = Repo(conn).likes
        assert await likes.for_user(user_id) == {}
        assert await likes.set(user_id, works[0], 1, analysis_id) is True
        assert await likes.set(user_id, works[0], 1, analysis_id) is False  # same mark twice
        assert await likes.set(user_id, works[4], -1, analysis_id) is True
        assert await likes.for_user(user_id) == {works[0]: 1, works[4]: -1}
        assert await likes.set(user_id, works[0], -1, analysis_id) is True  # like → dislike
        assert await likes.for_user(user_id) == {works[0]: -1, works[4]: -1}
        assert await likes.set(user_id, works[0], 0, analysis_id) is True  # undo deletes the row
        assert await likes.set(user_id, works[0], 0, analysis_id) is False  # nothing left to undo
        assert await likes.for_user(user_id) == {works[4]: -1}
        assert await likes.set(user_id, works[1], 1, None) is True  # where it was liked is optional
        left = await conn.fetchval(
            "SELECT count(*) FROM likes WHERE user_id = $1 AND artwork_id = $2", user_id, works[0]
        )
        assert left == 0


async def test_deleting_a_user_deletes_all_their_data(pool: asyncpg.Pool, new_id: Callable[[], int]) -> None:
    user_id, other = new_id(), new_id()
    analysis_id, works = await _analysis(pool, new_id, user_id)
    other_analysis, other_works = await _analysis(pool, new_id, other)
    async with pool.acquire() as conn, conn.transaction():
        repo = Repo(conn)
        await repo.votes.upsert(user_id, analysis_id, "right")
        await repo.likes.set(user_id, works[1], 1, analysis_id)
        await repo.votes.upsert(other, other_analysis, "left")
        await repo.likes.set(other, other_works[0], 1, other_analysis)

    async with pool.acquire() as conn, conn.transaction():
        repo = Repo(conn)
        assert await repo.users.delete(user_id) is True
        assert await repo.users.delete(user_id) is False
        assert await repo.users.get(user_id) is None

    async with pool.acquire() as conn:
        for table in ("analyses", "votes", "likes"):
            assert await conn.fetchval(f"SELECT count(*) FROM {table} WHERE user_id = $1", user_id) == 0, (
                table
            )
        assert await conn.fetchval("SELECT count(*) FROM shown_sets WHERE analysis_id = $1", analysis_id) == 0
        # the artworks are the gallery's, not the user's: they stay; so does everyone else's data
        assert set((await Repo(conn).artworks.get_file_ids(works)).keys()) <= set(works)
        assert await conn.fetchval("SELECT count(*) FROM artworks WHERE id = ANY($1::int[])", works) == 6
        assert await Repo(conn).likes.for_user(other) == {other_works[0]: 1}
        assert await Repo(conn).votes.get(other, other_analysis) == "left"


async def test_artworks_upsert_keeps_file_id(pool: asyncpg.Pool, new_id: Callable[[], int]) -> None:
    a, b, c = new_id(), new_id(), new_id()
    async with pool.acquire() as conn, conn.transaction():
        artworks = Repo(conn).artworks
        await artworks.upsert_many([_artwork(a), _artwork(b)])
        assert await artworks.set_file_id(a, "AgACAgIAAxkBAAIB") is True
        assert await artworks.set_file_id(new_id(), "nope") is False  # unknown work: nothing to update
        await artworks.upsert_many(
            [_artwork(a, title="Nymphéas"), _artwork(c), _artwork(c, title="last wins")]
        )
        assert await artworks.get_file_ids([a, b, c]) == {a: "AgACAgIAAxkBAAIB"}
        assert (await artworks.get(a)).title == "Nymphéas"  # type: ignore[union-attr]
        assert (await artworks.get(c)).title == "last wins"  # type: ignore[union-attr]
        assert await artworks.get_file_ids([]) == {}
        await artworks.upsert_many([])


async def test_stats_counts(pool: asyncpg.Pool, new_id: Callable[[], int]) -> None:
    async with pool.acquire() as conn:
        before = await Repo(conn).stats()
    user_id = new_id()
    analysis_id, works = await _analysis(pool, new_id, user_id)
    async with pool.acquire() as conn:
        repo = Repo(conn)
        await repo.votes.upsert(user_id, analysis_id, "neither")
        await repo.likes.set(user_id, works[2], 1, analysis_id)
        await repo.likes.set(user_id, works[3], -1, analysis_id)
        after = await repo.stats()
    assert {k: after[k] - before[k] for k in after} == {
        "users": 1,
        "analyses": 1,
        "votes": 1,
        "likes": 2,
        "suggestions": 0,
        "daily_subscribers": 0,
    }


async def test_an_analysis_records_the_recognised_work_its_language_and_an_empty_set(
    pool: asyncpg.Pool, new_id: Callable[[], int]
) -> None:
    user_id, work = new_id(), new_id()
    async with pool.acquire() as conn, conn.transaction():
        repo = Repo(conn)
        await repo.users.touch(user_id, "ru")
        await repo.artworks.upsert_many([_artwork(work)])
        analysis_id = await repo.analyses.create(
            user_id=user_id,
            image_sha256="cd" * 32,
            description="Кувшинки на пруду.",
            model_versions={},
            latency_ms=10,
            from_cache=False,
            sets=[
                ShownSet(recommender="by_look", side="left", artwork_ids=[work]),
                ShownSet(recommender="by_meaning", side="right", artwork_ids=[]),  # nothing was close enough
            ],
            match=Recognised(artwork_id=42, confidence=0.995),
            language="ru",
        )
    async with pool.acquire() as conn:
        view = await Repo(conn).analyses.get_for_user(analysis_id, user_id)
        assert view is not None and view.language == "ru"
        assert view.match is not None and view.match.artwork_id == 42
        assert view.match.confidence == pytest.approx(0.995, abs=1e-6)
        right = view.side("right")
        assert right is not None and list(right.artwork_ids) == []
        # a claim always carries its confidence: half a claim is refused by the schema
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute("UPDATE analyses SET match_confidence = NULL WHERE id = $1", analysis_id)
