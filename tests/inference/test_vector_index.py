"""Index types that follow the gallery's size: choice, recall against exact search, specs stored and re-applied,
the gallery and /foryou served through them, and Qdrant behind the same interface."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import faiss
import numpy as np
import pytest

from feedback.taste import FeedbackEvent, TasteProfile
from inference import suggestions
from inference.gallery_build import build_gallery
from inference.gallery_store import (
    IMAGE_INDEX,
    Artwork,
    Gallery,
    Manifest,
    ModelIdentity,
    build_index,
    normalise_rows,
)
from inference.models import Models
from inference.qdrant_index import QdrantIndex
from inference.recommenders import Query, get
from inference.vector_index import (
    FaissIndex,
    IndexSettings,
    IndexSpec,
    VectorIndex,
    build_vector_index,
    choose_spec,
    read_vector_index,
    recall_at,
)
from tests.factories import write_gallery_folder

DIM = 64


def clustered(n: int, rng: np.random.Generator, clusters: int = 100) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit vectors in clusters of varied spread around a common direction (like CLIP embeddings), their labels,
    and the centres; i.i.d. noise would make every neighbour equidistant and prove nothing."""
    common = rng.standard_normal(DIM).astype(np.float32)
    centres = normalise_rows(
        rng.standard_normal((clusters, DIM)).astype(np.float32) + 0.5 * common / np.linalg.norm(common)
    )
    spread = rng.uniform(0.3, 0.9, clusters).astype(np.float32)
    labels = rng.integers(0, clusters, n)
    noise = rng.standard_normal((n, DIM)).astype(np.float32) / np.sqrt(DIM)
    return normalise_rows(centres[labels] + spread[labels, None] * noise), labels, centres


def held_out(centres: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """New members of the gallery's clusters: works the gallery does not hold."""
    labels = rng.integers(0, len(centres), count)
    return normalise_rows(centres[labels] + 0.6 * rng.standard_normal((count, DIM)).astype(np.float32) / np.sqrt(DIM))


@pytest.mark.parametrize(
    ("n", "kind", "nlist"),
    [(1_000, "flat", None), (50_000, "flat", None), (50_001, "ivf", 512), (1_000_000, "ivf", 2048)],
)
def test_small_galleries_are_searched_exactly_and_large_ones_through_an_inverted_file(
    n: int, kind: str, nlist: int | None
) -> None:
    spec = choose_spec(n, 512, IndexSettings(exact_search_max=50_000))
    assert (spec.kind, spec.nlist) == (kind, nlist)


def test_an_index_that_would_not_fit_the_memory_budget_stores_8_bit_codes_and_hnsw_is_only_chosen_on_request() -> None:
    assert choose_spec(10_000_000, 512, IndexSettings(index_memory_budget_gb=8)).kind == "ivf_sq8"
    assert choose_spec(10_000_000, 512, IndexSettings(index_memory_budget_gb=64)).kind == "ivf"
    assert choose_spec(100, 512, IndexSettings(index_kind="hnsw")).kind == "hnsw"
    with pytest.raises(ValueError, match="needs nlist"):
        IndexSpec("ivf")


@pytest.fixture(scope="module")
def clustered_gallery() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return clustered(20_000, np.random.default_rng(7))


@pytest.fixture(scope="module")
def ivf(clustered_gallery: tuple[np.ndarray, np.ndarray, np.ndarray]) -> FaissIndex:
    rows, _, _ = clustered_gallery
    return build_vector_index(rows, settings=IndexSettings(exact_search_max=1_000, index_target_recall=0.97))


def test_an_ivf_index_on_clustered_vectors_finds_the_exact_top_10_for_new_works(
    clustered_gallery: tuple[np.ndarray, np.ndarray, np.ndarray], ivf: FaissIndex, tmp_path: Path
) -> None:
    rows, _, centres = clustered_gallery
    queries = held_out(centres, 300, np.random.default_rng(1))
    _, truth = faiss.knn(queries, rows, 10, metric=faiss.METRIC_INNER_PRODUCT)
    assert ivf.spec.kind == "ivf" and (ivf.spec.nprobe or 0) < (ivf.spec.nlist or 0)
    assert ivf.spec.recall_at_10 is not None and ivf.spec.recall_at_10 >= 0.97  # measured at build
    assert recall_at(ivf.search(queries, 10)[1], truth) >= 0.95  # and it holds on queries it was not tuned on
    ivf.save(tmp_path / "ivf.faiss")
    one_probe = read_vector_index(tmp_path / "ivf.faiss", IndexSpec("ivf", nlist=ivf.spec.nlist, nprobe=1))
    assert recall_at(one_probe.search(queries, 10)[1], truth) < 0.9  # the tuning is what makes the difference


def test_a_deep_search_probes_enough_lists_to_return_every_row_asked_for(ivf: FaissIndex) -> None:
    """/foryou asks for hundreds of works per interest: the top-10 nprobe alone would return fewer."""
    _, ids = ivf.search(ivf.reconstruct([0, 1]), 2_000)
    assert ids.shape == (2, 2_000) and (ids >= 0).all()


def test_rows_added_to_an_ivf_index_get_the_next_ids_and_read_back_exactly(
    clustered_gallery: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    rows, _, _ = clustered_gallery
    index = build_vector_index(rows[:5_000], IndexSpec("ivf", nlist=64, nprobe=8), tune=False)
    index.add(rows[5_000:5_010])
    assert index.ntotal == 5_010
    np.testing.assert_array_equal(index.reconstruct([5_003, 2]), rows[[5_003, 2]])
    assert index.search(rows[5_004], 1)[1][0, 0] == 5_004


def test_the_index_spec_is_stored_in_the_manifest_and_its_search_parameters_applied_at_load(
    ivf: FaissIndex, tmp_path: Path
) -> None:
    identity = ModelIdentity("ViT-B-32", None, DIM, "minilm", 384)
    manifest = Manifest(identity, "none", ivf.ntotal, indexes={"image": ivf.spec})
    back = Manifest.from_json(manifest.to_json())
    assert back.indexes == {"image": ivf.spec}
    raw = manifest.to_json().replace('"indexes"', '"older_galleries_had_none"')
    assert Manifest.from_json(raw).indexes is None
    ivf.save(tmp_path / IMAGE_INDEX)
    stored = back.indexes["image"]
    assert read_vector_index(tmp_path / IMAGE_INDEX, stored).spec == stored
    retuned = replace(stored, nprobe=(stored.nprobe or 1) + 5)  # the manifest, not the file, says how to search
    loaded = read_vector_index(tmp_path / IMAGE_INDEX, retuned)
    assert faiss.extract_index_ivf(loaded.index).nprobe == retuned.nprobe


def synthetic_gallery(rows: np.ndarray, index: VectorIndex) -> Gallery:
    identity = ModelIdentity("ViT-B-32", None, rows.shape[1], "minilm", 384)
    artworks = [Artwork(id=i, file=f"{i}.jpg", sha256="") for i in range(len(rows))]
    return Gallery(Path("/nonexistent"), Manifest(identity, "none", len(rows)), artworks, index, index)


def test_gallery_vectors_read_back_the_rows_of_an_ivf_image_index(
    clustered_gallery: tuple[np.ndarray, np.ndarray, np.ndarray], ivf: FaissIndex
) -> None:
    rows, _, _ = clustered_gallery
    gallery = synthetic_gallery(rows, ivf)
    np.testing.assert_array_equal(gallery.vectors([17, 3, 19_999]), rows[[17, 3, 19_999]])
    assert gallery.vectors([]).shape == (0, DIM)


def test_foryou_candidates_through_the_ivf_index_agree_with_the_exact_scan(
    clustered_gallery: tuple[np.ndarray, np.ndarray, np.ndarray], ivf: FaissIndex
) -> None:
    rows, labels, _ = clustered_gallery
    exact = synthetic_gallery(rows, build_index(rows, IndexSpec("flat")))
    approximate = synthetic_gallery(rows, ivf)
    rng = np.random.default_rng(3)
    liked_kinds = rng.choice(np.unique(labels), 3, replace=False)
    likes = [int(i) for kind in liked_kinds for i in rng.choice(np.flatnonzero(labels == kind), 8, replace=False)]
    events = [FeedbackEvent(i, 1.0, 1.0) for i in likes]
    profile = TasteProfile.build(events, exact.vectors, seed=0)
    seen = set(likes)
    want = suggestions.candidates(exact, profile, seen, np.random.default_rng(5))
    got = suggestions.candidates(approximate, profile, seen, np.random.default_rng(5))
    assert len(np.intersect1d(want, got)) >= 0.95 * len(want)
    picks = suggestions.suggest_for(approximate, events, [], 5, exploration=0.0, seed=1).suggestions
    assert [s.artwork_id for s in picks] == [
        s.artwork_id for s in suggestions.suggest_for(exact, events, [], 5, exploration=0.0, seed=1).suggestions
    ]
    assert all(labels[s.artwork_id] in liked_kinds for s in picks)


def test_qdrant_local_mode_returns_the_same_top_hits_as_exact_faiss(
    clustered_gallery: tuple[np.ndarray, np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    rows = clustered_gallery[0][:2_000]
    exact = build_vector_index(rows, IndexSpec("flat"))
    exact.save(tmp_path / IMAGE_INDEX)
    settings = IndexSettings(vector_backend="qdrant")  # local mode in memory (on disk below, with the gallery)
    index = QdrantIndex.from_faiss_file(tmp_path / IMAGE_INDEX, exact.spec, name="image", settings=settings)
    queries = held_out(clustered_gallery[2], 20, np.random.default_rng(2))
    want_scores, want = exact.search(queries, 10)
    got_scores, got = index.search(queries, 10)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_allclose(got_scores, want_scores, atol=1e-5)
    index.add(rows[:3])  # appended rows get the next ids, as in FAISS
    assert index.ntotal == 2_003 and index.search(rows[1], 2)[1][0].tolist() in ([1, 2_001], [2_001, 1])
    np.testing.assert_allclose(index.reconstruct([2_002, 5]), rows[[2, 5]], atol=1e-6)
    index.save(tmp_path / "back.faiss")
    assert read_vector_index(tmp_path / "back.faiss").ntotal == 2_003


def test_a_gallery_built_above_the_threshold_stores_its_ivf_spec_and_serves_by_look_as_exact_search_would(
    tiny_models: Models, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INFERENCE_EXACT_SEARCH_MAX", "4")
    images, metadata = write_gallery_folder(tmp_path / "source", 6)
    out = tmp_path / "built"
    build_gallery(images, out, tiny_models, metadata_csv=metadata, batch_size=8, progress=False, identify_calibration=4)
    gallery = Gallery.load(out)
    assert gallery.manifest.indexes is not None and gallery.manifest.indexes["image"].kind == "ivf"
    assert isinstance(gallery.image_index, FaissIndex) and gallery.image_index.spec.kind == "ivf"
    rows = gallery.vectors(range(len(gallery)))
    by_look = get("by_look")
    for work in (0, len(gallery) // 2, len(gallery) - 1):
        noise = np.random.default_rng(work).standard_normal(rows.shape[1], dtype=np.float32)
        photo = rows[work] + 0.2 * noise / np.sqrt(rows.shape[1])
        exact_top = int(np.argmax(rows @ normalise_rows(photo[None])[0]))
        assert by_look.recommend(Query(image_vector=photo), gallery, 3)[0].artwork.id == exact_top
    # The same gallery served from Qdrant (local mode) behind the same interface.
    monkeypatch.setenv("INFERENCE_VECTOR_BACKEND", "qdrant")
    monkeypatch.setenv("INFERENCE_QDRANT_PATH", str(tmp_path / "qdrant"))
    in_qdrant = Gallery.load(out)
    assert isinstance(in_qdrant.image_index, QdrantIndex)
    assert by_look.recommend(Query(image_vector=rows[1]), in_qdrant, 3)[0].artwork.id == 1
    np.testing.assert_allclose(in_qdrant.vectors([2, 0]), rows[[2, 0]], atol=1e-6)
