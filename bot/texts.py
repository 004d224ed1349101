"""The bot's message catalogue: every user-facing string in Russian and English, in one place.

Handlers ask for a key; `language_for` picks the catalogue from the user's explicit /lang choice or their
Telegram language_code. Keeping strings here (not in handlers) keeps both languages complete (a test checks).
"""

from __future__ import annotations

SUPPORTED = ("en", "ru")
DEFAULT = "en"

CATALOGUE: dict[str, dict[str, str]] = {
    "start": {
        "en": (
            "Hi! I'm ArtMatch. Send me a photo of a painting — one you saw in a museum or simply like — "
            "and I'll describe it and show you two sets of similar works from the gallery.\n\n"
            "Tell me which set is better and tap ❤️ on works you love: that teaches me your taste.\n"
            "/help — how it works · /lang — language"
        ),
        "ru": (
            "Привет! Я ArtMatch. Пришлите фото картины — увиденной в музее или просто любимой, — "
            "и я опишу её и покажу два набора похожих работ из галереи.\n\n"
            "Скажите, какой набор лучше, и отмечайте ❤️ понравившиеся работы — так я узнаю ваш вкус.\n"
            "/help — как это работает · /lang — язык"
        ),
    },
    "help": {
        "en": (
            "How it works:\n"
            "1. Send a photo (or a JPEG/PNG/WebP file up to 20 MB).\n"
            "2. First comes a set chosen by look, then a description and a set chosen by meaning.\n"
            "3. Vote for the better set: A, B, both or neither.\n"
            "4. Tap a number under the sets: once ❤️ like, twice 👎 dislike, three times to undo.\n"
            "/lang — switch language"
        ),
        "ru": (
            "Как это работает:\n"
            "1. Пришлите фото (или файл JPEG/PNG/WebP до 20 МБ).\n"
            "2. Сначала придёт набор, похожий по виду, затем описание и набор, близкий по смыслу.\n"
            "3. Проголосуйте за лучший набор: A, B, оба или ни один.\n"
            "4. Нажмите номер под наборами: один раз ❤️ нравится, дважды 👎 не нравится, трижды — отмена.\n"
            "/lang — сменить язык"
        ),
    },
    "choose_language": {"en": "Choose your language:", "ru": "Выберите язык:"},
    "language_set": {"en": "Language: English 🇬🇧", "ru": "Язык: русский 🇷🇺"},
    "rate_limited": {
        "en": "You're sending photos faster than I can look at them. Try again in {seconds} s.",
        "ru": "Вы присылаете фото быстрее, чем я успеваю их рассмотреть. Попробуйте через {seconds} с.",
    },
    "working": {
        "en": "Looking at your picture… 🎨",
        "ru": "Рассматриваю вашу картину… 🎨",
    },
    "too_big": {
        "en": "This file is too big: I can take images up to 20 MB. Please send a smaller one.",
        "ru": "Файл слишком большой: я принимаю изображения до 20 МБ. Пришлите, пожалуйста, файл поменьше.",
    },
    "not_an_image": {
        "en": "I couldn't read this as a picture. Please send a photo or a JPEG, PNG or WebP image.",
        "ru": "Не получилось открыть это как изображение. Пришлите фото или картинку JPEG, PNG или WebP.",
    },
    "empty_file": {
        "en": "This file is empty. Please send the picture again.",
        "ru": "Файл пустой. Пришлите изображение ещё раз.",
    },
    "unsupported_format": {
        "en": "I work with still images only: JPEG, PNG or WebP. GIFs, videos and stickers won't do.",
        "ru": "Я работаю только со статичными изображениями: JPEG, PNG или WebP. "
        "GIF, видео и стикеры не подойдут.",
    },
    "too_many_pixels": {
        "en": "This image is enormous. Please send a version under 40 megapixels.",
        "ru": "Это изображение огромное. Пришлите, пожалуйста, версию меньше 40 мегапикселей.",
    },
    "sticker": {
        "en": "Nice sticker! But I need a photo of an artwork — send a picture instead.",
        "ru": "Милый стикер! Но мне нужно фото произведения искусства — пришлите картинку.",
    },
    "send_photo": {
        "en": "Send me a photo of an artwork and I'll find similar ones. /help",
        "ru": "Пришлите фото произведения искусства, и я найду похожие. /help",
    },
    "service_down": {
        "en": "My art expert is unavailable right now. Please send the photo again in a minute.",
        "ru": "Мой искусствовед сейчас недоступен. Пришлите фото ещё раз через минуту.",
    },
    "service_busy": {
        "en": "Too many people are asking at once. Please send the photo again in {seconds} s.",
        "ru": "Сейчас слишком много запросов. Пришлите фото ещё раз через {seconds} с.",
    },
    "description_failed": {
        "en": "I found similar works by look, but couldn't describe the picture this time. "
        "Send it again to get the full answer.",
        "ru": "Похожие по виду работы нашлись, но описать картину не вышло. "
        "Пришлите её ещё раз, чтобы получить полный ответ.",
    },
    "not_saved": {
        "en": "I couldn't save this result, so voting is off for it. Send the photo again in a minute.",
        "ru": "Не удалось сохранить результат, поэтому голосование для него отключено. "
        "Пришлите фото ещё раз через минуту.",
    },
    "description": {"en": "🖼 {description}", "ru": "🖼 {description}"},
    "set_title": {"en": "Set {label}", "ru": "Набор {label}"},
    "ask_vote": {
        "en": "Which set is better? Tap a number to like ❤️ a work (again: 👎, once more: undo).",
        "ru": "Какой набор лучше? Нажмите номер, чтобы отметить работу ❤️ (ещё раз: 👎, ещё раз: отмена).",
    },
    "vote_left": {"en": "A is better", "ru": "A лучше"},
    "vote_right": {"en": "B is better", "ru": "B лучше"},
    "vote_both": {"en": "Both good", "ru": "Оба хороши"},
    "vote_neither": {"en": "Neither", "ru": "Ни один"},
    "vote_saved": {"en": "Thanks, your vote is saved!", "ru": "Спасибо, голос учтён!"},
    "vote_unchanged": {"en": "Your vote is already counted.", "ru": "Ваш голос уже учтён."},
    "liked": {"en": "❤️ Liked", "ru": "❤️ Нравится"},
    "disliked": {"en": "👎 Noted: not for you", "ru": "👎 Понятно: не ваше"},
    "like_cleared": {"en": "Mark removed", "ru": "Отметка снята"},
    "forged": {
        "en": "This button isn't for you or has expired. Send a photo to get your own sets.",
        "ru": "Эта кнопка не ваша или устарела. Пришлите фото, чтобы получить свои наборы.",
    },
    "error": {
        "en": "Something went wrong on my side. Please try again.",
        "ru": "Что-то пошло не так с моей стороны. Попробуйте ещё раз.",
    },
    # --- personal suggestions: /foryou, onboarding ---
    # --- daily pick: /daily ---
    # --- privacy: /forget ---
    # --- admins: /stats ---
}


def language_for(explicit: str | None, telegram_code: str | None) -> str:
    """An explicit /lang choice wins; otherwise Telegram's language_code (`ru`, `ru-RU`, …), else English."""
    for candidate in (explicit, telegram_code):
        if candidate:
            short = candidate.split("-")[0].lower()
            if short in SUPPORTED:
                return short
    return DEFAULT


def t(lang: str, key: str, **values: object) -> str:
    """The text for `key` in `lang`; placeholders filled with `values`."""
    entry = CATALOGUE[key]
    text = entry.get(lang) or entry[DEFAULT]
    return text.format(**values) if values else text
