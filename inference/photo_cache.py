"""Decoded photos, by their SHA-256, for a short while: one decode per photo, not one per request.

The bot sends each photo to /v1/look and /v1/analyze at once (and /v1/identify may follow), and each request
used to decode it anew (issue 10). Here the first request's decode is shared: a request for the same bytes that
arrives while it runs waits for it, one that arrives within `ttl_s` after takes its result. The CLIP pass and the
identification are shared the same way (`inference.pipeline`), so a photo sent to both endpoints costs one decode,
one CLIP pass and one identification.

Memory is bounded twice: entries leave after `ttl_s`, and when the decoded pixels held exceed `max_bytes` the
least recently used leave first (a photo larger than the whole budget is decoded but not kept). A failed decode
is never kept: the same bytes are refused again by decoding them again, which is as cheap as it was.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from PIL import Image

from inference.metrics import PHOTO_DECODES


class HasImage(Protocol):
    @property
    def image(self) -> Image.Image: ...


D = TypeVar("D", bound=HasImage)


@dataclass(eq=False)
class _Entry(Generic[D]):
    future: asyncio.Future[D]
    size: int = 0
    """Bytes of decoded pixels, counted once the decode succeeded (0 until then)."""


class PhotoCache(Generic[D]):
    """Shared decodes (of type D: anything with an `image`) by digest; used from the event loop only."""

    def __init__(self, max_bytes: int, ttl_s: float) -> None:
        self.max_bytes = max_bytes
        self.ttl_s = ttl_s
        self._entries: OrderedDict[str, _Entry[D]] = OrderedDict()
        self._bytes = 0
        self.decoded = 0
        """Decodes started (a photo decoded for a request)."""
        self.reused = 0
        """Requests served by another request's decode."""

    @property
    def held_bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, digest: str, decode: Callable[[], Awaitable[D]]) -> D:
        """The photo with this digest: another request's decode (running or recent), else `decode()`'s."""
        entry = self._entries.get(digest)
        if entry is not None:
            self._entries.move_to_end(digest)
            self._count("reused")
            return await asyncio.shield(entry.future)
        self._count("decoded")
        if self.max_bytes <= 0:
            return await decode()
        future: asyncio.Future[D] = asyncio.ensure_future(decode())
        created = _Entry(future)
        self._entries[digest] = created
        future.add_done_callback(lambda _: self._settle(digest, created))
        # shield: a caller that hangs up must not cancel a decode another request waits for (it runs in a
        # thread and finishes anyway)
        return await asyncio.shield(future)

    def _count(self, outcome: str) -> None:
        setattr(self, outcome, getattr(self, outcome) + 1)
        PHOTO_DECODES.labels(outcome=outcome).inc()

    def _settle(self, digest: str, entry: _Entry[D]) -> None:
        if entry.future.cancelled() or entry.future.exception() is not None:
            self._drop(digest, entry)
            return
        image = entry.future.result().image
        entry.size = image.width * image.height * len(image.getbands())
        self._bytes += entry.size
        asyncio.get_running_loop().call_later(self.ttl_s, self._drop, digest, entry)
        for key, held in list(self._entries.items()):  # least recently used first
            if self._bytes <= self.max_bytes:
                break
            if held.size:
                self._drop(key, held)

    def _drop(self, digest: str, entry: _Entry[D]) -> None:
        if self._entries.get(digest) is entry:
            del self._entries[digest]
            self._bytes -= entry.size
