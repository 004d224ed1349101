"""HTTP client of the inference service: transport trouble becomes two exceptions handlers understand."""

from __future__ import annotations

import logging
from typing import Any

import httpx

logger = logging.getLogger(__name__)


class InferenceUnavailable(Exception):
    """The service is down, timed out or overloaded; the user can simply retry."""

    def __init__(self, reason: str, retry_after: int | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class ImageRefused(Exception):
    """The service looked at the upload and refused it (not an image, too many pixels, …)."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code


class InferenceClient:
    def __init__(self, base_url: str, token: str, *, look_timeout: float, analyze_timeout: float) -> None:
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {token}"},
            timeout=httpx.Timeout(analyze_timeout, connect=5.0),
        )
        self._look_timeout = look_timeout

    async def close(self) -> None:
        await self._client.aclose()

    async def look(self, image: bytes, k: int) -> dict[str, Any]:
        """The fast visual set: CLIP + FAISS only."""
        return await self._post_image("/v1/look", image, k, timeout=self._look_timeout)

    async def analyze(self, image: bytes, k: int) -> dict[str, Any]:
        """The full answer: description and both sets."""
        return await self._post_image("/v1/analyze", image, k, timeout=None)

    async def artwork_image(self, artwork_id: int) -> bytes:
        try:
            response = await self._client.get(f"/v1/artworks/{artwork_id}/image")
        except httpx.HTTPError as exc:
            raise InferenceUnavailable(type(exc).__name__) from exc
        if response.status_code != 200:
            raise InferenceUnavailable(f"artwork image {artwork_id}: HTTP {response.status_code}")
        return response.content

    async def _post_image(self, path: str, image: bytes, k: int, timeout: float | None) -> dict[str, Any]:
        kwargs: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
        try:
            response = await self._client.post(
                path,
                params={"k": k},
                files={"image": ("upload", image, "application/octet-stream")},
                **kwargs,
            )
        except httpx.HTTPError as exc:
            logger.warning("inference %s failed: %s", path, type(exc).__name__)
            raise InferenceUnavailable(type(exc).__name__) from exc
        if response.status_code == 200:
            return response.json()
        body = _json_or_empty(response)
        if response.status_code == 503:
            retry_after = int(response.headers.get("Retry-After", "5") or 5)
            raise InferenceUnavailable("overloaded", retry_after=retry_after)
        if response.status_code == 413:
            raise ImageRefused("too_large", str(body.get("detail", "")))
        if 400 <= response.status_code < 500 and response.status_code not in (401, 403, 404):
            raise ImageRefused(str(body.get("error", "not_an_image")), str(body.get("detail", "")))
        logger.error("inference %s answered HTTP %s", path, response.status_code)
        raise InferenceUnavailable(f"HTTP {response.status_code}")


def _json_or_empty(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
