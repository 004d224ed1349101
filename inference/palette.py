"""A work's dominant palette, colour names and hex codes, and how well a palette matches a colour.

Colours are compared in CIELAB (D65), where a Euclidean distance (CIE76 ΔE) is roughly what an eye sees: about
2 is "just noticeable", 10-20 "the same colour, another shade", 40+ "another colour". A palette is 5 k-means
centres of a work's (downscaled) pixels in Lab with the share of pixels each one holds, so a work that is mostly
blue has most of its weight near blue, and one with a small blue patch has a little. No learned weights: the
build computes it per work (`gallery_build`), the gallery stores it as `palettes.npy` (n, 5, 4: L, a, b, weight),
and `/v1/search/color` ranks every work by `colour_scores`.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

import numpy as np
from PIL import Image

PALETTE_SIZE = 5
SAMPLE_SIDE = 64
"""Pixels are taken from a copy whose longest side is this (at most 4 096 pixels): a palette needs no detail."""
KMEANS_ITERATIONS = 25
KMEANS_RESTARTS = 3
SEED = 0
MATCH_SIGMA = 16.0
"""Width of the match kernel in ΔE76: a palette colour 16 away counts 0.61 of its weight, 32 away 0.14."""

# sRGB (D65) -> XYZ, IEC 61966-2-1; and the D65 reference white.
_RGB_TO_XYZ = np.array(
    [
        [0.4124564, 0.3575761, 0.1804375],
        [0.2126729, 0.7151522, 0.0721750],
        [0.0193339, 0.1191920, 0.9503041],
    ]
)
_XYZ_TO_RGB = np.linalg.inv(_RGB_TO_XYZ)
_WHITE = np.array([0.95047, 1.0, 1.08883])
_DELTA = 6.0 / 29.0


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB values 0..255 (any shape ending in 3) to CIELAB (L 0..100, a, b), float64."""
    c = np.asarray(rgb, dtype=np.float64) / 255.0
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    xyz = linear @ _RGB_TO_XYZ.T / _WHITE
    f = np.where(xyz > _DELTA**3, np.cbrt(xyz), xyz / (3 * _DELTA**2) + 4.0 / 29.0)
    return np.stack(
        [116.0 * f[..., 1] - 16.0, 500.0 * (f[..., 0] - f[..., 1]), 200.0 * (f[..., 1] - f[..., 2])], axis=-1
    )


def lab_to_srgb(lab: np.ndarray) -> np.ndarray:
    """CIELAB to sRGB 0..255 (uint8), clipped to the gamut."""
    lab = np.asarray(lab, dtype=np.float64)
    fy = (lab[..., 0] + 16.0) / 116.0
    f = np.stack([fy + lab[..., 1] / 500.0, fy, fy - lab[..., 2] / 200.0], axis=-1)
    xyz = np.where(f > _DELTA, f**3, 3 * _DELTA**2 * (f - 4.0 / 29.0)) * _WHITE
    linear = np.clip(xyz @ _XYZ_TO_RGB.T, 0.0, 1.0)
    c = np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)
    return np.clip(np.round(c * 255.0), 0, 255).astype(np.uint8)


def lab_to_hex(lab: np.ndarray) -> str:
    r, g, b = (int(v) for v in lab_to_srgb(lab))
    return f"#{r:02x}{g:02x}{b:02x}"


def hex_to_rgb(hex_code: str) -> tuple[int, int, int]:
    value = hex_code.removeprefix("#")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


# ---------------------------------------------------------------------------------------------------- palettes


def sample_pixels(image: Image.Image, side: int = SAMPLE_SIDE) -> np.ndarray:
    """The image's pixels as (m, 3) uint8 from a copy at most `side` px long (box filter: area averages)."""
    image = image.convert("RGB")
    scale = side / max(image.size)
    if scale < 1.0:
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image = image.resize(size, Image.Resampling.BOX)
    return np.asarray(image, dtype=np.uint8).reshape(-1, 3)


def extract_palette(image: Image.Image, k: int = PALETTE_SIZE, seed: int = SEED) -> np.ndarray:
    """(k, 4) float32 rows of L, a, b, weight, heaviest first; weights sum to 1. An image of fewer than k
    colours gets zero-weight rows (they match nothing)."""
    return palette_of_lab(srgb_to_lab(sample_pixels(image)), k, seed)


def palette_of_lab(pixels: np.ndarray, k: int = PALETTE_SIZE, seed: int = SEED) -> np.ndarray:
    """k-means (k-means++ starts, the best of KMEANS_RESTARTS by inertia, fixed seed) of (m, 3) Lab pixels."""
    pixels = np.asarray(pixels, dtype=np.float64).reshape(-1, 3)
    if len(pixels) == 0:
        raise ValueError("no pixels to take a palette from")
    rng = np.random.default_rng(seed)
    best: tuple[float, np.ndarray, np.ndarray] | None = None
    for _ in range(KMEANS_RESTARTS):
        centres, counts, inertia = _kmeans(pixels, k, rng)
        if best is None or inertia < best[0] - 1e-9:
            best = (inertia, centres, counts)
    assert best is not None
    _, centres, counts = best
    weights = counts / counts.sum()
    order = np.lexsort((centres[:, 0], -weights))  # heaviest first; ties by lightness, for determinism
    return np.column_stack([centres[order], weights[order]]).astype(np.float32)


def _kmeans(pixels: np.ndarray, k: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, float]:
    centres = _kmeans_plus_plus(pixels, k, rng)
    norms = (pixels**2).sum(axis=1)[:, None]
    labels = np.full(len(pixels), -1)
    for _ in range(KMEANS_ITERATIONS):
        distances = _squared_distances(pixels, centres, norms)
        new_labels = distances.argmin(axis=1)
        if np.array_equal(new_labels, labels):
            break
        labels = new_labels
        counts = np.bincount(labels, minlength=k).astype(np.float64)
        sums = np.stack([np.bincount(labels, pixels[:, axis], minlength=k) for axis in range(3)], axis=1)
        filled = counts > 0
        centres[filled] = sums[filled] / counts[filled, None]
    distances = _squared_distances(pixels, centres, norms)
    labels = distances.argmin(axis=1)
    counts = np.bincount(labels, minlength=k).astype(np.float64)
    return centres, counts, float(distances[np.arange(len(pixels)), labels].sum())


def _kmeans_plus_plus(pixels: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    centres = [pixels[rng.integers(len(pixels))]]
    closest = ((pixels - centres[0]) ** 2).sum(axis=1)
    for _ in range(1, k):
        total = closest.sum()
        if total <= 0:  # fewer distinct colours than k: repeat one (it gets no pixels, so weight 0)
            centres.append(centres[-1])
            continue
        centres.append(pixels[rng.choice(len(pixels), p=closest / total)])
        closest = np.minimum(closest, ((pixels - centres[-1]) ** 2).sum(axis=1))
    return np.array(centres, dtype=np.float64)


def _squared_distances(pixels: np.ndarray, centres: np.ndarray, norms: np.ndarray) -> np.ndarray:
    """(m, k) squared distances; `norms` are the pixels' squared norms (m, 1), computed once per k-means."""
    return (norms - 2.0 * pixels @ centres.T + (centres**2).sum(axis=1)[None, :]).clip(min=0.0)


def palette_hex(palette: np.ndarray) -> list[tuple[str, float]]:
    """A stored (k, 4) palette as (hex, weight) pairs for display, zero-weight rows left out."""
    return [(lab_to_hex(row[:3]), round(float(row[3]), 4)) for row in palette if row[3] > 0]


# ------------------------------------------------------------------------------------------------------ search


SCORE_BLOCK = 32_768
"""Palettes scored per block of this many works, so the temporaries stay in the CPU cache (1.3 MB each)."""


def colour_scores(palettes: np.ndarray, lab: np.ndarray, sigma: float = MATCH_SIGMA) -> np.ndarray:
    """How much of each work is the colour `lab`: for (n, k, 4) palettes, the sum of the palette colours'
    weights, each times a Gaussian of its ΔE76 to the colour. (n,) float32 in [0, 1]; a work that is mostly the
    colour scores near 1, one with a small patch of it about the patch's share."""
    palettes = np.asarray(palettes, dtype=np.float32)
    query = np.asarray(lab, dtype=np.float32).reshape(3)
    scale = np.float32(-0.5 / sigma**2)
    scores = np.empty(len(palettes), dtype=np.float32)
    for start in range(0, len(palettes), SCORE_BLOCK):
        block = palettes[start : start + SCORE_BLOCK]
        squared = block[..., 0] - query[0]
        squared *= squared
        for axis in (1, 2):
            difference = block[..., axis] - query[axis]
            difference *= difference
            squared += difference
        squared *= scale
        np.exp(squared, out=squared)
        squared *= block[..., 3]
        scores[start : start + len(block)] = squared.sum(axis=1)
    return scores


def best_matches(
    palettes: np.ndarray, lab: np.ndarray, k: int, exclude: Collection[int] = ()
) -> tuple[np.ndarray, np.ndarray]:
    """The k works whose palettes match `lab` best, `exclude`d ones (removed works) left out: (ids, scores),
    best first, ties by id."""
    scores = colour_scores(palettes, lab)
    if exclude:
        scores[np.fromiter(exclude, dtype=np.int64)] = -1.0
    k = min(k, len(scores) - len(exclude))
    if k <= 0:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    top = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
    top = top[np.lexsort((top, -scores[top]))]
    return top.astype(np.int64), scores[top]


FEATURE_STEP = 16.0
FEATURE_WIDTH = MATCH_SIGMA / np.sqrt(2.0)
"""Soft Lab histograms for an index: Gaussian bumps of this width on a grid of FEATURE_STEP, so that the inner
product of two colours' features is close to the match kernel of width MATCH_SIGMA (two bumps of width w
overlap like one of width w * sqrt(2)), up to a constant factor."""


def _feature_anchors() -> np.ndarray:
    """Grid points of CIELAB that sRGB can show (others would only add empty dimensions): ~400 of them."""
    steps = np.arange(-96.0, 97.0, FEATURE_STEP)
    grid = np.array([(L, a, b) for L in np.arange(0.0, 101.0, FEATURE_STEP) for a in steps for b in steps])
    shown = srgb_to_lab(lab_to_srgb(grid))
    return grid[np.linalg.norm(shown - grid, axis=1) < FEATURE_STEP].astype(np.float32)


FEATURE_ANCHORS = _feature_anchors()


def colour_features(lab: np.ndarray) -> np.ndarray:
    """(m, 3) Lab colours -> (m, D) soft histograms (see FEATURE_WIDTH), float32."""
    lab = np.asarray(lab, dtype=np.float32).reshape(-1, 3)
    squared = (lab**2).sum(axis=1)[:, None] - 2.0 * lab @ FEATURE_ANCHORS.T + (FEATURE_ANCHORS**2).sum(axis=1)
    squared *= np.float32(-0.5 / FEATURE_WIDTH**2)
    return np.exp(np.minimum(squared, 0.0, out=squared), out=squared)


def palette_features(palettes: np.ndarray, block: int = 8192) -> np.ndarray:
    """(n, k, 4) palettes -> (n, D) weighted sums of their colours' features: `palette_features(p) @
    colour_features(q).T` ranks works almost exactly like `colour_scores(p, q)` (correlation > 0.999)."""
    palettes = np.asarray(palettes, dtype=np.float32)
    features = np.empty((len(palettes), len(FEATURE_ANCHORS)), dtype=np.float32)
    for start in range(0, len(palettes), block):
        chunk = palettes[start : start + block]
        bumps = colour_features(chunk[..., :3].reshape(-1, 3)).reshape(len(chunk), chunk.shape[1], -1)
        features[start : start + len(chunk)] = np.einsum("nkd,nk->nd", bumps, chunk[..., 3])
    return features


# ----------------------------------------------------------------------------------------------------- colours


class UnknownColour(ValueError):
    """The text is neither a hex code nor a colour name we know; the message says what would work."""


@dataclass(frozen=True)
class Colour:
    hex: str
    """#rrggbb, lower case."""
    lab: np.ndarray
    name: str = ""
    """The canonical name it was recognised as ('' for a hex code)."""


_ENGLISH = {
    "red": "#c62828",
    "dark red": "#8b0000",
    "crimson": "#dc143c",
    "scarlet": "#ff2400",
    "burgundy": "#800020",
    "maroon": "#800000",
    "orange": "#f57c00",
    "yellow": "#f5d000",
    "gold": "#d4af37",
    "golden": "#d4af37",
    "ochre": "#cc7722",
    "ocher": "#cc7722",
    "amber": "#ffbf00",
    "olive": "#808000",
    "green": "#2e8b3a",
    "dark green": "#0b4d1e",
    "light green": "#90ee90",
    "lime": "#7bc934",
    "emerald": "#50c878",
    "teal": "#008080",
    "turquoise": "#40e0d0",
    "cyan": "#00b7d4",
    "sky blue": "#87ceeb",
    "light blue": "#9cc9e8",
    "azure": "#007fff",
    "blue": "#1f4fbf",
    "dark blue": "#142a6e",
    "deep blue": "#1a2f8a",
    "navy": "#0b1f5c",
    "ultramarine": "#120a8f",
    "cobalt": "#0047ab",
    "indigo": "#3f1d78",
    "violet": "#7f3fbf",
    "purple": "#6a1b9a",
    "lilac": "#c8a2c8",
    "lavender": "#b9a6dc",
    "magenta": "#d0208c",
    "pink": "#f4a6c0",
    "rose": "#e0607e",
    "brown": "#7b4a26",
    "dark brown": "#4a2c17",
    "beige": "#e3d3b0",
    "cream": "#f6efd2",
    "ivory": "#fffff0",
    "sienna": "#a0522d",
    "umber": "#635147",
    "terracotta": "#d0674e",
    "bronze": "#cd7f32",
    "copper": "#b87333",
    "sand": "#d2b98a",
    "white": "#ffffff",
    "black": "#0a0a0a",
    "grey": "#808080",
    "gray": "#808080",
    "light grey": "#c4c4c4",
    "light gray": "#c4c4c4",
    "dark grey": "#404040",
    "dark gray": "#404040",
    "silver": "#c0c0c0",
}
"""Common colour names and painters' pigments; light/dark/deep/pale variants of any of them are derived."""

_RUSSIAN = {
    "красный": "red",
    "темно-красный": "dark red",
    "бордовый": "burgundy",
    "алый": "scarlet",
    "малиновый": "crimson",
    "вишневый": "#911e42",
    "оранжевый": "orange",
    "желтый": "yellow",
    "золотой": "gold",
    "золотистый": "gold",
    "охра": "ochre",
    "охры": "ochre",
    "охру": "ochre",
    "охрой": "ochre",
    "янтарный": "amber",
    "оливковый": "olive",
    "зеленый": "green",
    "темно-зеленый": "dark green",
    "светло-зеленый": "light green",
    "салатовый": "lime",
    "изумрудный": "emerald",
    "бирюзовый": "turquoise",
    "бирюза": "turquoise",
    "голубой": "light blue",
    "небесный": "sky blue",
    "лазурный": "azure",
    "лазурь": "azure",
    "синий": "blue",
    "темно-синий": "dark blue",
    "ультрамариновый": "ultramarine",
    "ультрамарин": "ultramarine",
    "кобальтовый": "cobalt",
    "индиго": "indigo",
    "фиолетовый": "violet",
    "пурпурный": "purple",
    "лиловый": "lilac",
    "сиреневый": "lilac",
    "лавандовый": "lavender",
    "розовый": "pink",
    "коричневый": "brown",
    "темно-коричневый": "dark brown",
    "бежевый": "beige",
    "кремовый": "cream",
    "терракотовый": "terracotta",
    "терракота": "terracotta",
    "умбра": "umber",
    "сиена": "sienna",
    "бронзовый": "bronze",
    "медный": "copper",
    "песочный": "sand",
    "белый": "white",
    "черный": "black",
    "серый": "grey",
    "светло-серый": "light grey",
    "темно-серый": "dark grey",
    "серебряный": "silver",
    "серебристый": "silver",
}
"""Russian names (ё written е) -> an English name above or a hex code; inflected forms are matched by stem."""

_DARKER = {"dark", "deep", "темно", "темн"}  # тёмно-синий, тёмная охра
_LIGHTER = {"light", "pale", "светло", "светл", "бледно", "бледн"}
_FILLER = {"colour", "color", "цвет", "цвета", "цвете", "цветом", "the", "a"}
_RUSSIAN_ENDINGS = sorted(
    "ыми ими ого его ому ему ый ий ой ая яя ое ее ые ие ую юю ым им ых их ей ом ем".split(), key=len, reverse=True
)
_HEX = re.compile(r"^#?([0-9a-f]{6}|[0-9a-f]{3})$")
EXAMPLES = "#1e3a8a, 1e3a8a, #c00, red, ochre, deep blue, красный, тёмно-синий, бирюзовый, охра"


def _stem(word: str) -> str:
    """A Russian adjective without its ending (красная, красного -> красн); other words as they are."""
    if not re.search("[а-я]", word):
        return word
    for ending in _RUSSIAN_ENDINGS:
        if word.endswith(ending) and len(word) - len(ending) >= 2:
            return word[: -len(ending)]
    return word


def _words(text: str) -> list[str]:
    text = text.lower().replace("ё", "е").strip()
    return [_stem(word) for word in re.split(r"[\s\-_]+", text) if word and word not in _FILLER]


def _key(words: list[str]) -> str:
    return "".join(words)


def _build_names() -> dict[str, tuple[str, str]]:
    """Lookup key (stemmed words, run together) -> (hex, canonical name)."""
    names = {_key(_words(name)): (hex_code, name) for name, hex_code in _ENGLISH.items()}
    for name, target in _RUSSIAN.items():
        hex_code = target if target.startswith("#") else _ENGLISH[target]
        names.setdefault(_key(_words(name)), (hex_code, name))
    return names


_NAMES = _build_names()


def _shade(hex_code: str, darker: bool) -> str:
    """A darker or lighter shade of a colour, in Lab: lightness scaled, chroma kept (or softened when lighter)."""
    L, a, b = srgb_to_lab(np.array(hex_to_rgb(hex_code), dtype=np.float64))
    if darker:
        shaded = np.array([L * 0.6, a * 0.9, b * 0.9])
    else:
        shaded = np.array([L + (100.0 - L) * 0.5, a * 0.6, b * 0.6])
    return lab_to_hex(shaded)


def parse_colour(text: str) -> Colour:
    """`#rrggbb`, `rrggbb`, `#rgb`, or a colour name in English or Russian (any case and gender, ё or е,
    'dark'/'light'/'тёмно-'/'светло-' before any known name). UnknownColour with examples otherwise."""
    cleaned = text.strip().lower()
    found = _HEX.match(cleaned)
    if found:
        digits = found.group(1)
        if len(digits) == 3:
            digits = "".join(d * 2 for d in digits)
        hex_code = f"#{digits}"
        return Colour(hex_code, srgb_to_lab(np.array(hex_to_rgb(hex_code), dtype=np.float64)))
    words = _words(cleaned)
    known = _NAMES.get(_key(words))
    if known is None and len(words) >= 2 and (words[0] in _DARKER or words[0] in _LIGHTER):
        base = _NAMES.get(_key(words[1:]))
        if base is not None:
            known = (_shade(base[0], darker=words[0] in _DARKER), f"{words[0]} {base[1]}")
    if known is None:
        shown = text.strip()[:40] or "(empty)"
        raise UnknownColour(
            f"I don't know the colour {shown!r}. Send a hex code or a colour name in English or Russian, "
            f"for example: {EXAMPLES}."
        )
    hex_code, name = known
    return Colour(hex_code, srgb_to_lab(np.array(hex_to_rgb(hex_code), dtype=np.float64)), name)


def colour_names() -> list[str]:
    """Every name `parse_colour` knows (English, then Russian), for help texts."""
    return [*_ENGLISH, *_RUSSIAN]
