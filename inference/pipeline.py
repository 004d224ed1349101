"""The service's compute: decode, the fast CLIP path and the slow describe path, each on its own worker.

The bot calls /v1/look and /v1/analyze at the same time and shows the visual set as soon as /v1/look
answers, so CLIP+FAISS and the describer never share a thread: each has a dedicated single-thread executor
and its own micro-batcher, and a long describe cannot hold a look back. Decoding has a small pool of its
own (it bounds the memory of concurrent full-size decodes). Nothing here runs torch or FAISS on the loop.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from PIL import Image

from inference.batcher import MicroBatcher
from inference.gallery_store import Gallery, Hit
from inference.images import decode_image, sha256_hex
from inference.models import Models
from inference.settings import InferenceSettings

LOOK_REUSE_SECONDS = 30.0


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0


@dataclass
class Decoded:
    image: Image.Image
    sha256: str
    decode_ms: float


@dataclass
class LookResult:
    hits: list[Hit]
    clip_ms: float
    search_ms: float


@dataclass
class MeaningResult:
    description: str
    hits: list[Hit]
    describe_ms: float
    text_embed_ms: float
    search_ms: float


class Pipeline:
    """Owns the executors and batchers; `start()` and `stop()` bracket the service's life."""

    def __init__(self, settings: InferenceSettings, models: Models, gallery: Gallery) -> None:
        self.settings = settings
        self.models = models
        self.gallery = gallery
        self._decode_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="decode")
        self._clip_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clip")
        self._describe_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="describe")
        self._looks: dict[tuple[str, int], asyncio.Future[LookResult]] = {}
        self.look_batcher: MicroBatcher[tuple[Image.Image, int], LookResult] = MicroBatcher(
            "clip",
            self._look_batch,
            max_batch=settings.clip_batch_size,
            max_wait_ms=settings.clip_batch_wait_ms,
            max_queue=settings.max_queue,
            executor=self._clip_pool,
        )
        self.meaning_batcher: MicroBatcher[tuple[Image.Image, int], MeaningResult] = MicroBatcher(
            "describe",
            self._meaning_batch,
            max_batch=settings.describe_batch_size,
            max_wait_ms=settings.describe_batch_wait_ms,
            max_queue=settings.max_queue,
            executor=self._describe_pool,
        )

    def start(self) -> None:
        self.look_batcher.start()
        self.meaning_batcher.start()

    async def stop(self) -> None:
        await self.look_batcher.stop()
        await self.meaning_batcher.stop()
        for pool in (self._decode_pool, self._clip_pool, self._describe_pool):
            pool.shutdown(wait=False, cancel_futures=True)

    async def decode(self, data: bytes) -> Decoded:
        """Hash and decode in the decode pool (a 20 MB JPEG takes long enough to stall the loop)."""
        return await asyncio.get_running_loop().run_in_executor(self._decode_pool, self._decode, data)

    async def look(self, image: Image.Image, k: int, digest: str | None = None) -> LookResult:
        """CLIP + FAISS. The bot asks /v1/look and /v1/analyze for the same photo at once: with the photo's
        digest, concurrent and recent identical requests share one CLIP pass instead of paying for two."""
        if digest is None:
            return await self.look_batcher.submit((image, k))
        key = (digest, k)
        shared = self._looks.get(key)
        if shared is None:
            shared = asyncio.ensure_future(self.look_batcher.submit((image, k)))
            self._looks[key] = shared
            shared.add_done_callback(lambda done: self._forget_look(key, done))
        # shield: one caller hanging up must not cancel the pass the other caller is waiting for
        return await asyncio.shield(shared)

    def _forget_look(self, key: tuple[str, int], done: asyncio.Future[LookResult]) -> None:
        if done.cancelled() or done.exception() is not None:
            self._looks.pop(key, None)
        else:
            asyncio.get_running_loop().call_later(LOOK_REUSE_SECONDS, self._looks.pop, key, None)

    async def meaning(self, image: Image.Image, k: int) -> MeaningResult:
        return await self.meaning_batcher.submit((image, k))

    def _decode(self, data: bytes) -> Decoded:
        start = time.perf_counter()
        digest = sha256_hex(data)
        image = decode_image(data, max_pixels=self.settings.max_image_pixels)
        return Decoded(image, digest, _ms(start))

    def _look_batch(self, items: list[tuple[Image.Image, int]]) -> list[LookResult]:
        start = time.perf_counter()
        vectors = self.models.clip.embed_images([image for image, _ in items])
        clip_ms = _ms(start)
        start = time.perf_counter()
        hits = self.gallery.search_image(vectors, max(k for _, k in items))
        search_ms = _ms(start)
        return [LookResult(row[:k], clip_ms, search_ms) for row, (_, k) in zip(hits, items, strict=True)]

    def _meaning_batch(self, items: list[tuple[Image.Image, int]]) -> list[MeaningResult]:
        start = time.perf_counter()
        descriptions = self.models.describer.describe([image for image, _ in items])
        describe_ms = _ms(start)
        start = time.perf_counter()
        vectors = self.models.text.embed_texts(descriptions)
        text_embed_ms = _ms(start)
        start = time.perf_counter()
        hits = self.gallery.search_text(vectors, max(k for _, k in items))
        search_ms = _ms(start)
        return [
            MeaningResult(description, row[:k], describe_ms, text_embed_ms, search_ms)
            for description, row, (_, k) in zip(descriptions, hits, items, strict=True)
        ]
