"""HTTP client of the inference service: transport trouble becomes two exceptions handlers understand."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

import httpx

logger = logging.getLogger(__name__)


# Refusals of what the bot asked for (a recommender the service no longer has, a personal one without a profile):
# the user can only retry, and the bot should re-read the service's catalogue.
REQUEST_ERRORS = frozenset({"unknown_recommender", "needs_profile", "invalid_request"})


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

    async def analyze(
        self,
        image: bytes,
        k: int,
        recommenders: Sequence[str] = ("by_look", "by_meaning"),
        feedback: Sequence[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """The full answer: the description and one set per requested recommender."""
        form: dict[str, str] = {"recommenders": ",".join(recommenders)}
        if feedback:
            form["feedback"] = json.dumps(list(feedback))
        return await self._post_image("/v1/analyze", image, k, timeout=None, data=form)

    async def recommenders(self) -> list[dict[str, Any]]:
        """The arena's registry: [{"name", "needs", "personal", "fast"}, ...]."""
        body = await self._json("GET", "/v1/recommenders")
        return list(body.get("recommenders", []))

    async def suggest(
        self,
        feedback: Sequence[dict[str, Any]],
        exclude: Sequence[int],
        k: int,
        *,
        exploration: float = 0.1,
        seed: int | None = None,
    ) -> dict[str, Any]:
        """Fresh personal suggestions: {"suggestions": [...], "profile": {...}}."""
        payload = {
            "feedback": list(feedback),
            "exclude": list(exclude),
            "k": k,
            "exploration": exploration,
            "seed": seed,
        }
        return await self._json("POST", "/v1/suggest", payload)

    async def onboarding(self, k: int, exclude: Sequence[int], seed: int | None = None) -> list[dict[str, Any]]:
        """A diverse sample of works for a new user to pick favourites from."""
        body = await self._json("POST", "/v1/onboarding", {"k": k, "exclude": list(exclude), "seed": seed})
        return list(body.get("artworks", []))

    async def artwork_image(self, artwork_id: int) -> bytes:
        try:
            response = await self._client.get(f"/v1/artworks/{artwork_id}/image")
        except httpx.HTTPError as exc:
            raise InferenceUnavailable(type(exc).__name__) from exc
        if response.status_code != 200:
            raise InferenceUnavailable(f"artwork image {artwork_id}: HTTP {response.status_code}")
        return response.content

    async def _json(self, method: str, path: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        """A JSON call that carries no upload: any failure means the service is unavailable for now."""
        try:
            response = await self._client.request(method, path, json=payload, timeout=self._look_timeout)
        except httpx.HTTPError as exc:
            logger.warning("inference %s failed: %s", path, type(exc).__name__)
            raise InferenceUnavailable(type(exc).__name__) from exc
        if response.status_code == 503:
            raise InferenceUnavailable("overloaded", retry_after=int(response.headers.get("Retry-After", "5") or 5))
        if response.status_code != 200:
            logger.error("inference %s answered HTTP %s: %s", path, response.status_code, response.text[:300])
            raise InferenceUnavailable(f"HTTP {response.status_code}")
        return _json_or_empty(response)

    async def _post_image(
        self, path: str, image: bytes, k: int, timeout: float | None, data: dict[str, str] | None = None
    ) -> dict[str, Any]:
        kwargs: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
        try:
            response = await self._client.post(
                path,
                params={"k": k},
                data=data,
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
        if body.get("error") in REQUEST_ERRORS:  # our request, not the user's image, was wrong
            logger.error("inference %s refused the request: %s %s", path, body.get("error"), body.get("detail"))
            raise InferenceUnavailable(str(body["error"]))
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
