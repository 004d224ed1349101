"""The bot's /metrics as Prometheus scrapes it: votes, likes, Telegram's 429s and the outbox, after real presses
through the Bot API stand-in."""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any

import aiohttp
import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import TelegramRetryAfter
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from bot.metrics import metrics_server
from bot.sending import SendLayer, install_send_layer
from storage.cache import FeedbackOutbox
from tests.bot.conftest import BOT_TOKEN, StartBot
from tests.bot.telegram_stub import TelegramStub
from tests.bot.test_photo_flow import analysis_id_of, buttons, is_panel, send_photo, vote_data, wait_answer
from tests.factories import image_bytes, synthetic_artwork
from tests.private_services import free_port
from tests.scrape import sample


async def scrape(port: int) -> str:
    async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}/metrics") as response:
        assert response.status == 200
        assert response.content_type == "text/plain"
        return await response.text()


def value(text: str, name: str, **labels: str) -> float:
    return sample(text, name, **labels) or 0.0


async def test_votes_likes_flood_waits_and_the_outbox_are_scraped(
    telegram: TelegramStub, start_bot: StartBot, bot_redis: Redis, new_id: Any
) -> None:
    port = free_port()
    await start_bot(metrics_port=port)
    before = await scrape(port)
    user = new_id()
    send_photo(telegram, user, image_bytes(synthetic_artwork(411)))
    panel = await telegram.wait_for(is_panel(user), timeout=120)

    telegram.failures["answerCallbackQuery"] = [429]  # the vote's answer is refused once, then retried
    mark = len(telegram.calls)
    telegram.press(user, vote_data(analysis_id_of(panel), "left"))
    assert (await wait_answer(telegram, mark)).params.get("text") == "Thanks, your vote is saved!"
    like = next(b for b in buttons(panel) if b["text"].endswith("🤍"))
    mark = len(telegram.calls)
    telegram.press(user, like["callback_data"])
    assert (await wait_answer(telegram, mark)).params.get("text") == "❤️ Liked"
    # an event that can never be written: the outbox replay sets it aside as a dead letter
    await FeedbackOutbox(bot_redis).push({"kind": "vote"})
    async with asyncio.timeout(10):
        while await FeedbackOutbox(bot_redis).dead_letter_count() == 0:
            await asyncio.sleep(0.05)
    after = await scrape(port)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("artmatch_bot_votes_total", choice="left", outcome="saved") == 1
    assert grew("artmatch_bot_likes_total", reaction="like", outcome="saved") == 1
    assert grew("artmatch_bot_likes_total", reaction="dislike", outcome="saved") == 0
    assert grew("artmatch_bot_telegram_429_total", method="answerCallbackQuery", outcome="retried") == 1
    assert sample(after, "artmatch_bot_outbox_length") == 0.0
    assert sample(after, "artmatch_bot_outbox_dead_letters") == 1.0


async def test_a_send_that_exhausts_its_budget_counts_as_given_up(telegram: TelegramStub) -> None:
    session = AiohttpSession(api=TelegramAPIServer.from_base(telegram.base_url))
    bot = Bot(token=BOT_TOKEN, session=session)
    install_send_layer(bot, SendLayer(chat_rate=10.0, chat_burst=2, retry_budget_s=0.5))
    labels = {"method": "sendMessage", "outcome": "gave_up"}
    before = REGISTRY.get_sample_value("artmatch_bot_telegram_429_total", labels) or 0.0
    telegram.flood_waits[5] = 1_000
    try:
        with pytest.raises(TelegramRetryAfter):  # "retry after 1" is already over the budget: no wait
            await bot.send_message(5, "never")
    finally:
        await session.close()
    assert REGISTRY.get_sample_value("artmatch_bot_telegram_429_total", labels) == before + 1


async def test_a_taken_metrics_port_does_not_stop_the_bot(bot_redis: Redis, caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with caplog.at_level(logging.ERROR, logger="bot.metrics"):
            async with metrics_server("127.0.0.1", port, FeedbackOutbox(bot_redis)):
                pass  # the bot would run here
    assert f"cannot listen on 127.0.0.1:{port}" in caplog.text
