"""The HTTP service the bot talks to: upload a photo, get the visual set fast and the full analysis after.

`create_app(settings, models=None)` builds the FastAPI app; its lifespan loads the models (unless given),
loads the gallery (refusing one built with other models), and runs the pipeline's workers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, File, Path, Query, Request, Security, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.security import HTTPBearer
from starlette.exceptions import HTTPException

from inference.batcher import Overloaded
from inference.gallery_store import Artwork, Gallery
from inference.images import ImageRejected
from inference.middleware import AccessLog, ApiError, BearerAuth, UploadLimit, error_response, too_large
from inference.models import Models
from inference.pipeline import Decoded, Pipeline
from inference.settings import InferenceSettings

logger = logging.getLogger(__name__)

UPLOAD_PATHS = ("/v1/look", "/v1/analyze")
PUBLIC_PATHS = ("/healthz", "/docs", "/docs/oauth2-redirect", "/openapi.json", "/redoc")
MAX_K = 20
READ_CHUNK = 256 * 1024

# HTTP status per ImageRejected code (the bot reads the JSON `error`; the status is for humans and proxies).
REJECTION_STATUS = {"empty": 400, "not_an_image": 415, "unsupported_format": 415, "too_many_pixels": 422}
STATUS_CODES = {401: "unauthorized", 404: "not_found", 405: "method_not_allowed", 413: "too_large"}

# Only documents the scheme in /docs; BearerAuth checks the token before any body is read.
_bearer_doc = HTTPBearer(auto_error=False, description="INFERENCE_TOKEN")


def create_app(settings: InferenceSettings, models: Models | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loaded = models if models is not None else _build_models(settings)
        # The embedders first: they fix the identity the gallery must match, so a mismatched gallery fails
        # the start in seconds, before minutes of loading the describer.
        await asyncio.to_thread(loaded.clip.load)
        await asyncio.to_thread(loaded.text.load)
        gallery = await asyncio.to_thread(Gallery.load, settings.gallery_dir, loaded.identity())
        await asyncio.to_thread(loaded.describer.load)
        pipeline = Pipeline(settings, loaded, gallery)
        pipeline.start()
        app.state.pipeline = pipeline
        logger.info("serving %d artworks from %s with %s", len(gallery), settings.gallery_dir, loaded.versions())
        try:
            yield
        finally:
            await pipeline.stop()

    app = FastAPI(
        title="ArtMatch inference",
        version="1",
        summary="Describe an artwork photo and recommend similar works from the gallery.",
        lifespan=lifespan,
    )
    app.add_middleware(UploadLimit, max_upload_bytes=settings.max_upload_bytes, paths=UPLOAD_PATHS)
    app.add_middleware(BearerAuth, token=settings.token.get_secret_value(), public_paths=PUBLIC_PATHS)
    # Added last = outermost: it also logs the 401s and 413s of the middleware above.
    app.add_middleware(AccessLog, quiet_paths=("/healthz",))
    _install_error_handlers(app)
    _add_routes(app, settings)
    return app


def _build_models(settings: InferenceSettings) -> Models:
    from inference.factory import build_models  # imports torch & co only when the service really starts

    return build_models(settings)


def _pipeline(request: Request) -> Pipeline:
    return request.app.state.pipeline


PipelineDep = Annotated[Pipeline, Depends(_pipeline)]
ImageField = Annotated[UploadFile, File(description="The photo: JPEG, PNG or WebP.")]
ArtworkId = Annotated[int, Path(ge=0, description="Artwork id (its row in the gallery).")]
KQuery = Annotated[int | None, Query(ge=1, le=MAX_K, description="Works per set (default INFERENCE_TOP_K).")]


def _add_routes(app: FastAPI, settings: InferenceSettings) -> None:
    secured = [Security(_bearer_doc)]

    @app.get("/healthz", tags=["ops"])
    async def healthz(pipeline: PipelineDep) -> dict[str, Any]:
        return {"status": "ok", "gallery_size": len(pipeline.gallery), "models": pipeline.models.versions()}

    @app.post("/v1/look", tags=["recommend"], dependencies=secured)
    async def look(request: Request, pipeline: PipelineDep, image: ImageField, k: KQuery = None) -> dict[str, Any]:
        """The fast path: decode, CLIP and FAISS only."""
        start = time.perf_counter()
        decoded = await _decode_upload(image, pipeline, settings)
        found = await _guard(pipeline.look(decoded.image, k or settings.top_k, decoded.sha256))
        timings = {"decode": decoded.decode_ms, "clip": found.clip_ms, "search": found.search_ms}
        return {
            "image_sha256": decoded.sha256,
            "recommendations": {"by_look": [hit.to_dict() for hit in found.hits]},
            "timings_ms": _finish_timings(request, timings, start),
            "models": pipeline.models.versions(),
        }

    @app.post("/v1/analyze", tags=["recommend"], dependencies=secured)
    async def analyze(request: Request, pipeline: PipelineDep, image: ImageField, k: KQuery = None) -> dict[str, Any]:
        """The full answer: description, the visual set and the set by meaning of the description."""
        start = time.perf_counter()
        decoded = await _decode_upload(image, pipeline, settings)
        count = k or settings.top_k
        found, meant = await _guard(
            _both(pipeline.look(decoded.image, count, decoded.sha256), pipeline.meaning(decoded.image, count))
        )
        timings = {
            "decode": decoded.decode_ms,
            "clip": found.clip_ms,
            "search": found.search_ms + meant.search_ms,
            "describe": meant.describe_ms,
            "text_embed": meant.text_embed_ms,
        }
        return {
            "image_sha256": decoded.sha256,
            "description": meant.description,
            "recommendations": {
                "by_look": [hit.to_dict() for hit in found.hits],
                "by_meaning": [hit.to_dict() for hit in meant.hits],
            },
            "timings_ms": _finish_timings(request, timings, start),
            "models": pipeline.models.versions(),
        }

    @app.get("/v1/artworks/{artwork_id}", tags=["gallery"], dependencies=secured)
    async def artwork(pipeline: PipelineDep, artwork_id: ArtworkId) -> dict[str, Any]:
        found = _artwork(pipeline.gallery, artwork_id)
        return {"artwork_id": found.id, **found.public()}

    @app.get(
        "/v1/artworks/{artwork_id}/image",
        tags=["gallery"],
        dependencies=secured,
        response_class=FileResponse,
        responses={200: {"content": {"image/jpeg": {}}}},
    )
    async def artwork_image(pipeline: PipelineDep, artwork_id: ArtworkId) -> FileResponse:
        path = pipeline.gallery.image_path(_artwork(pipeline.gallery, artwork_id).id)
        if not path.is_file():
            raise ApiError(404, "not_found", f"artwork {artwork_id} has no image")
        return FileResponse(path, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=86400"})


async def _decode_upload(upload: UploadFile, pipeline: Pipeline, settings: InferenceSettings) -> Decoded:
    """Read at most cap+1 bytes in chunks (the middleware already bounded the body), then decode."""
    cap = settings.max_upload_bytes
    chunks: list[bytes] = []
    size = 0
    while chunk := await upload.read(READ_CHUNK):
        size += len(chunk)
        if size > cap:
            raise too_large(cap)
        chunks.append(chunk)
    try:
        return await pipeline.decode(b"".join(chunks))
    except ImageRejected as exc:
        raise ApiError(REJECTION_STATUS.get(exc.code, 400), exc.code, exc.message) from exc


async def _guard(awaitable: Any) -> Any:
    """Turn a full queue into 503 + Retry-After."""
    try:
        return await awaitable
    except Overloaded as exc:
        raise ApiError(
            503,
            "overloaded",
            "The service is busy; retry shortly.",
            headers={"Retry-After": str(exc.retry_after)},
        ) from exc


async def _both(first: Any, second: Any) -> tuple[Any, Any]:
    """Run two pipeline calls concurrently; if one fails, cancel the other so no work is done for nobody."""
    tasks = [asyncio.ensure_future(first), asyncio.ensure_future(second)]
    try:
        a, b = await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        raise
    return a, b


def _finish_timings(request: Request, timings: dict[str, float], start: float) -> dict[str, float]:
    timings["total"] = (time.perf_counter() - start) * 1000.0
    rounded = {name: round(ms, 1) for name, ms in timings.items()}
    request.state.timings = rounded  # for the access log line
    return rounded


def _artwork(gallery: Gallery, artwork_id: int) -> Artwork:
    if artwork_id >= len(gallery):
        raise ApiError(404, "not_found", f"no artwork {artwork_id}")
    return gallery.artworks[artwork_id]


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        code = exc.code if isinstance(exc, ApiError) else STATUS_CODES.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, exc.detail, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {"loc": [str(part) for part in error.get("loc", ())], "msg": str(error.get("msg", ""))}
            for error in exc.errors()
        ]
        return error_response(422, "invalid_request", problems)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "internal", "Internal error.")
