"""HTTP client of the inference service: answers parsed into the typed contract; transport trouble becomes two
exceptions handlers understand."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from feedback.taste import FeedbackEvent
from inference.contract import (
    AnalyzeResponse,
    Artwork,
    LookResponse,
    OnboardingResponse,
    RecommenderInfo,
    RecommendersResponse,
    SearchResponse,
    SuggestResponse,
    TranslateResponse,
)

logger = logging.getLogger(__name__)

Answer = TypeVar("Answer", bound=BaseModel)

# Refusals of what the bot asked for (a recommender the service no longer has, a personal one without a profile):
# the user can only retry, and the bot should re-read the service's catalogue.
REQUEST_ERRORS = frozenset({"unknown_recommender", "needs_profile", "invalid_request"})


class InferenceUnavailable(Exception):
    """The service is down, timed out or overloaded; the user can simply retry."""

    def __init__(self, reason: str, retry_after: int | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after

    @property
    def refused_request(self) -> bool:
        """The service refused what the bot asked for (see REQUEST_ERRORS), not the photo."""
        return str(self) in REQUEST_ERRORS


class ImageRefused(Exception):
    """The service looked at the upload and refused it (not an image, too many pixels, …)."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code


class UnknownColour(Exception):
    """/v1/search/color did not recognise the colour asked for (neither a hex code nor a colour name it knows)."""


class NothingToSearch(Exception):
    """/v1/search/text found no words to search in the query (only invisible or control characters)."""


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

    async def look(self, image: bytes, k: int) -> LookResponse:
        """The fast visual set: CLIP + FAISS only."""
        return await self._post_image("/v1/look", LookResponse, image, k, timeout=self._look_timeout)

    async def analyze(
        self,
        image: bytes,
        k: int,
        recommenders: Sequence[str],
        feedback: Sequence[FeedbackEvent] = (),
    ) -> AnalyzeResponse:
        """The full answer: the description and one set per requested recommender."""
        form: dict[str, str] = {"recommenders": ",".join(recommenders)}
        if feedback:
            form["feedback"] = _events_json(feedback)
        return await self._post_image("/v1/analyze", AnalyzeResponse, image, k, timeout=None, data=form)

    async def recommenders(self) -> list[RecommenderInfo]:
        """The arena's registry."""
        return (await self._json("GET", "/v1/recommenders", RecommendersResponse)).recommenders

    async def suggest(
        self,
        feedback: Sequence[FeedbackEvent],
        exclude: Sequence[int],
        k: int,
        *,
        exploration: float = 0.1,
        seed: int | None = None,
    ) -> SuggestResponse:
        """Fresh personal suggestions with the profile's summary."""
        payload = {
            "feedback": [_event(event) for event in feedback],
            "exclude": list(exclude),
            "k": k,
            "exploration": exploration,
            "seed": seed,
        }
        return await self._json("POST", "/v1/suggest", SuggestResponse, payload)

    async def onboarding(self, k: int, exclude: Sequence[int], seed: int | None = None) -> list[Artwork]:
        """A diverse sample of works for a new user to pick favourites from."""
        payload = {"k": k, "exclude": list(exclude), "seed": seed}
        return (await self._json("POST", "/v1/onboarding", OnboardingResponse, payload)).artworks

    async def translate(self, text: str, language: str) -> str:
        """An English description in the user's language ('en' comes back as is). A language the service has no
        translator for is refused like any other request (`InferenceUnavailable('HTTP 422')`)."""
        payload = {"text": text, "language": language}
        return (await self._json("POST", "/v1/translate", TranslateResponse, payload)).text

    async def search_text(self, query: str, k: int, recommenders: Sequence[str] | None = None) -> SearchResponse:
        """Works matching words (any language the service's text tower reads): one set per text recommender named
        (all of them when None)."""
        payload: dict[str, Any] = {"query": query, "k": k}
        if recommenders is not None:
            payload["recommenders"] = list(recommenders)
        return await self._json(
            "POST", "/v1/search/text", SearchResponse, payload, refusals={"empty_query": NothingToSearch}
        )

    async def search_color(self, color: str, k: int) -> SearchResponse:
        """Works whose palette matches a colour (hex or an English or Russian name), with the hits' palettes.
        Raises UnknownColour when the service does not know the colour."""
        payload = {"color": color, "k": k}
        return await self._json(
            "POST", "/v1/search/color", SearchResponse, payload, refusals={"unknown_colour": UnknownColour}
        )

    async def artwork_image(self, artwork_id: int) -> bytes:
        try:
            response = await self._client.get(f"/v1/artworks/{artwork_id}/image")
        except httpx.HTTPError as exc:
            raise InferenceUnavailable(type(exc).__name__) from exc
        if response.status_code != 200:
            raise InferenceUnavailable(f"artwork image {artwork_id}: HTTP {response.status_code}")
        return response.content

    async def _json(
        self,
        method: str,
        path: str,
        answer: type[Answer],
        payload: dict[str, Any] | None = None,
        *,
        refusals: Mapping[str, type[Exception]] | None = None,
    ) -> Answer:
        """A JSON call that carries no upload: any failure means the service is unavailable for now, except a 422
        whose error code `refusals` maps to what it means for the user (e.g. a colour the service does not know)."""
        try:
            response = await self._client.request(method, path, json=payload, timeout=self._look_timeout)
        except httpx.HTTPError as exc:
            logger.warning("inference %s failed: %s", path, type(exc).__name__)
            raise InferenceUnavailable(type(exc).__name__) from exc
        if response.status_code == 503:
            raise InferenceUnavailable("overloaded", retry_after=_retry_after(response))
        if response.status_code == 422 and refusals:
            body = _json_or_empty(response)
            refusal = refusals.get(str(body.get("error")))
            if refusal is not None:
                raise refusal(str(body.get("detail", "")))
        if response.status_code != 200:
            logger.error("inference %s answered HTTP %s: %s", path, response.status_code, response.text[:300])
            raise InferenceUnavailable(f"HTTP {response.status_code}")
        return _parse(path, answer, response)

    async def _post_image(
        self,
        path: str,
        answer: type[Answer],
        image: bytes,
        k: int,
        timeout: float | None,
        data: dict[str, str] | None = None,
    ) -> Answer:
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
            return _parse(path, answer, response)
        body = _json_or_empty(response)
        if response.status_code == 503:
            raise InferenceUnavailable("overloaded", retry_after=_retry_after(response))
        if response.status_code == 413:
            raise ImageRefused("too_large", str(body.get("detail", "")))
        if body.get("error") in REQUEST_ERRORS:  # our request, not the user's image, was wrong
            logger.error("inference %s refused the request: %s %s", path, body.get("error"), body.get("detail"))
            raise InferenceUnavailable(str(body["error"]))
        if 400 <= response.status_code < 500 and response.status_code not in (401, 403, 404, 408):
            raise ImageRefused(str(body.get("error", "not_an_image")), str(body.get("detail", "")))
        logger.error("inference %s answered HTTP %s", path, response.status_code)
        raise InferenceUnavailable(f"HTTP {response.status_code}")


def _event(event: FeedbackEvent) -> dict[str, float | int]:
    return {"artwork_id": event.artwork_id, "value": event.value, "age_days": event.age_days}


def _events_json(events: Sequence[FeedbackEvent]) -> str:
    return json.dumps([_event(event) for event in events], separators=(",", ":"))


def _parse(path: str, answer: type[Answer], response: httpx.Response) -> Answer:
    """A 200 that does not match the contract is the service's fault: the user is told to retry later."""
    try:
        return answer.model_validate_json(response.content)
    except ValidationError as exc:
        logger.error("inference %s answered outside the contract: %s", path, exc.errors()[:3])
        raise InferenceUnavailable("contract_mismatch") from exc


def _retry_after(response: httpx.Response) -> int:
    value = response.headers.get("Retry-After", "5")
    return int(value) if value.isdigit() else 5


def _json_or_empty(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
