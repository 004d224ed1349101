"""The vLLM describer against a local stand-in of vLLM's OpenAI API (tests/vllm_stub.py): the requests it sends,
the order and concurrency of a batch, its failures, and the service that uses it, in-process and as a process."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from inference.api import create_app
from inference.factory import build_models
from inference.models import Models
from inference.models_fetch import ModelsMissing, ensure_models
from inference.settings import InferenceSettings, ModelSettings
from inference.vllm_describer import DescriberUnavailable, VllmDescriber
from tests.factories import image_bytes, synthetic_artwork
from tests.fixtures_gallery import SERVICE_TOKEN
from tests.inference.conftest import AUTH
from tests.private_services import free_port
from tests.service_process import ServiceProcess
from tests.vllm_stub import VllmStub

PROMPT = "Describe the artwork's genre, style and mood."
MODEL = "llava-hf/llava-v1.6-mistral-7b-hf"
SIZES = [(96, 80), (40, 120), (64, 64), (120, 40), (80, 96), (50, 50), (72, 48), (48, 72)]


def photos(count: int) -> list[Image.Image]:
    """Each of a different size, so an answer names the photo it belongs to."""
    return [synthetic_artwork(seed, SIZES[seed]) for seed in range(count)]


def describer_for(url: str, **options: Any) -> VllmDescriber:
    return VllmDescriber(url, MODEL, PROMPT, **{"max_new_tokens": 42, **options})


@pytest.fixture
def stub() -> Iterator[VllmStub]:
    with VllmStub(model=MODEL, api_key="vllm-secret") as running:
        yield running


# --- the describer alone ---


def test_a_batch_is_described_in_order_with_the_request_vllm_expects(stub: VllmStub) -> None:
    batch = photos(5)
    describer = describer_for(stub.url, api_key="vllm-secret")

    descriptions = describer.describe(batch)

    assert [d.split(" painting")[0] for d in descriptions] == [f"A {w}x{h}" for w, h in SIZES[:5]]
    assert all(d == d.strip() for d in descriptions)
    assert len(stub.seen) == 5
    assert sorted(seen.image_size for seen in stub.seen) == sorted(SIZES[:5])  # the photo, at its own size
    for seen in stub.seen:
        assert (seen.model, seen.prompt, seen.max_tokens, seen.temperature) == (MODEL, PROMPT, 42, 0)
        assert seen.authorization == "Bearer vllm-secret"
    assert describer.completion_tokens == 5 * 42  # counted from the server's `usage`
    assert describer.describe([]) == []
    assert len(stub.seen) == 5
    describer.close()


def test_the_same_photo_gets_the_same_request(stub: VllmStub) -> None:
    """Temperature 0 and the same bytes: vLLM's greedy decoding then gives the analysis cache the same text."""
    describer = describer_for(stub.url, api_key="vllm-secret")
    photo = synthetic_artwork(7)

    first, again = describer.describe([photo]), describer.describe([photo.copy()])

    assert first == again
    assert stub.seen[0].body == stub.seen[1].body
    describer.close()


def test_no_more_requests_are_in_flight_than_the_concurrency(stub: VllmStub) -> None:
    stub.delay_s = 0.3
    describer = describer_for(stub.url, api_key="vllm-secret", concurrency=3)

    descriptions = describer.describe(photos(8))

    assert [d.split(" painting")[0] for d in descriptions] == [f"A {w}x{h}" for w, h in SIZES]
    assert stub.in_flight_max == 3  # concurrent (more than one), and no more than asked
    describer.close()


@pytest.mark.parametrize(
    ("fault", "message"),
    [("down", "is unreachable"), ("error", "answered HTTP 500"), ("slow", "no description within 0.3 s")],
)
def test_a_server_down_failing_or_too_slow_raises_describer_unavailable(
    stub: VllmStub, fault: str, message: str
) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1" if fault == "down" else stub.url
    stub.status = 500 if fault == "error" else None
    stub.delay_s = 1.5 if fault == "slow" else 0.0
    describer = describer_for(url, api_key="vllm-secret", timeout_s=0.3)

    with pytest.raises(DescriberUnavailable, match=message):
        describer.describe(photos(3))
    describer.close()


def test_a_wrong_api_key_is_refused_by_the_server_and_named(stub: VllmStub) -> None:
    describer = describer_for(stub.url, api_key="wrong")

    with pytest.raises(DescriberUnavailable, match="answered HTTP 401"):
        describer.describe(photos(1))
    assert describer.health()["ready"] is False
    describer.close()


def test_a_server_serving_another_model_fails_the_start(stub: VllmStub) -> None:
    describer = VllmDescriber(stub.url, "some/other-model", PROMPT, api_key="vllm-secret")

    with pytest.raises(ValueError, match="not INFERENCE_VLLM_MODEL='some/other-model'"):
        describer.load()
    describer.close()


# --- settings, factory and model download ---


def test_the_factory_builds_a_vllm_describer_from_settings_without_calling_it(
    stub: VllmStub, tiny_model_settings: dict[str, Any]
) -> None:
    settings = ModelSettings(
        **tiny_model_settings,
        describer="vllm",
        vllm_url=stub.url,
        vllm_api_key="vllm-secret",
        vllm_concurrency=5,
    )

    models = build_models(settings)

    describer = models.describer
    assert isinstance(describer, VllmDescriber)
    assert (describer.url, describer.model, describer.concurrency) == (stub.url, MODEL, 5)
    assert (describer.prompt, describer.max_new_tokens) == (settings.prompt, settings.max_new_tokens)
    assert models.versions()["describer"] == f"vllm:{MODEL}"
    assert stub.seen == []


def test_the_factory_needs_the_vllm_url(tiny_model_settings: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="INFERENCE_VLLM_URL must be set"):
        build_models(ModelSettings(**tiny_model_settings, describer="vllm"))


def test_llava_weights_are_not_fetched_when_vllm_describes(tiny_model_settings: dict[str, Any], tmp_path: Path) -> None:
    """The vLLM server loads its own weights: the service must not download 15 GB it never reads."""
    values = {**tiny_model_settings, "llava_path": "llava-hf/llava-v1.6-mistral-7b-hf", "offline": True}
    values["models_dir"] = tmp_path / "models"

    with pytest.raises(ModelsMissing, match="INFERENCE_LLAVA_PATH=llava-hf/llava-v1.6-mistral-7b-hf"):
        ensure_models(ModelSettings(**values))
    settings = ensure_models(ModelSettings(**values, describer="vllm", vllm_url="http://vllm:8000/v1"))
    assert settings.llava_path == "llava-hf/llava-v1.6-mistral-7b-hf"  # untouched, and never looked for
    assert not (tmp_path / "models").exists()


# --- the service using it ---


@asynccontextmanager
async def serving(settings: InferenceSettings, models: Models) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan, answering errors as uvicorn does (httpx's transport would re-raise them)."""
    app = create_app(settings, models)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://inference.test", timeout=60) as client:
            yield client


def upload(photo: Image.Image) -> dict[str, tuple[str, bytes, str]]:
    return {"image": ("photo.png", image_bytes(photo, "PNG"), "image/png")}


@pytest.mark.parametrize("fault", ["down", "error", "slow"])
async def test_the_service_without_a_working_vllm_fails_only_descriptions_and_recovers(
    make_settings: Callable[..., InferenceSettings], tiny_models: Models, fault: str
) -> None:
    """vLLM down at start (it loads for minutes), answering 500, or too slow: the service starts and serves the
    fast path, /v1/analyze answers 503 + Retry-After, /healthz says 'degraded'; once vLLM is well,
    descriptions come back without a restart."""
    port = free_port()
    stub = VllmStub(model=MODEL, status=500 if fault == "error" else None, delay_s=1.5 if fault == "slow" else 0.0)
    if fault != "down":
        stub.bind(port)
    describer = describer_for(f"http://127.0.0.1:{port}/v1", timeout_s=0.5)
    models = Models(clip=tiny_models.clip, text=tiny_models.text, describer=describer)
    photo = synthetic_artwork(11, (88, 66))
    try:
        async with serving(make_settings(identify=False), models) as client:
            failed = await client.post("/v1/analyze", files=upload(photo), headers=AUTH)
            assert failed.status_code == 503 and failed.headers["Retry-After"] == "10"  # heals by waiting
            assert failed.json() == {  # no server detail leaks
                "error": "describer_unavailable",
                "detail": "Descriptions are unavailable for now; retry shortly.",
            }
            look = await client.post("/v1/look", files=upload(photo), headers=AUTH)
            assert look.status_code == 200 and look.json()["recommendations"]["by_look"]
            health = await client.get("/healthz")
            assert health.status_code == 200
            assert health.json()["status"] == "degraded"
            assert health.json()["describer"]["ready"] is False
            assert health.json()["describer"]["problem"]

            stub.status, stub.delay_s = None, 0.0
            if fault == "down":
                stub.bind(port)
            analyzed = await client.post("/v1/analyze", files=upload(photo), headers=AUTH)
            assert analyzed.status_code == 200, analyzed.text
            assert analyzed.json()["description"] == stub.seen[-1].answer.strip()
            assert analyzed.json()["description"].startswith("A 88x66 painting")
            assert analyzed.json()["models"]["describer"] == f"vllm:{MODEL}"
            health = (await client.get("/healthz")).json()
            assert health["status"] == "ok"
            assert health["describer"] == {"backend": "vllm", "model": MODEL, "ready": True, "problem": None}
    finally:
        stub.close()
        describer.close()


async def test_describe_batches_become_concurrent_vllm_requests(
    make_settings: Callable[..., InferenceSettings], tiny_models: Models
) -> None:
    """The service's micro-batcher hands vLLM a batch; its photos are in flight together, each answered with its
    own description."""
    with VllmStub(model=MODEL, delay_s=0.4) as stub:
        describer = describer_for(stub.url, concurrency=4)
        models = Models(clip=tiny_models.clip, text=tiny_models.text, describer=describer)
        settings = make_settings(identify=False, describe_batch_size=4, describe_batch_wait_ms=3000)
        batch = photos(4)
        async with serving(settings, models) as client:
            answers = await asyncio.gather(
                *(
                    client.post("/v1/analyze", files=upload(p), params={"recommenders": "by_meaning"}, headers=AUTH)
                    for p in batch
                )
            )
        describer.close()
    assert [a.status_code for a in answers] == [200] * 4
    assert [a.json()["description"].split(" painting")[0] for a in answers] == [f"A {w}x{h}" for w, h in SIZES[:4]]
    assert stub.in_flight_max == 4


def test_the_service_process_with_describer_vllm_answers_with_the_servers_description(
    tiny_gallery: Path, tiny_model_env: dict[str, str], tmp_path: Path
) -> None:
    """End to end: `python -m inference.serve` configured only through INFERENCE_* variables."""
    with VllmStub(model=MODEL, api_key="vllm-secret") as stub:
        env = {
            **tiny_model_env,
            "INFERENCE_TOKEN": SERVICE_TOKEN,
            "INFERENCE_DESCRIBER": "vllm",
            "INFERENCE_VLLM_URL": stub.url,
            "INFERENCE_VLLM_MODEL": MODEL,
            "INFERENCE_VLLM_API_KEY": "vllm-secret",
            "INFERENCE_MAX_NEW_TOKENS": "60",
        }
        service = ServiceProcess(tiny_gallery, env, tmp_path / "inference.log")
        service.start()
        try:
            photo = synthetic_artwork(12, (100, 70))
            response = httpx.post(
                f"{service.url}/v1/analyze",
                files=upload(photo),
                headers={"Authorization": f"Bearer {SERVICE_TOKEN}"},
                timeout=60,
            )
            health = httpx.get(f"{service.url}/healthz", timeout=10).json()
            stub.close()  # vLLM goes away: the service answers a clean error and keeps serving
            failed = httpx.post(
                f"{service.url}/v1/analyze",
                files=upload(synthetic_artwork(13)),
                headers={"Authorization": f"Bearer {SERVICE_TOKEN}"},
                timeout=60,
            )
            still = httpx.post(
                f"{service.url}/v1/look",
                files=upload(photo),
                headers={"Authorization": f"Bearer {SERVICE_TOKEN}"},
                timeout=60,
            )
            assert service.process is not None and service.process.poll() is None
        finally:
            service.stop()
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["description"] == stub.seen[-1].answer.strip()
    assert body["description"].startswith("A 100x70 painting")
    assert body["models"]["describer"] == f"vllm:{MODEL}"
    assert stub.seen[-1].max_tokens == 60 and stub.seen[-1].authorization == "Bearer vllm-secret"
    assert stub.seen[-1].prompt == ModelSettings.model_fields["prompt"].default
    assert health["status"] == "ok" and health["describer"]["ready"] is True
    assert (failed.status_code, failed.json()["error"]) == (503, "describer_unavailable")
    assert still.status_code == 200
    assert "describer unavailable" in service.log_tail(20_000)  # the operator's log names the cause
