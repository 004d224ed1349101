"""`POST /v1/search/color`: the works whose dominant palettes hold most of a colour.

The colour is a hex code or a name in English or Russian (`inference.palette.parse_colour`); an unknown one is a
422 whose message lists examples (in English: the bot translates). Every work of the gallery is scored by
`palette.colour_scores`, vectorised numpy over the stored (n, 5, 4) palettes (removed works left out): p50
0.6 ms at 10 k works, 9 ms at 100 k and ~130 ms at 1 M on this 2-core machine under a load of ~10
(`benchmarks/bench_palette.py`), on the rank pool so it never blocks the loop. The answer is one set,
`by_colour`, in the usual Hit shape, with each hit's palette for the strip.
"""

from __future__ import annotations

import time

from fastapi import APIRouter, Request

from inference import contract
from inference.deps import SECURED, PipelineDep
from inference.gallery_store import Hit
from inference.middleware import ApiError
from inference.palette import UnknownColour, best_matches, palette_hex, parse_colour

RECOMMENDER = "by_colour"


def color_router() -> APIRouter:
    router = APIRouter(tags=["search"], dependencies=SECURED)

    @router.post("/v1/search/color", response_model_exclude_unset=True)
    async def search_color(
        request: Request, pipeline: PipelineDep, body: contract.ColorSearchRequest
    ) -> contract.SearchResponse:
        """Works ranked by how much of their palette is near the colour (ΔE in CIELAB); `score` is that share,
        0..1. `query` is the colour as #rrggbb; `palettes` holds each hit's 5 colours and weights."""
        start = time.perf_counter()
        try:
            colour = parse_colour(body.color)
        except UnknownColour as exc:
            raise ApiError(422, "unknown_colour", str(exc)) from None
        gallery = pipeline.gallery
        ranked = time.perf_counter()
        removed: frozenset[int] = getattr(
            gallery, "removed", frozenset()
        )  # works removed from the gallery (tombstones)
        ids, scores = await pipeline.rank(best_matches, gallery.palettes, colour.lab, body.k, removed)
        search_ms = (time.perf_counter() - ranked) * 1000.0
        hits = [Hit(gallery.artworks[int(i)], float(s)) for i, s in zip(ids, scores, strict=True)]
        palettes = {
            hit.artwork.id: [
                contract.PaletteColour(hex=hex_code, weight=weight)
                for hex_code, weight in palette_hex(gallery.palettes[hit.artwork.id])
            ]
            for hit in hits
        }
        timings = {"search": round(search_ms, 1), "total": round((time.perf_counter() - start) * 1000.0, 1)}
        request.state.timings = timings  # for the access log line
        return contract.SearchResponse(
            query=colour.hex,
            recommendations={RECOMMENDER: [contract.Hit.model_validate(hit.to_dict()) for hit in hits]},
            palettes=palettes,
            timings_ms=timings,
        )

    return router
