"""Sending a recommendation set as an album, uploading each artwork image once and re-sending its file_id."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from aiogram import Bot
from aiogram.types import BufferedInputFile, InputMediaPhoto

from bot.inference_client import InferenceClient
from storage.repositories import ArtworkRecord

logger = logging.getLogger(__name__)

CAPTION_LIMIT = 1024


def caption_for(label: str, position: int, hit: dict[str, Any]) -> str:
    """`A1 · The Starry Night — Vincent van Gogh, 1889`; missing fields simply left out."""
    title = str(hit.get("title") or "Untitled")
    who = ", ".join(str(part) for part in (hit.get("artist"), hit.get("year")) if part)
    text = f"{label}{position} · {title}" + (f" — {who}" if who else "")
    return text[:CAPTION_LIMIT]


def artwork_record(hit: dict[str, Any]) -> ArtworkRecord:
    return ArtworkRecord(
        id=int(hit["artwork_id"]),
        title=str(hit.get("title") or ""),
        artist=str(hit.get("artist") or ""),
        year=str(hit.get("year") or ""),
        style=str(hit.get("style") or ""),
        genre=str(hit.get("genre") or ""),
        source_path=str(hit.get("file") or ""),
    )


async def send_set(
    bot: Bot,
    chat_id: int,
    label: str,
    hits: Sequence[dict[str, Any]],
    known_file_ids: dict[int, str],
    inference: InferenceClient,
    captions: Sequence[str] | None = None,
) -> dict[int, str]:
    """Send one set as an album; return the file_ids Telegram assigned to images uploaded this time.

    Captions default to `A1 · title — artist, year`; personal sets pass their own (with the "because" line).
    """
    missing = [int(h["artwork_id"]) for h in hits if int(h["artwork_id"]) not in known_file_ids]
    downloaded = await asyncio.gather(*(inference.artwork_image(artwork_id) for artwork_id in missing))
    fresh = dict(zip(missing, downloaded, strict=True))
    media = []
    for position, hit in enumerate(hits, start=1):
        artwork_id = int(hit["artwork_id"])
        source: str | BufferedInputFile = known_file_ids.get(artwork_id) or BufferedInputFile(
            fresh[artwork_id], filename=f"artwork-{artwork_id}.jpg"
        )
        caption = captions[position - 1] if captions is not None else caption_for(label, position, hit)
        media.append(InputMediaPhoto(media=source, caption=caption[:CAPTION_LIMIT]))
    if len(media) == 1:
        message = await bot.send_photo(chat_id, media[0].media, caption=media[0].caption)
        messages = [message]
    else:
        messages = await bot.send_media_group(chat_id, media)
    uploaded: dict[int, str] = {}
    for hit, message in zip(hits, messages, strict=False):
        artwork_id = int(hit["artwork_id"])
        if artwork_id in fresh and message.photo:
            uploaded[artwork_id] = message.photo[-1].file_id
    return uploaded
