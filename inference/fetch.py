"""Fetch gallery images from URLs politely, resumably and within a size cap.

Polite: a User-Agent naming ArtMatch, at most one request per `per_host_delay` seconds to each host, retries with
exponential backoff on 429 and 5xx that honour `Retry-After`, a timeout. Resumable: each URL's file is kept in the
downloads folder under a hash of the URL, and every outcome is appended to `status.jsonl`; a rerun reuses what is
there, skips what failed for good (404, not an image, too large) and retries only what failed transiently (429,
5xx, network). Safe: the body is streamed and abandoned above `max_bytes`, the content type must be an image's and
the bytes must decode as one.
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

logger = logging.getLogger(__name__)

USER_AGENT = "ArtMatch-gallery-ingest/0.1 (+https://github.com/artmatch; builds an art search gallery)"
STATUS_LOG = "status.jsonl"
DEFAULT_MAX_BYTES = 30 * 1024 * 1024
TRANSIENT_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
ALLOWED_TYPES = ("image/", "application/octet-stream", "binary/octet-stream")
"""Some stores serve images as octet-stream; the decode check decides for those."""


@dataclass(frozen=True)
class FetchResult:
    url: str
    path: Path | None
    reason: str = ""
    transient: bool = False
    reused: bool = False


class FetchError(Exception):
    def __init__(self, reason: str, *, transient: bool, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.transient = transient
        self.retry_after = retry_after


def url_key(url: str) -> str:
    return hashlib.sha256(url.encode("utf-8")).hexdigest()[:32]


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """`Retry-After` as seconds: delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class Fetcher:
    """Downloads into `folder`; one instance per build (it remembers when each host was last asked)."""

    def __init__(
        self,
        folder: Path,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        timeout: float = 30.0,
        per_host_delay: float = 1.0,
        retries: int = 4,
        backoff: float = 1.0,
        max_wait: float = 120.0,
        user_agent: str = USER_AGENT,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.folder = Path(folder)
        self.max_bytes = max_bytes
        self.per_host_delay = per_host_delay
        self.retries = retries
        self.backoff = backoff
        self.max_wait = max_wait
        self._sleep = sleep
        self._last_request: dict[str, float] = {}
        self.requests = 0
        """HTTP requests sent by this fetcher (tests and reports: a rerun that needs nothing sends none)."""
        self._client = httpx.Client(
            headers={"User-Agent": user_agent, "Accept": "image/*"},
            timeout=timeout,
            follow_redirects=True,
            transport=transport,
        )

    def status(self) -> dict[str, dict[str, object]]:
        """The last recorded outcome per URL."""
        log = self.folder / STATUS_LOG
        last: dict[str, dict[str, object]] = {}
        if log.is_file():
            for line in log.read_text(encoding="utf-8").splitlines():
                try:
                    record = json.loads(line)
                except ValueError:
                    continue  # a line cut by a crash
                last[str(record.get("url"))] = record
        return last

    def fetch_all(self, urls: Iterable[str], progress: bool = True) -> list[FetchResult]:
        urls = list(dict.fromkeys(urls))
        self.folder.mkdir(parents=True, exist_ok=True)
        known = self.status()
        results = []
        try:
            with tqdm(total=len(urls), unit="url", desc="fetching images", disable=not progress) as bar:
                for url in urls:
                    results.append(self._one(url, known.get(url)))
                    bar.update(1)
        finally:
            self._client.close()
        return results

    def path_for(self, url: str) -> Path:
        return self.folder / url_key(url)

    def _one(self, url: str, earlier: dict[str, object] | None) -> FetchResult:
        target = self.path_for(url)
        if earlier is not None:
            if earlier.get("status") == "ok" and target.is_file():
                return FetchResult(url, target, reused=True)
            if earlier.get("status") == "failed" and not earlier.get("transient"):
                return FetchResult(url, None, str(earlier.get("reason")), reused=True)
        try:
            size, content_type = self._download(url, target)
        except FetchError as exc:
            logger.warning("cannot fetch %s: %s", url, exc.reason)
            self._log(url, status="failed", reason=exc.reason, transient=exc.transient)
            return FetchResult(url, None, exc.reason, transient=exc.transient)
        self._log(url, status="ok", bytes=size, content_type=content_type, file=target.name)
        return FetchResult(url, target)

    def _download(self, url: str, target: Path) -> tuple[int, str]:
        attempt = 0
        while True:
            try:
                return self._attempt(url, target)
            except FetchError as exc:
                attempt += 1
                if not exc.transient or attempt > self.retries:
                    raise
                wait = exc.retry_after if exc.retry_after is not None else self.backoff * 2 ** (attempt - 1)
                if wait > self.max_wait:
                    raise FetchError(f"{exc.reason}; asked to wait {wait:.0f} s", transient=True) from None
                self._sleep(wait)

    def _polite_wait(self, host: str) -> None:
        last = self._last_request.get(host)
        if last is not None:
            remaining = self.per_host_delay - (time.monotonic() - last)
            if remaining > 0:
                self._sleep(remaining)
        self._last_request[host] = time.monotonic()

    def _attempt(self, url: str, target: Path) -> tuple[int, str]:
        self._polite_wait(urlsplit(url).netloc)
        scratch = target.with_name(target.name + ".part")
        self.requests += 1
        try:
            with self._client.stream("GET", url) as response:
                if response.status_code != 200:
                    raise FetchError(
                        f"HTTP {response.status_code}",
                        transient=response.status_code in TRANSIENT_STATUSES,
                        retry_after=retry_after_seconds(response.headers.get("Retry-After")),
                    )
                content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
                if content_type and not content_type.startswith(ALLOWED_TYPES):
                    raise FetchError(f"not an image (content type {content_type})", transient=False)
                declared = response.headers.get("Content-Length")
                if declared and declared.isdigit() and int(declared) > self.max_bytes:
                    raise FetchError(f"too large ({int(declared)} bytes > {self.max_bytes})", transient=False)
                size = 0
                with scratch.open("wb") as out:
                    for chunk in response.iter_bytes():
                        size += len(chunk)
                        if size > self.max_bytes:
                            raise FetchError(f"too large (over {self.max_bytes} bytes)", transient=False)
                        out.write(chunk)
        except httpx.HTTPError as exc:
            scratch.unlink(missing_ok=True)
            raise FetchError(f"network error: {type(exc).__name__}: {exc}", transient=True) from None
        except FetchError:
            scratch.unlink(missing_ok=True)
            raise
        try:
            with Image.open(scratch) as image:
                image.verify()
        except Image.DecompressionBombError:
            scratch.unlink(missing_ok=True)
            raise FetchError("too many pixels (a decompression bomb?)", transient=False) from None
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
            scratch.unlink(missing_ok=True)
            raise FetchError(f"not an image ({type(exc).__name__})", transient=False) from None
        os.replace(scratch, target)
        return size, content_type

    def _log(self, url: str, **fields: object) -> None:
        record = {"url": url, "key": url_key(url), "at": datetime.now(UTC).isoformat(timespec="seconds"), **fields}
        with (self.folder / STATUS_LOG).open("a", encoding="utf-8") as log:
            log.write(json.dumps(record) + "\n")
