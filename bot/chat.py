"""Who an answer goes to, and the order answers go out in one chat.

`Chat` replaces the bot, chat id, user id, language and photo message that used to travel through a dozen
functions. `ChatTurns` makes the photos of one chat take turns: the answers to an album (or to photos sent in
quick succession) come one photo at a time, in the order they were sent, never interleaved. `AlbumCollector`
gathers the parts of one Telegram album (they arrive as separate updates, in any order, a few milliseconds
apart) so they can be answered in message order.

Both are per process: one polling bot process owns each chat's updates. Webhook replicas (bot/webhook.py)
do not share them, so a chat's updates spread over replicas lose only this ordering, not answers.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiogram import Bot
from aiogram.types import Message, ReplyParameters


@dataclass(frozen=True)
class Chat:
    """Where an answer goes: every message of an answer replies to the photo it answers (`reply_to`)."""

    bot: Bot
    chat_id: int
    user_id: int
    lang: str
    reply_to: int | None = None

    @property
    def reply(self) -> ReplyParameters | None:
        """Reply to the photo, but still send if the user deleted it meanwhile."""
        if self.reply_to is None:
            return None
        return ReplyParameters(message_id=self.reply_to, allow_sending_without_reply=True)

    async def say(self, text: str, **kwargs: object) -> Message:
        return await self.bot.send_message(self.chat_id, text, reply_parameters=self.reply, **kwargs)  # type: ignore[arg-type]


class ChatTurns:
    """One photo at a time per chat, first come first served (asyncio locks are FIFO)."""

    def __init__(self) -> None:
        self._locks: dict[int, asyncio.Lock] = {}
        self._waiting: dict[int, int] = {}

    @contextlib.asynccontextmanager
    async def turn(self, chat_id: int) -> AsyncIterator[None]:
        lock = self._locks.setdefault(chat_id, asyncio.Lock())
        self._waiting[chat_id] = self._waiting.get(chat_id, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._waiting[chat_id] -= 1
            if not self._waiting[chat_id]:  # nobody queued: forget the chat, so idle chats cost nothing
                del self._waiting[chat_id]
                del self._locks[chat_id]


class AlbumCollector:
    """Collects the messages of one album until `quiet_s` passes without a new part.

    The first part's handler gets the whole album in message order; the other parts' handlers get None (their
    photo is answered by the first). Telegram sends an album's parts back to back, so a short wait suffices.
    """

    def __init__(self, quiet_s: float = 0.6) -> None:
        self._quiet_s = quiet_s
        self._albums: dict[tuple[int, str], list[Message]] = {}
        self._arrived: dict[tuple[int, str], asyncio.Event] = {}

    async def collect(self, message: Message) -> list[Message] | None:
        assert message.media_group_id is not None
        key = (message.chat.id, message.media_group_id)
        if key in self._albums:
            self._albums[key].append(message)
            self._arrived[key].set()
            return None
        parts = self._albums[key] = [message]
        arrived = self._arrived[key] = asyncio.Event()
        try:
            while True:
                arrived.clear()
                try:
                    await asyncio.wait_for(arrived.wait(), self._quiet_s)
                except TimeoutError:
                    break
        finally:
            del self._albums[key], self._arrived[key]
        return sorted(parts, key=lambda part: part.message_id)
