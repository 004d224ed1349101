"""Building a gallery from a messy folder: broken files, duplicates, metadata, interruption and resume."""

from __future__ import annotations

import csv
import json
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from inference import gallery
from inference.gallery_build import PARTS_DIR, BuildReport, build_gallery
from inference.gallery_store import IDENTIFY_DIR, Gallery, GalleryMismatchError
from inference.identify import Identifier
from inference.identify.synthetic import photograph
from inference.images import decode_image
from inference.models import Describer, Models
from tests.factories import SHARED_GALLERY, image_bytes, link_shared_paintings, synthetic_artwork, textured_artwork

GOOD = 9  # 8 JPEGs, 1 PNG (one of them large) in the messy folder
BROKEN = {"broken/truncated.jpg": "damaged", "empty.jpg": "empty file", "notes.jpg": "not an image"}
# No bar, and a handful of calibration photos for identification (the default 200 take minutes).
QUICK: dict[str, Any] = {"progress": False, "identify_calibration": 3}


@pytest.fixture(scope="module")
def messy_folder(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Good artworks plus a truncated JPEG, a zero-byte file, a text file named .jpg and an exact duplicate,
    with a CSV whose `file` column is relative to the CSV (as in the shared gallery) and has extra columns."""
    root = tmp_path_factory.mktemp("messy")
    images = root / "images"
    (images / "broken").mkdir(parents=True)
    names = [f"art_{i:02d}.jpg" for i in range(GOOD - 1)]
    for i, name in enumerate(names):
        synthetic_artwork(i).save(images / name, quality=90)
    synthetic_artwork(40, (1600, 900)).save(images / "wide.png")
    names.append("wide.png")
    shutil.copyfile(images / "art_03.jpg", images / "zz_copy_of_art_03.jpg")
    (images / "broken" / "truncated.jpg").write_bytes(image_bytes(synthetic_artwork(50, (200, 160)))[:700])
    (images / "empty.jpg").write_bytes(b"")
    (images / "notes.jpg").write_text("not a picture at all\n")
    (images / "readme.txt").write_text("ignored: not an image suffix\n")

    metadata = root / "metadata.csv"
    with metadata.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["file", "title", "artist", "year", "style", "genre", "source"])
        for i, name in enumerate(names):
            writer.writerow([f"images/{name}", f"Work {i}", f"Painter {i % 3}", 1900 + i, "Cubism|Futurism", "", "x"])
    return images, metadata


@pytest.fixture(scope="module")
def built(
    messy_folder: tuple[Path, Path], tiny_models: Models, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, BuildReport]:
    images, metadata = messy_folder
    out = tmp_path_factory.mktemp("built") / "gallery"
    report = build_gallery(images, out, tiny_models, metadata_csv=metadata, batch_size=4, **QUICK)
    return out, report


def test_broken_files_are_listed_and_the_duplicate_reported(built: tuple[Path, BuildReport]) -> None:
    _, report = built

    assert report.count == report.processed == GOOD
    assert {s.file for s in report.skipped} == set(BROKEN)
    for skipped in report.skipped:
        assert BROKEN[skipped.file].split()[-1] in skipped.reason.lower()
    assert [(d.file, d.same_as) for d in report.duplicates] == [("zz_copy_of_art_03.jpg", "art_03.jpg")]
    summary = report.summary()
    assert "skipped broken files: 3" in summary and "zz_copy_of_art_03.jpg = art_03.jpg" in summary


def test_the_gallery_loads_with_metadata_descriptions_and_display_copies(
    built: tuple[Path, BuildReport], tiny_models: Models
) -> None:
    out, _ = built

    loaded = Gallery.load(out, expected=tiny_models.identity())

    assert len(loaded) == GOOD
    assert not (out / PARTS_DIR).exists()
    assert [a.file for a in loaded.artworks] == sorted(a.file for a in loaded.artworks)
    wide = next(a for a in loaded.artworks if a.file == "wide.png")
    assert (wide.title, wide.style, wide.year) == (f"Work {GOOD - 1}", "Cubism|Futurism", str(1900 + GOOD - 1))
    assert all(a.description for a in loaded.artworks)
    assert loaded.manifest.describer == tiny_models.describer.name
    for artwork in loaded.artworks:
        with Image.open(loaded.image_path(artwork.id)) as display:
            assert display.format == "JPEG" and max(display.size) <= 1280
    with Image.open(loaded.image_path(wide.id)) as display:
        assert display.size == (1280, 720)


def test_each_artwork_is_found_first_by_its_own_image_and_description(
    built: tuple[Path, BuildReport], messy_folder: tuple[Path, Path], tiny_models: Models
) -> None:
    out, _ = built
    images, _ = messy_folder
    loaded = Gallery.load(out, expected=tiny_models.identity())
    photos = [
        decode_image((images / a.file).read_bytes(), max_pixels=40_000_000, max_side=1280) for a in loaded.artworks
    ]

    by_look = loaded.search_image(tiny_models.clip.embed_images(photos), k=3)
    by_meaning = loaded.search_text(tiny_models.text.embed_texts([a.description for a in loaded.artworks]), k=1)

    assert [hits[0].artwork.id for hits in by_look] == list(range(GOOD))
    assert all(hits[0].score > 0.999 for hits in by_look)
    assert [hits[0].artwork.description for hits in by_meaning] == [a.description for a in loaded.artworks]


def test_a_gallery_from_other_models_is_refused_with_the_difference(
    built: tuple[Path, BuildReport], tiny_models: Models
) -> None:
    out, _ = built
    other = replace(tiny_models.identity(), clip_arch="ViT-L-14", clip_dim=768)

    with pytest.raises(GalleryMismatchError) as refused:
        Gallery.load(out, expected=other)

    message = str(refused.value)
    assert f"clip_arch: gallery has '{tiny_models.clip.name}', service runs 'ViT-L-14'" in message
    assert "clip_dim" in message and "python -m inference.gallery build" in message


class CountingDescriber:
    """Counts the images a build really describes; an optional other name stands for another model."""

    def __init__(self, inner: Describer, name: str | None = None) -> None:
        self.inner, self.name, self.described = inner, name or inner.name, 0

    def load(self) -> None:
        self.inner.load()

    def describe(self, images: list[Image.Image]) -> list[str]:
        self.described += len(images)
        return self.inner.describe(images)


def interrupt_after_first_batch(done: int) -> None:
    raise KeyboardInterrupt


def test_an_interrupted_build_resumes_where_it_stopped(
    messy_folder: tuple[Path, Path], built: tuple[Path, BuildReport], tiny_models: Models, tmp_path: Path
) -> None:
    images, metadata = messy_folder
    out = tmp_path / "gallery"
    with pytest.raises(KeyboardInterrupt):
        build_gallery(images, out, tiny_models, metadata, batch_size=4, on_batch=interrupt_after_first_batch, **QUICK)
    assert not (out / "manifest.json").exists() and list((out / PARTS_DIR).glob("part-*.jsonl"))

    counting = CountingDescriber(tiny_models.describer)
    models = Models(tiny_models.clip, tiny_models.text, counting)
    report = build_gallery(images, out, models, metadata, batch_size=4, **QUICK)

    first_batch = 4  # art_00..art_03, in sorted path order
    assert (report.resumed, report.processed, counting.described) == (
        first_batch,
        GOOD - first_batch,
        GOOD - first_batch,
    )
    assert {s.file for s in report.skipped} == set(BROKEN)
    resumed, clean = Gallery.load(out, tiny_models.identity()), Gallery.load(built[0], tiny_models.identity())
    assert report.count == len(clean) == GOOD
    assert [a.__dict__ for a in resumed.artworks] == [a.__dict__ for a in clean.artworks]
    np.testing.assert_allclose(
        resumed.image_index.reconstruct_n(0, GOOD), clean.image_index.reconstruct_n(0, GOOD), atol=1e-6
    )
    resumed_id, clean_id = Identifier.load(out / IDENTIFY_DIR), Identifier.load(built[0] / IDENTIFY_DIR)
    assert resumed_id.works == clean_id.works == GOOD
    for name in ("keypoint_offsets", "keypoint_xy", "keypoint_words", "work_sizes"):
        np.testing.assert_array_equal(getattr(resumed_id, name), getattr(clean_id, name))


def test_parts_from_other_models_are_discarded_not_mixed_in(
    messy_folder: tuple[Path, Path], tiny_models: Models, tmp_path: Path
) -> None:
    images, _ = messy_folder
    out = tmp_path / "gallery"
    with pytest.raises(KeyboardInterrupt):
        build_gallery(images, out, tiny_models, batch_size=4, on_batch=interrupt_after_first_batch, **QUICK)

    other = CountingDescriber(tiny_models.describer, name="another-llava:nf4")
    report = build_gallery(images, out, Models(tiny_models.clip, tiny_models.text, other), **QUICK)

    assert (report.resumed, report.processed, other.described) == (0, GOOD, GOOD)
    assert json.loads((out / "manifest.json").read_text())["describer"] == "another-llava:nf4"


def test_a_folder_without_usable_images_is_an_error(tiny_models: Models, tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "a.jpg").write_text("no")

    with pytest.raises(ValueError, match="no usable images"):
        build_gallery(tmp_path / "images", tmp_path / "out", tiny_models, **QUICK)


def test_the_output_folder_must_not_contain_the_sources(tiny_models: Models, tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()

    with pytest.raises(ValueError, match="must not contain the source images"):
        build_gallery(tmp_path / "images", tmp_path, tiny_models, **QUICK)


def test_the_command_line_builds_with_models_from_flags(
    messy_folder: tuple[Path, Path],
    tiny_model_settings: dict[str, Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    images, metadata = messy_folder
    flags = [
        f"--{name.replace('_', '-')}={tiny_model_settings[name]}"
        for name in (
            "clip_arch",
            "clip_weights",
            "clip_config",
            "clip_tokenizer",
            "text_model",
            "llava_path",
            "quantization",
        )
    ]
    out = tmp_path / "cli-gallery"

    code = gallery.main(
        [
            "build",
            "--images",
            str(images),
            "--metadata",
            str(metadata),
            "--out",
            str(out),
            "--no-progress",
            "--identify-calibration",
            "2",
            "--device",
            "cpu",
            "--max-new-tokens",
            "4",
            *flags,
        ]
    )

    assert code == 0
    printed = capsys.readouterr().out
    assert f"{GOOD} artworks" in printed and "skipped broken files: 3" in printed
    assert len(Gallery.load(out)) == GOOD


@pytest.mark.gallery
def test_a_gallery_of_real_paintings(tiny_models: Models, tmp_path: Path) -> None:
    """The first 16 paintings of ../shared/gallery, linked (not copied) into a temporary folder."""
    images, rows = link_shared_paintings(tmp_path)

    report = build_gallery(images, tmp_path / "out", tiny_models, SHARED_GALLERY / "metadata.csv", **QUICK)

    loaded = Gallery.load(tmp_path / "out", expected=tiny_models.identity())
    assert report.count + len(report.duplicates) == len(rows) and not report.skipped
    titles = {Path(row["file"]).name: row["title"] for row in rows}
    assert all(a.title == titles[a.file] and a.artist for a in loaded.artworks)
    own = loaded.search_image(loaded.image_index.reconstruct_n(0, len(loaded)), k=1)
    assert [hits[0].artwork.id for hits in own] == list(range(len(loaded)))
    # a phone photo of one of the real paintings is recognised as that painting
    identifier = Identifier.load(tmp_path / "out" / IDENTIFY_DIR)
    work = loaded.artworks[len(loaded) // 2]
    with Image.open(images / work.file) as source:
        photo = photograph(np.random.default_rng(5), np.asarray(source.convert("RGB")), max_tilt_deg=30)
    match = identifier.identify(photo.image)
    assert match is not None and match.index == work.id


def test_the_build_writes_calibrated_identification_data_and_reports_it(built: tuple[Path, BuildReport]) -> None:
    out, report = built

    identifier = Identifier.load(out / IDENTIFY_DIR, mmap=True)

    assert identifier.works == report.count == GOOD
    assert identifier.threshold.negatives == QUICK["identify_calibration"]
    assert report.identify["works"] == GOOD and report.identify["calibration_photos"] == 3
    assert "identification:" in report.summary() and "bytes/work" in report.summary()


def test_a_photo_of_a_textured_work_is_identified_from_the_built_gallery(
    tiny_models: Models, tmp_path: Path
) -> None:
    images = tmp_path / "images"
    images.mkdir()
    for i in range(5):
        textured_artwork(100 + i).save(images / f"t{i}.jpg", quality=92)
    build_gallery(images, tmp_path / "out", tiny_models, **QUICK)
    identifier = Identifier.load(tmp_path / "out" / IDENTIFY_DIR, mmap=True)
    loaded = Gallery.load(tmp_path / "out")

    for artwork in loaded.artworks:
        work = np.asarray(textured_artwork(100 + int(artwork.file[1])))
        match = identifier.identify(photograph(np.random.default_rng(artwork.id), work, max_tilt_deg=30).image)
        assert match is not None and match.index == artwork.id
