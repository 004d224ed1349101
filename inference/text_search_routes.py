"""`POST /v1/search/text`: find works by words, in Russian, English or any language the CLIP text tower reads.

The words go through the multilingual CLIP text tower once (on the CLIP thread, batched with other text
embeddings: `Pipeline.clip_text`), then every chosen text recommender (`inference.recommenders.words`) searches
with that one vector on the rank pool. The answer has one set per recommender, in the photo sets' `Hit` shape, so
the bot shows and records it the same way and its text arena can pit two of them against each other.

What a query may be: any text up to the contract's cap. It is normalised (Unicode NFC, control characters out,
runs of spaces collapsed) and echoed back as `query`; emoji are words like any other. A long text is cut to the
text tower's context (about 77 tokens) inside the embedder, never refused for its length. A query with nothing
left after normalisation is a 422 `empty_query`, a recommender that does not answer words a 422
`unknown_recommender`.
"""

from __future__ import annotations

import time
import unicodedata

from fastapi import APIRouter, Request

from inference import contract
from inference import recommenders as registry
from inference.batcher import Overloaded
from inference.deps import SECURED, PipelineDep
from inference.gallery_store import Gallery, Hit
from inference.middleware import ApiError
from inference.recommenders import Query, Recommender, UnknownRecommender
from inference.schemas import MAX_RECOMMENDERS


def normalise_query(text: str) -> str:
    """NFC, control and format characters (zero-width spaces, bidi marks) dropped, whitespace runs made one space.
    Emoji, including those joined by zero-width joiners, are kept: ZWJ (U+200D) stays inside them."""
    text = unicodedata.normalize("NFC", text)
    kept = "".join(
        " " if char.isspace() else char
        for char in text
        if char.isspace() or char == "\u200d" or unicodedata.category(char) not in {"Cc", "Cf", "Cs", "Co", "Cn"}
    )
    return " ".join(kept.split())


def text_recommenders(names: list[str] | None) -> list[Recommender]:
    """The named text recommenders (duplicates dropped), or all of them; 422 for an unknown or a photo one."""
    if names is None:
        return [recommender for recommender in registry.REGISTRY.values() if recommender.answers_text]
    unique = list(dict.fromkeys(name.strip() for name in names if name.strip()))
    if not 1 <= len(unique) <= MAX_RECOMMENDERS:
        raise ApiError(422, "invalid_request", f"name 1 to {MAX_RECOMMENDERS} text recommenders, or none for all")
    try:
        chosen = [registry.get(name) for name in unique]
    except UnknownRecommender as exc:
        raise ApiError(422, "unknown_recommender", str(exc)) from None
    photo = [recommender.name for recommender in chosen if not recommender.answers_text]
    if photo:
        words = ", ".join(r.name for r in registry.REGISTRY.values() if r.answers_text)
        raise ApiError(
            422, "unknown_recommender", f"{', '.join(photo)} answers a photo, not words; text recommenders: {words}"
        )
    return chosen


def _search(chosen: list[Recommender], query: Query, gallery: Gallery, k: int) -> dict[str, list[Hit]]:
    return {recommender.name: recommender.recommend(query, gallery, k) for recommender in chosen}


def text_search_router() -> APIRouter:
    router = APIRouter(tags=["search"], dependencies=SECURED)

    @router.post("/v1/search/text", response_model_exclude_unset=True)
    async def search_text(
        request: Request, pipeline: PipelineDep, body: contract.TextSearchRequest
    ) -> contract.SearchResponse:
        """Works matching the words, one set per text recommender (`text: true` in /v1/recommenders; default all
        of them). `query` echoes the normalised words. Sets may be short or empty: hits below the gallery's
        relevance floor of their space are dropped, as in the photo sets."""
        start = time.perf_counter()
        query = normalise_query(body.query)
        if not query:
            raise ApiError(422, "empty_query", "The query is empty: send a few words to search for.")
        chosen = text_recommenders(body.recommenders)
        try:
            embedded = await pipeline.clip_text(query)
        except Overloaded as exc:
            raise ApiError(
                503, "overloaded", "The service is busy; retry shortly.", headers={"Retry-After": str(exc.retry_after)}
            ) from exc
        ranked = time.perf_counter()
        sets = await pipeline.rank(_search, chosen, Query(query_text_vector=embedded.vector), pipeline.gallery, body.k)
        done = time.perf_counter()
        timings = {
            "clip_text": round(embedded.clip_text_ms, 1),
            "search": round((done - ranked) * 1000.0, 1),
            "total": round((done - start) * 1000.0, 1),
        }
        request.state.timings = timings  # for the access log line
        return contract.SearchResponse(
            query=query,
            recommendations={
                name: [contract.Hit.model_validate(hit.to_dict()) for hit in hits] for name, hits in sets.items()
            },
            timings_ms=timings,
        )

    return router
