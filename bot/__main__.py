"""`python -m bot`: migrate the database, then long-poll Telegram (BOT_MODE=polling, the default) or serve
Telegram's webhook (BOT_MODE=webhook, see bot/webhook.py) until stopped."""

from __future__ import annotations

import asyncio
import logging

from pydantic import ValidationError

from bot.background import running
from bot.dispatcher import create_dispatcher
from bot.logs import configure_logging
from bot.services import background_jobs, build, set_commands, warn_if_redis_forgets
from bot.settings import BotSettings
from bot.webhook import run_webhook
from storage.migrate import migrate

logger = logging.getLogger(__name__)


async def main(settings: BotSettings) -> None:
    async with build(settings) as services:
        applied = await migrate(services.pool)
        if applied:
            logger.info("migrations applied: %s", ", ".join(applied))
        await warn_if_redis_forgets(services.redis)
        await set_commands(services.bot)
        dp = create_dispatcher(services)
        async with running(background_jobs(services)):
            if settings.mode == "webhook":
                await run_webhook(dp, services.bot, settings)
            else:
                await dp.start_polling(services.bot, handle_signals=True)


TOKEN_HELP = (
    "BOT_TOKEN is missing or a placeholder: get a token from @BotFather in Telegram (/newbot) and set BOT_TOKEN in .env"
)


def settings_error(exc: ValidationError) -> str:
    """One line an operator can act on: the bot token's own, or each bad setting named."""
    errors = exc.errors()
    if any(error["loc"][:1] == ("token",) for error in errors):
        return TOKEN_HELP
    named = "; ".join(f"BOT_{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in errors)
    return f"invalid bot settings: {named}"


def load_settings() -> BotSettings:
    try:
        return BotSettings()  # token and inference_token come from the environment (or .env)
    except ValidationError as exc:
        raise SystemExit(settings_error(exc)) from None


def run() -> None:
    settings = load_settings()
    token = settings.token.get_secret_value()
    secrets = [token, token.split(":", 1)[-1], settings.inference_token.get_secret_value()]
    if settings.webhook_secret is not None:
        secrets.append(settings.webhook_secret.get_secret_value())
    configure_logging(secrets)
    logging.getLogger("aiogram.event").setLevel(logging.WARNING)  # one line per update is noise at scale
    asyncio.run(main(settings))


if __name__ == "__main__":
    run()
