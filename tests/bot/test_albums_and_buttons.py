"""An album of photos is answered one photo at a time, each answer replying to its photo; every button press is
answered, malformed ones with the polite refusal and nothing written."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
import pytest

from bot.callbacks import LikeCallback, VoteCallback
from bot.texts import t
from tests.bot.conftest import StartBot
from tests.bot.telegram_stub import Call, TelegramStub
from tests.bot.test_photo_flow import is_panel
from tests.factories import image_bytes, synthetic_artwork


def reply_target(call: Call) -> int | None:
    raw = call.params.get("reply_parameters")
    if raw is None:
        return None
    return int((json.loads(raw) if isinstance(raw, str) else raw)["message_id"])


def send_album(telegram: TelegramStub, user_id: int, photos: list[bytes], group: str) -> list[int]:
    """The parts of one album, as Telegram sends them: separate messages sharing a media_group_id."""
    message_ids = []
    for index, data in enumerate(photos):
        file_id = f"{group}-{index}"
        telegram.add_file(file_id, data, f"photos/{file_id}.jpg")
        size = {"file_id": file_id, "file_unique_id": file_id, "width": 96, "height": 80, "file_size": len(data)}
        update_id = telegram.send_message(user_id, photo=[size], media_group_id=group)
        message_ids.append(_message_id_of(telegram, update_id))
    return message_ids


def _message_id_of(telegram: TelegramStub, update_id: int) -> int:
    (update,) = [u for u in telegram._updates if u["update_id"] == update_id]  # noqa: SLF001
    return int(update["message"]["message_id"])


def kind(call: Call) -> str:
    if call.method == "sendMediaGroup":
        return "album"
    text = str(call.params.get("text", ""))
    if text.startswith("🖼"):
        return "description"
    return "panel" if is_panel(int(call.params["chat_id"]))(call) else "other"


async def test_an_album_is_answered_photo_by_photo_each_answer_replying_to_its_photo(
    telegram: TelegramStub, start_bot: StartBot, new_id: Any
) -> None:
    await start_bot()
    user = new_id()
    photos = [image_bytes(synthetic_artwork(400 + i)) for i in range(3)]
    message_ids = send_album(telegram, user, photos, group=f"album-{user}")
    panels = is_panel(user)
    await telegram.wait_for(lambda _: sum(map(panels, telegram.sent(chat_id=user))) >= 3, timeout=180)
    answers = [c for c in telegram.accepted(chat_id=user) if c.method in ("sendMessage", "sendMediaGroup")]
    assert [kind(c) for c in answers] == ["album", "description", "album", "panel"] * 3
    assert [reply_target(c) for c in answers] == [m for m in message_ids for _ in range(4)]


@pytest.mark.parametrize(
    "data",
    [
        "v:1:maybe",  # unknown choice
        "v:1",  # missing part
        "v:1:left:extra",  # extra part
        "l:x:2:1",  # non-numeric id
        "l:1:2:5",  # like value out of range
        "v:" + "9" * 30 + ":left",  # beyond Postgres' bigint
        "l:1:" + "9" * 12 + ":1",  # artwork id beyond integer
        "x" * 65,  # longer than Telegram allows
        "",
    ],
)
async def test_malformed_button_data_gets_the_polite_refusal_and_writes_nothing(
    telegram: TelegramStub, start_bot: StartBot, pool: asyncpg.Pool, new_id: Any, data: str
) -> None:
    await start_bot()
    user = new_id()
    telegram.press(user, data)
    answer = await telegram.wait_for(
        lambda c: c.method == "answerCallbackQuery" and c.params.get("text") == t("en", "forged"), timeout=30
    )
    assert answer.params.get("show_alert") in (True, "true", "True")
    assert await pool.fetchval("SELECT count(*) FROM votes WHERE user_id = $1", user) == 0
    assert await pool.fetchval("SELECT count(*) FROM likes WHERE user_id = $1", user) == 0
    assert not [c for c in telegram.sent(chat_id=user) if c.method == "sendMessage"]  # no "something went wrong"


def test_the_callback_factories_refuse_out_of_range_ids_before_any_database_call() -> None:
    with pytest.raises(ValueError):
        VoteCallback.unpack("v:" + str(2**63) + ":left")
    with pytest.raises(ValueError):
        LikeCallback.unpack("l:1:" + str(2**31) + ":1")
    assert VoteCallback.unpack("v:" + str(2**63 - 1) + ":left").analysis_id == 2**63 - 1
