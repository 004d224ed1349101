"""`benchmarks.eval_retrieval` on a tiny gallery: the metrics on hand-made rankings, and the command end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks import eval_retrieval
from inference.gallery_build import build_gallery
from inference.gallery_store import Gallery
from inference.models import Models
from tests.factories import write_gallery_folder


@pytest.fixture(scope="module")
def small_gallery(multilingual_models: Models, tmp_path_factory: pytest.TempPathFactory) -> Path:
    images, metadata = write_gallery_folder(tmp_path_factory.mktemp("eval-src"), 9)
    out = tmp_path_factory.mktemp("eval") / "gallery"
    build_gallery(images, out, multilingual_models, metadata, progress=False, identify_calibration=3)
    return out


def test_precision_and_average_precision_on_a_known_ranking() -> None:
    labels = eval_retrieval.label_sets(["Baroque|Dutch Golden Age", "baroque", "Rococo", "Dutch Golden Age", ""])
    # work 0 finds 2 (wrong), 1 (right), 3 (right, shares "dutch golden age"), 4 (unlabelled)
    ranked = np.array([[2, 1, 3, 4]])

    scores = eval_retrieval.label_scores(ranked, np.array([0]), labels, k=2)

    assert scores == {"queries": 1, "precision@2": 0.5, "mAP": round((1 / 2 + 2 / 3) / 2, 4), "chance": 0.5}


def test_a_work_whose_label_nobody_else_has_is_not_a_query() -> None:
    labels = eval_retrieval.label_sets(["Rococo", "Baroque", "Baroque"])

    scores = eval_retrieval.label_scores(np.array([[1, 2]]), np.array([0]), labels, k=1)

    assert scores == {"queries": 0}


def test_fusion_prefers_a_work_two_rankings_agree_on() -> None:
    fused = eval_retrieval.fuse([np.array([[5, 7, 9]]), np.array([[7, 9, 5]]), np.array([[7, 5, 9]])])

    assert fused.tolist() == [[7, 5, 9]]


def test_the_command_prints_the_smoke_banner_and_writes_json(
    small_gallery: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "eval.json"

    assert eval_retrieval.main(["--gallery", str(small_gallery), "--k", "3", "--out", str(out)]) == 0

    printed = capsys.readouterr().out
    assert "SMOKE TEST ONLY: random weights" in printed
    assert "words_meaning" in printed and "Zero-shot tagger" in printed
    result = json.loads(out.read_text())
    assert result["random_weights"] is True and result["works"] == 9 and result["queries"] == 9
    for name in eval_retrieval.RECOMMENDERS:
        style, artist, genre = (result["retrieval"][name][field] for field in ("style", "artist", "genre"))
        # every synthetic work is "Fauvism": whatever the order, all the others are right
        assert style == {"queries": 9, "precision@3": 1.0, "mAP": 1.0, "chance": 1.0}
        assert artist["queries"] == 9 and 0.0 <= artist["precision@3"] <= 1.0  # "Painter i % 4"
        assert genre == {"queries": 0}  # the CSV leaves genre empty
    assert result["tagger"]["style"]["works"] == 9
    assert 0.0 <= result["tagger"]["style"]["accuracy@1"] <= result["tagger"]["style"]["accuracy@3"] <= 1.0


def test_by_look_ranks_the_others_by_their_image_vectors(small_gallery: Path) -> None:
    gallery = Gallery.load(small_gallery)
    spaces = eval_retrieval.read_spaces(gallery)

    ranked = eval_retrieval.rankings(spaces.image, spaces.image, np.array([4]), np.ones(len(gallery), dtype=bool))

    vectors = gallery.vectors(range(len(gallery)))
    scores = vectors @ vectors[4]
    scores[4] = -np.inf
    assert ranked[0].tolist() == list(np.argsort(-scores, kind="stable")[:-1])
