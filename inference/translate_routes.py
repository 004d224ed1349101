"""`POST /v1/translate`: an English description in the reader's language.

Each language's translator sits behind its own micro-batcher, and all of them share one "translate" thread: a
translation never queues behind the describer nor holds the CLIP path back (see `pipeline`), and a Marian model
is never used by two threads at once. The router's lifespan runs inside the app's own (which loads the models and
the gallery), loads the translators and starts their batchers, and stops them first on the way down.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Request

from inference import contract
from inference.batcher import MicroBatcher, Overloaded
from inference.deps import SECURED
from inference.middleware import ApiError
from inference.models import Translator
from inference.schemas import TranslateRequest
from inference.settings import InferenceSettings

SOURCE_LANGUAGE = "en"
"""What the describer writes: asked for it, the service answers the text as it is."""


class Translation:
    """The running service's translators, each behind a batcher on the one translate thread."""

    def __init__(self, translators: Mapping[str, Translator], settings: InferenceSettings) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="translate")
        self._batchers: dict[str, MicroBatcher[str, str]] = {
            language: MicroBatcher(
                f"translate_{language}",
                translator.translate,
                max_batch=settings.translation_batch_size,
                max_wait_ms=settings.describe_batch_wait_ms,
                max_queue=settings.max_queue,
                executor=self._pool,
            )
            for language, translator in translators.items()
        }

    @property
    def languages(self) -> list[str]:
        """Every language a text can be asked in, English included."""
        return sorted({SOURCE_LANGUAGE, *self._batchers})

    def start(self) -> None:
        for batcher in self._batchers.values():
            batcher.start()

    async def stop(self) -> None:
        for batcher in self._batchers.values():
            await batcher.stop()
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def translate(self, text: str, language: str) -> str:
        """`text` in `language`; KeyError for a language without a translator, `Overloaded` when the queue is full."""
        if language == SOURCE_LANGUAGE:
            return text
        return await self._batchers[language].submit(text)


def _translation(request: Request) -> Translation:
    return request.app.state.translation


TranslationDep = Annotated[Translation, Depends(_translation)]


def translate_router(settings: InferenceSettings) -> APIRouter:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        translators = app.state.pipeline.models.translators
        for translator in translators.values():
            await asyncio.to_thread(translator.load)
        translation = Translation(translators, settings)
        translation.start()
        app.state.translation = translation
        try:
            yield
        finally:
            await translation.stop()

    router = APIRouter(tags=["language"], dependencies=SECURED, lifespan=lifespan)

    @router.post("/v1/translate", response_model_exclude_unset=True)
    async def translate(
        request: Request, translation: TranslationDep, body: TranslateRequest
    ) -> contract.TranslateResponse:
        """English text (a description) in the reader's language; titles are never sent here, they stay as the
        gallery has them. 'en' answers the text unchanged; a language without a translator is 422."""
        start = time.perf_counter()
        language = body.primary_language
        if language not in translation.languages:
            raise ApiError(
                422,
                "unsupported_language",
                f"no translation into {language!r}; available: {', '.join(translation.languages)}",
            )
        started = time.perf_counter()
        try:
            text = await translation.translate(body.text, language)
        except Overloaded as exc:
            raise ApiError(
                503, "overloaded", "The service is busy; retry shortly.", headers={"Retry-After": str(exc.retry_after)}
            ) from exc
        done = time.perf_counter()
        timings = {"translate": round((done - started) * 1000.0, 1), "total": round((done - start) * 1000.0, 1)}
        request.state.timings = timings  # for the access log line
        return contract.TranslateResponse(text=text, language=language, timings_ms=timings)

    return router
