"""The service's compute: decode, the fast CLIP path and the slow describe path, each on its own worker.

The bot calls /v1/look and /v1/analyze at the same time and shows the visual set as soon as /v1/look
answers, so CLIP+FAISS and the describer never share a thread: each has a dedicated single-thread executor
and its own micro-batcher, and a long describe cannot hold a look back. The CLIP text tower (a description
embedded for `by_text_clip`) runs on the CLIP thread as well: one model, one thread, and it takes
milliseconds. Decoding has a small pool of its own (it bounds the memory of concurrent full-size decodes), and a
photo is decoded once for all the requests that send it within LOOK_REUSE_SECONDS (`inference.photo_cache`).
Each model thread computes with its own share of the cores (`inference.threads`): CLIP, the describer and
identification side by side never oversubscribe the CPU.
The recommenders' searches and the taste math (FAISS reads and numpy: milliseconds, safe to run in parallel)
have a small "rank" pool, so they wait behind neither model. Nothing here runs torch, FAISS or numpy work on
the loop.

Identification (which gallery work is this photo of? `inference.identify`) has its own single thread too:
OpenCV's SIFT and RANSAC release the GIL, so it runs next to CLIP rather than after it. Like the CLIP pass, it
is shared per photo digest between /v1/identify, /v1/look and /v1/analyze. With real CLIP weights it also
verifies CLIP's top image hits once the CLIP pass is done (local features shortlist first, CLIP adds to it).
A recognised work is left out of every set: sets are asked for one work more and the match is dropped.

An analysis computes only what its recommenders read (`Recommender.uses`): a request for `by_look` alone
never waits for the describer. Work nobody waits for any more is not computed: a cancelled caller (its client
hung up, see `middleware.CancelOnDisconnect`) leaves the batcher's queue, and a CLIP pass shared by /v1/look and
/v1/analyze is cancelled when its last caller leaves.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, Generic, TypeVar

import numpy as np
from PIL import Image

from feedback.taste import FeedbackEvent, TasteProfile
from inference.batcher import MicroBatcher, Overloaded
from inference.gallery_store import Gallery, Hit
from inference.identify import Identifier, Match, Prepared
from inference.identify.identifier import Candidate
from inference.identify.identifier import describe as describe_identifier
from inference.images import decode_image, sha256_hex, source_size
from inference.models import Models
from inference.photo_cache import PhotoCache
from inference.recommenders import Query, Recommender
from inference.settings import InferenceSettings
from inference.threads import thread_plan, torch_threads

LOOK_REUSE_SECONDS = 30.0
HASH_ON_LOOP_BYTES = 1 << 20
"""Uploads up to this size are hashed on the loop (a phone photo of 100 KB in 0.05 ms, 1 MiB in about 0.6 ms):
cheaper than a trip to the decode pool and back; larger ones are hashed in the pool."""
DESCRIPTION_FEATURES = frozenset({"description", "text_vector", "clip_text_vector"})

R = TypeVar("R")
T = TypeVar("T")


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0


@dataclass(eq=False)
class _Shared(Generic[T]):
    """One computation (a CLIP pass, an identification) that concurrent callers for the same photo wait on;
    `waiters` counts who still does."""

    future: asyncio.Future[T]
    waiters: int = 0


@dataclass
class Decoded:
    image: Image.Image
    sha256: str
    decode_ms: float


@dataclass
class LookResult:
    hits: list[Hit]
    vector: np.ndarray
    """The photo's CLIP image vector, (D,): what every image-based recommender searches with."""
    clip_ms: float
    search_ms: float


@dataclass
class MeaningResult:
    description: str
    text_vector: np.ndarray
    """MiniLM embedding of the description, (D_text,)."""
    describe_ms: float
    text_embed_ms: float


@dataclass
class ClipTextResult:
    vector: np.ndarray
    clip_text_ms: float


@dataclass
class Identified:
    """The work recognised in a photo (`match.index` is its artwork id; `corners` in the uploaded photo's
    pixels), or None; timings of the identification (empty when it is turned off)."""

    match: Match | None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def artwork_id(self) -> int | None:
        return self.match.index if self.match is not None else None


@dataclass
class Visual:
    """/v1/look's answer: the visual set without the recognised work, the CLIP pass and the identification."""

    hits: list[Hit]
    look: LookResult
    identified: Identified


@dataclass
class Analysis:
    description: str | None
    """None when no requested recommender needed one (the describer did not run)."""
    recommendations: dict[str, list[Hit]]
    timings: dict[str, float]
    identified: Identified = field(default_factory=lambda: Identified(None))
    image_vector: np.ndarray | None = None
    """The photo's CLIP image vector when a recommender needed it (the photo's tags are read from it)."""


class Pipeline:
    """Owns the executors and batchers; `start()` and `stop()` bracket the service's life."""

    def __init__(
        self, settings: InferenceSettings, models: Models, gallery: Gallery, identifier: Identifier | None = None
    ) -> None:
        self.settings = settings
        self.models = models
        self.gallery = gallery
        self.identifier = identifier
        # CLIP's hits are worth verifying only when CLIP knows paintings; random weights rank at random.
        self.fusion_candidates = settings.identify_clip_candidates if settings.clip_weights is not None else 0
        self._identify_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="identify")
        self._identifications: dict[str, _Shared[Identified]] = {}
        self._identifying = 0
        self.threads = thread_plan(settings)
        self._decode_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="decode")
        self.photos: PhotoCache[Decoded] = PhotoCache(settings.photo_cache_mb << 20, LOOK_REUSE_SECONDS)
        self._clip_pool = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="clip", initializer=torch_threads(self.threads.clip)
        )
        self._describe_pool = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="describe", initializer=torch_threads(self.threads.describer)
        )
        self._rank_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="rank")
        self._looks: dict[tuple[str, int], _Shared[LookResult]] = {}
        self.look_batcher: MicroBatcher[tuple[Image.Image, int], LookResult] = MicroBatcher(
            "clip",
            self._look_batch,
            max_batch=settings.clip_batch_size,
            max_wait_ms=settings.clip_batch_wait_ms,
            max_queue=settings.max_queue,
            executor=self._clip_pool,
        )
        self.meaning_batcher: MicroBatcher[Image.Image, MeaningResult] = MicroBatcher(
            "describe",
            self._meaning_batch,
            max_batch=settings.describe_batch_size,
            max_wait_ms=settings.describe_batch_wait_ms,
            max_queue=settings.max_queue,
            executor=self._describe_pool,
        )
        self.clip_text_batcher: MicroBatcher[str, ClipTextResult] = MicroBatcher(
            "clip_text",
            self._clip_text_batch,
            max_batch=settings.clip_batch_size,
            max_wait_ms=settings.clip_batch_wait_ms,
            max_queue=settings.max_queue,
            executor=self._clip_pool,  # the CLIP model is not shared across threads
        )

    def _batchers(self) -> tuple[MicroBatcher[Any, Any], ...]:
        return (self.look_batcher, self.meaning_batcher, self.clip_text_batcher)

    def start(self) -> None:
        if self.identifier is not None:
            import cv2  # identification's SIFT; a process-wide setting, and this process is the service

            cv2.setNumThreads(self.threads.identify)
        for batcher in self._batchers():
            batcher.start()

    async def stop(self) -> None:
        for batcher in self._batchers():
            await batcher.stop()
        for pool in (self._decode_pool, self._clip_pool, self._describe_pool, self._rank_pool, self._identify_pool):
            pool.shutdown(wait=False, cancel_futures=True)

    async def decode(self, data: bytes) -> Decoded:
        """Hash, then decode unless another request decoded the same bytes in the last moments (`PhotoCache`);
        both in the decode pool (a 20 MB JPEG takes long enough to stall the loop). `decode_ms` is this request's
        wait for the photo."""
        loop = asyncio.get_running_loop()
        start = time.perf_counter()
        if len(data) <= HASH_ON_LOOP_BYTES:
            digest = sha256_hex(data)
        else:
            digest = await loop.run_in_executor(self._decode_pool, sha256_hex, data)
        decoded = await self.photos.get(
            digest, lambda: loop.run_in_executor(self._decode_pool, self._decode, data, digest)
        )
        return replace(decoded, decode_ms=_ms(start))

    async def look(self, image: Image.Image, k: int, digest: str | None = None) -> LookResult:
        """CLIP + FAISS. The bot asks /v1/look and /v1/analyze for the same photo at once: with the photo's
        digest, concurrent and recent identical requests share one CLIP pass instead of paying for two."""
        if digest is None:
            return await self.look_batcher.submit((image, k))
        return await _share(self._looks, (digest, k), lambda: self.look_batcher.submit((image, k)))

    def look_k(self, k: int) -> int:
        """Works to ask for a set of k: one more while identification may drop the recognised work."""
        return k + 1 if self.identifier is not None else k

    async def visual(self, decoded: Decoded, k: int) -> Visual:
        """/v1/look: the CLIP pass and the identification at once; the recognised work is not in the set."""
        found, identified = await gather_or_cancel(
            self.look(decoded.image, self.look_k(k), decoded.sha256), self.identify(decoded, k)
        )
        return Visual(_without(found.hits, identified.artwork_id, k), found, identified)

    async def identify(self, decoded: Decoded, k: int | None = None) -> Identified:
        """Which gallery work the photo shows, if any; shared per photo digest like the CLIP pass. `k` is the
        set size of the caller's look, so that the CLIP pass fusion waits for is the one the look runs."""
        if self.identifier is None:
            return Identified(None)
        look_k = self.look_k(k or self.settings.top_k)
        # One runs, up to max_queue wait (as in the batchers); a photo already being identified just joins.
        if decoded.sha256 not in self._identifications and self._identifying > self.settings.max_queue:
            raise Overloaded("identify", 1)
        return await _share(self._identifications, decoded.sha256, lambda: self._identify(decoded, look_k))

    async def _identify(self, decoded: Decoded, look_k: int) -> Identified:
        identifier = self.identifier
        assert identifier is not None
        loop = asyncio.get_running_loop()
        self._identifying += 1
        try:
            start = time.perf_counter()
            prepared = await loop.run_in_executor(self._identify_pool, _prepare, identifier, decoded.image)
            timings = {"identify_features": _ms(start)}
            start = time.perf_counter()
            best: Candidate | None = None
            if prepared is not None:
                best = await loop.run_in_executor(
                    self._identify_pool, identifier.verify_candidates, prepared, prepared.shortlist
                )
                if self.fusion_candidates and not identifier.is_decisive(best):
                    best = await self._verify_clip_hits(identifier, prepared, best, decoded, look_k)
            timings["identify_verify"] = _ms(start)
        finally:
            self._identifying -= 1
        match = identifier.decide(best)
        return Identified(_in_upload_pixels(match, decoded.image) if match is not None else None, timings)

    async def _verify_clip_hits(
        self, identifier: Identifier, prepared: Prepared, best: Candidate | None, decoded: Decoded, look_k: int
    ) -> Candidate | None:
        """Add CLIP's top image hits the local-feature shortlist missed (a repainted copy, a photo whose words
        were mostly glare) and verify those too."""
        found = await self.look(decoded.image, look_k, decoded.sha256)
        hits = await self.rank(self.gallery.search_image, found.vector, self.fusion_candidates)
        listed = {int(work) for work in prepared.shortlist}
        extra = [hit.artwork.id for hit in hits[0] if hit.artwork.id not in listed]
        if not extra:
            return best
        return await asyncio.get_running_loop().run_in_executor(
            self._identify_pool, identifier.verify_candidates, prepared, extra, best
        )

    def identification(self) -> dict[str, Any] | None:
        """What /healthz tells about identification: None when it is off."""
        if self.identifier is None:
            return None
        facts = describe_identifier(self.identifier)
        return {**facts, "clip_candidates": self.fusion_candidates}

    def dropped(self) -> dict[str, int]:
        """Per batcher, the items dropped because their caller gave up (for /healthz and tests)."""
        return {batcher.name: batcher.dropped for batcher in self._batchers()}

    async def meaning(self, image: Image.Image) -> MeaningResult:
        """Describe (slow) and embed the description with MiniLM, on the describe worker."""
        return await self.meaning_batcher.submit(image)

    async def clip_text(self, text: str) -> ClipTextResult:
        return await self.clip_text_batcher.submit(text)

    async def rank(self, fn: Callable[..., R], *args: Any) -> R:
        """Run FAISS searches or taste math on the rank pool (they block, briefly)."""
        return await asyncio.get_running_loop().run_in_executor(self._rank_pool, partial(fn, *args))

    async def profile(self, events: Sequence[FeedbackEvent], seed: int = 0) -> TasteProfile:
        """A taste profile over this gallery's CLIP image vectors; events must name artworks of the gallery."""
        return await self.rank(partial(TasteProfile.build, seed=seed), events, self.gallery.vectors)

    async def analyze(
        self, decoded: Decoded, recommenders: Sequence[Recommender], k: int, profile: TasteProfile | None = None
    ) -> Analysis:
        """Compute the features the recommenders read (concurrently: CLIP next to the describer), then run
        every recommender on them."""
        uses: set[str] = set().union(*(recommender.uses for recommender in recommenders))
        wants_image = "image_vector" in uses
        wants_description = bool(uses & DESCRIPTION_FEATURES)
        found, described, identified = await gather_or_cancel(
            self.look(decoded.image, self.look_k(k), decoded.sha256) if wants_image else None,
            self._describe(decoded.image, "clip_text_vector" in uses) if wants_description else None,
            self.identify(decoded, k),
        )
        meant, clip_text = described if described is not None else (None, None)
        query = Query(
            image_vector=found.vector if found is not None else None,
            description=meant.description if meant is not None else None,
            text_vector=meant.text_vector if meant is not None else None,
            clip_text_vector=clip_text.vector if clip_text is not None else None,
            profile=profile,
        )
        start = time.perf_counter()
        matched = identified.artwork_id
        # one more work when one is to be dropped (asked for only then: a personal re-ranking depends on k)
        ranked = await self.rank(self._recommend, recommenders, query, k + 1 if matched is not None else k)
        recommendations = {name: _without(hits, matched, k) for name, hits in ranked.items()}
        timings = {"decode": decoded.decode_ms}
        if found is not None:
            timings["clip"] = found.clip_ms
        timings["search"] = _ms(start)
        if meant is not None:
            timings.update(describe=meant.describe_ms, text_embed=meant.text_embed_ms)
        if clip_text is not None:
            timings["clip_text"] = clip_text.clip_text_ms
        timings.update(identified.timings)
        return Analysis(query.description, recommendations, timings, identified, query.image_vector)

    async def _describe(self, image: Image.Image, with_clip_text: bool) -> tuple[MeaningResult, ClipTextResult | None]:
        meant = await self.meaning(image)
        clip_text = await self.clip_text(meant.description) if with_clip_text else None
        return meant, clip_text

    def _recommend(self, recommenders: Sequence[Recommender], query: Query, k: int) -> dict[str, list[Hit]]:
        return {recommender.name: recommender.recommend(query, self.gallery, k) for recommender in recommenders}

    def _decode(self, data: bytes, digest: str) -> Decoded:
        start = time.perf_counter()
        image = decode_image(data, max_pixels=self.settings.max_image_pixels)
        return Decoded(image, digest, _ms(start))

    def _look_batch(self, items: list[tuple[Image.Image, int]]) -> list[LookResult]:
        start = time.perf_counter()
        vectors = self.models.clip.embed_images([image for image, _ in items])
        clip_ms = _ms(start)
        start = time.perf_counter()
        hits = self.gallery.search_image(vectors, max(k for _, k in items))
        search_ms = _ms(start)
        return [
            LookResult(row[:k], vector, clip_ms, search_ms)
            for row, vector, (_, k) in zip(hits, vectors, items, strict=True)
        ]

    def _meaning_batch(self, images: list[Image.Image]) -> list[MeaningResult]:
        start = time.perf_counter()
        descriptions = self.models.describer.describe(images)
        describe_ms = _ms(start)
        start = time.perf_counter()
        vectors = self.models.text.embed_texts(descriptions)
        text_embed_ms = _ms(start)
        return [
            MeaningResult(description, vector, describe_ms, text_embed_ms)
            for description, vector in zip(descriptions, vectors, strict=True)
        ]

    def _clip_text_batch(self, texts: list[str]) -> list[ClipTextResult]:
        start = time.perf_counter()
        vectors = self.models.clip.embed_texts(texts)
        clip_text_ms = _ms(start)
        return [ClipTextResult(vector, clip_text_ms) for vector in vectors]


def _without(hits: list[Hit], artwork_id: int | None, k: int) -> list[Hit]:
    """The first k hits that are not the recognised work."""
    return [hit for hit in hits if hit.artwork.id != artwork_id][:k]


def _prepare(identifier: Identifier, image: Image.Image) -> Prepared | None:
    return identifier.prepare(np.asarray(image))


def _in_upload_pixels(match: Match, image: Image.Image) -> Match:
    """Corners found in the decoded image (at most 1024 px) moved to the uploaded photo's own pixels."""
    width, height = source_size(image)
    sx, sy = width / image.width, height / image.height
    corners = [(round(x * sx, 1), round(y * sy, 1)) for x, y in match.corners]
    return Match(match.index, match.inliers, match.confidence, corners)


async def _share(table: dict[Any, _Shared[T]], key: Any, start: Callable[[], Awaitable[T]]) -> T:
    """Join the computation running (or finished in the last LOOK_REUSE_SECONDS) for `key`, or start one."""
    shared = table.get(key)
    if shared is None:
        created: _Shared[T] = _Shared(asyncio.ensure_future(start()))
        table[key] = shared = created
        created.future.add_done_callback(lambda done: _forget(table, key, created))
    shared.waiters += 1
    try:
        # shield: one caller hanging up must not cancel the work the other caller is waiting for...
        return await asyncio.shield(shared.future)
    except asyncio.CancelledError:
        if shared.waiters == 1:  # ...but when the last one hangs up, nobody needs it
            shared.future.cancel()
            _drop(table, key, shared)  # a caller arriving now must start anew, not join this one
        raise
    finally:
        shared.waiters -= 1


def _forget(table: dict[Any, _Shared[T]], key: Any, shared: _Shared[T]) -> None:
    if shared.future.cancelled() or shared.future.exception() is not None:
        _drop(table, key, shared)
    else:
        asyncio.get_running_loop().call_later(LOOK_REUSE_SECONDS, _drop, table, key, shared)


def _drop(table: dict[Any, _Shared[T]], key: Any, shared: _Shared[T]) -> None:
    if table.get(key) is shared:
        del table[key]


async def gather_or_cancel(*calls: Awaitable[Any] | None) -> list[Any]:
    """Run the calls concurrently (None: nothing to run, None back); if one fails, cancel the others so no work
    is done for nobody."""
    tasks = [asyncio.ensure_future(call) if call is not None else None for call in calls]
    running = [task for task in tasks if task is not None]
    try:
        await asyncio.gather(*running)
    except BaseException:
        for task in running:
            task.cancel()
        raise
    return [task.result() if task is not None else None for task in tasks]
