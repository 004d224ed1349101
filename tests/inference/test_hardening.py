"""Abuse over a real socket: slow bodies time out, big JSON is refused before parsing, and the work of a client
that hung up is dropped instead of computed."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

import httpx
import psutil
import pytest
import uvicorn
from fastapi import FastAPI
from PIL import Image

from inference.api import create_app
from inference.batcher import MicroBatcher
from inference.models import Models
from inference.pipeline import Pipeline
from inference.serve import uvicorn_options
from inference.settings import InferenceSettings
from tests.factories import image_bytes, synthetic_artwork
from tests.inference.conftest import AUTH, GatedDescriber, serving

MiB = 1024 * 1024


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def on_a_socket(settings: InferenceSettings, models: Models) -> AsyncIterator[tuple[FastAPI, int]]:
    """The app under uvicorn, with the options serve.py gives it, on a loopback port of this event loop."""
    port = _free_port()
    app = create_app(settings, models)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", **uvicorn_options(settings)
    )
    server = uvicorn.Server(config)
    task = asyncio.ensure_future(server.serve())
    try:
        while not server.started:
            assert not task.done(), "server failed to start"
            await asyncio.sleep(0.05)
        yield app, port
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)


def raw(request: httpx.Request) -> bytes:
    """The request as bytes on the wire (HTTP/1.1), so a test can send part of it, or hang up mid-way."""
    body = request.read()
    lines = [f"{request.method} {request.url.raw_path.decode()} HTTP/1.1"]
    lines += [f"{name}: {value}" for name, value in request.headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def read_response(reader: asyncio.StreamReader, timeout: float) -> tuple[int, dict[str, Any], bool]:
    """Status, JSON body, and whether the server then closed the connection."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
    status = int(head.split(b" ", 2)[1])
    length = next(
        int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")
    )
    body = json.loads(await asyncio.wait_for(reader.readexactly(length), timeout))
    closed = await asyncio.wait_for(reader.read(1), timeout) == b""
    return status, body, closed


# --- the body-read deadline ---


@pytest.mark.parametrize("pace", ["stalls", "trickles"])
async def test_a_slow_body_gets_408_in_time_and_its_socket_is_closed(
    make_settings: Callable[..., InferenceSettings], tiny_models: Models, pace: str
) -> None:
    settings = make_settings(body_timeout_s=1.5, body_idle_timeout_s=0.6)
    body = json.dumps({"exclude": list(range(200))}).encode()
    request = httpx.Request("POST", "http://127.0.0.1/v1/suggest", content=body, headers=AUTH)
    wire = raw(request)
    half = len(wire) - len(body) // 2
    async with on_a_socket(settings, tiny_models) as (_, port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        loop = asyncio.get_running_loop()
        start = loop.time()
        writer.write(wire[:half])
        await writer.drain()
        answer = asyncio.ensure_future(read_response(reader, timeout=5))
        if pace == "trickles":  # a byte every 0.2 s: never idle for long, but never done either
            for offset in range(half, len(wire) - 1):
                if answer.done():
                    break
                writer.write(wire[offset : offset + 1])
                await asyncio.sleep(0.2)
        status, error, closed = await answer
        elapsed = loop.time() - start
        writer.close()
    assert status == 408
    assert error["error"] == "body_timeout"
    assert closed
    limit = 0.6 if pace == "stalls" else 1.5
    assert limit - 0.1 <= elapsed < limit + 2.0


async def test_a_body_that_arrives_in_time_is_served(
    make_settings: Callable[..., InferenceSettings], tiny_models: Models
) -> None:
    settings = make_settings(body_timeout_s=1.5, body_idle_timeout_s=0.6)
    async with on_a_socket(settings, tiny_models) as (_, port):
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            photo = {"image": ("p.jpg", image_bytes(synthetic_artwork(41)), "image/jpeg")}
            assert (await client.post("/v1/look", files=photo, headers=AUTH)).status_code == 200
            await asyncio.sleep(1.6)  # the deadline is per request, not per connection
            response = await client.post("/v1/onboarding", json={"k": 2}, headers=AUTH)
            assert response.status_code == 200


# --- JSON caps before parsing ---


async def test_oversized_json_gets_413_before_parsing_and_costs_no_memory(
    make_settings: Callable[..., InferenceSettings], tiny_models: Models
) -> None:
    cap = 64 * 1024
    async with on_a_socket(make_settings(max_json_bytes=cap), tiny_models) as (_, port):
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            small = await client.post("/v1/suggest", json={"exclude": list(range(100))}, headers=AUTH)
            assert small.status_code == 200

            declared = await client.post("/v1/suggest", content=b"[" + b"1," * cap + b"1]", headers=AUTH)
            assert declared.status_code == 413
            assert declared.json()["error"] == "too_large"
            assert "64 KiB" in declared.json()["detail"]

            chunk = b'{"artwork_id": 1, "value": 1.0},' * 2048  # 64 KiB of events

            async def streamed(total: int) -> AsyncIterator[bytes]:  # chunked: no Content-Length
                yield b'{"feedback": ['
                for _ in range(total // len(chunk)):
                    yield chunk

            process = psutil.Process()
            before = process.memory_info().rss
            for path in ("/v1/suggest", "/v1/onboarding"):
                response = await client.post(path, content=streamed(50 * MiB), headers=AUTH)
                assert response.status_code == 413, response.text
                assert response.json()["error"] == "too_large"
            grown = process.memory_info().rss - before
    assert grown < 8 * MiB, f"RSS grew by {grown / MiB:.1f} MiB while 100 MB of JSON was refused"


async def test_a_feedback_form_field_over_the_json_cap_gets_413(
    make_settings: Callable[..., InferenceSettings], tiny_models: Models
) -> None:
    async with serving(make_settings(max_json_bytes=16 * 1024), tiny_models) as client:
        photo = {"image": ("p.jpg", image_bytes(synthetic_artwork(42)), "image/jpeg")}
        events = json.dumps([{"artwork_id": 1, "value": 1.0}] * 1000)  # 30 KiB
        response = await client.post(
            "/v1/analyze", data={"recommenders": "for_you", "feedback": events}, files=photo, headers=AUTH
        )
        assert response.status_code == 413, response.text
        assert response.json()["error"] == "too_large"


# --- work for clients that hung up ---


class CountingDescriber(GatedDescriber):
    """A held describer that also counts the photos it was asked to describe."""

    def __init__(self, inner: Any) -> None:
        super().__init__(inner)
        self.described = 0
        self.lock = threading.Lock()

    def describe(self, images: list[Image.Image]) -> list[str]:
        with self.lock:
            self.described += len(images)
        return super().describe(images)


async def test_a_client_that_hangs_up_while_queued_has_its_work_dropped(
    make_settings: Callable[..., InferenceSettings], tiny_models: Models, caplog: pytest.LogCaptureFixture
) -> None:
    describer = CountingDescriber(tiny_models.describer)
    models = Models(clip=tiny_models.clip, text=tiny_models.text, describer=describer)
    settings = make_settings(describe_batch_size=1, describe_batch_wait_ms=0, max_queue=4)
    caplog.set_level(logging.INFO, logger="inference.access")
    async with on_a_socket(settings, models) as (app, port):
        pipeline: Pipeline = app.state.pipeline
        url = f"http://127.0.0.1:{port}"
        try:
            async with httpx.AsyncClient(base_url=url, timeout=60) as client:
                first = asyncio.ensure_future(
                    client.post(
                        "/v1/analyze",
                        data={"recommenders": "by_meaning"},
                        files={"image": ("a.jpg", image_bytes(synthetic_artwork(43)), "image/jpeg")},
                        headers=AUTH,
                    )
                )
                await asyncio.to_thread(describer.entered.wait, 30)  # the first describe runs, and is held

                queued = httpx.Request(
                    "POST",
                    f"{url}/v1/analyze",
                    data={"recommenders": "by_meaning"},
                    files={"image": ("b.jpg", image_bytes(synthetic_artwork(44)), "image/jpeg")},
                    headers=AUTH,
                )
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(raw(queued))
                await writer.drain()
                await _until(lambda: pipeline.meaning_batcher.queued == 1)
                writer.close()  # the bot gave up on it
                await _until(lambda: pipeline.meaning_batcher.queued == 0)
                assert pipeline.dropped()["describe"] == 1

                describer.gate.set()
                assert (await first).status_code == 200
                health = (await client.get("/healthz")).json()
        finally:
            describer.gate.set()
    assert describer.described == 1  # the abandoned photo never reached the model
    assert health["dropped"] == {"clip": 0, "describe": 1, "clip_text": 0}
    assert any(" /v1/analyze 499 " in record.getMessage() for record in caplog.records)


async def _until(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition never became true"
        await asyncio.sleep(0.02)


async def test_the_batcher_counts_callers_that_gave_up_and_never_computes_them() -> None:
    seen: list[list[int]] = []
    release = threading.Event()

    def slow(items: list[int]) -> list[int]:
        release.wait(10)
        seen.append(items)
        return items

    executor = ThreadPoolExecutor(1)
    batcher = MicroBatcher("t", slow, max_batch=1, max_wait_ms=0, max_queue=10, executor=executor)
    batcher.start()
    try:
        running = asyncio.ensure_future(batcher.submit(1))
        await _until(lambda: batcher.computing)
        waiting = [asyncio.ensure_future(batcher.submit(i)) for i in (2, 3, 4)]
        await asyncio.sleep(0)
        waiting[0].cancel()
        waiting[2].cancel()
        await asyncio.sleep(0)
        assert batcher.dropped == 2 and batcher.queued == 1
        release.set()
        assert await running == 1
        assert await waiting[1] == 3
        assert seen == [[1], [3]]
    finally:
        release.set()
        await batcher.stop()
        executor.shutdown()


async def test_a_shared_clip_pass_is_cancelled_only_when_its_last_caller_leaves(
    make_settings: Callable[..., InferenceSettings], tiny_models: Models
) -> None:
    async with serving(make_settings(), tiny_models) as client:
        pipeline: Pipeline = client._transport.app.state.pipeline  # type: ignore[attr-defined]
        image = synthetic_artwork(45)
        gate = threading.Event()
        clip_ran = threading.Event()

        def held(items: list[Any]) -> Any:
            clip_ran.set()
            gate.wait(10)
            return Pipeline._look_batch(pipeline, items)

        pipeline.look_batcher._fn = held  # hold the CLIP worker with a first photo
        try:
            blocker = asyncio.ensure_future(pipeline.look(synthetic_artwork(46), 2, "blocker"))
            await asyncio.to_thread(clip_ran.wait, 10)
            one, two = (asyncio.ensure_future(pipeline.look(image, 2, "same")) for _ in range(2))
            await _until(lambda: pipeline.look_batcher.queued == 1)
            one.cancel()
            await asyncio.sleep(0.05)
            assert pipeline.look_batcher.queued == 1  # the other caller still waits for it
            two.cancel()
            await _until(lambda: pipeline.look_batcher.queued == 0)
            assert pipeline.dropped()["clip"] == 1
            gate.set()
            await blocker
            again = await pipeline.look(image, 2, "same")  # a later caller starts a fresh pass
            assert len(again.hits) == 2
        finally:
            gate.set()
