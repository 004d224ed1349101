"""`POST /v1/search/color`: the works whose dominant palettes hold most of a colour.

The colour is a hex code or a name in English or Russian (`inference.palette.parse_colour`); an unknown one is a
422 whose message lists examples (in English: the bot translates). The works are ranked by
`colour_index.ColourIndex` (removed works left out): every palette scored exactly up to 200 k works (p50 9 ms at
100 k), an IVF index of soft Lab histograms with exact re-scoring above (`benchmarks/bench_palette.py`), on the
rank pool so it never blocks the loop. The answer is one set, `by_colour`, in the usual Hit shape, with each
hit's palette for the strip.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI, Request

from inference import contract
from inference.colour_index import ColourIndex
from inference.deps import SECURED, PipelineDep
from inference.gallery_store import Hit
from inference.middleware import ApiError
from inference.palette import UnknownColour, palette_hex, parse_colour

RECOMMENDER = "by_colour"


def color_router() -> APIRouter:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # runs inside the app's lifespan, after the gallery is loaded
        app.state.colour_index = await asyncio.to_thread(ColourIndex.build, app.state.pipeline.gallery.palettes)
        yield

    router = APIRouter(tags=["search"], dependencies=SECURED, lifespan=lifespan)

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
        colours: ColourIndex = request.app.state.colour_index
        if colours.palettes is not gallery.palettes:  # the gallery changed since the start: score it exactly
            colours = ColourIndex(gallery.palettes)
        ids, scores = await pipeline.rank(colours.search, colour.lab, body.k, removed)
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
