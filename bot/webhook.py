"""Webhook mode: Telegram POSTs each update to one of several bot replicas, through aiogram's aiohttp integration.

Every replica is the same process: it serves `BOT_WEBHOOK_PATH`, drops any request whose
`X-Telegram-Bot-Api-Secret-Token` header is not `BOT_WEBHOOK_SECRET` (401, the update is never processed), and
answers 200 at once, handling the update in the background (Telegram redelivers an update only when it gets no
200, so a slow photo never turns into a second answer). Replicas keep nothing that another would need in memory:
the FSM, caches, rate limits and the outbox are in Redis, everything else in Postgres.

Each replica calls setWebhook at start with the same URL and secret. That is idempotent (the last call wins with
identical values), needs no coordination, and a replica restarted alone re-asserts the webhook; a changed secret
takes effect when the replicas restart with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator

from aiogram import Bot, Dispatcher
from aiogram.webhook.aiohttp_server import SimpleRequestHandler, setup_application
from aiohttp import web

from bot.settings import BotSettings

logger = logging.getLogger(__name__)


def webhook_app(dp: Dispatcher, bot: Bot, *, secret: str, path: str) -> web.Application:
    """The aiohttp app of one replica: the update route (secret checked by aiogram) and the dispatcher's life cycle."""
    app = web.Application()
    SimpleRequestHandler(dispatcher=dp, bot=bot, secret_token=secret).register(app, path=path)
    setup_application(app, dp, bot=bot)
    return app


def _secret(settings: BotSettings) -> str:
    if settings.webhook_secret is None:  # the settings refuse webhook mode without one; this is for type checkers
        raise ValueError("BOT_WEBHOOK_SECRET is not set")
    return settings.webhook_secret.get_secret_value()


@contextlib.asynccontextmanager
async def serving(dp: Dispatcher, bot: Bot, settings: BotSettings) -> AsyncIterator[str]:
    """Listen on BOT_WEBHOOK_HOST:PORT while the block runs; yields the local URL of the update route (port 0
    picks a free port, as tests do)."""
    app = webhook_app(dp, bot, secret=_secret(settings), path=settings.webhook_path)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.webhook_host, settings.webhook_port)
        await site.start()
        port = runner.addresses[0][1]
        yield f"http://127.0.0.1:{port}{settings.webhook_path}"
    finally:
        await runner.cleanup()


async def register_webhook(dp: Dispatcher, bot: Bot, settings: BotSettings) -> None:
    """Point Telegram at BOT_WEBHOOK_URL with the secret; pending updates are kept (none is lost on a restart)."""
    if settings.webhook_url is None:
        raise ValueError("BOT_WEBHOOK_URL is not set")
    await bot.set_webhook(
        settings.webhook_url,
        secret_token=_secret(settings),
        allowed_updates=dp.resolve_used_update_types(),
        drop_pending_updates=False,
    )
    logger.info("webhook set: Telegram posts updates to %s", settings.webhook_url)


async def run_webhook(dp: Dispatcher, bot: Bot, settings: BotSettings) -> None:
    """`python -m bot` in webhook mode: serve, set the webhook, and run until SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with serving(dp, bot, settings) as local:
        logger.info("webhook server listening on %s", local)
        await register_webhook(dp, bot, settings)
        await stop.wait()
    logger.info("webhook server stopped")
