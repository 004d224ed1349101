"""One send layer for every call the bot makes to Telegram: pacing, flood-wait retries, harmless chat actions.

It is an aiogram session request middleware (`install_send_layer(bot)`), so every call made through the Bot —
handlers, the photo flow, the daily sender, aiogram's own `ChatActionSender` — passes through it unchanged.

What Telegram limits (https://core.telegram.org/bots/faq#my-bot-is-hitting-limits-how-do-i-avoid-this): about one
message a second per chat, short bursts tolerated, and about 30 messages a second overall. Beyond that it answers
429 with `retry_after`. So:

* **Messages are paced** by two token buckets, one per chat and one global. A "message" is any method whose
  name starts with `send` (except `sendChatAction`), `copyMessage(s)`, `forwardMessage(s)` or `editMessage`.
  Everything else (getUpdates, getFile, answerCallbackQuery, setMyCommands, deleteMessage, …) is never paced.
* **An album costs one token per item**, because Telegram counts each item as a message. The bucket may go into
  debt, so a whole album goes as soon as one token is free and the *next* message waits off the debt; one answer's
  album is never stalled behind its own size. (`charge_album_items=False` charges an album as one message.)
* **429 is retried**: the chat's bucket is paused for `retry_after` (every sender to that chat waits, and the
  bucket restarts empty, so the pause is not followed by a burst), then the call is tried again, until the flood
  waits of that call add up to more than its budget; then `TelegramRetryAfter` is raised. A 429 means Telegram did
  not execute the call, so retrying cannot duplicate a message. answerCallbackQuery is retried on a short budget: a
  callback query can be answered only for a few seconds, and an unanswered press keeps the button spinning.
* **Other errors are never retried**: after a network error the message may well have been delivered, and sending
  it again would show it twice.
* **sendChatAction is cosmetic**: never paced, never retried, and any failure is logged at debug and swallowed
  (the call returns True), so a refused "uploading photo…" can never abort the answer it decorates.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, cast

from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.exceptions import ClientDecodeError, TelegramAPIError, TelegramRetryAfter
from aiogram.methods import AnswerCallbackQuery, GetUpdates, SendChatAction
from aiogram.methods.base import TelegramType

from bot.metrics import count_flood_wait

if TYPE_CHECKING:
    from aiogram import Bot
    from aiogram.methods import Response, TelegramMethod

logger = logging.getLogger(__name__)

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[Any]]

PACED_PREFIXES = ("send", "copyMessage", "forwardMessage", "editMessage")
# Telegram lets a bot answer a callback query for about 15 s after the press; part of that is already gone.
CALLBACK_RETRY_BUDGET_S = 5.0
# Enough chats to cover everyone served within the last few hours; an evicted chat was idle, so its bucket was full.
MAX_CHATS = 10_000


class TokenBucket:
    """Rate `rate`/s with bursts of up to `burst`; requests reserve slots in arrival order, and may run into debt.

    Kept as a "theoretical arrival time" (GCRA) rather than a token count: `_tat` is when the bucket would be
    full again if nothing more were taken, so a reservation is one max() and no timer runs.
    """

    def __init__(self, rate: float, burst: int, *, clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError(f"a token bucket needs rate > 0 and burst >= 1, got rate={rate} burst={burst}")
        self._interval = 1.0 / rate
        self._tolerance = (burst - 1) * self._interval
        self._clock = clock
        self._sleep = sleep
        self._tat = -math.inf
        self._paused_until = -math.inf
        self._pauses = 0  # bumped by pause(): a reservation made before a pause is void

    def reserve(self, cost: float = 1.0) -> float:
        """Take `cost` tokens now; returns how many seconds the caller must wait before going."""
        now = self._clock()
        start = max(now, self._tat - self._tolerance)
        self._tat = max(self._tat, start) + cost * self._interval
        return start - now

    async def acquire(self, cost: float = 1.0) -> None:
        """Wait for a slot; a pause that begins while we wait sends us back into the queue."""
        while True:
            pauses = self._pauses
            delay = self.reserve(cost)
            if delay > 0:
                await self._sleep(delay)
            if self._pauses == pauses:
                return

    def pause(self, seconds: float) -> None:
        """Nothing goes for `seconds`; afterwards the bucket starts empty (no burst straight after a flood wait)."""
        self._paused_until = max(self._paused_until, self._clock() + seconds)
        # Everyone waiting re-reserves after a pause, so the queued reservations can be dropped, not kept as debt.
        self._tat = self._paused_until + self._tolerance
        self._pauses += 1

    @property
    def idle(self) -> bool:
        """Full and not paused: forgetting this bucket loses nothing."""
        now = self._clock()
        return self._tat <= now and self._paused_until <= now


class SendLayer(BaseRequestMiddleware):
    """Paces messages per chat and globally, retries flood waits within a budget, never fails on chat actions."""

    def __init__(
        self,
        *,
        chat_rate: float = 1.0,
        chat_burst: int = 3,
        global_rate: float = 30.0,
        global_burst: int = 30,
        retry_budget_s: float = 30.0,
        callback_retry_budget_s: float = CALLBACK_RETRY_BUDGET_S,
        charge_album_items: bool = True,
        max_chats: int = MAX_CHATS,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if max_chats < 1:
            raise ValueError("max_chats must be at least 1")
        self._chat_rate = chat_rate
        self._chat_burst = chat_burst
        self._retry_budget_s = retry_budget_s
        self._callback_retry_budget_s = callback_retry_budget_s
        self._charge_album_items = charge_album_items
        self._max_chats = max_chats
        self._clock = clock
        self._sleep = sleep
        self._global = TokenBucket(global_rate, global_burst, clock=clock, sleep=sleep)
        TokenBucket(chat_rate, chat_burst)  # validate the per-chat parameters now, not at the first message
        self._chats: OrderedDict[str, TokenBucket] = OrderedDict()

    @property
    def chats_tracked(self) -> int:
        """How many per-chat buckets are held (bounded by `max_chats`)."""
        return len(self._chats)

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        if isinstance(method, SendChatAction):
            return await self._chat_action(make_request, bot, method)
        long_poll = isinstance(method, GetUpdates)  # a plain bool: narrowing `method` would lose its result type
        if long_poll:  # polling has its own back-off; a long poll must not be paced
            return await make_request(bot, method)
        paced = is_message(method)
        chat = _chat_key(method) if paced else None
        cost = self._cost(method)
        budget = self._callback_retry_budget_s if isinstance(method, AnswerCallbackQuery) else self._retry_budget_s
        waited = 0.0
        while True:
            if paced:
                if chat is not None:
                    await self._chat_bucket(chat).acquire(cost)
                await self._global.acquire(cost)
            try:
                return await make_request(bot, method)
            except TelegramRetryAfter as flood:
                wait = float(flood.retry_after)
                gave_up = waited + wait > budget
                count_flood_wait(method.__api_method__, gave_up=gave_up)
                if gave_up:
                    logger.warning(
                        "flood wait: %s to chat %s gives up after %.0f s (asked to wait %.0f s more)",
                        method.__api_method__,
                        chat,
                        waited,
                        wait,
                    )
                    raise
                waited += wait
                logger.info("flood wait: %s to chat %s, retrying in %.0f s", method.__api_method__, chat, wait)
                if chat is not None:
                    self._chat_bucket(chat).pause(wait)  # the acquire() above waits it out, with the chat's queue
                else:
                    await self._sleep(wait)

    async def _chat_action(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: SendChatAction,
    ) -> Response[TelegramType]:
        try:
            return await make_request(bot, cast("TelegramMethod[TelegramType]", method))
        except (TelegramAPIError, ClientDecodeError) as error:
            logger.debug("chat action %r to chat %s failed, ignored: %s", method.action, method.chat_id, error)
            # The chain returns the method's result itself (aiogram types it as Response); sendChatAction's is True.
            return cast("Response[TelegramType]", True)

    def _cost(self, method: TelegramMethod[Any]) -> float:
        if not self._charge_album_items:
            return 1.0
        items = getattr(method, "media", None) if method.__api_method__ == "sendMediaGroup" else None
        if items is None and method.__api_method__ in ("copyMessages", "forwardMessages"):
            items = getattr(method, "message_ids", None)
        return float(max(1, len(items))) if isinstance(items, list) else 1.0

    def _chat_bucket(self, chat: str) -> TokenBucket:
        bucket = self._chats.get(chat)
        if bucket is not None:
            self._chats.move_to_end(chat)
            return bucket
        if len(self._chats) >= self._max_chats:
            self._evict()
        bucket = TokenBucket(self._chat_rate, self._chat_burst, clock=self._clock, sleep=self._sleep)
        self._chats[chat] = bucket
        return bucket

    def _evict(self) -> None:
        """Make room for one more: drop every idle bucket (one scan serves many new chats), else the least recent."""
        for chat in [chat for chat, bucket in self._chats.items() if bucket.idle]:
            del self._chats[chat]
        while len(self._chats) >= self._max_chats:
            self._chats.popitem(last=False)


def is_message(method: TelegramMethod[Any]) -> bool:
    """Whether Telegram counts this call against the message limits (and so it is paced)."""
    name = method.__api_method__
    return name != "sendChatAction" and name.startswith(PACED_PREFIXES)


def _chat_key(method: TelegramMethod[Any]) -> str | None:
    chat_id = getattr(method, "chat_id", None)  # None for inline-message edits: those are paced globally only
    return None if chat_id is None else str(chat_id)


def install_send_layer(bot: Bot, layer: SendLayer | None = None) -> SendLayer:
    """Put `layer` (default settings if None) in front of every call `bot` makes; one layer per bot session."""
    if any(isinstance(existing, SendLayer) for existing in bot.session.middleware):
        raise ValueError("this bot's session already has a send layer: a second one would pace twice")
    layer = layer or SendLayer()
    bot.session.middleware(layer)
    return layer
