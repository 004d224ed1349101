"""End to end, through the real inference service: /color with a hex or a Russian name answers with the palette
strip (drawn from the works' real palettes) and one set with like buttons, recorded like other sets; an unknown
colour and an empty /color are answered kindly; and a photo's tags show in its description message."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from PIL import Image

from bot.callbacks import LikeCallback
from bot.inference_client import InferenceClient
from bot.palette_strip import HEIGHT, segments
from bot.texts import t, tag_line
from inference.contract import PaletteColour
from inference.palette import extract_palette, palette_hex
from tests.bot.conftest import StartBot
from tests.bot.telegram_stub import Call, TelegramStub
from tests.bot.test_photo_flow import albums, buttons, is_panel, send_photo, wait_answer
from tests.fixtures_gallery import SERVICE_TOKEN


@pytest.fixture
async def client(inference_url: str) -> AsyncIterator[InferenceClient]:
    client = InferenceClient(inference_url, SERVICE_TOKEN, look_timeout=30, analyze_timeout=120)
    yield client
    await client.close()


def is_like_panel(telegram: TelegramStub, user: int, mark: int) -> Any:
    """The panel under a single set: like buttons, no vote."""

    def check(call: Call) -> bool:
        markup = call.params.get("reply_markup") or {}
        data = [str(b.get("callback_data", "")) for row in markup.get("inline_keyboard", []) for b in row]
        return (
            call.method == "sendMessage"
            and str(call.params.get("chat_id")) == str(user)
            and bool(data)
            and all(d.startswith("l:") for d in data)
            and telegram.calls.index(call) >= mark
        )

    return check


def rgb(hex_: str) -> tuple[int, int, int]:
    return int(hex_[1:3], 16), int(hex_[3:5], 16), int(hex_[5:7], 16)


def close(pixel: Any, hex_: str, tolerance: int = 3) -> bool:
    return all(abs(int(p) - c) <= tolerance for p, c in zip(pixel, rgb(hex_), strict=True))


async def colour_answer(telegram: TelegramStub, user: int, text: str, lang: str) -> tuple[Call, Call, Call]:
    """Send `text` (a /color command); the strip, the album and the like panel, in the order they came."""
    mark = len(telegram.calls)
    telegram.send_message(user, lang, text=text)
    panel = await telegram.wait_for(is_like_panel(telegram, user, mark), timeout=120)
    strip = next(c for c in telegram.sent("sendPhoto", chat_id=user) if telegram.calls.index(c) >= mark)
    album = next(c for c in albums(telegram, user) if telegram.calls.index(c) >= mark)
    assert telegram.calls.index(strip) < telegram.calls.index(album) < telegram.calls.index(panel)
    return strip, album, panel


@pytest.mark.parametrize(
    ("text", "lang", "hex_"),
    [("/color #1E90FF", "en", "#1e90ff"), ("/color охра", "ru", "#cc7722")],
)
async def test_a_colour_gets_the_strip_of_real_palettes_and_a_set_to_like(
    telegram: TelegramStub,
    start_bot: StartBot,
    pool: asyncpg.Pool,
    new_id: Any,
    gallery_source: tuple[Path, Path],
    text: str,
    lang: str,
    hex_: str,
) -> None:
    await start_bot()
    user = new_id()
    strip_call, album, panel = await colour_answer(telegram, user, text, lang)

    assert strip_call.params["caption"] == t(lang, "color_strip", hex=hex_)
    async with pool.acquire() as conn:
        analysis = await conn.fetchrow("SELECT * FROM analyses WHERE user_id = $1", user)
        assert analysis is not None
        (shown,) = await conn.fetch("SELECT * FROM shown_sets WHERE analysis_id = $1", analysis["id"])
        rows = await conn.fetch("SELECT id, source_path FROM artworks WHERE id = ANY($1)", shown["artwork_ids"])
    files: dict[int, str] = {row["id"]: row["source_path"] for row in rows}
    assert (analysis["kind"], analysis["query_text"], analysis["image_sha256"]) == ("colour", hex_, None)
    assert (shown["recommender"], shown["side"], len(shown["artwork_ids"])) == ("by_colour", "left", 5)
    captions = [str(m["caption"]) for m in album.params["media"]]
    assert [c.split(" · ")[0] for c in captions] == ["1", "2", "3", "4", "5"]
    assert [b["text"] for b in buttons(panel)] == ["1 🤍", "2 🤍", "3 🤍", "4 🤍", "5 🤍"]
    assert panel.params["text"] == t(lang, "ask_likes_interleaved")

    # The strip: the colour asked for, then each shown work's palette, computed here again from its image file.
    images, _ = gallery_source
    palettes = []
    for artwork_id in shown["artwork_ids"]:
        with Image.open(images / files[artwork_id]) as work:
            palettes.append([PaletteColour(hex=h, weight=w) for h, w in palette_hex(extract_palette(work))])
    (upload,) = strip_call.files.values()  # aiogram attaches the file under a random part name
    strip = Image.open(io.BytesIO(upload)).convert("RGB")
    placed = segments(hex_, palettes)
    assert strip.width == placed[-1].x1
    for segment in placed:
        if segment.x1 - segment.x0 >= 3:  # a sliver's centre may sit on a neighbour after rounding
            assert close(strip.getpixel((segment.centre, HEIGHT // 2)), segment.hex), segment

    like = next(b for b in buttons(panel) if b["text"] == "2 🤍")
    mark = len(telegram.calls)
    telegram.press(user, like["callback_data"], lang=lang)
    assert (await wait_answer(telegram, mark)).params.get("text") == t(lang, "liked")
    async with pool.acquire() as conn:
        liked = await conn.fetchrow("SELECT artwork_id, analysis_id FROM likes WHERE user_id = $1", user)
    assert liked is not None and (liked["artwork_id"], liked["analysis_id"]) == (
        shown["artwork_ids"][1],
        analysis["id"],
    )
    assert LikeCallback.unpack(like["callback_data"]).artwork_id == shown["artwork_ids"][1]


async def test_an_unknown_or_missing_colour_is_answered_with_examples(
    telegram: TelegramStub, start_bot: StartBot, pool: asyncpg.Pool, new_id: Any
) -> None:
    await start_bot()
    user = new_id()
    telegram.send_message(user, "ru", text="/color цвет морской волны в крапинку")
    said = await telegram.wait_text(user, "Я не знаю цвет «цвет морской волны в крапинку»")
    assert "#c04020" in said.params["text"]
    telegram.send_message(user, "ru", text="/color")
    hint = await telegram.wait_text(user, "Назовите цвет")
    assert "/color охра" in hint.params["text"]
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM analyses WHERE user_id = $1", user) == 0
    assert telegram.sent("sendPhoto", chat_id=user) == []


async def test_the_description_message_shows_the_photos_tags_in_the_users_language(
    telegram: TelegramStub,
    start_bot: StartBot,
    new_id: Any,
    gallery_source: tuple[Path, Path],
    client: InferenceClient,
) -> None:
    await start_bot()
    images, _ = gallery_source
    photo = (images / "work_006.jpg").read_bytes()
    tags = (await client.look(photo, 5)).tags
    assert {tag.kind for tag in tags} >= {"style", "genre", "mood"}
    for lang in ("ru", "en"):
        user = new_id()
        send_photo(telegram, user, photo, lang=lang)
        await telegram.wait_for(is_panel(user), timeout=120)
        description = next(
            c.params["text"] for c in telegram.sent("sendMessage", chat_id=user) if c.params["text"].startswith("🖼")
        )
        expected = tag_line(lang, tags)
        assert description.endswith(f"\n\n{expected}") and expected.count(" · ") == 2
        best_style = max((tag for tag in tags if tag.kind == "style"), key=lambda tag: tag.score)
        assert (best_style.ru if lang == "ru" else best_style.name).replace("_", " ") in expected
