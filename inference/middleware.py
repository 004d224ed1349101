"""Pure ASGI middleware of the service: bearer auth, body size caps, a body-read deadline, cancelling the work
of clients that hung up, and a one-line access log.

Auth, the size caps and the deadline run before FastAPI parses a body, so a stranger without the token, a 1 GB
"photo", a 144 MB JSON or a client trickling its body byte by byte costs us no memory, no temporary file and
no connection held open for long.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

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


def error_response(
    status_code: int, code: str, detail: object, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail}, status_code=status_code, headers=headers)


def too_large(max_bytes: int) -> ApiError:
    limit = f"{max_bytes / 2**20:.3g} MiB" if max_bytes >= 2**20 else f"{max_bytes / 2**10:.3g} KiB"
    return ApiError(413, "too_large", f"The upload is larger than the limit of {limit}.")


def body_timeout(seconds: float) -> ApiError:
    """408 with `Connection: close`: uvicorn then closes the socket, so the slow client's connection is freed
    too, and whatever it still sends is not read."""
    return ApiError(
        408,
        "body_timeout",
        f"The request body did not arrive in time (limit {seconds:g} s).",
        headers={"Connection": "close"},
    )


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


@dataclass(frozen=True)
class BodyCap:
    """The cap of one path: `limit` is what the client is told, `slack` the framing allowed on top of it."""

    limit: int
    slack: int = 0

    @property
    def max_body(self) -> int:
        return self.limit + self.slack


class UploadLimit:
    """413 for request bodies over their path's cap: by Content-Length before reading anything, and by counting
    while streaming (chunked bodies have no Content-Length), so nothing over the cap is buffered or parsed."""

    def __init__(self, app: ASGIApp, *, caps: Mapping[str, BodyCap]) -> None:
        self.app = app
        self._caps = dict(caps)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        cap = self._caps.get(scope["path"]) if scope["type"] == "http" else None
        if cap is None:
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > cap.max_body:
            error = too_large(cap.limit)
            await error_response(error.status_code, error.code, error.detail)(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > cap.max_body:
                    raise too_large(cap.limit)
            return message

        await self.app(scope, counting_receive, send)


class BodyTimeout:
    """408 `body_timeout` when a request body is not in within `total_s` of the request's start, or when no
    chunk of it arrives for `idle_s`. The app's `receive` raises instead of returning a partial body, so no
    handler ever sees one; after the deadline every further `receive` raises too."""

    def __init__(self, app: ASGIApp, *, total_s: float, idle_s: float | None = None) -> None:
        self.app = app
        self._total = total_s
        self._idle = idle_s if idle_s is not None else total_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._total
        complete = False
        expired = False

        async def timed_receive() -> Message:
            nonlocal complete, expired
            if complete:  # after the body only `http.disconnect` comes: no deadline for waiting on it
                return await receive()
            limit = min(deadline, loop.time() + self._idle)
            if expired or limit <= loop.time():
                expired = True
                raise body_timeout(self._total)
            try:
                async with asyncio.timeout_at(limit):
                    message = await receive()
            except TimeoutError:
                expired = True
                raise body_timeout(self._total) from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                complete = True
            return message

        await self.app(scope, timed_receive, send)


class CancelOnDisconnect:
    """Once the body is in, watch the connection: when the client hangs up before its answer is sent, cancel
    the handler, so its queued model work is dropped (the batchers skip cancelled callers) rather than computed
    for nobody. The request is marked `abandoned` in the scope state; the access log writes it as 499.

    The handler runs in a child task so that it can be cancelled without cancelling the server's own task; the
    watcher takes over `receive` after the body, and hands the app the disconnect if the app asks for it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body_done = asyncio.Event()
        gone = asyncio.Event()
        answered = False

        async def watched_receive() -> Message:
            if body_done.is_set():
                await gone.wait()
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.disconnect":
                gone.set()
            elif not message.get("more_body", False):
                body_done.set()
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal answered
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                answered = True  # before sending: uvicorn reports "disconnect" once the response is complete
            await send(message)

        handler = asyncio.ensure_future(self.app(scope, watched_receive, tracked_send))

        async def watch() -> None:
            await body_done.wait()
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    break
            gone.set()
            if not answered and not handler.done():
                handler.cancel()

        watcher = asyncio.ensure_future(watch())
        try:
            await handler
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if handler.cancelled() and gone.is_set() and not (current is not None and current.cancelling()):
                state = scope.setdefault("state", {})
                if isinstance(state, dict):
                    state["abandoned"] = True
                return
            handler.cancel()
            raise
        finally:
            watcher.cancel()


RequestObserver = Callable[[Scope, int, Mapping[str, float] | None], None]
"""Told each request's outcome: its scope, status and the stage timings it left (`inference.metrics`)."""


class AccessLog:
    """One log line per request: method, path, status, total time and the per-stage timings the endpoint
    left in `request.state.timings`. Headers are never logged (the token is in one). A request whose client
    hung up before the answer is logged as 499 (nginx's "client closed request"). `observe` gets the same
    outcome (the metrics), so what a request ended as is worked out in this one place."""

    def __init__(
        self, app: ASGIApp, *, quiet_paths: Iterable[str] = (), observe: RequestObserver | None = None
    ) -> None:
        self.app = app
        self._quiet = frozenset(quiet_paths)  # health probes: logged at DEBUG unless they fail
        self._observe = observe

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
            if isinstance(state, dict) and state.get("abandoned"):
                status = 499
            stages = state.get("timings") if isinstance(state, dict) else None
            extra = "".join(f" {name}={ms:.1f}" for name, ms in (stages or {}).items() if name != "total")
            level = logging.DEBUG if scope["path"] in self._quiet and status < 400 else logging.INFO
            logger.log(level, "%s %s %d %.1fms%s", scope["method"], scope["path"], status, total, extra)
            if self._observe is not None:
                self._observe(scope, status, stages)
