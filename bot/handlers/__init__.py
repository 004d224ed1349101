"""Feature routers, assembled in one explicit order; the catch-all comes last."""

from aiogram import Router

from bot.handlers import (
    admin,
    daily,
    errors,
    fallback,
    feedback_buttons,
    likes,
    media,
    personal,
    photos,
    privacy,
    search,
    start,
)


def get_routers() -> list[Router]:
    return [
        start.create_router(),
        media.create_router(),
        photos.create_router(),
        feedback_buttons.create_router(),
        personal.create_router(),
        likes.create_router(),
        errors.create_router(),
        admin.create_router(),
        daily.create_router(),
        privacy.create_router(),
        search.create_router(),
        fallback.create_router(),
    ]
