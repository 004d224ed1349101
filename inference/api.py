"""The HTTP service the bot talks to: upload a photo, get the visual set fast and the full analysis after.

`create_app(settings, models=None)` builds the FastAPI app; its lifespan loads the models (unless given),
loads the gallery (refusing one built with other models, or lacking an index a recommender searches), and
runs the pipeline's workers. /v1/analyze runs the recommenders the caller names (the bot's arena picks them);
the photo-less taste routes are in `taste_routes`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Annotated, Any

import numpy as np
from fastapi import FastAPI, File, Form, Path, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException

from feedback.taste import TasteProfile
from inference import contract
from inference import recommenders as registry
from inference.batcher import Overloaded
from inference.color_routes import color_router
from inference.deps import SECURED, PipelineDep
from inference.gallery_store import IDENTIFY_DIR, Artwork, Gallery, GalleryMismatchError, Hit
from inference.identify import Identifier
from inference.images import ImageRejected
from inference.metrics import exposition, observe_request
from inference.middleware import (
    MULTIPART_SLACK,
    AccessLog,
    ApiError,
    BearerAuth,
    BodyCap,
    BodyTimeout,
    CancelOnDisconnect,
    UploadLimit,
    error_response,
    too_large,
)
from inference.models import DescriberUnavailable, Models, RemoteDescriber
from inference.pipeline import Decoded, Identified, Pipeline
from inference.recommenders import Recommender, UnknownRecommender
from inference.relevance import serving_floors
from inference.schemas import MAX_K, parse_feedback, parse_recommender_names, to_events
from inference.settings import InferenceSettings
from inference.tagging import Tagger
from inference.taste_routes import taste_router
from inference.text_search_routes import text_search_router
from inference.threads import thread_plan
from inference.translate_routes import translate_router

logger = logging.getLogger(__name__)

# Bodies capped by UploadLimit: the photo uploads at INFERENCE_MAX_UPLOAD_BYTES, and the JSON of the taste
# routes (feedback, exclusions) and of /v1/translate at the much smaller INFERENCE_MAX_JSON_BYTES.
UPLOAD_PATHS = ("/v1/look", "/v1/analyze", "/v1/identify")
JSON_PATHS = ("/v1/suggest", "/v1/onboarding", "/v1/translate", "/v1/search/color", "/v1/search/text")
PUBLIC_PATHS = ("/healthz", "/docs", "/docs/oauth2-redirect", "/openapi.json", "/redoc")
DESCRIBER_RETRY_AFTER_S = 10  # vLLM loading takes minutes; a client retrying every 10 s is harmless
METRICS_PATH = "/metrics"  # public too when INFERENCE_METRICS is on: Prometheus scrapes it without the token
READ_CHUNK = 256 * 1024

# HTTP status per ImageRejected code (the bot reads the JSON `error`; the status is for humans and proxies).
REJECTION_STATUS = {"empty": 400, "not_an_image": 415, "unsupported_format": 415, "too_many_pixels": 422}
STATUS_CODES = {401: "unauthorized", 404: "not_found", 405: "method_not_allowed", 413: "too_large"}


def create_app(settings: InferenceSettings, models: Models | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loaded = models if models is not None else _build_models(settings)
        # The embedders first: they fix the identity the gallery must match, so a mismatched gallery fails
        # the start in seconds, before minutes of loading the describer.
        await asyncio.to_thread(loaded.clip.load)
        await asyncio.to_thread(loaded.text.load)
        gallery = await asyncio.to_thread(
            Gallery.load, settings.gallery_dir, loaded.identity(), registry.required_indices()
        )
        gallery.manifest.relevance = serving_floors(
            gallery.manifest.relevance, settings.relevance_floor, settings.gallery_dir
        )
        identifier = await asyncio.to_thread(_load_identifier, gallery) if settings.identify else None
        # the labels' prompt vectors, from the gallery's file when it matches (never written here: the gallery may
        # be read-only); tagging a photo is then a small matrix product
        app.state.tagger = await asyncio.to_thread(Tagger.for_gallery, settings.gallery_dir, loaded)
        await asyncio.to_thread(loaded.describer.load)
        pipeline = Pipeline(settings, loaded, gallery, identifier)
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
    # Innermost first. The handler runs inside CancelOnDisconnect, so a client that hangs up cancels it; the
    # body caps and the deadline wrap `receive` before anything is parsed; auth refuses before any of it.
    app.add_middleware(CancelOnDisconnect)
    app.add_middleware(UploadLimit, caps=_body_caps(settings))
    app.add_middleware(BodyTimeout, total_s=settings.body_timeout_s, idle_s=settings.body_idle_timeout_s)
    public = (*PUBLIC_PATHS, METRICS_PATH) if settings.metrics else PUBLIC_PATHS
    app.add_middleware(BearerAuth, token=settings.token.get_secret_value(), public_paths=public)
    # Outside the middleware above, so their 401s, 408s and 413s are counted and logged as well.
    app.add_middleware(AccessLog, quiet_paths=("/healthz", METRICS_PATH), observe=observe_request)
    _install_error_handlers(app)
    _add_routes(app, settings)
    app.include_router(taste_router(settings))
    app.include_router(translate_router(settings))
    app.include_router(text_search_router())
    app.include_router(color_router())
    return app


def _body_caps(settings: InferenceSettings) -> dict[str, BodyCap]:
    photo = BodyCap(settings.max_upload_bytes, MULTIPART_SLACK + settings.max_json_bytes)  # + the feedback field
    json_body = BodyCap(settings.max_json_bytes)
    return {**dict.fromkeys(UPLOAD_PATHS, photo), **dict.fromkeys(JSON_PATHS, json_body)}


def _load_identifier(gallery: Gallery) -> Identifier:
    """The gallery's identification data, memory-mapped: at 100 k works it costs page cache, not process memory."""
    try:
        identifier = Identifier.load(gallery.root / IDENTIFY_DIR, mmap=True)
    except (OSError, ValueError, KeyError) as exc:
        raise GalleryMismatchError(f"cannot load the identification data of {gallery.root}: {exc}") from exc
    if identifier.works != len(gallery):
        raise GalleryMismatchError(
            f"gallery {gallery.root} is inconsistent: {len(gallery)} artworks, identification data for "
            f"{identifier.works}; rebuild it"
        )
    return identifier


def _build_models(settings: InferenceSettings) -> Models:
    from inference.factory import build_models  # imports torch & co only when the service really starts

    return build_models(settings, thread_plan(settings))


ImageField = Annotated[UploadFile, File(description="The photo: JPEG, PNG or WebP.")]
ArtworkId = Annotated[int, Path(ge=0, description="Artwork id (its row in the gallery).")]
KQuery = Annotated[int | None, Query(ge=1, le=MAX_K, description="Works per set (default INFERENCE_TOP_K).")]
RecommendersField = Annotated[
    str | None,
    Form(description="Comma-separated recommender names, 1 to 4 (default by_look,by_meaning); see /v1/recommenders."),
]
FeedbackField = Annotated[
    str | None,
    Form(
        description='JSON list of {"artwork_id": int, "value": -1..1, "age_days": float}, at most 2000; '
        "required by personal recommenders (for_you)."
    ),
]


def _add_routes(app: FastAPI, settings: InferenceSettings) -> None:
    # Fields a service object did not set are left out (a non-personal hit has no `because`): the bodies keep
    # exactly the fields they always had. The models still validate every answer and document it in /docs.
    answer: dict[str, Any] = {"response_model_exclude_unset": True}
    # The multipart `feedback` field is parsed as JSON: the same cap as a JSON body (Starlette's default is 1 MiB).
    form_limits: Any = {"max_part_size": settings.max_json_bytes}

    @app.get("/healthz", tags=["ops"], **answer)
    async def healthz(pipeline: PipelineDep) -> contract.HealthResponse:
        describer = pipeline.models.describer
        remote = await asyncio.to_thread(describer.health) if isinstance(describer, RemoteDescriber) else None
        return contract.HealthResponse(
            status="degraded" if remote is not None and not remote.get("ready") else "ok",
            describer=remote,
            gallery_size=len(pipeline.gallery),
            models=pipeline.models.versions(),
            dropped=pipeline.dropped(),
            identification=pipeline.identification(),
        )

    if settings.metrics:

        @app.get(METRICS_PATH, tags=["ops"], response_class=Response, responses={200: {"content": {"text/plain": {}}}})
        async def metrics() -> Response:
            """Prometheus metrics in its text format; no token (INFERENCE_METRICS=false turns this off)."""
            body, content_type = exposition()
            return Response(body, media_type=content_type)

    @app.post("/v1/look", tags=["recommend"], dependencies=SECURED, form_limits=form_limits, **answer)
    async def look(
        request: Request, pipeline: PipelineDep, image: ImageField, k: KQuery = None
    ) -> contract.LookResponse:
        """The fast path: decode, CLIP and FAISS, and at the same time identification (the recognised work is
        the `match` and is left out of the set)."""
        start = time.perf_counter()
        decoded = await _decode_upload(image, pipeline, settings)
        visual = await _guard(pipeline.visual(decoded, k or settings.top_k))
        found = visual.look
        timings = {"decode": decoded.decode_ms, "clip": found.clip_ms, "search": found.search_ms}
        timings.update(visual.identified.timings)
        return contract.LookResponse(
            image_sha256=decoded.sha256,
            recommendations={"by_look": _hits(registry.get("by_look").relevant(visual.hits, pipeline.gallery))},
            match=_match(visual.identified, pipeline.gallery),
            tags=_photo_tags(request, found.vector),
            timings_ms=_finish_timings(request, timings, start),
            models=pipeline.models.versions(),
        )

    @app.get("/v1/recommenders", tags=["recommend"], dependencies=SECURED, **answer)
    async def list_recommenders() -> contract.RecommendersResponse:
        """The recommenders /v1/analyze can run; `fast` ones need only the CLIP pass (as /v1/look)."""
        return contract.RecommendersResponse(
            recommenders=[contract.RecommenderInfo.model_validate(r.info()) for r in registry.REGISTRY.values()]
        )

    @app.post("/v1/analyze", tags=["recommend"], dependencies=SECURED, form_limits=form_limits, **answer)
    async def analyze(
        request: Request,
        pipeline: PipelineDep,
        image: ImageField,
        k: KQuery = None,
        recommenders: RecommendersField = None,
        feedback: FeedbackField = None,
    ) -> contract.AnalyzeResponse:
        """The full answer: the description (when a recommender needs it) and one set per named recommender."""
        start = time.perf_counter()
        chosen = _recommenders(recommenders)
        profile, profile_ms = await _profile_for(chosen, feedback, pipeline)  # before the photo: fail fast
        decoded = await _decode_upload(image, pipeline, settings)
        analysis = await _guard(pipeline.analyze(decoded, chosen, k or settings.top_k, profile))
        timings = {**analysis.timings, **({"profile": profile_ms} if profile is not None else {})}
        return contract.AnalyzeResponse(
            image_sha256=decoded.sha256,
            description=analysis.description,
            recommendations={name: _hits(hits) for name, hits in analysis.recommendations.items()},
            match=_match(analysis.identified, pipeline.gallery),
            tags=_photo_tags(request, analysis.image_vector),
            timings_ms=_finish_timings(request, timings, start),
            models=pipeline.models.versions(),
        )

    @app.post("/v1/identify", tags=["recommend"], dependencies=SECURED, form_limits=form_limits, **answer)
    async def identify(request: Request, pipeline: PipelineDep, image: ImageField) -> contract.IdentifyResponse:
        """Which gallery work the photo shows: `match`, with where its corners are in the photo, or null when
        no work is there (or identification is turned off). No set, no description."""
        start = time.perf_counter()
        decoded = await _decode_upload(image, pipeline, settings)
        identified = await _guard(pipeline.identify(decoded))
        return contract.IdentifyResponse(
            image_sha256=decoded.sha256,
            match=_match(identified, pipeline.gallery),
            timings_ms=_finish_timings(request, {"decode": decoded.decode_ms, **identified.timings}, start),
        )

    @app.get("/v1/artworks/{artwork_id}", tags=["gallery"], dependencies=SECURED, **answer)
    async def artwork(pipeline: PipelineDep, artwork_id: ArtworkId) -> contract.Artwork:
        return public_artwork(_artwork(pipeline.gallery, artwork_id))

    @app.get(
        "/v1/artworks/{artwork_id}/image",
        tags=["gallery"],
        dependencies=SECURED,
        response_class=FileResponse,
        responses={200: {"content": {"image/jpeg": {}}}},
    )
    async def artwork_image(pipeline: PipelineDep, artwork_id: ArtworkId) -> FileResponse:
        path = pipeline.gallery.image_path(_artwork(pipeline.gallery, artwork_id).id)
        if not path.is_file():
            raise ApiError(404, "not_found", f"artwork {artwork_id} has no image")
        return FileResponse(path, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=86400"})


def public_artwork(artwork: Artwork) -> contract.Artwork:
    """A gallery work as the contract shows it (the gallery's own record also holds the file's hash)."""
    return contract.Artwork.model_validate({"artwork_id": artwork.id, **artwork.public()})


def _match(identified: Identified, gallery: Gallery) -> contract.Match | None:
    """The recognised work as the contract shows it, with the gallery's metadata."""
    match = identified.match
    if match is None:
        return None
    artwork = gallery.artworks[match.index]
    return contract.Match(
        artwork_id=artwork.id,
        file=artwork.file,
        title=artwork.title,
        artist=artwork.artist,
        year=artwork.year,
        confidence=match.confidence,
        inliers=match.inliers,
        corners=[(float(x), float(y)) for x, y in match.corners],
    )


def _photo_tags(request: Request, vector: np.ndarray | None) -> list[contract.Tag]:
    """The photo's zero-shot tags from its CLIP image vector (a 50 x D product: microseconds, fine on the loop);
    none when the analysis computed no image vector (only description-based recommenders were named)."""
    if vector is None:
        return []
    tagger: Tagger = request.app.state.tagger
    return tagger.tag(vector)[0]


def _hits(hits: Iterable[Hit]) -> list[contract.Hit]:
    """The service's hits (plain or personal, which add `because`) as the contract's."""
    return [contract.Hit.model_validate(hit.to_dict()) for hit in hits]


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
    """Turn a full queue, or a describer server that is away (vLLM loading or restarting), into 503 + Retry-After:
    both heal by waiting, unlike a 500."""
    try:
        return await awaitable
    except Overloaded as exc:
        raise ApiError(
            503,
            "overloaded",
            "The service is busy; retry shortly.",
            headers={"Retry-After": str(exc.retry_after)},
        ) from exc
    except DescriberUnavailable as exc:
        logger.warning("describer unavailable: %s", exc)
        raise ApiError(
            503,
            "describer_unavailable",
            "Descriptions are unavailable for now; retry shortly.",
            headers={"Retry-After": str(DESCRIBER_RETRY_AFTER_S)},
        ) from exc


def _recommenders(raw: str | None) -> list[Recommender]:
    try:
        chosen = [registry.get(name) for name in parse_recommender_names(raw)]
    except UnknownRecommender as exc:
        raise ApiError(422, "unknown_recommender", str(exc)) from None
    wordy = [recommender.name for recommender in chosen if recommender.answers_text]
    if wordy:  # they read a query's words, which a photo has none of
        raise ApiError(
            422, "unknown_recommender", f"{', '.join(wordy)} answers words (POST /v1/search/text), not a photo"
        )
    return chosen


async def _profile_for(
    chosen: list[Recommender], raw_feedback: str | None, pipeline: Pipeline
) -> tuple[TasteProfile | None, float]:
    """The user's taste profile when a personal recommender was named (422 `needs_profile` when the feedback
    likes nothing); validating the feedback either way, so a malformed field is never silently ignored."""
    items = parse_feedback(raw_feedback)
    personal = [recommender.name for recommender in chosen if recommender.personal]
    if not personal:
        return None, 0.0
    start = time.perf_counter()
    profile = await pipeline.profile(to_events(items, len(pipeline.gallery)))
    if profile.is_empty:
        raise ApiError(
            422, "needs_profile", f"{', '.join(personal)} needs feedback with at least one liked work of the gallery"
        )
    return profile, (time.perf_counter() - start) * 1000.0


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
        if isinstance(exc.__context__, MultiPartException) and "maximum size" in exc.detail:
            # Starlette answers a form field over `max_part_size` with a bare 400: it is a size cap like ours.
            return error_response(413, "too_large", exc.detail)
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
