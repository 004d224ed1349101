"""Feature routers, assembled in one explicit order; the catch-all comes last."""

from aiogram import Router

from bot.handlers import errors, fallback, feedback_buttons, photos, start


def get_routers() -> list[Router]:
    return [
        start.create_router(),
        photos.create_router(),
        feedback_buttons.create_router(),
        errors.create_router(),
        fallback.create_router(),
    ]
