"""A gallery from a WikiArt-style tree with copies in it: the duplicates report, keep-one, adding works without a
rebuild, removing works (searches, identification and the running service leave them out) and crash safety."""

from __future__ import annotations

import csv
import io
import os
import shutil
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from inference import gallery as gallery_cli
from inference import gallery_files, tagging
from inference.duplicates import DUPLICATES_CSV, DedupeOptions, near_groups
from inference.gallery_build import BuildReport, build_gallery
from inference.gallery_edit import add_to_gallery, remove_from_gallery
from inference.gallery_store import IDENTIFY_DIR, Gallery
from inference.identify import Identifier
from inference.ingest import from_folder_tree
from inference.models import Models
from inference.tagging import TAG_LABELS, TAG_LABELS_KEY, Tagger, label_digest, load_label_vectors
from tests.factories import image_bytes, textured_artwork
from tests.service_process import ServiceProcess

# Tiny random CLIP: unrelated synthetic works score 0.92-0.98, resized or re-encoded copies 1.0, a 4 %-per-side crop
# 0.994; their pHashes differ by 0, 8 and >= 24 bits. So 0.99 is this model's threshold; the hash works as is.
TINY = DedupeOptions(threshold=0.99, hash_distance=10)
QUICK: dict[str, Any] = {"progress": False, "identify_calibration": 3, "batch_size": 4}
TOKEN = "edit-token"

ORIGINALS = {
    "Cubism/painter-one_work-zero-1910.jpg": 0,
    "Cubism/painter-two_work-one-1911.jpg": 1,
    "Post_Impressionism/painter-three_work-two-1889.jpg": 2,
    "Post_Impressionism/painter-one_work-three.jpg": 3,
}
EXACT = "Post_Impressionism/zz-copy_work-zero-1910.jpg"
SMALLER = "Realism/painter-four_work-zero-smaller.jpg"
CROPPED = "Realism/painter-four_work-one-cropped.jpg"


def _reencoded_smaller(image: Image.Image) -> Image.Image:
    small = image.resize((image.width * 2 // 3, image.height * 2 // 3), Image.Resampling.LANCZOS)
    return Image.open(io.BytesIO(image_bytes(small, quality=60))).convert("RGB")


def _cropped(image: Image.Image) -> Image.Image:
    w, h = image.size
    return image.crop((w // 25, h // 25, w - w // 25, h - h // 25))


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("wikiart")
    for relative, seed in ORIGINALS.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        textured_artwork(seed).save(root / relative, quality=92)
    (root / "Realism").mkdir()
    shutil.copyfile(root / "Cubism/painter-one_work-zero-1910.jpg", root / EXACT)
    _reencoded_smaller(textured_artwork(0)).save(root / SMALLER, quality=70)
    _cropped(textured_artwork(1)).save(root / CROPPED, quality=92)
    return root


@pytest.fixture(scope="module")
def built(tree: Path, tiny_models: Models, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, BuildReport]:
    out = tmp_path_factory.mktemp("edit") / "gallery"
    report = build_gallery(None, out, tiny_models, sources=from_folder_tree(tree), dedupe=TINY, **QUICK)
    return out, report


def _rows(gallery_dir: Path) -> list[dict[str, str]]:
    with (gallery_dir / DUPLICATES_CSV).open(newline="") as source:
        return list(csv.DictReader(source))


def test_duplicates_csv_lists_the_exact_and_the_near_copies(built: tuple[Path, BuildReport]) -> None:
    out, report = built
    gallery = Gallery.load(out)

    assert report.count == 6 and len(gallery) == 6  # the exact copy is left out, near copies stay (report only)
    assert report.clusters == 2 and "duplicate clusters (exact and near): 2" in report.summary()
    clusters: dict[str, list[dict[str, str]]] = {}
    for row in _rows(out):
        clusters.setdefault(row["cluster"], []).append(row)
    by_first = {rows[0]["file"]: rows for rows in clusters.values()}
    zero = by_first["Cubism/painter-one_work-zero-1910.jpg"]
    assert {(r["file"], r["kind"]) for r in zero[1:]} == {(SMALLER, "near"), (EXACT, "exact")}
    assert [r["kept"] for r in zero] == ["yes", "yes", "no"] or [r["kept"] for r in zero] == ["yes", "no", "yes"]
    exact = next(r for r in zero if r["file"] == EXACT)
    assert exact["artwork_id"] == "" and float(exact["similarity"]) == 1.0
    near = next(r for r in zero if r["file"] == SMALLER)
    assert gallery.artworks[int(near["artwork_id"])].file == SMALLER and float(near["similarity"]) > 0.99
    one = by_first["Cubism/painter-two_work-one-1911.jpg"]
    assert [(r["file"], r["kind"]) for r in one[1:]] == [(CROPPED, "near")]
    assert int(one[1]["hash_distance"]) <= 10
    # Metadata from the folder tree reached the works.
    first = gallery.artworks[0]
    assert (first.style, first.artist, first.title, first.year) == ("Cubism", "Painter One", "Work zero", "1910")


def test_keep_one_leaves_the_copies_out(tree: Path, tiny_models: Models, tmp_path: Path) -> None:
    out = tmp_path / "kept"
    options = DedupeOptions(threshold=TINY.threshold, hash_distance=TINY.hash_distance, keep_one=True)

    report = build_gallery(None, out, tiny_models, sources=from_folder_tree(tree), dedupe=options, **QUICK)

    gallery = Gallery.load(out)
    assert report.count == 4 and report.near_dropped == 2
    assert sorted(a.file for a in gallery.artworks) == sorted(ORIGINALS)  # the larger originals are the keepers
    dropped = {r["file"] for r in _rows(out) if r["kept"] == "no"}
    assert dropped == {SMALLER, CROPPED, EXACT}


def test_either_signal_makes_a_pair_near() -> None:
    vectors = np.eye(4, dtype=np.float32)
    vectors[1] = [0.999, 0.045, 0, 0]  # CLIP-close to 0
    vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    hashes = {0: 0, 1: 1 << 63, 2: 0xFFFF_FFFF_FFFF_FFFF, 3: 0xFFFF_FFFF_FFFF_FFF0}  # 3 is hash-close to 2

    def search(queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        cos = queries @ vectors.T
        order = np.argsort(-cos, axis=1)[:, :k]
        return np.take_along_axis(cos, order, 1), order

    def rows(positions: Any) -> np.ndarray:
        return vectors[list(positions)]

    groups = near_groups([0, 1, 2, 3], rows, search, hashes.get, DedupeOptions(threshold=0.99, hash_distance=4))
    assert groups == [[0, 1], [2, 3]]
    no_hash = near_groups([0, 1, 2, 3], rows, search, hashes.get, DedupeOptions(threshold=0.99, hash_distance=-1))
    assert no_hash == [[0, 1]]


@pytest.fixture(scope="module")
def added(
    tree: Path, built: tuple[Path, BuildReport], tiny_models: Models, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, BuildReport, list[dict[str, object]]]:
    """The built gallery copied, then two new works (and an exact copy of an old one) added to it."""
    source, _ = built
    out = tmp_path_factory.mktemp("added") / "gallery"
    shutil.copytree(source, out)
    before = [a.__dict__.copy() for a in Gallery.load(out).artworks]
    new = tmp_path_factory.mktemp("new-works")
    (new / "Fauvism").mkdir()
    textured_artwork(20).save(new / "Fauvism/new-painter_harbour-1905.jpg", quality=92)
    textured_artwork(21).save(new / "Fauvism/new-painter_market-1906.jpg", quality=92)
    shutil.copyfile(tree / "Post_Impressionism/painter-three_work-two-1889.jpg", new / "Fauvism/old-copy.jpg")
    report = add_to_gallery(out, from_folder_tree(new), tiny_models, dedupe=TINY, progress=False)
    return out, report, before


def test_added_works_are_found_and_old_ids_stay(
    added: tuple[Path, BuildReport, list[dict[str, object]]], built: tuple[Path, BuildReport], tiny_models: Models
) -> None:
    out, report, before = added
    gallery = Gallery.load(out, expected=tiny_models.identity())

    assert report.count == 2 and len(gallery) == 8 and gallery.manifest.count == 8
    assert [a.__dict__ for a in gallery.artworks[:6]] == before  # ids, files, metadata untouched
    harbour = gallery.artworks[6]
    assert harbour.file == "Fauvism/new-painter_harbour-1905.jpg" and harbour.artist == "New Painter"
    assert harbour.style == "Fauvism" and harbour.year == "1905" and harbour.tags
    assert gallery.palettes.shape[0] == 8 and np.abs(gallery.palettes[6]).sum() > 0
    assert (out / "images" / "7.jpg").is_file()
    # the add tagged with the build's label vectors and left their file as it was
    assert (out / TAG_LABELS).read_bytes() == (built[0] / TAG_LABELS).read_bytes()
    assert (out / TAG_LABELS_KEY).read_bytes() == (built[0] / TAG_LABELS_KEY).read_bytes()
    assert np.allclose(np.load(out / TAG_LABELS), Tagger.build(tiny_models.clip).label_vectors, atol=1e-5)
    assert not (out / ".add-parts").exists() and not (out / gallery_files.PENDING).exists()

    vector = tiny_models.clip.embed_images([textured_artwork(21)])
    assert gallery.search_image(vector, 3)[0][0].artwork.id == 7

    identifier = Identifier.load(out / IDENTIFY_DIR)
    assert identifier.works == 8
    match = identifier.identify(np.asarray(Image.open(out / "images" / "6.jpg").convert("RGB")))
    assert match is not None and match.index == 6
    old = identifier.identify(np.asarray(Image.open(out / "images" / "1.jpg").convert("RGB")))
    assert old is not None and old.index == 1  # the fixed vocabulary still names the old works


def _count_label_builds(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Spy on `Tagger.build`: one entry (the number of labels) per time the text tower embeds the label prompts."""
    calls: list[int] = []
    real = Tagger.build.__func__  # type: ignore[attr-defined]

    def build(cls: type[Tagger], clip: Any, labels: Any = None) -> Tagger:
        tagger = real(cls, clip, labels)
        calls.append(len(tagger.labels))
        return tagger

    monkeypatch.setattr(Tagger, "build", classmethod(build))
    return calls


def test_an_add_reuses_the_label_vectors_and_rewrites_them_when_the_labels_changed(
    built: tuple[Path, BuildReport], tiny_models: Models, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "gallery"
    shutil.copytree(built[0], out)
    new = tmp_path / "new"
    new.mkdir()
    textured_artwork(40).save(new / "first.jpg", quality=92)
    builds = _count_label_builds(monkeypatch)

    assert add_to_gallery(out, from_folder_tree(new), tiny_models, progress=False).count == 1
    assert builds == []  # the build's file matched: no label prompt embedded

    changed = tagging.LABELS[0].__class__(**{**tagging.LABELS[0].__dict__, "phrases": ("glowing stained glass",)})
    monkeypatch.setattr(tagging, "LABELS", (changed, *tagging.LABELS[1:]))
    textured_artwork(41).save(new / "second.jpg", quality=92)
    assert add_to_gallery(out, from_folder_tree(new), tiny_models, progress=False).count == 1

    assert builds == [len(tagging.LABELS)]  # stale: embedded once, then written with the edit
    digest = label_digest(tiny_models.identity())
    stored = load_label_vectors(out, digest)
    assert stored is not None and not (out / gallery_files.PENDING).exists()
    assert np.allclose(stored, Tagger.build(tiny_models.clip).label_vectors, atol=1e-5)
    assert not np.allclose(stored[0], np.load(built[0] / TAG_LABELS)[0], atol=1e-3)
    assert (
        Gallery.load(out).artworks[-1].tags
        == Tagger(tagging.LABELS, stored).tag_dicts(Gallery.load(out).vectors([len(Gallery.load(out)) - 1]))[0]
    )


def test_an_exact_copy_of_a_gallery_work_is_not_added(
    added: tuple[Path, BuildReport, list[dict[str, object]]],
) -> None:
    _, report, _ = added
    assert [d.file for d in report.duplicates] == ["Fauvism/old-copy.jpg"]
    assert report.duplicates[0].same_as == "artwork 3 (Post_Impressionism/painter-three_work-two-1889.jpg)"


def test_removed_works_leave_search_identification_and_the_service(
    added: tuple[Path, BuildReport, list[dict[str, object]]],
    tiny_models: Models,
    tiny_model_env: dict[str, str],
    tmp_path: Path,
) -> None:
    source, _, _ = added
    out = tmp_path / "gallery"
    shutil.copytree(source, out)
    photo = np.asarray(Image.open(out / "images" / "7.jpg").convert("RGB"))
    assert Identifier.load(out / IDENTIFY_DIR).identify(photo) is not None

    code = gallery_cli.main(["remove", "--gallery", str(out), "--files", "new-painter_market-1906.jpg", "--ids", "1"])

    assert code == 0
    gallery = Gallery.load(out)
    assert gallery.removed == {1, 7} and len(gallery) == 8  # tombstones: ids stay
    vector = tiny_models.clip.embed_images([textured_artwork(21)])
    found = [hit.artwork.id for hit in gallery.search_image(vector, 8)[0]]
    assert sorted(found) == [0, 2, 3, 4, 5, 6]
    match = Identifier.load(out / IDENTIFY_DIR).identify(photo)
    assert match is None or match.index not in {1, 7}

    service = ServiceProcess(out, {**tiny_model_env, "INFERENCE_TOKEN": TOKEN}, tmp_path / "service.log")
    service.start()
    try:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        with httpx.Client(base_url=service.url, headers=headers, timeout=60) as client:
            data = (out / "images" / "7.jpg").read_bytes()
            look = client.post("/v1/look", params={"k": 8}, files={"image": ("p.jpg", data, "image/jpeg")})
            assert look.status_code == 200, look.text
            body = look.json()
            assert body["match"] is None or body["match"]["artwork_id"] not in {1, 7}
            assert {h["artwork_id"] for h in body["recommendations"]["by_look"]}.isdisjoint({1, 7})
            onboarding = client.post("/v1/onboarding", json={"k": 8, "seed": 1})
            assert onboarding.status_code == 200, onboarding.text
            shown = {a["artwork_id"] for a in onboarding.json()["artworks"]}
            assert shown and shown.isdisjoint({1, 7})
    finally:
        service.stop()


def test_a_crash_before_the_commit_leaves_the_old_gallery(built: tuple[Path, BuildReport], tmp_path: Path) -> None:
    out = tmp_path / "gallery"
    shutil.copytree(built[0], out)
    with pytest.raises(RuntimeError), gallery_files.edit(out) as pending:
        (pending / "manifest.json").write_text("{broken")
        raise RuntimeError("crash while writing")
    assert len(Gallery.load(out)) == 6 and not (out / gallery_files.PENDING).exists()


def test_a_crash_after_the_commit_is_finished_by_the_next_load(
    built: tuple[Path, BuildReport], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "gallery"
    shutil.copytree(built[0], out)
    real_replace = os.replace
    moved: list[str] = []

    def crash_after_two(src: Any, dst: Any) -> None:
        if str(src).endswith(gallery_files.COMMIT + ".tmp") or len(moved) < 2:
            moved.append(str(dst))
            real_replace(src, dst)
            return
        raise OSError("power cut")

    monkeypatch.setattr(gallery_files.os, "replace", crash_after_two)
    with pytest.raises(OSError, match="power cut"):
        remove_from_gallery(out, ids=[3])
    monkeypatch.setattr(gallery_files.os, "replace", real_replace)
    assert (out / gallery_files.PENDING / gallery_files.COMMIT).is_file()

    gallery = Gallery.load(out)  # rolls the committed edit forward

    assert gallery.removed == {3} and len(gallery) == 6
    assert not (out / gallery_files.PENDING).exists()


def test_a_remove_while_an_add_runs_is_kept(
    built: tuple[Path, BuildReport], tiny_models: Models, tmp_path: Path
) -> None:
    out = tmp_path / "gallery"
    shutil.copytree(built[0], out)
    new = tmp_path / "new"
    new.mkdir()
    textured_artwork(30).save(new / "late-arrival.jpg", quality=92)

    def remove_meanwhile(done: int) -> None:
        remove_from_gallery(out, ids=[2])

    report = add_to_gallery(out, from_folder_tree(new), tiny_models, progress=False, on_batch=remove_meanwhile)

    gallery = Gallery.load(out)
    assert report.count == 1 and len(gallery) == 7 and gallery.removed == {2}
    identifier = Identifier.load(out / IDENTIFY_DIR)
    assert identifier.identify(np.asarray(Image.open(out / "images" / "2.jpg").convert("RGB"))) is None
    assert identifier.identify(np.asarray(Image.open(out / "images" / "6.jpg").convert("RGB"))) is not None


def test_the_cli_adds_the_rows_of_a_csv(
    built: tuple[Path, BuildReport],
    tiny_model_settings: dict[str, Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "gallery"
    shutil.copytree(built[0], out)
    (tmp_path / "scans").mkdir()
    textured_artwork(40).save(tmp_path / "scans" / "s1.jpg", quality=92)
    table = tmp_path / "new.csv"
    table.write_text("path,title,artist,year\nscans/s1.jpg,Night Harbour,Ann Example,1920\nscans/gone.jpg,Lost,,\n")
    flags = [
        f"--{name.replace('_', '-')}={tiny_model_settings[name]}"
        for name in ("clip_arch", "clip_weights", "clip_config", "text_model", "llava_path", "quantization")
    ]
    if "clip_tokenizer" in tiny_model_settings:
        flags.append(f"--clip-tokenizer={tiny_model_settings['clip_tokenizer']}")

    code = gallery_cli.main(
        ["add", "--gallery", str(out), "--source", str(table), "--no-progress", "--device", "cpu", *flags]
    )

    assert code == 0
    printed = capsys.readouterr().out
    assert "scans/gone.jpg: missing file" in printed
    added = Gallery.load(out).artworks[-1]
    assert (added.id, added.file, added.title, added.artist, added.year) == (
        6,
        "scans/s1.jpg",
        "Night Harbour",
        "Ann Example",
        "1920",
    )


def test_an_ivf_gallery_keeps_its_trained_index_when_works_are_added(
    tree: Path, tiny_models: Models, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INFERENCE_INDEX_KIND", "ivf")  # what a gallery past INFERENCE_EXACT_SEARCH_MAX gets
    out = tmp_path / "ivf"
    originals = [item for item in from_folder_tree(tree) if item.name in ORIGINALS]
    build_gallery(None, out, tiny_models, sources=originals, **QUICK)
    spec = Gallery.load(out).manifest.indexes or {}
    assert spec["image"].kind == "ivf"
    new = tmp_path / "new"
    new.mkdir()
    textured_artwork(50).save(new / "newcomer.jpg", quality=92)

    add_to_gallery(out, from_folder_tree(new), tiny_models, progress=False)

    gallery = Gallery.load(out)
    assert gallery.manifest.indexes is not None and gallery.manifest.indexes["image"] == spec["image"]
    assert gallery.image_index.ntotal == 5
    vector = tiny_models.clip.embed_images([textured_artwork(50)])
    assert gallery.search_image(vector, 1)[0][0].artwork.id == 4


def test_keep_one_at_add_keeps_the_gallery_work_and_reports_the_copy(
    built: tuple[Path, BuildReport], tiny_models: Models, tmp_path: Path
) -> None:
    out = tmp_path / "gallery"
    shutil.copytree(built[0], out)
    clusters_before = {row["cluster"] for row in _rows(out)}
    new = tmp_path / "new"
    new.mkdir()
    _reencoded_smaller(textured_artwork(2)).save(new / "scan-of-work-two.jpg", quality=70)  # artwork 3, smaller
    options = DedupeOptions(threshold=TINY.threshold, hash_distance=TINY.hash_distance, keep_one=True)

    report = add_to_gallery(out, from_folder_tree(new), tiny_models, progress=False, dedupe=options)

    assert report.count == 0 and report.near_dropped == 1 and len(Gallery.load(out)) == 6
    new_rows = [row for row in _rows(out) if row["cluster"] not in clusters_before]
    assert [(r["file"], r["artwork_id"], r["kept"]) for r in new_rows] == [
        ("Post_Impressionism/painter-three_work-two-1889.jpg", "3", "yes"),
        ("scan-of-work-two.jpg", "", "no"),
    ]
