"""The palette module on its own: CIELAB conversion, k-means palettes of images with known colour shares, colour
parsing in English and Russian, and the match score's ranking."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from inference.palette import (
    UnknownColour,
    best_matches,
    colour_scores,
    extract_palette,
    lab_to_hex,
    lab_to_srgb,
    parse_colour,
    srgb_to_lab,
)
from inference.tag_labels import label_for_csv, labels_for_csv

BLUE, YELLOW, RED = (30, 60, 170), (240, 210, 40), (200, 30, 30)


def striped(shares: list[tuple[tuple[int, int, int], int]], height: int = 60, noise: float = 0.0) -> Image.Image:
    """Vertical stripes, one column per unit of share (widths sum to at most 64 px, so no resampling)."""
    columns = [np.tile(np.array(colour, np.float64), (height, width, 1)) for colour, width in shares]
    pixels = np.concatenate(columns, axis=1)
    if noise:
        pixels += np.random.default_rng(0).normal(0.0, noise, pixels.shape)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


@pytest.mark.parametrize(
    ("rgb", "lab"),
    [
        ((255, 0, 0), (53.24, 80.09, 67.20)),
        ((0, 255, 0), (87.73, -86.18, 83.18)),
        ((0, 0, 255), (32.30, 79.19, -107.86)),
        ((255, 255, 255), (100.0, 0.0, 0.0)),
        ((0, 0, 0), (0.0, 0.0, 0.0)),
        ((128, 128, 128), (53.59, 0.0, 0.0)),
    ],
)
def test_srgb_to_lab_gives_the_published_values(rgb: tuple[int, int, int], lab: tuple[float, float, float]) -> None:
    assert np.allclose(srgb_to_lab(np.array(rgb)), lab, atol=0.01)


def test_lab_back_to_srgb_returns_the_same_colours() -> None:
    colours = np.random.default_rng(1).integers(0, 256, (500, 3))
    assert np.abs(lab_to_srgb(srgb_to_lab(colours)).astype(int) - colours).max() <= 1
    assert lab_to_hex(srgb_to_lab(np.array([18, 52, 86]))) == "#123456"


def test_a_palette_finds_the_colours_of_an_image_with_their_shares() -> None:
    palette = extract_palette(striped([(BLUE, 36), (YELLOW, 18), (RED, 6)]))

    assert palette.shape == (5, 4) and palette.dtype == np.float32
    assert np.isclose(palette[:, 3].sum(), 1.0)
    assert np.allclose(palette[:3, 3], [0.6, 0.3, 0.1], atol=1e-6)
    assert np.allclose(palette[3:, 3], 0.0)  # three colours: the other two centres hold nothing
    for row, colour in zip(palette[:3], (BLUE, YELLOW, RED), strict=True):
        assert np.linalg.norm(row[:3] - srgb_to_lab(np.array(colour))) < 0.5


def test_a_noisy_large_image_keeps_the_shares_and_the_same_palette_every_time() -> None:
    small = striped([(BLUE, 48), (YELLOW, 32), (RED, 16)], noise=12.0)
    image = small.resize((960, 600), Image.Resampling.NEAREST)  # downscaled again inside: stripes stay 3:2:1

    palette = extract_palette(image)

    assert np.array_equal(palette, extract_palette(image))  # deterministic
    assert list(palette[:, 3]) == sorted(palette[:, 3], reverse=True)
    for colour, share in ((BLUE, 0.5), (YELLOW, 1 / 3), (RED, 1 / 6)):
        near = np.linalg.norm(palette[:, :3] - srgb_to_lab(np.array(colour)), axis=1) < 15
        assert abs(palette[near, 3].sum() - share) < 0.03, (colour, palette)


def test_a_work_that_is_mostly_the_colour_outranks_one_with_a_patch_of_it() -> None:
    mostly_blue = extract_palette(striped([(BLUE, 52), (YELLOW, 12)]))
    patch_of_blue = extract_palette(striped([(YELLOW, 52), (BLUE, 12)]))
    no_blue = extract_palette(striped([(YELLOW, 32), (RED, 32)]))
    similar_blue = extract_palette(striped([((50, 80, 190), 46), (RED, 18)]))
    palettes = np.stack([patch_of_blue, no_blue, mostly_blue, similar_blue])

    scores = colour_scores(palettes, srgb_to_lab(np.array(BLUE)))
    ids, top = best_matches(palettes, srgb_to_lab(np.array(BLUE)), 4)

    assert list(ids) == [2, 3, 0, 1]
    assert np.allclose(top, scores[ids])
    assert scores[2] > 0.8 and 0.1 < scores[0] < 0.25 and scores[1] < 0.01
    # a removed work is never found
    assert list(best_matches(palettes, srgb_to_lab(np.array(BLUE)), 4, exclude={2})[0]) == [3, 0, 1]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("#1E3A8A", "#1e3a8a"),
        ("1e3a8a", "#1e3a8a"),
        ("#c00", "#cc0000"),
        (" Red ", "#c62828"),
        ("красный", "#c62828"),
        ("Красная", "#c62828"),
        ("КРАСНОЕ", "#c62828"),
        ("красного", "#c62828"),
        ("тёмно-синий", "#142a6e"),
        ("темно-синяя", "#142a6e"),
        ("темно синий", "#142a6e"),
        ("dark blue", "#142a6e"),
        ("бирюзовый", "#40e0d0"),
        ("turquoise", "#40e0d0"),
        ("золотой", "#d4af37"),
        ("Золотистая", "#d4af37"),
        ("охра", "#cc7722"),
        ("цвета охры", "#cc7722"),
        ("ochre", "#cc7722"),
        ("ocher", "#cc7722"),
        ("жёлтый", "#f5d000"),
        ("желтая", "#f5d000"),
        ("grey", "#808080"),
        ("gray", "#808080"),
    ],
)
def test_hex_codes_and_colour_names_in_english_and_russian(text: str, expected: str) -> None:
    assert parse_colour(text).hex == expected


def test_dark_and_light_shades_of_any_known_name() -> None:
    base = parse_colour("бирюзовый").lab
    darker, lighter = parse_colour("тёмно-бирюзовая").lab, parse_colour("light turquoise").lab
    assert darker[0] < base[0] - 20 and lighter[0] > base[0]
    assert parse_colour("dark ochre").hex == parse_colour("тёмная охра").hex
    assert parse_colour("dark ochre").lab[0] < parse_colour("ochre").lab[0] - 20


@pytest.mark.parametrize("text", ["blurple", "", "   ", "#12345", "#ggg", "синенький котик", "dark"])
def test_an_unknown_colour_is_refused_with_examples(text: str) -> None:
    with pytest.raises(UnknownColour) as refused:
        parse_colour(text)
    message = str(refused.value)
    assert "I don't know the colour" in message and "#1e3a8a" in message and "красный" in message


@pytest.mark.parametrize(
    ("kind", "value", "expected"),
    [
        ("style", "Impressionism", "impressionism"),
        ("style", "Northern_Renaissance", "renaissance"),
        ("style", "Baroque|Dutch Golden Age", "baroque"),
        ("style", "Post-Impressionism", "post_impressionism"),
        ("style", "Art_Nouveau_(Modern)", "art_nouveau"),
        ("style", "Ukiyo-e", "ukiyo_e"),
        ("genre", "landscape", "landscape"),
        ("genre", "still life", "still_life"),
        ("genre", "Self-portrait", "portrait"),
        ("genre", "painting", None),
        ("style", "Biedermeier", None),
    ],
)
def test_gallery_csv_values_map_to_label_keys(kind: str, value: str, expected: str | None) -> None:
    assert label_for_csv(kind, value) == expected


def test_a_csv_cell_with_several_styles_names_each_label_once() -> None:
    assert labels_for_csv("style", "Academic Art|Biedermeier|Realism") == ["academic_art", "realism"]
    assert labels_for_csv("style", "High Renaissance|Renaissance") == ["renaissance"]
