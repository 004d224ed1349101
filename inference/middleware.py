"""Pure ASGI middleware of the service: bearer auth, upload size cap and a one-line access log.

Auth and the size cap run before FastAPI parses a multipart body, so a stranger without the token, or with
a 1 GB "photo", costs us no memory and no temporary file.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Iterable

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger("inference.access")

# Multipart framing around the file (boundaries, part headers) on top of the file bytes themselves.
MULTIPART_SLACK = 64 * 1024


class ApiError(HTTPException):
    """An error answered as JSON `{"error": code, "detail": ...}`; an HTTPException so that FastAPI lets it
    through body parsing unchanged."""

    def __init__(self, status_code: int, code: str, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(status_code=status_code, detail=detail, headers=headers)
        self.code = code


def error_response(status_code: int, code: str, detail: object, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail}, status_code=status_code, headers=headers)


def too_large(max_bytes: int) -> ApiError:
    limit = f"{max_bytes / 2**20:.3g} MiB" if max_bytes >= 2**20 else f"{max_bytes / 2**10:.3g} KiB"
    return ApiError(413, "too_large", f"The upload is larger than the limit of {limit}.")


class BearerAuth:
    """401 unless `Authorization: Bearer <token>` matches (constant-time); public paths pass."""

    def __init__(self, app: ASGIApp, *, token: str, public_paths: Iterable[str]) -> None:
        self.app = app
        self._token = token.encode("utf-8")
        self._public = frozenset(public_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self._public or self._authorised(scope):
            await self.app(scope, receive, send)
            return
        response = error_response(
            401, "unauthorized", "A valid bearer token is required.", headers={"WWW-Authenticate": "Bearer"}
        )
        await response(scope, receive, send)

    def _authorised(self, scope: Scope) -> bool:
        scheme, _, credentials = Headers(scope=scope).get("authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            return False
        # Starlette decodes header bytes as latin-1: encoding back gives the exact bytes that were sent.
        return hmac.compare_digest(credentials.strip().encode("latin-1"), self._token)


class UploadLimit:
    """413 for request bodies over the cap on the upload paths: by Content-Length before reading anything,
    and by counting while streaming (chunked bodies have no Content-Length)."""

    def __init__(self, app: ASGIApp, *, max_upload_bytes: int, paths: Iterable[str]) -> None:
        self.app = app
        self._max_upload = max_upload_bytes
        self._max_body = max_upload_bytes + MULTIPART_SLACK
        self._paths = frozenset(paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in self._paths:
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self._max_body:
            error = too_large(self._max_upload)
            await error_response(error.status_code, error.code, error.detail)(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self._max_body:
                    raise too_large(self._max_upload)
            return message

        await self.app(scope, counting_receive, send)


class AccessLog:
    """One log line per request: method, path, status, total time and the per-stage timings the endpoint
    left in `request.state.timings`. Headers are never logged (the token is in one)."""

    def __init__(self, app: ASGIApp, *, quiet_paths: Iterable[str] = ()) -> None:
        self.app = app
        self._quiet = frozenset(quiet_paths)  # health probes: logged at DEBUG unless they fail

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500
        state = scope.setdefault("state", {})  # shared with request.state, even if the scope gets copied

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            total = (time.perf_counter() - start) * 1000.0
            stages = state.get("timings") if isinstance(state, dict) else None
            extra = "".join(f" {name}={ms:.1f}" for name, ms in (stages or {}).items() if name != "total")
            level = logging.DEBUG if scope["path"] in self._quiet and status < 400 else logging.INFO
            logger.log(level, "%s %s %d %.1fms%s", scope["method"], scope["path"], status, total, extra)
