"""The message catalogue and the button panel, as a user would meet them."""

from __future__ import annotations

import re

import pytest

from bot.callbacks import LikeCallback, VoteCallback
from bot.keyboards import feedback_keyboard
from bot.texts import CATALOGUE, SUPPORTED, language_for, t, tag_line
from inference.contract import Side, Tag


def test_every_text_exists_in_both_languages_with_the_same_placeholders() -> None:
    for key, entry in CATALOGUE.items():
        assert set(entry) == set(SUPPORTED), key
        placeholders = {lang: set(re.findall(r"{(\w+)}", text)) for lang, text in entry.items()}
        assert placeholders["en"] == placeholders["ru"], key


def test_russian_texts_are_russian() -> None:
    assert re.search("[а-яА-Я]", t("ru", "start"))
    assert not re.search("[а-яА-Я]", t("en", "start"))


@pytest.mark.parametrize(
    ("explicit", "telegram_code", "expected"),
    [
        (None, "ru", "ru"),
        (None, "ru-RU", "ru"),
        (None, "de", "en"),
        (None, None, "en"),
        ("en", "ru", "en"),
        ("ru", "en", "ru"),
    ],
)
def test_language_choice(explicit: str | None, telegram_code: str | None, expected: str) -> None:
    assert language_for(explicit, telegram_code) == expected


def test_panel_has_four_votes_and_a_like_button_per_work_within_telegram_limits() -> None:
    sets: dict[Side, list[int]] = {"left": [101, 102, 103, 104, 105], "right": [2_000_000_001, 7, 8, 9, 10]}
    markup = feedback_keyboard("en", 9_223_372_036_854_775_807, sets, likes={102: 1, 7: -1}, vote="both")
    buttons = [b for row in markup.inline_keyboard for b in row]
    assert len(buttons) == 4 + 10
    for button in buttons:
        assert button.callback_data is not None
        assert len(button.callback_data.encode()) <= 64  # Telegram's limit
    texts = [b.text for b in buttons]
    assert "✅ Both good" in texts
    assert "A2 ❤️" in texts and "B2 👎" in texts and "A1 🤍" in texts
    # pressing a liked work offers dislike next; a disliked one offers undo
    by_text = {b.text: str(b.callback_data) for b in buttons}
    assert LikeCallback.unpack(by_text["A2 ❤️"]).value == -1
    assert LikeCallback.unpack(by_text["B2 👎"]).value == 0
    assert LikeCallback.unpack(by_text["A1 🤍"]).value == 1


def test_a_single_set_has_numbered_like_buttons_and_no_vote() -> None:
    """A colour search shows one set: nothing to vote between, so only its works' buttons, numbered as captioned."""
    markup = feedback_keyboard("ru", 12, {"left": [4, 5, 6]}, likes={5: 1})
    texts = [b.text for row in markup.inline_keyboard for b in row]
    assert texts == ["1 🤍", "2 ❤️", "3 🤍"]


def test_the_tag_line_names_the_best_style_genre_and_mood_in_the_users_language() -> None:
    tags = [
        Tag(kind="mood", name="calm", ru="спокойное", score=0.5),
        Tag(kind="genre", name="landscape", ru="пейзаж", score=0.7),
        Tag(kind="style", name="realism", ru="реализм", score=0.2),
        Tag(kind="style", name="impressionism", ru="импрессионизм", score=0.6),
        Tag(kind="genre", name="still_life", ru="", score=0.1),
    ]
    assert tag_line("en", tags) == "🏷 impressionism · landscape · calm"
    assert tag_line("ru", tags) == "🏷 импрессионизм · пейзаж · спокойное"
    assert tag_line("ru", [Tag(kind="genre", name="still_life", score=0.9)]) == "🏷 still life"  # no Russian name
    assert tag_line("en", []) == ""


@pytest.mark.parametrize("forged", ["v:1:everyone", "v:abc:left", "l:1:2:5", "v:1", "l:x:y:z"])
def test_malformed_callback_data_is_rejected(forged: str) -> None:
    factory = VoteCallback if forged.startswith("v") else LikeCallback
    with pytest.raises((ValueError, TypeError)):
        factory.unpack(forged)
