"""Feature routers, assembled in one explicit order; the catch-all comes last."""

from aiogram import Router

from bot.handlers import errors, feedback_buttons, fallback, photos, start


def get_routers() -> list[Router]:
    return [start.router, photos.router, feedback_buttons.router, errors.router, fallback.router]
