"""Decoding of untrusted uploads: pure and fast, every input is made here with PIL."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

from inference.images import MAX_SIDE, ImageRejected, decode_image, sha256_hex

MAX_PIXELS = 40_000_000


def encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def gradient(width: int = 64, height: int = 48, mode: str = "RGB") -> Image.Image:
    image = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    return image.convert(mode)


def rejected(data: bytes, max_pixels: int = MAX_PIXELS) -> ImageRejected:
    with pytest.raises(ImageRejected) as info:
        decode_image(data, max_pixels=max_pixels)
    return info.value


def with_huge_ihdr(png: bytes, width: int, height: int) -> bytes:
    """Patch the IHDR of a small PNG to claim another size, with a valid CRC: a bomb that costs no memory."""
    assert png[12:16] == b"IHDR"
    ihdr = bytearray(png[16:29])
    ihdr[0:8] = struct.pack(">II", width, height)
    crc = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr) & 0xFFFFFFFF)
    return png[:16] + bytes(ihdr) + crc + png[33:]


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_accepted_formats_decode_to_rgb(fmt: str) -> None:
    image = decode_image(encode(gradient(), fmt), max_pixels=MAX_PIXELS)
    assert image.mode == "RGB"
    assert image.size == (64, 48)


def test_empty_upload() -> None:
    assert rejected(b"").code == "empty"


@pytest.mark.parametrize(
    "data",
    [
        b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\n",
        b"definitely a photo.jpg, trust me\n" * 20,
        b"\x00" * 1000,
    ],
    ids=["pdf", "text", "zeros"],
)
def test_not_an_image(data: bytes) -> None:
    error = rejected(data)
    assert error.code == "not_an_image"
    assert error.message


def test_truncated_jpeg_is_not_an_image() -> None:
    data = encode(gradient(256, 256), "JPEG", quality=90)
    assert rejected(data[: len(data) // 2]).code == "not_an_image"


def test_png_with_broken_crc_is_not_an_image() -> None:
    data = bytearray(encode(gradient(), "PNG"))
    data[-20] ^= 0xFF  # inside the IDAT chunk
    assert rejected(bytes(data)).code == "not_an_image"


def test_gif_is_unsupported_with_a_clear_message() -> None:
    error = rejected(encode(gradient(), "GIF"))
    assert error.code == "unsupported_format"
    assert "GIF" in error.message and "JPEG" in error.message


def test_animated_webp_is_unsupported() -> None:
    frames = [gradient(), gradient().rotate(180)]
    data = encode(frames[0], "WEBP", save_all=True, append_images=frames[1:], duration=100)
    error = rejected(data)
    assert error.code == "unsupported_format"
    assert "nimated" in error.message


def test_bmp_and_tiff_are_unsupported() -> None:
    assert rejected(encode(gradient(), "BMP")).code == "unsupported_format"
    assert rejected(encode(gradient(), "TIFF")).code == "unsupported_format"


def test_png_bomb_is_refused_from_the_header(monkeypatch: pytest.MonkeyPatch) -> None:
    bomb = with_huge_ihdr(encode(gradient(8, 8), "PNG"), 20000, 20000)
    assert rejected(bomb).code == "too_many_pixels"  # Pillow's own bomb check fires first here
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)  # without it, our header check must catch it
    with Image.open(io.BytesIO(bomb)) as probe:  # the crafted header really claims 400 megapixels
        assert probe.size == (20000, 20000)
    error = rejected(bomb)
    assert error.code == "too_many_pixels"
    assert "20000x20000" in error.message


def test_pixel_limit_is_the_configured_one() -> None:
    data = encode(gradient(100, 100), "PNG")
    error = rejected(data, max_pixels=9_999)
    assert error.code == "too_many_pixels"
    assert "100x100" in error.message
    assert decode_image(data, max_pixels=10_000).size == (100, 100)


def test_exif_orientation_is_applied() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    data = encode(gradient(80, 40), "JPEG", exif=exif)
    image = decode_image(data, max_pixels=MAX_PIXELS)
    assert image.size == (40, 80)


def test_large_images_are_downscaled() -> None:
    image = decode_image(encode(gradient(3000, 1500), "JPEG"), max_pixels=MAX_PIXELS)
    assert max(image.size) <= MAX_SIDE
    assert image.size[0] == 2 * image.size[1]
    image = decode_image(encode(gradient(2100, 700), "PNG"), max_pixels=MAX_PIXELS)
    assert image.size == (MAX_SIDE, 341)


def test_transparency_becomes_white_not_black() -> None:
    clear = Image.new("RGBA", (10, 10), (0, 0, 0, 0))
    image = decode_image(encode(clear, "PNG"), max_pixels=MAX_PIXELS)
    assert image.mode == "RGB"
    assert image.getpixel((5, 5)) == (255, 255, 255)


@pytest.mark.parametrize("mode", ["L", "P", "LA", "I;16", "1"])
def test_other_png_modes_become_rgb(mode: str) -> None:
    image = decode_image(encode(gradient(mode="L").convert(mode), "PNG"), max_pixels=MAX_PIXELS)
    assert image.mode == "RGB"
    assert image.size == (64, 48)


def test_cmyk_jpeg_becomes_rgb() -> None:
    image = decode_image(encode(gradient(mode="CMYK"), "JPEG"), max_pixels=MAX_PIXELS)
    assert image.mode == "RGB"


def test_sha256_hex() -> None:
    assert sha256_hex(b"") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert len(sha256_hex(b"art")) == 64


def test_multi_picture_jpeg_from_a_phone_is_accepted() -> None:
    data = encode(gradient(), "MPO", save_all=True, append_images=[gradient(32, 24)])
    with Image.open(io.BytesIO(data)) as probe:
        assert probe.format == "MPO" and getattr(probe, "n_frames", 1) == 2
    assert decode_image(data, max_pixels=MAX_PIXELS).size == (64, 48)
