"""The palette strip answered to /color: the colour asked for, then each hit's dominant colours side by side.

Left to right: one block of the query colour, then one block per hit (in the order of the album that follows),
each split into its palette's colours with widths proportional to their weights. The layout is computed apart
from the drawing (`segments`), so it is tested without reading pixels back, and the drawing is plain Pillow.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image, ImageDraw

from inference.contract import PaletteColour

HEIGHT = 120
QUERY_WIDTH = 120
HIT_WIDTH = 120
GAP = 8
BACKGROUND = "#ffffff"


@dataclass(frozen=True)
class Segment:
    """Pixels [x0, x1) of the strip, full height, painted `hex`; `hit` is the hit's index (None: the query)."""

    x0: int
    x1: int
    hex: str
    hit: int | None

    @property
    def centre(self) -> int:
        return (self.x0 + self.x1) // 2


def strip_width(hits: int) -> int:
    return QUERY_WIDTH + hits * (GAP + HIT_WIDTH)


def segments(query_hex: str, palettes: Sequence[Sequence[PaletteColour]]) -> list[Segment]:
    """Where each colour goes. A hit's colours share its block by weight (equally when the weights are all 0); the
    boundaries are rounded from the running total, so the block is covered exactly, with no gap or overlap."""
    placed = [Segment(0, QUERY_WIDTH, query_hex, None)]
    for index, palette in enumerate(palettes):
        if not palette:
            continue
        start = QUERY_WIDTH + index * (GAP + HIT_WIDTH) + GAP
        total = sum(colour.weight for colour in palette)
        shares = [c.weight / total for c in palette] if total > 0 else [1 / len(palette)] * len(palette)
        running, x0 = 0.0, start
        for colour, share in zip(palette, shares, strict=True):
            running += share
            x1 = start + round(running * HIT_WIDTH)
            if x1 > x0:
                placed.append(Segment(x0, x1, colour.hex, index))
            x0 = x1
    return placed


def draw_strip(query_hex: str, palettes: Sequence[Sequence[PaletteColour]]) -> bytes:
    """The strip as PNG bytes (a hit without a palette leaves its block blank)."""
    image = Image.new("RGB", (strip_width(len(palettes)), HEIGHT), BACKGROUND)
    pen = ImageDraw.Draw(image)
    for segment in segments(query_hex, palettes):
        pen.rectangle((segment.x0, 0, segment.x1 - 1, HEIGHT - 1), fill=segment.hex)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
