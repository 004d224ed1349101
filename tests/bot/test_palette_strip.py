"""The /color strip: the query colour first, then each hit's palette, each colour as wide as its weight."""

from __future__ import annotations

import io

from PIL import Image

from bot.palette_strip import GAP, HEIGHT, HIT_WIDTH, QUERY_WIDTH, draw_strip, segments, strip_width
from inference.contract import PaletteColour


def palette(*pairs: tuple[str, float]) -> list[PaletteColour]:
    return [PaletteColour(hex=hex_, weight=weight) for hex_, weight in pairs]


def rgb(hex_: str) -> tuple[int, int, int]:
    return int(hex_[1:3], 16), int(hex_[3:5], 16), int(hex_[5:7], 16)


FIRST = palette(("#ff0000", 0.5), ("#00ff00", 0.25), ("#0000ff", 0.125), ("#ffff00", 0.0625), ("#00ffff", 0.0625))
SECOND = palette(("#102030", 0.2), ("#405060", 0.2), ("#708090", 0.2), ("#a0b0c0", 0.2), ("#d0e0f0", 0.2))


def test_the_strip_is_as_wide_as_the_query_block_and_one_block_per_hit() -> None:
    image = Image.open(io.BytesIO(draw_strip("#336699", [FIRST, SECOND])))
    assert image.format == "PNG"
    assert image.size == (QUERY_WIDTH + 2 * (GAP + HIT_WIDTH), HEIGHT) == (strip_width(2), HEIGHT)
    assert image.width / image.height <= 20  # Telegram refuses photos of a more extreme ratio


def test_colours_sit_where_their_weights_put_them() -> None:
    image = Image.open(io.BytesIO(draw_strip("#336699", [FIRST, SECOND]))).convert("RGB")
    middle = HEIGHT // 2
    assert image.getpixel((QUERY_WIDTH // 2, middle)) == rgb("#336699")
    assert image.getpixel((QUERY_WIDTH + GAP // 2, middle)) == (255, 255, 255)  # the gap before the first hit
    first = QUERY_WIDTH + GAP
    # half of the first hit's block is red, the next quarter green, then an eighth blue
    assert image.getpixel((first + HIT_WIDTH // 4, middle)) == rgb("#ff0000")
    assert image.getpixel((first + HIT_WIDTH // 2 + HIT_WIDTH // 8, middle)) == rgb("#00ff00")
    assert image.getpixel((first + HIT_WIDTH * 13 // 16, middle)) == rgb("#0000ff")
    assert image.getpixel((first + HIT_WIDTH - 2, middle)) == rgb("#00ffff")
    second = first + HIT_WIDTH + GAP
    for index, colour in enumerate(SECOND):  # equal weights: five equal stripes
        x = second + HIT_WIDTH * index // 5 + HIT_WIDTH // 10
        assert image.getpixel((x, middle)) == rgb(colour.hex)


def test_each_hit_block_is_covered_exactly_in_palette_order() -> None:
    uneven = palette(("#010101", 0.37), ("#020202", 0.29), ("#030303", 0.17), ("#040404", 0.11), ("#050505", 0.06))
    placed = segments("#000000", [uneven, FIRST, palette(("#ffffff", 0.0), ("#000000", 0.0))])
    for hit in range(3):
        parts = [s for s in placed if s.hit == hit]
        start = QUERY_WIDTH + hit * (GAP + HIT_WIDTH) + GAP
        assert parts[0].x0 == start and parts[-1].x1 == start + HIT_WIDTH
        assert all(a.x1 == b.x0 for a, b in zip(parts, parts[1:], strict=False))
    widths = [s.x1 - s.x0 for s in placed if s.hit == 0]
    assert widths == sorted(widths, reverse=True) and [s.hex for s in placed if s.hit == 0][0] == "#010101"
    assert [s.x1 - s.x0 for s in placed if s.hit == 2] == [HIT_WIDTH // 2, HIT_WIDTH // 2]  # weights all 0: equal


def test_a_hit_without_a_palette_leaves_its_block_blank() -> None:
    image = Image.open(io.BytesIO(draw_strip("#abcdef", [[], SECOND]))).convert("RGB")
    assert image.getpixel((QUERY_WIDTH + GAP + HIT_WIDTH // 2, HEIGHT // 2)) == (255, 255, 255)
    assert image.getpixel((QUERY_WIDTH + 2 * GAP + HIT_WIDTH + 5, HEIGHT // 2)) == rgb("#102030")


def test_a_colour_search_with_no_hits_is_the_query_colour_alone() -> None:
    image = Image.open(io.BytesIO(draw_strip("#abcdef", []))).convert("RGB")
    assert image.size == (QUERY_WIDTH, HEIGHT)
    assert image.getpixel((5, 5)) == rgb("#abcdef")
