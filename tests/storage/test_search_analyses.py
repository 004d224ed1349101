"""Analyses of word and colour searches (migration 0004): stored with their query and no image hash, read back
with their kind, refused when kind and query disagree, and forgotten without a hash to clear."""

from __future__ import annotations

from collections.abc import Callable

import asyncpg
import pytest

from storage.repositories import AnalysisKind, ArtworkRecord, Repo, ShownSet


async def _search(
    repo: Repo, user_id: int, works: list[int], kind: AnalysisKind, query: str | None, sha: str | None = None
) -> int:
    await repo.artworks.upsert_many([ArtworkRecord(i, f"Work {i}", "", "", "", "", "") for i in works])
    return await repo.analyses.create(
        user_id=user_id,
        image_sha256=sha,
        description="",
        model_versions={},
        latency_ms=12,
        from_cache=False,
        sets=[ShownSet(recommender="words_look", side="left", artwork_ids=works)],
        kind=kind,
        query_text=query,
    )


async def test_a_search_is_stored_with_its_words_and_read_back_with_its_kind(
    pool: asyncpg.Pool, new_id: Callable[[], int]
) -> None:
    user_id, works = new_id(), [new_id(), new_id()]
    async with pool.acquire() as conn:
        repo = Repo(conn)
        await repo.users.touch(user_id, "ru")
        analysis_id = await _search(repo, user_id, works, "text", "рыцарь на белом коне")
        view = await repo.analyses.get_for_user(analysis_id, user_id)
    assert view is not None
    assert (view.kind, view.query_text, view.image_sha256) == ("text", "рыцарь на белом коне", None)
    assert view.artwork_ids == frozenset(works)


@pytest.mark.parametrize(
    ("kind", "query", "sha"),
    [("text", None, None), ("colour", "#1e90ff", "ab" * 32), ("photo", "words", "ab" * 32), ("photo", None, None)],
)
async def test_a_kind_without_its_query_is_refused(
    pool: asyncpg.Pool, new_id: Callable[[], int], kind: AnalysisKind, query: str | None, sha: str | None
) -> None:
    user_id = new_id()
    async with pool.acquire() as conn:
        repo = Repo(conn)
        await repo.users.touch(user_id, "en")
        with pytest.raises(asyncpg.CheckViolationError):
            await _search(repo, user_id, [new_id()], kind, query, sha)


async def test_forgetting_a_user_lists_only_the_hashes_of_their_photos(
    pool: asyncpg.Pool, new_id: Callable[[], int]
) -> None:
    user_id = new_id()
    async with pool.acquire() as conn, conn.transaction():
        repo = Repo(conn)
        await repo.users.touch(user_id, "en")
        await _search(repo, user_id, [new_id()], "colour", "#cc7722")
        await _search(repo, user_id, [new_id()], "photo", None, "cd" * 32)
        forgotten = await repo.users.forget(user_id)
    assert forgotten is not None and forgotten.analyses == 2 and forgotten.image_sha256s == ("cd" * 32,)
