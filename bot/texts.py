"""The bot's message catalogue: every user-facing string in Russian and English, in one place.

Handlers ask for a key; `language_for` picks the catalogue from the user's explicit /lang choice or their
Telegram language_code. Keeping strings here (not in handlers) keeps both languages complete (a test checks).
"""

from __future__ import annotations

from collections.abc import Sequence

from inference.contract import Artwork, Match, Tag

SUPPORTED = ("en", "ru")
DEFAULT = "en"

CATALOGUE: dict[str, dict[str, str]] = {
    "start": {
        "en": (
            "Hi! I'm ArtMatch. Send me a photo of a painting — one you saw in a museum or simply like — "
            "and I'll describe it and show you two sets of similar works from the gallery.\n\n"
            "Tell me which set is better and tap ❤️ on works you love: that teaches me your taste.\n"
            "Or find works by words — just write, e.g. «stormy sea at night» — or by colour: /color blue.\n"
            "/foryou — works picked for your taste · /help — how it works · /lang — language"
        ),
        "ru": (
            "Привет! Я ArtMatch. Пришлите фото картины — увиденной в музее или просто любимой, — "
            "и я опишу её и покажу два набора похожих работ из галереи.\n\n"
            "Скажите, какой набор лучше, и отмечайте ❤️ понравившиеся работы — так я узнаю ваш вкус.\n"
            "А ещё можно искать словами — просто напишите, например, «рыцарь на белом коне», — или по цвету: "
            "/color синий.\n"
            "/foryou — работы под ваш вкус · /help — как это работает · /lang — язык"
        ),
    },
    "help": {
        "en": (
            "How it works:\n"
            "1. Send a photo (or a JPEG/PNG/WebP file up to 20 MB), or a video or GIF: I look at its sharpest frame.\n"
            "2. I describe it and show two sets of similar works, each chosen a different way.\n"
            "3. Vote for the better set: A, B, both or neither.\n"
            "4. Tap a number under the sets: once ❤️ like, twice 👎 dislike, three times to undo.\n"
            "Find works by words: just write them, or /search stormy sea at night (Russian works too).\n"
            "Find works by colour: /color #1e90ff or /color ochre.\n"
            "/foryou — fresh works picked for your taste · /likes — the works you liked · /lang — switch language\n"
            "/daily — a work picked for you every day · /forget — delete everything I know about you"
        ),
        "ru": (
            "Как это работает:\n"
            "1. Пришлите фото (или файл JPEG/PNG/WebP до 20 МБ), видео или GIF: я возьму самый чёткий кадр.\n"
            "2. Я опишу её и покажу два набора похожих работ, подобранных по-разному.\n"
            "3. Проголосуйте за лучший набор: A, B, оба или ни один.\n"
            "4. Нажмите номер под наборами: один раз ❤️ нравится, дважды 👎 не нравится, трижды — отмена.\n"
            "Поиск словами: просто напишите их или /search рыцарь на белом коне (можно и по-английски).\n"
            "Поиск по цвету: /color #1e90ff или /color охра.\n"
            "/foryou — новые работы под ваш вкус · /likes — понравившиеся работы · /lang — сменить язык\n"
            "/daily — работа для вас каждый день · /forget — удалить всё, что я о вас знаю"
        ),
    },
    "choose_language": {"en": "Choose your language:", "ru": "Выберите язык:"},
    "language_set": {"en": "Language: English 🇬🇧", "ru": "Язык: русский 🇷🇺"},
    "rate_limited": {
        "en": "You're asking faster than I can look at pictures. Try again in {seconds} s.",
        "ru": "Вы просите быстрее, чем я успеваю рассматривать картины. Попробуйте через {seconds} с.",
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
        "en": "I can't read this image format. Please send a JPEG, PNG or WebP image, or a video or GIF.",
        "ru": "Не могу прочитать этот формат изображения. Пришлите JPEG, PNG или WebP, либо видео или GIF.",
    },
    "too_many_pixels": {
        "en": "This image is enormous. Please send a version under 40 megapixels.",
        "ru": "Это изображение огромное. Пришлите, пожалуйста, версию меньше 40 мегапикселей.",
    },
    "sticker": {
        "en": "Nice sticker! But I look at artworks: send a photo, an image file, or a video or GIF "
        "(I'll use its sharpest frame).",
        "ru": "Милый стикер! Но я смотрю на произведения искусства: пришлите фото, файл с картинкой, "
        "видео или GIF (я возьму самый чёткий кадр).",
    },
    "what_i_take": {
        "en": "I can only look at pictures: send a photo, an image file (JPEG, PNG, WebP), or a video or GIF "
        "(I'll use its sharpest frame). /help",
        "ru": "Я умею только смотреть на картинки: пришлите фото, файл с изображением (JPEG, PNG, WebP), "
        "видео или GIF (я возьму самый чёткий кадр). /help",
    },
    "keyframe_video": {
        "en": "🎞 I used a frame from your video: the sharpest one I found.",
        "ru": "🎞 Я взял кадр из вашего видео — самый чёткий из тех, что нашёл.",
    },
    "keyframe_animation": {
        "en": "🎞 I used a frame from your animation: the sharpest one I found.",
        "ru": "🎞 Я взял кадр из вашей анимации — самый чёткий из тех, что нашёл.",
    },
    "video_too_big": {
        "en": "This video is too big: I can take files up to 20 MB. Please send a shorter clip or a photo.",
        "ru": "Видео слишком большое: я принимаю файлы до 20 МБ. Пришлите ролик покороче или фото.",
    },
    "video_unreadable": {
        "en": "I couldn't read this video or GIF. Please send a photo, or a video as MP4, WebM, MOV or GIF.",
        "ru": "Не получилось открыть это видео или GIF. Пришлите фото или видео в MP4, WebM, MOV или GIF.",
    },
    "unknown_command": {
        "en": "I don't know this command. Send a photo of an artwork, write words to search for, or see /help.",
        "ru": "Я не знаю такой команды. Пришлите фото произведения, напишите слова для поиска или загляните в /help.",
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
    "tags": {"en": "🏷 {tags}", "ru": "🏷 {tags}"},
    # --- search by words (/search, a plain text message) and by colour (/color) ---
    "search_hint": {
        "en": "Tell me what to look for, in English or Russian, e.g.:\n"
        "/search stormy sea at night\n/search a knight on a white horse\n/search рыцарь на белом коне\n"
        "You can also simply write the words without /search.",
        "ru": "Напишите, что найти, по-русски или по-английски, например:\n"
        "/search рыцарь на белом коне\n/search бурное море ночью\n/search stormy sea at night\n"
        "Можно и просто написать слова, без /search.",
    },
    "search_cut": {
        "en": "Your text is long, so I searched its first {limit} characters.",
        "ru": "Текст длинный, поэтому я искал по первым {limit} символам.",
    },
    "nothing_found": {
        "en": "Nothing in the gallery matches «{query}» closely, so I'm not showing weak matches. "
        "Try other words, e.g. «portrait of a woman» or «winter landscape».",
        "ru": "В галерее нет ничего достаточно близкого к «{query}» — слабые совпадения не показываю. "
        "Попробуйте другие слова, например «портрет женщины» или «зимний пейзаж».",
    },
    "nothing_found_set": {
        "en": "Set {label}: nothing in the gallery matches your words closely, so I'm not padding it with weak "
        "matches.",
        "ru": "Набор {label}: в галерее нет ничего достаточно близкого к вашим словам — слабые совпадения не "
        "показываю.",
    },
    "search_down": {
        "en": "My art expert is unavailable right now. Please try your search again in a minute.",
        "ru": "Мой искусствовед сейчас недоступен. Повторите поиск через минуту.",
    },
    "search_busy": {
        "en": "Too many people are asking at once. Please try your search again in {seconds} s.",
        "ru": "Сейчас слишком много запросов. Повторите поиск через {seconds} с.",
    },
    "search_not_saved": {
        "en": "I couldn't save this result, so its buttons are off. Try the search again in a minute.",
        "ru": "Не удалось сохранить результат, поэтому кнопки для него отключены. Повторите поиск через минуту.",
    },
    "color_hint": {
        "en": "Tell me a colour: a hex code or its name in English or Russian, e.g.:\n"
        "/color #1e90ff\n/color ochre\n/color тёмно-синий",
        "ru": "Назовите цвет: код или название по-русски или по-английски, например:\n"
        "/color #1e90ff\n/color охра\n/color dark blue",
    },
    "color_unknown": {
        "en": "I don't know the colour «{color}». Try a hex code like #c04020 or a name such as red, ochre, "
        "navy or turquoise.",
        "ru": "Я не знаю цвет «{color}». Попробуйте код вроде #c04020 или название: красный, охра, "
        "тёмно-синий, бирюзовый.",
    },
    "color_strip": {
        "en": "🎨 {hex}, then the main colours of each work below, in order.",
        "ru": "🎨 {hex}, дальше — основные цвета каждой работы ниже, по порядку.",
    },
    "color_nothing": {
        "en": "🎨 {hex}: no work in the gallery has this colour among its main ones.",
        "ru": "🎨 {hex}: ни у одной работы в галерее нет этого цвета среди основных.",
    },
    # --- "what is this painting?" and honest relevance ---
    "identified": {"en": "📍 This is «{title}»{who}", "ru": "📍 Это «{title}»{who}"},
    "untitled": {"en": "Untitled", "ru": "Без названия"},
    "nothing_close_set": {
        "en": "Set {label}: nothing in the gallery looks close to your photo, so I'm not padding it with weak matches.",
        "ru": "Набор {label}: в галерее нет ничего достаточно близкого к вашему фото — слабые совпадения не показываю.",
    },
    "nothing_close": {
        "en": "Nothing in the gallery looks close to your photo, so I'm not padding the set with weak matches.",
        "ru": "В галерее нет ничего достаточно близкого к вашему фото — слабые совпадения не показываю.",
    },
    "set_title": {"en": "Set {label}", "ru": "Набор {label}"},
    "ask_vote": {
        "en": "Which set is better? Tap a number to like ❤️ a work (again: 👎, once more: undo).",
        "ru": "Какой набор лучше? Нажмите номер, чтобы отметить работу ❤️ (ещё раз: 👎, ещё раз: отмена).",
    },
    "ask_likes_interleaved": {
        "en": "Tap a number to like ❤️ a work (again: 👎, once more: undo). Your likes teach me what works for you.",
        "ru": "Нажмите номер, чтобы отметить работу ❤️ (ещё раз: 👎, ещё раз: отмена). "
        "Ваши отметки учат меня, что вам подходит.",
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
    "because_you_liked": {"en": "💡 because you liked «{title}»", "ru": "💡 потому что вам понравилась «{title}»"},
    "something_new": {"en": "🎲 something new to explore", "ru": "🎲 что-то новое для вас"},
    "nothing_new": {
        "en": "You've seen everything in the gallery that I could suggest. Send a photo to explore further!",
        "ru": "Вы уже видели всё, что я могу предложить из галереи. Пришлите фото, чтобы искать дальше!",
    },
    "onboarding_intro": {
        "en": "Let's get to know your taste! Here are a few very different works. "
        "Tap the numbers of the ones you like (two or three are enough), then press «Show my picks».",
        "ru": "Давайте узнаем ваш вкус! Вот несколько очень разных работ. "
        "Отметьте номера понравившихся (хватит двух-трёх) и нажмите «Подобрать для меня».",
    },
    "onboarding_panel": {
        "en": "Which of these do you like? Tap: once ❤️, twice 👎, three times to undo.",
        "ru": "Какие из них вам нравятся? Нажмите: один раз ❤️, дважды 👎, трижды — отмена.",
    },
    "foryou_panel": {
        "en": "Picked for your taste. Tap a number: once ❤️, twice 👎, three times to undo.",
        "ru": "Подобрано под ваш вкус. Нажмите номер: один раз ❤️, дважды 👎, трижды — отмена.",
    },
    "show_my_picks": {"en": "Show my picks ➜", "ru": "Подобрать для меня ➜"},
    "more_for_you": {"en": "More for me ➜", "ru": "Ещё для меня ➜"},
    "pick_a_few_first": {
        "en": "Tap ❤️ on at least one work first, so I know what you like.",
        "ru": "Сначала отметьте ❤️ хотя бы одну работу, чтобы я понял, что вам нравится.",
    },
    # --- the personal collection: /likes ---
    "likes_empty": {
        "en": "You haven't liked any works yet. Tap ❤️ under a work I show you, and it will be kept here.",
        "ru": "Вы пока не отметили ни одной работы. Нажмите ❤️ под работой, которую я покажу, и она появится здесь.",
    },
    "likes_panel": {
        "en": "❤️ Your likes: {total}, newest first. Page {page}/{pages}. Tap 💔 and a number to remove a like.",
        "ru": "❤️ Вам понравилось: {total}, сначала новые. Страница {page}/{pages}. "
        "Нажмите 💔 с номером, чтобы убрать отметку.",
    },
    "likes_panel_empty": {
        "en": "❤️ No likes left. Tap ❤️ under a work I show you to keep it here.",
        "ru": "❤️ Отметок не осталось. Нажмите ❤️ под работой, которую я покажу, чтобы сохранить её здесь.",
    },
    "like_removed": {"en": "💔 Like removed", "ru": "💔 Отметка убрана"},
    "like_not_there": {
        "en": "This work is no longer among your likes.",
        "ru": "Этой работы уже нет среди понравившихся.",
    },
    "likes_page_gone": {
        "en": "That page doesn't exist any more. Send /likes to see your likes again.",
        "ru": "Такой страницы больше нет. Отправьте /likes, чтобы снова увидеть свои отметки.",
    },
    "likes_unavailable": {
        "en": "I can't reach my database right now. Try /likes again in a minute.",
        "ru": "Сейчас нет связи с базой данных. Попробуйте /likes через минуту.",
    },
    # --- daily pick: /daily ---
    "daily_intro": {"en": "🎨 Your daily pick", "ru": "🎨 Картина дня для вас"},
    "daily_panel": {
        "en": "Like it? Tap ❤️ or 👎 — tomorrow's pick learns from it.",
        "ru": "Нравится? Нажмите ❤️ или 👎 — завтрашняя картина это учтёт.",
    },
    "daily_usage": {
        "en": (
            "/daily on [hour] [UTC offset] — a work picked for you every day, e.g. /daily on 9 +3 "
            "(hour 0–23 on your clock, 9 if left out; offsets like +3, -5, +5:30)\n"
            "/daily off — stop"
        ),
        "ru": (
            "/daily on [час] [смещение от UTC] — работа, подобранная для вас, каждый день, например /daily on 9 +3 "
            "(час 0–23 по вашим часам, без него — 9; смещение вида +3, -5, +5:30)\n"
            "/daily off — отключить"
        ),
    },
    "daily_invalid": {
        "en": "I didn't get that. Here is how it works:",
        "ru": "Не понял. Вот как это работает:",
    },
    "daily_on": {
        "en": "🎨 Daily pick is on: every day at {time} ({offset}). The first one comes {next}.",
        "ru": "🎨 Картина дня включена: каждый день в {time} ({offset}). Первая придёт {next}.",
    },
    "daily_status_on": {
        "en": "🎨 Daily pick: on, every day at {time} ({offset}). Next pick: {next}.",
        "ru": "🎨 Картина дня: включена, каждый день в {time} ({offset}). Следующая: {next}.",
    },
    "daily_status_off": {"en": "Daily pick: off.", "ru": "Картина дня: выключена."},
    "daily_off": {
        "en": "Daily pick is off. Turn it back on any time with /daily on.",
        "ru": "Картина дня выключена. Включить снова можно в любой момент: /daily on.",
    },
    "daily_unavailable": {
        "en": "I can't reach my database right now, so nothing changed. Try /daily again in a minute.",
        "ru": "Сейчас нет связи с базой данных, ничего не изменилось. Попробуйте /daily через минуту.",
    },
    # --- privacy: /forget ---
    "forget_confirm": {
        "en": (
            "This deletes everything I know about you: the analyses of your photos, your votes, likes and "
            "personal picks, and your daily pick. It cannot be undone. Delete?"
        ),
        "ru": (
            "Это удалит всё, что я о вас знаю: анализы ваших фото, голоса, отметки, личные подборки "
            "и картину дня. Отменить это нельзя. Удалить?"
        ),
    },
    "forget_yes": {"en": "🗑 Yes, delete everything", "ru": "🗑 Да, удалить всё"},
    "forget_no": {"en": "Cancel", "ru": "Отмена"},
    "forget_done": {
        "en": (
            "Done: I have forgotten you. Deleted:\n"
            "analyses: {analyses}\nvotes: {votes}\nlikes and dislikes: {likes}\npersonal picks: {suggestions}\n{daily}"
        ),
        "ru": (
            "Готово: я вас забыл. Удалено:\n"
            "анализов: {analyses}\nголосов: {votes}\nотметок ❤️ и 👎: {likes}\nличных подборок: {suggestions}\n{daily}"
        ),
    },
    "forget_daily_off": {"en": "The daily pick is turned off.", "ru": "Картина дня отключена."},
    "forget_daily_none": {"en": "There was no daily pick to turn off.", "ru": "Картина дня не была включена."},
    "forget_cancelled": {"en": "Cancelled: nothing was deleted.", "ru": "Отменено: ничего не удалено."},
    "forget_failed": {
        "en": "My database is unavailable right now, so nothing was deleted. "
        "Please try /forget again in a few minutes.",
        "ru": "База данных сейчас недоступна, поэтому ничего не удалено. "
        "Попробуйте /forget ещё раз через несколько минут.",
    },
    # --- admins: /stats ---
    "stats_caption": {
        "en": (
            "📊 ArtMatch totals\n"
            "Users: {users}\n"
            "Analyses: {analyses}\n"
            "Votes: {votes}\n"
            "Likes and dislikes: {likes}\n"
            "Suggestions: {suggestions}\n"
            "Daily subscribers: {daily_subscribers}\n\n"
            "Arena: {arena_votes} rated votes; the left side wins {left_rate} of decisive votes."
        ),
        "ru": (
            "📊 ArtMatch в цифрах\n"
            "Пользователи: {users}\n"
            "Анализы: {analyses}\n"
            "Голоса: {votes}\n"
            "Отметки ❤️ и 👎: {likes}\n"
            "Подборки: {suggestions}\n"
            "Подписчики на картину дня: {daily_subscribers}\n\n"
            "Арена: учтено голосов — {arena_votes}; левая сторона выигрывает {left_rate} решающих голосов."
        ),
    },
    "stats_chart_title": {"en": "Recommender arena", "ru": "Арена рекомендателей"},
    "stats_unavailable": {
        "en": "The database is unavailable right now, so there are no statistics. Try /stats again in a minute.",
        "ru": "База данных сейчас недоступна, статистики нет. Попробуйте /stats ещё раз через минуту.",
    },
}


def language_for(explicit: str | None, telegram_code: str | None) -> str:
    """An explicit /lang choice wins; otherwise Telegram's language_code (`ru`, `ru-RU`, …), else English."""
    for candidate in (explicit, telegram_code):
        if candidate:
            short = candidate.split("-")[0].lower()
            if short in SUPPORTED:
                return short
    return DEFAULT


def identified(lang: str, work: Artwork | Match) -> str:
    """"This is «Title», Artist, year": titles and names stay as the gallery has them; missing parts left out."""
    who = "".join(f", {part}" for part in (work.artist, work.year) if part)
    return t(lang, "identified", title=work.title or t(lang, "untitled"), who=who)


TAG_KINDS = ("style", "genre", "mood")


def tag_line(lang: str, tags: Sequence[Tag]) -> str:
    """The tag line of a description, e.g. `🏷 impressionism · landscape · calm`: the best tag of each kind, by the
    user's language (the Russian name when there is one); empty when there are no tags."""
    best: dict[str, Tag] = {}
    for tag in tags:
        if tag.kind not in best or tag.score > best[tag.kind].score:
            best[tag.kind] = tag
    kinds = [kind for kind in TAG_KINDS if kind in best] + sorted(set(best) - set(TAG_KINDS))
    names = [(best[kind].ru if lang == "ru" and best[kind].ru else best[kind].name).replace("_", " ") for kind in kinds]
    return t(lang, "tags", tags=" · ".join(names)) if names else ""


def t(lang: str, key: str, **values: object) -> str:
    """The text for `key` in `lang`; placeholders filled with `values`."""
    entry = CATALOGUE[key]
    text = entry.get(lang) or entry[DEFAULT]
    return text.format(**values) if values else text
