"""LLaVA-NeXT served by vLLM, reached over its OpenAI-compatible HTTP API.

vLLM batches continuously: a request that arrives while others generate joins the running batch at the next
step, so a group of photos sent as concurrent requests keeps the GPU busy without one padded `generate` over
the group. vLLM pins its own torch, so it runs as a server of its own (the vllm/vllm-openai image) and this
process only speaks HTTP to it: the service's environment keeps its torch, and needs no client library beyond
httpx.

Each photo is one `POST {url}/chat/completions`: the photo as a base64 JPEG data URL, the project's prompt,
`max_tokens` = INFERENCE_MAX_NEW_TOKENS and temperature 0 (greedy, so a photo gets the same description every
time, as with the in-process LLaVA). `describe` is called from the pipeline's describe thread; it sends the
batch through a pool of `concurrency` threads sharing one connection pool, so that many requests at most are in
flight however many photos wait.

A server that is down, slow or failing raises `DescriberUnavailable` for the batch. The service answers that as
any describer failure (/v1/analyze: 500 `internal`); /v1/look never waits for the describer and keeps working,
and the service starts while the server is still loading its weights. `health()` tells /healthz whether the
server answers and serves the model.
"""

from __future__ import annotations

import base64
import io
import logging
import threading
from collections.abc import Mapping
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import Any

import httpx
from PIL import Image

from inference.models import DescriberUnavailable

logger = logging.getLogger(__name__)

JPEG_QUALITY = 95
"""High enough that the model sees what the photo shows; a 1024 px photo is then about 300 KB of base64."""


class VllmDescriber:
    """A client of one vLLM server; `extra_body` adds sampling fields (the benchmark's `ignore_eos`)."""

    def __init__(
        self,
        url: str,
        model: str,
        prompt: str,
        max_new_tokens: int = 160,
        *,
        api_key: str | None = None,
        concurrency: int = 16,
        timeout_s: float = 120.0,
        connect_timeout_s: float = 5.0,
        health_timeout_s: float = 2.0,
        extra_body: Mapping[str, Any] | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        self.url = url.rstrip("/")
        self.model = model
        self.prompt = prompt
        self.max_new_tokens = max_new_tokens
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self.name = f"vllm:{model}"
        self._api_key = api_key
        self._timeout = httpx.Timeout(timeout_s, connect=connect_timeout_s)
        self._health_timeout = httpx.Timeout(health_timeout_s)
        self._extra = dict(extra_body or {})
        self._client: httpx.Client | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()  # opening and closing the pools
        self._count_lock = threading.Lock()
        self._loaded = False
        self._last_error: str | None = None
        """Why the last description failed; None once one succeeds (a server can list its model and still fail)."""
        self.completion_tokens = 0
        """Tokens generated so far, as the server counts them (what a tokens/s figure divides)."""

    def load(self) -> None:
        """Open the connection pool and look at the server once. A server that answers without the model is a
        misconfiguration and fails the start; one that does not answer yet (vLLM loads for minutes) is logged,
        and describing fails cleanly until it is up."""
        with self._lock:
            if self._loaded:
                return
            self._open()
            served, problem = self._served()
            if served is not None and self.model not in served:
                raise ValueError(
                    f"the vLLM server at {self.url} serves {served}, not INFERENCE_VLLM_MODEL={self.model!r}"
                )
            if problem is not None:
                logger.warning("vLLM server at %s is not ready (%s): descriptions fail until it is", self.url, problem)
            self._loaded = True

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=False, cancel_futures=True)
            if self._client is not None:
                self._client.close()
            self._client, self._pool, self._loaded = None, None, False

    def describe(self, images: list[Image.Image]) -> list[str]:
        if not images:
            return []
        self.load()
        assert self._pool is not None
        futures = [self._pool.submit(self._describe_one, image) for image in images]
        done, pending = wait(futures, return_when=FIRST_EXCEPTION)
        failed = next((f for f in futures if f in done and f.exception() is not None), None)
        if failed is not None:
            for future in pending:  # photos not sent yet: nobody will read their descriptions
                future.cancel()
            error = failed.exception()
            assert error is not None
            raise error
        return [future.result() for future in futures]

    def health(self) -> dict[str, Any]:
        """What /healthz shows: whether the server answers and serves the model (one GET /models), and whether
        the last description failed."""
        with self._lock:
            self._open()
        served, problem = self._served()
        if served is not None and self.model not in served:
            problem = f"serves {served}, not {self.model}"
        elif problem is None and self._last_error is not None:
            problem = f"the last description failed: {self._last_error}"
        return {"backend": "vllm", "model": self.model, "ready": problem is None, "problem": problem}

    def _open(self) -> None:
        if self._client is None:
            headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
            limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
            self._client = httpx.Client(headers=headers, timeout=self._timeout, limits=limits)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="vllm")

    def _served(self) -> tuple[list[str] | None, str | None]:
        """(served model names, None), or (None, why not)."""
        assert self._client is not None
        try:
            response = self._client.get(f"{self.url}/models", timeout=self._health_timeout)
        except httpx.HTTPError as exc:
            return None, f"unreachable: {type(exc).__name__}"
        if response.status_code != 200:
            return None, f"GET /models answered HTTP {response.status_code}"
        try:
            return [str(entry["id"]) for entry in response.json()["data"]], None
        except (ValueError, KeyError, TypeError) as exc:
            return None, f"GET /models answered no model list ({type(exc).__name__})"

    def _describe_one(self, image: Image.Image) -> str:
        try:
            text, tokens = self._request(image)
        except DescriberUnavailable as exc:
            self._last_error = str(exc)
            raise
        with self._count_lock:
            self.completion_tokens += tokens
            self._last_error = None
        return text

    def _request(self, image: Image.Image) -> tuple[str, int]:
        """One photo's description and its token count, from one chat completion."""
        client = self._client
        assert client is not None
        body = {
            "model": self.model,
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "image_url", "image_url": {"url": data_url(image)}},
                        {"type": "text", "text": self.prompt},
                    ],
                }
            ],
            "max_tokens": self.max_new_tokens,
            "temperature": 0,
            **self._extra,
        }
        try:
            response = client.post(f"{self.url}/chat/completions", json=body)
        except httpx.TimeoutException as exc:
            raise DescriberUnavailable(
                f"vLLM server at {self.url} gave no description within {self.timeout_s:g} s"
            ) from exc
        except httpx.HTTPError as exc:
            raise DescriberUnavailable(f"vLLM server at {self.url} is unreachable: {type(exc).__name__}") from exc
        if response.status_code != 200:
            raise DescriberUnavailable(
                f"vLLM server at {self.url} answered HTTP {response.status_code}: {response.text[:300]}"
            )
        try:
            answer = response.json()
            text = answer["choices"][0]["message"]["content"]
            tokens = int((answer.get("usage") or {}).get("completion_tokens") or 0)
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
            raise DescriberUnavailable(f"vLLM server at {self.url} answered without a description") from exc
        if not isinstance(text, str):
            raise DescriberUnavailable(f"vLLM server at {self.url} answered without a description")
        return text.strip(), tokens


def data_url(image: Image.Image) -> str:
    """The photo as an RGB JPEG data URL, the form of an OpenAI `image_url` content part."""
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
