"""Safe decoding of images uploaded by strangers.

Uploads are untrusted: they may be empty, not images at all, truncated, animated, or decompression bombs
(a few kilobytes of PNG that claim 20000x20000 pixels). Only JPEG, PNG and WebP are parsed at all, the pixel
count is checked from the header before any pixel is decoded, and the image is verified and fully loaded
here so that a broken file fails with a clear code instead of deep inside a model.
"""

from __future__ import annotations

import hashlib
import io
import math

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# Key in the decoded image's `info` of the upload's own (width, height), upright (see `source_size`).
SOURCE_SIZE = "artmatch_source_size"

# Longest side after decoding: CLIP looks at ~224 px and LLaVA-1.6 at up to 672 px, so more is wasted work.
MAX_SIDE = 1024

# Pillow plugins we let parse uploads. JPEGs with several pictures (many phones write them) open as "MPO".
ACCEPTED_FORMATS = ("JPEG", "MPO", "PNG", "WEBP")

# Magic bytes of image formats we recognise but do not accept, to say "unsupported" instead of "not an image".
_OTHER_IMAGE_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"\x00\x00\x01\x00", "ICO"),
    (b"8BPS", "PSD"),
    (b"\x00\x00\x00\x0cjP  ", "JPEG 2000"),
    (b"\xff\x4f\xff\x51", "JPEG 2000"),
    (b"\xff\x0a", "JPEG XL"),
    (b"\x00\x00\x00\x0cJXL ", "JPEG XL"),
)
_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis"}

# Errors Pillow raises on corrupt or truncated data while parsing or decoding.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, KeyError, MemoryError)


class ImageRejected(ValueError):
    """An upload we refuse; `code` is machine-readable, `message` can be shown to the user."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def sha256_hex(data: bytes) -> str:
    """The cache and deduplication key of an upload."""
    return hashlib.sha256(data).hexdigest()


def decode_image(data: bytes, *, max_pixels: int, max_side: int = MAX_SIDE) -> Image.Image:
    """Decode an untrusted upload into an upright RGB image whose longest side is at most `max_side`."""
    if not data:
        raise ImageRejected("empty", "The upload is empty.")
    image = _open(data, max_pixels)
    header_size = image.size
    _reject_animation(image)
    try:
        image.verify()  # structural checks (PNG CRCs, …) without decoding pixels
        image = _open(data, max_pixels)  # verify() leaves the object unusable: reopen
        image.draft("RGB", draft_box(image.size, max_side))  # JPEG only: decode at 1/2, 1/4 or 1/8 scale
        image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _too_many_pixels(max_pixels) from exc
    except _DECODE_ERRORS as exc:
        raise ImageRejected("not_an_image", "The image file is damaged or incomplete.") from exc
    loaded_size = image.size
    try:
        image = ImageOps.exif_transpose(image) or image
    except _DECODE_ERRORS:
        pass  # a broken EXIF block is not worth refusing the photo for
    turned = image.size != loaded_size  # EXIF rotated it by 90 degrees: width and height swap
    image = _to_rgb(image)
    if max(image.size) > max_side:
        image = shrink(image, max_side)
    image.info[SOURCE_SIZE] = header_size[::-1] if turned else header_size
    return image


def draft_box(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    """The box to ask JPEG's draft mode for: the photo scaled so its longest side is `max_side`.

    Draft mode decodes at the smallest of 1/1, 1/2, 1/4, 1/8 that still covers the box in both directions, so asking
    for a square (max_side, max_side) box would decode a 2560x1920 phone photo at full size (1920 // 1024 < 2);
    the photo's own aspect lets it decode at 1280x960, a quarter of the pixels, and still be downscaled, not up."""
    width, height = size
    scale = max_side / max(width, height, 1)
    if scale >= 1.0:
        return size
    return (max(1, math.ceil(width * scale)), max(1, math.ceil(height * scale)))


def shrink(image: Image.Image, max_side: int) -> Image.Image:
    """`image` with its longest side brought down to `max_side`, by pixel-area averaging (OpenCV's INTER_AREA).

    Area averaging is the right filter for shrinking and costs a third of Pillow's bicubic here (4 ms instead of
    11 for a 1280 px photo on one core); what reads the result (CLIP, identification, the describer) resizes it
    again to its own input size."""
    import cv2  # the service's dependency already (identification); imported here so importing this is cheap

    scale = max_side / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    if image.mode != "RGB":
        return image.resize(size, Image.Resampling.BOX)
    return Image.fromarray(cv2.resize(np.asarray(image), size, interpolation=cv2.INTER_AREA))


def source_size(image: Image.Image) -> tuple[int, int]:
    """(width, height) of the upload `image` was decoded from, upright: what positions in the uploaded photo
    (an identified work's corners) are measured in. An image not from `decode_image` is its own source."""
    size = image.info.get(SOURCE_SIZE)
    return (int(size[0]), int(size[1])) if size else image.size


def _open(data: bytes, max_pixels: int) -> Image.Image:
    """Parse the header only, with the accepted formats only, and check the pixel count it claims."""
    Image.init()  # registers every plugin once; `formats=` fails on ones not yet registered (WEBP)
    try:
        image = Image.open(io.BytesIO(data), formats=[f for f in ACCEPTED_FORMATS if f in Image.OPEN])
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _too_many_pixels(max_pixels) from exc
    except UnidentifiedImageError as exc:
        other = _other_image_format(data)
        if other is not None:
            raise ImageRejected(
                "unsupported_format",
                f"{other} images are not supported; please send a JPEG, PNG or WebP photo.",
            ) from exc
        raise ImageRejected("not_an_image", "This file is not an image.") from exc
    except _DECODE_ERRORS as exc:
        raise ImageRejected("not_an_image", "The image file is damaged or incomplete.") from exc
    width, height = image.size
    if width <= 0 or height <= 0:
        raise ImageRejected("not_an_image", "The image has no pixels.")
    if width * height > max_pixels:
        raise _too_many_pixels(max_pixels, width, height)
    return image


def _reject_animation(image: Image.Image) -> None:
    # Phones write extra pictures (depth maps, previews) into MPO files: use the first one, don't refuse.
    if image.format != "MPO" and getattr(image, "is_animated", False):
        raise ImageRejected(
            "unsupported_format", "Animated images are not supported; please send a still JPEG, PNG or WebP."
        )


def _too_many_pixels(max_pixels: int, width: int | None = None, height: int | None = None) -> ImageRejected:
    size = f" ({width}x{height})" if width and height else ""
    return ImageRejected(
        "too_many_pixels",
        f"The image is too large{size}; the limit is {max_pixels / 1e6:g} megapixels.",
    )


def _other_image_format(data: bytes) -> str | None:
    for magic, name in _OTHER_IMAGE_MAGIC:
        if data.startswith(magic):
            return name
    if data[4:8] == b"ftyp" and data[8:12] in _HEIF_BRANDS:
        return "AVIF" if data[8:12] in {b"avif", b"avis"} else "HEIC"
    return None


def _to_rgb(image: Image.Image) -> Image.Image:
    """Flatten any mode to RGB: transparency onto white (not black), 16-bit greyscale scaled, not clipped."""
    if image.mode == "RGB":
        return image
    if image.mode in {"I", "I;16", "I;16B", "I;16L", "I;16N", "F"}:
        values = np.asarray(image, dtype=np.float32)
        top = float(values.max()) if values.size else 0.0
        scale = 255.0 / top if top > 255.0 else 1.0
        image = Image.fromarray(np.clip(values * scale, 0, 255).astype(np.uint8))
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in {"RGBA", "LA", "PA", "RGBa", "La"}:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")
