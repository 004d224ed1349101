"""Videos, video notes and GIFs are answered like a photo of their sharpest frame (with a word saying so);
stickers, voice messages and the like get a friendly note on what the bot takes."""

from __future__ import annotations

import hashlib
import io
import itertools
from typing import Any, cast

import asyncpg
import av
import numpy as np
import pytest
from av.video.stream import VideoStream
from PIL import Image, ImageFilter

from bot.keyframes import FrameLimits, UnreadableVideo, sharpest_frame_jpeg
from tests.bot.conftest import StartBot
from tests.bot.telegram_stub import TelegramStub
from tests.bot.test_photo_flow import analysis_id_of, is_panel
from tests.factories import textured_artwork

_seeds = itertools.count(1)
SIZE = (256, 192)  # even sides: yuv420p wants them
FRAMES = 12  # at 8 fps; the 6 evenly spaced samples land on frames 1, 3, 5, 7, 9 and 11
SHARP = (6, 7, 8)  # frames where the camera held still: one of them is sampled, the rest of the clip is blurred


def clip(
    fmt: str, codec: str, seed: int, frames: int = FRAMES, sharp: tuple[int, ...] = SHARP
) -> tuple[bytes, Image.Image]:
    """A short clip of a textured painting, in focus only on the `sharp` frames; the clip and the sharp picture."""
    picture = textured_artwork(seed, long_side=SIZE[0]).resize(SIZE)
    blurred = picture.filter(ImageFilter.GaussianBlur(4))
    out = io.BytesIO()
    with av.open(out, mode="w", format=fmt) as container:
        stream = cast("VideoStream", container.add_stream(codec, rate=8))
        stream.width, stream.height = SIZE
        stream.pix_fmt = "rgb8" if codec == "gif" else "yuv420p"
        for i in range(frames):
            frame = av.VideoFrame.from_image(picture if i in sharp else blurred)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return out.getvalue(), picture


def difference(jpeg: bytes, picture: Image.Image) -> float:
    """Mean absolute grey-level difference between the still taken and a picture."""
    still = Image.open(io.BytesIO(jpeg)).convert("L").resize(picture.size)
    return float(np.abs(np.asarray(still, np.float32) - np.asarray(picture.convert("L"), np.float32)).mean())


FORMATS = [("mp4", "libx264"), ("webm", "libvpx-vp9"), ("mov", "libx264"), ("gif", "gif")]


@pytest.mark.parametrize(("fmt", "codec"), FORMATS, ids=[f for f, _ in FORMATS])
def test_the_sharpest_sampled_frame_is_the_one_taken(fmt: str, codec: str) -> None:
    data, picture = clip(fmt, codec, next(_seeds))
    blurred = picture.filter(ImageFilter.GaussianBlur(4))
    still = sharpest_frame_jpeg(data)
    # GIF's 256-colour palette (and its dithering) keeps even the right frame a little off
    assert difference(still, picture) < 10 < difference(still, blurred)


def test_a_long_video_is_sampled_by_seeking_within_the_decoding_cap() -> None:
    """A minute at 10 fps is over the decoding cap: the samples are reached by seeking, and still found."""
    data, picture = clip("mp4", "libx264", next(_seeds), frames=600, sharp=(249, 250, 251))
    still = sharpest_frame_jpeg(data, FrameLimits(max_decoded_frames=100))
    assert difference(still, picture) < 10


def test_broken_and_hostile_files_are_refused() -> None:
    data, _ = clip("mp4", "libx264", next(_seeds))
    audio = io.BytesIO()
    with av.open(audio, mode="w", format="mp4") as container:
        stream = container.add_stream("aac", rate=8000)
        silence = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        silence.sample_rate = 8000
        for packet in [*stream.encode(silence), *stream.encode()]:
            container.mux(packet)
    for bad in (b"", b"GIF89a" + b"\x00" * 64, data[: len(data) // 40], b"not a video" * 100, audio.getvalue()):
        with pytest.raises(UnreadableVideo):
            sharpest_frame_jpeg(bad)
    with pytest.raises(UnreadableVideo, match="pixel cap"):
        sharpest_frame_jpeg(data, FrameLimits(max_pixels=100 * 100))


# (how it is sent, the clip's format and codec, its MIME type, the user's language, the word for it)
SENT = [
    ("video", "mp4", "libx264", "video/mp4", "en", "from your video"),
    ("animation", "mp4", "libx264", "video/mp4", "ru", "из вашей анимации"),
    ("document", "gif", "gif", "image/gif", "en", "from your animation"),
    ("video_note", "mp4", "libx264", "video/mp4", "ru", "из вашего видео"),
]


@pytest.mark.parametrize(("kind", "fmt", "codec", "mime", "lang", "said"), SENT, ids=[f"{s[0]}-{s[1]}" for s in SENT])
async def test_a_moving_picture_is_answered_from_its_sharpest_frame(
    telegram: TelegramStub,
    start_bot: StartBot,
    pool: asyncpg.Pool,
    new_id: Any,
    kind: str,
    fmt: str,
    codec: str,
    mime: str,
    lang: str,
    said: str,
) -> None:
    await start_bot()
    user = new_id()
    data, picture = clip(fmt, codec, next(_seeds))
    telegram.send_media(user, kind, data, lang, mime=mime)

    note = await telegram.wait_text(user, said, timeout=60)
    assert "message_id" in str(note.params["reply_parameters"])  # replies to the video
    panel = await telegram.wait_for(is_panel(user), timeout=120)
    assert telegram.calls.index(note) < telegram.calls.index(panel)
    # then the normal answer to a photo: the description among the sets, and the vote panel last
    description = await telegram.wait_for(lambda c: c.method == "sendMessage" and str(c.params["text"]).startswith("🖼"))
    assert telegram.calls.index(note) < telegram.calls.index(description) < telegram.calls.index(panel)
    # The still the service looked at is the sharp frame: the stored analysis is of exactly that JPEG.
    async with pool.acquire() as conn:
        sha = await conn.fetchval("SELECT image_sha256 FROM analyses WHERE id = $1", analysis_id_of(panel))
    used = sharpest_frame_jpeg(data)
    assert sha == hashlib.sha256(used).hexdigest()
    assert difference(used, picture) < 10


@pytest.mark.parametrize(("lang", "said"), [("en", "too big"), ("ru", "слишком большое")])
async def test_a_video_over_the_download_limit_is_refused_without_downloading(
    telegram: TelegramStub, start_bot: StartBot, new_id: Any, lang: str, said: str
) -> None:
    await start_bot()
    user = new_id()
    file_id = telegram.send_media(user, "video", b"", lang, file_size=25 * 1024 * 1024)
    await telegram.wait_text(user, said)
    assert not [c for c in telegram.sent("getFile") if c.params.get("file_id") == file_id]


async def test_a_broken_video_gets_a_friendly_answer_and_stores_nothing(
    telegram: TelegramStub, start_bot: StartBot, pool: asyncpg.Pool, new_id: Any
) -> None:
    await start_bot()
    user = new_id()
    data, _ = clip("mp4", "libx264", next(_seeds))
    telegram.send_media(user, "video", data[: len(data) // 40], "en")
    await telegram.wait_text(user, "couldn't read this video")
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM analyses WHERE user_id = $1", user) == 0


VOICE: dict[str, Any] = {"voice": {"file_id": "vo", "file_unique_id": "vo", "duration": 2, "mime_type": "audio/ogg"}}
STICKER: dict[str, Any] = {
    "sticker": {
        "file_id": "st",
        "file_unique_id": "st",
        "type": "regular",
        "width": 512,
        "height": 512,
        "is_animated": False,
        "is_video": False,
    }
}
OTHERS: dict[str, dict[str, Any]] = {
    "voice": VOICE,
    "audio": {"audio": {"file_id": "au", "file_unique_id": "au", "duration": 180, "title": "Song"}},
    "location": {"location": {"latitude": 59.94, "longitude": 30.31}},
    "contact": {"contact": {"phone_number": "+10000000000", "first_name": "Ann"}},
    "poll": {
        "poll": {
            "id": "p",
            "question": "Monet or Manet?",
            "options": [
                {"persistent_id": "1", "text": "Monet", "voter_count": 0},
                {"persistent_id": "2", "text": "Manet", "voter_count": 0},
            ],
            "total_voter_count": 0,
            "is_closed": False,
            "is_anonymous": True,
            "type": "regular",
            "allows_multiple_answers": False,
            "allows_revoting": False,
            "members_only": False,
        }
    },
    "dice": {"dice": {"emoji": "🎲", "value": 3}},
}


@pytest.mark.parametrize("lang", ["en", "ru"])
async def test_stickers_voice_and_the_rest_learn_what_the_bot_takes(
    telegram: TelegramStub, start_bot: StartBot, new_id: Any, lang: str
) -> None:
    await start_bot()
    user = new_id()
    takes = "video or GIF" if lang == "en" else "видео или GIF"
    telegram.send_message(user, lang, **STICKER)
    sticker = await telegram.wait_text(user, "Nice sticker" if lang == "en" else "Милый стикер")
    assert takes in sticker.params["text"]
    for content in OTHERS.values():
        mark = len(telegram.calls)
        telegram.send_message(user, lang, **content)
        assert takes in await telegram.reply_after(user, mark)
