"""The Dispatcher: services as one workflow-data entry, the per-update middlewares, the routers in order."""

from __future__ import annotations

from aiogram import Dispatcher
from aiogram.fsm.storage.redis import RedisStorage

from bot.handlers import get_routers
from bot.middlewares import DatabaseMiddleware, RateLimitMiddleware, UserLanguageMiddleware
from bot.services import Services


def create_dispatcher(services: Services) -> Dispatcher:
    """Services go in as one workflow-data entry; the per-update database and language come from middlewares."""
    dp = Dispatcher(storage=RedisStorage(services.redis), services=services)
    database = DatabaseMiddleware(services.uow)
    user_language = UserLanguageMiddleware()
    for observer in (dp.message, dp.callback_query):
        observer.outer_middleware(database)
        observer.outer_middleware(user_language)
    rate_limit = RateLimitMiddleware(services.rate_limiter)
    dp.message.middleware(rate_limit)
    dp.callback_query.middleware(rate_limit)
    dp.include_routers(*get_routers())
    return dp
