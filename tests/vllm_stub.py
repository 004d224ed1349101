"""A local stand-in of a vLLM server's OpenAI-compatible API: the GPU end of the vLLM describer, faked at HTTP.

It answers `GET /v1/models` and `POST /v1/chat/completions` as vLLM does, decodes the photo of each request
and describes it by what it can see for sure (its size and its mean colour), so a test knows which photo an
answer belongs to. Every request is recorded; `in_flight_max` is the most requests it held at once. `delay_s`
makes each answer slow, `status` makes every answer an error, and `bind(port)` starts it on a port a client was
already pointed at (a server that comes up late).
"""

from __future__ import annotations

import base64
import io
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from PIL import Image, ImageStat

DATA_URL_PREFIX = "data:image/jpeg;base64,"


@dataclass(frozen=True)
class Seen:
    """One chat request as the server received it."""

    model: str
    prompt: str
    image_size: tuple[int, int]
    max_tokens: int
    temperature: float
    authorization: str | None
    body: dict[str, Any]
    answer: str
    """The description sent back (before the client strips its whitespace)."""


def describe(image: Image.Image) -> str:
    """What the stub 'sees': enough to tell the photos of a batch apart."""
    red, green, blue = (round(v) for v in ImageStat.Stat(image.convert("RGB")).mean)
    return f"A {image.width}x{image.height} painting whose mean colour is rgb({red}, {green}, {blue})."


@dataclass
class VllmStub:
    model: str = "llava-hf/llava-v1.6-mistral-7b-hf"
    api_key: str | None = None
    """When set, requests without `Authorization: Bearer <api_key>` get 401, as vLLM's --api-key does."""
    delay_s: float = 0.0
    status: int | None = None
    """Answer every chat request with this HTTP status (a failing server)."""
    tokens_per_answer: int | None = None
    """`usage.completion_tokens` to report; None: the request's max_tokens (a model made to run to the end)."""
    seen: list[Seen] = field(default_factory=list)
    in_flight_max: int = 0
    _in_flight: int = 0
    _gone: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        """The base URL a client is configured with (OpenAI's convention: it ends in /v1)."""
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def bind(self, port: int = 0) -> VllmStub:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                if stub._open(self):
                    stub._get(self)

            def do_POST(self) -> None:  # noqa: N802
                if stub._open(self):
                    stub._post(self)

        self._gone = False
        server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        server.daemon_threads = True
        self._server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return self

    def __enter__(self) -> VllmStub:
        return self if self._server is not None else self.bind()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop as a killed server does: kept-alive connections are dropped too, without an answer."""
        self._gone = True
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def _open(self, handler: BaseHTTPRequestHandler) -> bool:
        if self._gone:
            handler.close_connection = True
        return not self._gone

    def _authorized(self, handler: BaseHTTPRequestHandler) -> bool:
        if self.api_key is None or handler.headers.get("Authorization") == f"Bearer {self.api_key}":
            return True
        _send(handler, 401, {"error": {"message": "Unauthorized", "type": "invalid_request_error"}})
        return False

    def _get(self, handler: BaseHTTPRequestHandler) -> None:
        if handler.path != "/v1/models":
            _send(handler, 404, {"error": {"message": f"no route {handler.path}"}})
        elif self._authorized(handler):
            _send(handler, 200, {"object": "list", "data": [{"id": self.model, "object": "model"}]})

    def _post(self, handler: BaseHTTPRequestHandler) -> None:
        body = json.loads(handler.rfile.read(int(handler.headers.get("Content-Length") or 0)))
        if handler.path != "/v1/chat/completions":
            _send(handler, 404, {"error": {"message": f"no route {handler.path}"}})
            return
        if not self._authorized(handler):
            return
        with self._lock:
            self._in_flight += 1
            self.in_flight_max = max(self.in_flight_max, self._in_flight)
        try:
            time.sleep(self.delay_s)
            if self.status is not None:
                _send(handler, self.status, {"error": {"message": "the stub fails on purpose", "code": self.status}})
                return
            if body.get("model") != self.model:
                _send(handler, 404, {"error": {"message": f"The model `{body.get('model')}` does not exist."}})
                return
            try:
                image, prompt = _parts(body)
            except (AssertionError, KeyError, TypeError, ValueError) as exc:  # a malformed request: say why
                _send(handler, 400, {"error": {"message": f"bad request: {exc!r}"}})
                return
            answer = " " + describe(image) + "\n"
            self.seen.append(
                Seen(
                    model=body["model"],
                    prompt=prompt,
                    image_size=image.size,
                    max_tokens=int(body["max_tokens"]),
                    temperature=float(body["temperature"]),
                    authorization=handler.headers.get("Authorization"),
                    body=body,
                    answer=answer,
                )
            )
            tokens = self.tokens_per_answer if self.tokens_per_answer is not None else int(body["max_tokens"])
            _send(
                handler,
                200,
                {
                    "id": f"chatcmpl-{len(self.seen)}",
                    "object": "chat.completion",
                    "model": self.model,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": answer},
                            "finish_reason": "length",
                        }
                    ],
                    "usage": {"prompt_tokens": 2000, "completion_tokens": tokens, "total_tokens": 2000 + tokens},
                },
            )
        finally:
            with self._lock:
                self._in_flight -= 1


def _parts(body: dict[str, Any]) -> tuple[Image.Image, str]:
    """The one image (decoded from its data URL) and the text of the one user message."""
    (message,) = body["messages"]
    assert message["role"] == "user"
    images = [part["image_url"]["url"] for part in message["content"] if part["type"] == "image_url"]
    texts = [part["text"] for part in message["content"] if part["type"] == "text"]
    assert len(images) == 1 and len(texts) == 1, message
    assert images[0].startswith(DATA_URL_PREFIX), images[0][:40]
    image = Image.open(io.BytesIO(base64.b64decode(images[0][len(DATA_URL_PREFIX) :], validate=True)))
    image.load()
    return image, texts[0]


def _send(handler: BaseHTTPRequestHandler, status: int, payload: dict[str, Any]) -> None:
    data = json.dumps(payload).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)
