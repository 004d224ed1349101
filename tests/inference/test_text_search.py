"""Search by words: the tiny multilingual CLIP (the real XLM-RoBERTa text tower layout and tokenizer class), the
gallery's description index, the two text recommenders and `POST /v1/search/text`, end to end in one process."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import numpy as np
import pytest

from inference.embedders import ClipEmbedder, local_hf_source
from inference.gallery_build import build_gallery
from inference.gallery_store import DESCRIPTION_CLIP_INDEX, Gallery
from inference.models import Models
from inference.relevance import DESCRIPTION_CLIP
from inference.settings import InferenceSettings
from inference.text_search_routes import normalise_query
from tests.factories import write_gallery_folder
from tests.inference.conftest import AUTH, serving
from tests.model_factories import TinyClip

RUSSIAN = "рыцарь на белом коне"
ENGLISH = "stormy sea at night"
EMOJI = "🌊🌙⛵"
TEXT_RECOMMENDERS = {"words_look", "words_meaning"}


@pytest.fixture(scope="module")
def words_gallery(multilingual_models: Models, tmp_path_factory: pytest.TempPathFactory) -> Path:
    images, metadata = write_gallery_folder(tmp_path_factory.mktemp("words-src"), 10)
    out = tmp_path_factory.mktemp("words") / "gallery"
    build_gallery(images, out, multilingual_models, metadata, progress=False, identify_calibration=3)
    return out


@pytest.fixture(scope="module")
async def words_api(
    make_settings: Callable[..., InferenceSettings], multilingual_models: Models, words_gallery: Path
) -> AsyncIterator[httpx.AsyncClient]:
    async with serving(make_settings(gallery_dir=words_gallery, top_k=4), multilingual_models) as client:
        yield client


async def search(api: httpx.AsyncClient, query: str, **extra: object) -> httpx.Response:
    return await api.post("/v1/search/text", json={"query": query, "k": 4, **extra}, headers=AUTH)


# --- the model --------------------------------------------------------------------------------------------------


def test_the_tiny_multilingual_clip_has_the_real_tokenizer_class_and_special_tokens(
    multilingual_models: Models,
) -> None:
    from transformers import XLMRobertaTokenizer

    clip = multilingual_models.clip
    assert isinstance(clip, ClipEmbedder)
    tokenizer = clip._tokenizer.tokenizer
    assert isinstance(tokenizer, XLMRobertaTokenizer) and tokenizer.is_fast
    assert (tokenizer.bos_token_id, tokenizer.pad_token_id, tokenizer.eos_token_id) == (0, 1, 2)
    ids = clip._tokenizer([RUSSIAN, ENGLISH, EMOJI])
    assert ids.shape == (3, clip.context_length)
    for row in ids.tolist():
        words = [i for i in row if i not in (0, 1, 2)]
        assert words and tokenizer.unk_token_id not in words  # Cyrillic, Latin and emoji are real pieces


def test_cyrillic_latin_emoji_long_and_empty_texts_all_embed_to_unit_vectors(multilingual_models: Models) -> None:
    texts = [RUSSIAN, ENGLISH, EMOJI, "word " * 1000, ""]

    vectors = multilingual_models.clip.embed_texts(texts)

    assert vectors.shape == (5, multilingual_models.clip.dim)
    assert np.isfinite(vectors).all()
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert float(vectors[0] @ vectors[1]) < 0.999  # different words, different vectors


def test_a_long_text_is_cut_to_the_context_not_refused(multilingual_models: Models) -> None:
    long = " ".join(["море"] * 200 + ["закат"] * 200)

    start, whole, longer = multilingual_models.clip.embed_texts(
        [" ".join(["море"] * 200), long, long + " " + "🌊" * 4000]
    )

    # the tower reads only its first 77 tokens: what comes after them changes nothing
    np.testing.assert_allclose(whole, longer, atol=1e-6)
    np.testing.assert_allclose(start, whole, atol=1e-6)


def test_a_hub_id_that_is_not_in_the_local_cache_is_a_clear_error_not_a_download(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))

    with pytest.raises(FileNotFoundError, match="INFERENCE_CLIP_TOKENIZER"):
        local_hf_source("artmatch-nobody/no-such-tokenizer")


def test_the_tokenizer_setting_overrides_the_architecture_configs_hub_names(tiny_xlmr_clip: TinyClip) -> None:
    # The tiny config names the real hub id "xlm-roberta-base", which is not here: without the setting it must
    # fail to load, naming the setting; with it, it loads from the local directory.
    bare = ClipEmbedder(tiny_xlmr_clip.arch, str(tiny_xlmr_clip.weights), "cpu", tiny_xlmr_clip.config_json)
    pointed = ClipEmbedder(
        tiny_xlmr_clip.arch,
        str(tiny_xlmr_clip.weights),
        "cpu",
        tiny_xlmr_clip.config_json,
        tokenizer=str(tiny_xlmr_clip.tokenizer),
    )

    if local_hf_source_or_none("xlm-roberta-base") is not None:
        pytest.skip("the real xlm-roberta-base is in this machine's Hugging Face cache")
    with pytest.raises(FileNotFoundError, match="INFERENCE_CLIP_TOKENIZER"):
        bare.load()
    assert pointed.embed_texts([RUSSIAN]).shape == (1, pointed.dim)


def local_hf_source_or_none(source: str) -> str | None:
    try:
        return local_hf_source(source)
    except FileNotFoundError:
        return None


# --- the gallery ------------------------------------------------------------------------------------------------


def test_the_gallery_stores_every_description_through_the_clip_text_tower(
    words_gallery: Path, multilingual_models: Models
) -> None:
    gallery = Gallery.load(words_gallery)

    assert (words_gallery / DESCRIPTION_CLIP_INDEX).is_file()
    assert gallery.description_clip_index is not None
    assert gallery.description_clip_index.ntotal == len(gallery)
    expected = multilingual_models.clip.embed_texts([gallery.artworks[3].description])[0]
    stored = gallery.description_clip_index.reconstruct(np.array([3]))[0]
    np.testing.assert_allclose(stored, expected, atol=1e-5)
    floor = (gallery.manifest.relevance or {})[DESCRIPTION_CLIP]
    assert floor.pairs > 0 and -1.0 <= floor.floor <= 1.0


# --- the API ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("query", [RUSSIAN, ENGLISH, EMOJI])
async def test_russian_english_and_emoji_queries_each_get_a_set_per_text_recommender(
    words_api: httpx.AsyncClient, query: str
) -> None:
    response = await search(words_api, query)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["query"] == query
    assert set(body["recommendations"]) == TEXT_RECOMMENDERS
    for hits in body["recommendations"].values():
        assert len(hits) == 4
        scores = [hit["score"] for hit in hits]
        assert scores == sorted(scores, reverse=True)
        assert all(hit["title"].startswith("Composition No.") for hit in hits)
    assert body["timings_ms"]["clip_text"] >= 0 and body["timings_ms"]["total"] > 0


async def test_words_look_scores_are_the_querys_clip_text_vector_against_the_image_vectors(
    words_api: httpx.AsyncClient, words_gallery: Path, multilingual_models: Models
) -> None:
    response = await search(words_api, ENGLISH, recommenders=["words_look"])

    hits = response.json()["recommendations"]["words_look"]
    gallery = Gallery.load(words_gallery)
    query = multilingual_models.clip.embed_texts([ENGLISH])[0]
    everything = gallery.vectors(range(len(gallery))) @ query
    assert [hit["artwork_id"] for hit in hits] == list(np.argsort(-everything)[:4])
    np.testing.assert_allclose([hit["score"] for hit in hits], np.sort(everything)[::-1][:4], atol=1e-4)


async def test_words_meaning_finds_the_work_whose_description_the_query_repeats(
    words_api: httpx.AsyncClient, words_gallery: Path
) -> None:
    gallery = Gallery.load(words_gallery)
    wanted = gallery.artworks[7]

    response = await search(words_api, wanted.description, recommenders=["words_meaning"])

    top = response.json()["recommendations"]["words_meaning"][0]
    assert normalise_query(top["description"]) == normalise_query(wanted.description)
    assert top["score"] == pytest.approx(1.0, abs=1e-3)


async def test_a_5000_character_query_is_answered_from_its_first_tokens(words_api: httpx.AsyncClient) -> None:
    long = ("Полотно показывает бурное море с тёмными тучами. " * 120)[:5000]

    first = await search(words_api, long)
    with_more_tail = await search(words_api, long + " and then some more words" * 50)

    assert first.status_code == 200, first.text
    assert len(first.json()["query"]) == len(long.strip())
    assert first.json()["recommendations"] == with_more_tail.json()["recommendations"]


@pytest.mark.parametrize("query", ["", "   ", "\u200b\n\t\u200e"])
async def test_an_empty_query_is_a_friendly_422(words_api: httpx.AsyncClient, query: str) -> None:
    response = await search(words_api, query)

    assert response.status_code == 422
    assert response.json()["error"] == "empty_query"
    assert "send a few words" in response.json()["detail"]


@pytest.mark.parametrize(
    ("names", "says"),
    [(["nobody"], "unknown recommender 'nobody'"), (["by_look"], "by_look answers a photo, not words")],
)
async def test_a_recommender_that_does_not_answer_words_is_a_422(
    words_api: httpx.AsyncClient, names: list[str], says: str
) -> None:
    response = await search(words_api, ENGLISH, recommenders=names)

    assert response.status_code == 422
    assert response.json()["error"] == "unknown_recommender"
    assert says in response.json()["detail"]


async def test_one_named_recommender_gets_one_set(words_api: httpx.AsyncClient) -> None:
    response = await search(words_api, RUSSIAN, recommenders=["words_meaning", "words_meaning"])

    assert list(response.json()["recommendations"]) == ["words_meaning"]


async def test_the_catalogue_marks_the_text_recommenders_and_photos_cannot_use_them(
    words_api: httpx.AsyncClient,
) -> None:
    catalogue = (await words_api.get("/v1/recommenders", headers=AUTH)).json()["recommenders"]
    text = {entry["name"] for entry in catalogue if entry["text"]}
    assert text == TEXT_RECOMMENDERS
    assert not any(entry["fast"] for entry in catalogue if entry["text"])

    from tests.factories import image_bytes, textured_artwork

    photo = image_bytes(textured_artwork(1), "JPEG")
    response = await words_api.post(
        "/v1/analyze",
        files={"image": ("photo.jpg", photo, "image/jpeg")},
        data={"recommenders": "by_look,words_look"},
        headers=AUTH,
    )
    assert response.status_code == 422
    assert "words_look answers words" in response.json()["detail"]
