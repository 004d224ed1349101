"""`python -m bot`: migrate the database, then long-poll Telegram until stopped."""

from __future__ import annotations

import asyncio
import logging

from redis.asyncio import BlockingConnectionPool, Redis

from bot.app import background, create_bot, create_dispatcher, set_commands
from bot.daily_sender import DailySender, daily_picks
from bot.inference_client import InferenceClient
from bot.logs import configure_logging
from bot.settings import BotSettings
from storage.db import create_pool
from storage.migrate import migrate


async def main(settings: BotSettings) -> None:
    pool = await create_pool(settings.postgres_dsn)
    # Blocking: a burst of updates waits for a free connection instead of failing with "Too many connections".
    redis = Redis(connection_pool=BlockingConnectionPool.from_url(settings.redis_url, max_connections=64, timeout=20))
    inference = InferenceClient(
        settings.inference_url,
        settings.inference_token.get_secret_value(),
        look_timeout=settings.look_timeout_s,
        analyze_timeout=settings.analyze_timeout_s,
    )
    bot = create_bot(settings)
    try:
        applied = await migrate(pool)
        if applied:
            logging.getLogger(__name__).info("migrations applied: %s", ", ".join(applied))
        dp = create_dispatcher(settings, pool, redis, inference)
        await set_commands(bot)
        async with (
            background(dp["recorder"], settings.outbox_flush_interval_s, dp["arena_refresh"]),
            daily_picks(DailySender.from_settings(bot, dp["deps"], settings), settings.daily_poll_s),
        ):
            await dp.start_polling(bot, handle_signals=True)
    finally:
        await bot.session.close()
        await inference.close()
        await redis.aclose()
        await pool.close()


def run() -> None:
    settings = BotSettings()  # type: ignore[call-arg]
    token = settings.token.get_secret_value()
    configure_logging([token, token.split(":", 1)[-1], settings.inference_token.get_secret_value()])
    logging.getLogger("aiogram.event").setLevel(logging.WARNING)  # one line per update is noise at scale
    asyncio.run(main(settings))


if __name__ == "__main__":
    run()
