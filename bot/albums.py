"""Sending a set of works as an album: each artwork image is uploaded once, its Telegram file_id stored and
re-sent afterwards. Used by the photo flow and the personal sets alike."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence

from aiogram.types import BufferedInputFile, InputMediaPhoto, Message

from bot.chat import Chat
from bot.inference_client import InferenceClient
from inference.contract import Artwork
from storage.db import DATABASE_DOWN, UnitOfWork
from storage.repositories import ArtworkRecord, Repo

logger = logging.getLogger(__name__)

CAPTION_LIMIT = 1024


def caption_for(label: str, position: int, work: Artwork) -> str:
    """`A1 · The Starry Night — Vincent van Gogh, 1889`; missing fields simply left out."""
    title = work.title or "Untitled"
    who = ", ".join(part for part in (work.artist, work.year) if part)
    text = f"{label}{position} · {title}" + (f" — {who}" if who else "")
    return text[:CAPTION_LIMIT]


def ids_of(works: Sequence[Artwork]) -> list[int]:
    return [work.artwork_id for work in works]


async def known_file_ids(uow: UnitOfWork, works: Sequence[Artwork]) -> dict[int, str]:
    """Telegram file_ids of works uploaded before; an empty map while the database is down means re-uploading."""
    try:
        async with uow() as repo:
            return await repo.artworks.get_file_ids(ids_of(works))
    except DATABASE_DOWN:
        return {}


async def send_album(
    chat: Chat,
    works: Sequence[Artwork],
    captions: Sequence[str],
    known: Mapping[int, str],
    inference: InferenceClient,
) -> dict[int, str]:
    """Send the works as one album (a single work as a photo); return the file_ids of images uploaded now."""
    missing = [work.artwork_id for work in works if work.artwork_id not in known]
    downloaded = await asyncio.gather(*(inference.artwork_image(artwork_id) for artwork_id in missing))
    fresh = dict(zip(missing, downloaded, strict=True))
    media = [
        InputMediaPhoto(
            media=known.get(work.artwork_id)
            or BufferedInputFile(fresh[work.artwork_id], filename=f"artwork-{work.artwork_id}.jpg"),
            caption=caption[:CAPTION_LIMIT],
        )
        for work, caption in zip(works, captions, strict=True)
    ]
    messages: Sequence[Message]
    if len(media) == 1:
        messages = [
            await chat.bot.send_photo(
                chat.chat_id, media[0].media, caption=media[0].caption, reply_parameters=chat.reply
            )
        ]
    else:
        messages = await chat.bot.send_media_group(chat.chat_id, media, reply_parameters=chat.reply)  # type: ignore[arg-type]
    return {
        work.artwork_id: message.photo[-1].file_id
        for work, message in zip(works, messages, strict=False)
        if work.artwork_id in fresh and message.photo
    }


async def store_works(repo: Repo, works: Sequence[Artwork], uploaded: Mapping[int, str]) -> None:
    """The works shown (so feedback on them has rows to point at) and the file_ids Telegram gave their images."""
    records = {work.artwork_id: artwork_record(work) for work in works}
    await repo.artworks.upsert_many(list(records.values()))
    for artwork_id, file_id in uploaded.items():
        await repo.artworks.set_file_id(artwork_id, file_id)


def artwork_record(work: Artwork) -> ArtworkRecord:
    return ArtworkRecord(
        id=work.artwork_id,
        title=work.title,
        artist=work.artist,
        year=work.year,
        style=work.style,
        genre=work.genre,
        source_path=work.file,
    )
