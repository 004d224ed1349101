"""Test data factories: synthetic artworks as image files, and odd uploads strangers might send."""

from __future__ import annotations

import csv
import io
import random
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from inference.identify.synthetic import painting

PALETTES = [
    ((200, 30, 30), (250, 220, 40)),
    ((20, 60, 180), (240, 240, 240)),
    ((30, 140, 60), (120, 70, 20)),
    ((10, 10, 10), (200, 200, 200)),
    ((250, 140, 0), (60, 0, 90)),
    ((90, 200, 220), (255, 255, 255)),
]


def synthetic_artwork(seed: int, size: tuple[int, int] = (96, 80)) -> Image.Image:
    """A small, distinct 'painting': background, a few shapes, colours from a palette chosen by seed."""
    rng = random.Random(seed)
    background, accent = PALETTES[seed % len(PALETTES)]
    image = Image.new("RGB", size, background)
    draw = ImageDraw.Draw(image)
    for _ in range(3 + seed % 4):
        x0, y0 = rng.randrange(size[0] // 2), rng.randrange(size[1] // 2)
        x1, y1 = x0 + rng.randrange(10, size[0] // 2), y0 + rng.randrange(10, size[1] // 2)
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape((x0, y0, x1, y1), fill=tuple(min(255, c + rng.randrange(-40, 40)) for c in accent))
    return image


def textured_artwork(seed: int, long_side: int = 384) -> Image.Image:
    """A procedural 'painting' with brush strokes and grain: enough texture for local features, so a phone photo
    of it can be identified (the flat `synthetic_artwork` has almost no keypoints)."""
    return Image.fromarray(painting(np.random.default_rng(10_000 + seed), long_side))


def image_bytes(image: Image.Image, fmt: str = "JPEG", **save_kwargs: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **save_kwargs)
    return buffer.getvalue()


def write_gallery_folder(root: Path, count: int) -> tuple[Path, Path]:
    """`count` textured synthetic artworks as JPEG files plus a metadata CSV like the real gallery's."""
    images = root / "images"
    images.mkdir(parents=True, exist_ok=True)
    metadata = root / "metadata.csv"
    with metadata.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["file", "title", "artist", "year", "style", "genre", "source"])
        for i in range(count):
            name = f"work_{i:03d}.jpg"
            textured_artwork(i).save(images / name, quality=92)
            writer.writerow(
                [name, f"Composition No. {i}", f"Painter {i % 4}", str(1880 + i), "Fauvism", "", "x"]
            )
    return images, metadata


def png_claiming_size(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims `width` x `height`: a decompression bomb that costs the test nothing."""
    data = bytearray(image_bytes(Image.new("RGB", (8, 8), "white"), "PNG"))
    ihdr_at = data.index(b"IHDR")
    data[ihdr_at + 4 : ihdr_at + 12] = struct.pack(">II", width, height)
    chunk = bytes(data[ihdr_at : ihdr_at + 4 + 13])
    data[ihdr_at + 17 : ihdr_at + 21] = struct.pack(">I", zlib.crc32(chunk) & 0xFFFFFFFF)
    return bytes(data)


SHARED_GALLERY = Path(__file__).resolve().parents[1] / ".." / "shared" / "gallery"


def link_shared_paintings(folder: Path, count: int = 16) -> tuple[Path, list[dict[str, str]]]:
    """The first `count` paintings of ../shared/gallery, linked (never copied) into `folder/images`, and their
    metadata rows; the test is skipped when the shared gallery is absent."""
    import pytest

    if not (SHARED_GALLERY / "metadata.csv").is_file():
        pytest.skip(f"no shared gallery at {SHARED_GALLERY.resolve()}")
    with (SHARED_GALLERY / "metadata.csv").open(newline="") as source:
        rows = list(csv.DictReader(source))[:count]
    images = folder / "images"
    images.mkdir()
    for row in rows:
        (images / Path(row["file"]).name).symlink_to((SHARED_GALLERY / row["file"]).resolve())
    return images, rows
