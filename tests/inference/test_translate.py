"""Descriptions in the reader's language: /v1/translate over the tiny real MarianMT (a real sentencepiece
tokenizer, random weights), the translator itself, the setting, and the bot's client against the real service."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from bot.inference_client import InferenceClient, InferenceUnavailable
from inference.models import Models
from inference.schemas import MAX_TRANSLATE_CHARS
from inference.settings import InferenceSettings, ModelSettings
from inference.translator import MarianTranslator, split_sentences
from tests.fixtures_gallery import SERVICE_TOKEN
from tests.inference.conftest import AUTH, serving

DESCRIPTION = (
    "The painting shows a quiet river at dusk. Soft light falls on the water!\n"
    "\n"
    "This work presents a stormy sea with dark clouds, in warm colors."
)


@pytest.fixture(scope="module")
def translator(tiny_marian_path: Path) -> MarianTranslator:
    loaded = MarianTranslator(tiny_marian_path, "ru", num_beams=1)
    loaded.load()
    return loaded


# --- the endpoint ---


async def test_a_russian_reader_gets_the_description_translated(api: httpx.AsyncClient) -> None:
    response = await api.post("/v1/translate", json={"text": DESCRIPTION, "language": "ru"}, headers=AUTH)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["language"] == "ru"
    assert body["text"].strip() and body["text"] != DESCRIPTION
    assert body["timings_ms"]["translate"] >= 0


async def test_a_regional_tag_reads_as_its_language(api: httpx.AsyncClient) -> None:
    response = await api.post("/v1/translate", json={"text": DESCRIPTION, "language": "ru-RU"}, headers=AUTH)
    assert response.status_code == 200
    assert response.json()["language"] == "ru"


@pytest.mark.parametrize("language", ["en", "EN", "en-US"])
async def test_an_english_reader_gets_the_text_unchanged(api: httpx.AsyncClient, language: str) -> None:
    response = await api.post("/v1/translate", json={"text": DESCRIPTION, "language": language}, headers=AUTH)
    assert response.status_code == 200
    assert response.json() == {"text": DESCRIPTION, "language": "en", "timings_ms": response.json()["timings_ms"]}


async def test_a_language_without_a_translator_is_refused_with_the_ones_available(api: httpx.AsyncClient) -> None:
    response = await api.post("/v1/translate", json={"text": DESCRIPTION, "language": "de"}, headers=AUTH)
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "unsupported_language"
    assert "en, ru" in body["detail"]


@pytest.mark.parametrize(
    "payload",
    [
        {"text": "x" * (MAX_TRANSLATE_CHARS + 1), "language": "ru"},
        {"text": "", "language": "ru"},
        {"text": "A painting.", "language": "r u"},
        {"text": "A painting.", "language": ""},
        {"text": "A painting."},
    ],
    ids=["too-long", "empty", "malformed-language", "empty-language", "no-language"],
)
async def test_a_bad_request_is_refused_before_any_translation(api: httpx.AsyncClient, payload: dict[str, str]) -> None:
    response = await api.post("/v1/translate", json=payload, headers=AUTH)
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_request"


async def test_a_huge_body_is_cut_off_before_it_is_parsed(api: httpx.AsyncClient) -> None:
    response = await api.post("/v1/translate", json={"text": "word " * 300_000, "language": "ru"}, headers=AUTH)
    assert response.status_code == 413
    assert response.json()["error"] == "too_large"


async def test_translation_needs_the_token(api: httpx.AsyncClient) -> None:
    response = await api.post("/v1/translate", json={"text": DESCRIPTION, "language": "ru"})
    assert response.status_code == 401


async def test_concurrent_readers_each_get_their_own_translation(api: httpx.AsyncClient) -> None:
    texts = ["The painting shows a quiet river at dusk.", "This portrait depicts an old man reading by a window."]
    responses = await asyncio.gather(
        *(api.post("/v1/translate", json={"text": text, "language": "ru"}, headers=AUTH) for text in texts * 2)
    )
    assert all(response.status_code == 200 for response in responses)
    answers = [response.json()["text"] for response in responses]
    assert all(answers) and answers[0] != answers[1]


async def test_with_no_translator_configured_answers_stay_english(
    make_settings: Callable[..., InferenceSettings], tiny_models: Models
) -> None:
    english_only = Models(clip=tiny_models.clip, text=tiny_models.text, describer=tiny_models.describer)
    async with serving(make_settings(), english_only) as client:
        refused = await client.post("/v1/translate", json={"text": DESCRIPTION, "language": "ru"}, headers=AUTH)
        unchanged = await client.post("/v1/translate", json={"text": DESCRIPTION, "language": "en"}, headers=AUTH)
        health = (await client.get("/healthz")).json()
    assert refused.status_code == 422 and refused.json()["detail"].endswith("available: en")
    assert unchanged.json()["text"] == DESCRIPTION
    assert not any(name.startswith("translator") for name in health["models"])


async def test_the_service_reports_its_translator(api: httpx.AsyncClient) -> None:
    models = (await api.get("/healthz")).json()["models"]
    assert models["translator_ru"].startswith("marian:")


# --- the bot's client against the real service process ---


async def test_the_bot_gets_russian_from_the_running_service(inference_url: str) -> None:
    client = InferenceClient(inference_url, SERVICE_TOKEN, look_timeout=60, analyze_timeout=60)
    try:
        russian = await client.translate(DESCRIPTION, "ru")
        english = await client.translate(DESCRIPTION, "en")
        with pytest.raises(InferenceUnavailable, match="HTTP 422"):
            await client.translate(DESCRIPTION, "de")
    finally:
        await client.close()
    assert russian.strip() and russian != DESCRIPTION
    assert english == DESCRIPTION


# --- the translator ---


def test_sentences_split_at_their_ends_and_keep_their_punctuation() -> None:
    assert split_sentences('It glows. "Is it dusk?" Yes… (Or dawn.) Then 3.5 m of sky!') == [
        "It glows.",
        '"Is it dusk?"',
        "Yes…",
        "(Or dawn.)",
        "Then 3.5 m of sky!",
    ]


def test_lines_and_empty_lines_survive_translation(translator: MarianTranslator) -> None:
    [translated] = translator.translate([DESCRIPTION])
    lines = translated.split("\n")
    assert len(lines) == 3
    assert lines[0] and lines[1] == "" and lines[2]


def test_a_batch_of_texts_comes_back_in_order_each_its_own(translator: MarianTranslator) -> None:
    a, b = "The painting shows a quiet river at dusk.", "This still life captures a vase of red flowers on a table."
    translated = translator.translate([a, b, a, ""])
    assert translated[0] == translated[2] != translated[1]
    assert translated[0] and translated[1] and translated[3] == ""
    assert translator.translate([]) == []


def test_many_sentences_go_through_in_several_batches(tiny_marian_path: Path) -> None:
    small_batches = MarianTranslator(tiny_marian_path, "ru", num_beams=1, batch_size=2)
    sentences = [f"The painting number {n} shows a quiet river." for n in range(5)]
    translated = small_batches.translate_sentences(sentences)
    assert len(translated) == 5 and all(translated)


def test_a_runaway_input_is_cut_and_its_output_bounded(tiny_marian_path: Path) -> None:
    run_on = "and the river " * 400  # one endless "sentence"
    capped = MarianTranslator(tiny_marian_path, "ru", num_beams=1, max_input_tokens=16, length_ratio=1.0)
    roomy = MarianTranslator(tiny_marian_path, "ru", num_beams=1, max_input_tokens=64, length_ratio=2.0)
    [short] = capped.translate([run_on])
    [longer] = roomy.translate([run_on])
    assert short and len(short) < len(longer)


# --- the setting ---


def test_translation_models_are_read_as_json_and_english_needs_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INFERENCE_TRANSLATION_MODELS", '{"RU": "/models/opus-mt-en-ru"}')
    assert ModelSettings().translation_models == {"ru": "/models/opus-mt-en-ru"}
    monkeypatch.setenv("INFERENCE_TRANSLATION_MODELS", "{}")
    assert ModelSettings().translation_models == {}
    monkeypatch.setenv("INFERENCE_TRANSLATION_MODELS", '{"en": "/models/x"}')
    with pytest.raises(ValueError, match="other than 'en'"):
        ModelSettings()


def test_russian_is_translated_by_opus_mt_unless_configured_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INFERENCE_TRANSLATION_MODELS", raising=False)
    assert ModelSettings().translation_models == {"ru": "Helsinki-NLP/opus-mt-en-ru"}
