"""Bot overhead: updates per second one `python -m bot` process handles, and its memory.

The bot runs as its own process, against the local Telegram stand-in (tests/bot/telegram_stub.py) and an inference
stub that answers instantly with canned sets, so what is measured is the bot: aiogram, handlers, Postgres writes,
Redis, album sending. Real Postgres (a throwaway schema) and Redis (database 8) are used.

    python benchmarks/bench_bot.py --photos 200 --presses 400
    ARTMATCH_BOT_ROOT=/tmp/previous-release python benchmarks/bench_bot.py --out /tmp/bot-before.json
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import asyncpg
import psutil
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.callbacks import VoteCallback  # noqa: E402
from bot.sending import PACED_PREFIXES  # noqa: E402
from inference.contract import VOTE_CHOICES  # noqa: E402
from tests.bot.telegram_stub import TelegramStub  # noqa: E402
from tests.inference_stub import canned_inference  # noqa: E402

TOKEN = "4242:bench-token"
PG_BASE = os.environ.get("TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")


def message_units(stub: TelegramStub, chats: set[int]) -> int:
    """What the photo answers cost against Telegram's ~30 messages/s per bot: each message counts, and each item of
    an album (the rule bot/sending.py paces by)."""
    units = 0
    for call in stub.calls:
        if str(call.params.get("chat_id")) not in {str(c) for c in chats}:
            continue
        if call.method == "sendMediaGroup":
            media = call.params.get("media")
            units += len(json.loads(media) if isinstance(media, str) else media or [])
        elif is_message_method(call.method):
            units += 1
    return units


def panels(stub: TelegramStub) -> list:
    return [
        c
        for c in stub.calls
        if c.method == "sendMessage" and "v:" in json.dumps(c.params.get("reply_markup") or {})
    ]


def is_message_method(method: str) -> bool:
    return method.startswith(PACED_PREFIXES) and method != "sendChatAction"


async def wait_count(predicate: Callable[[], int], count: int, timeout: float) -> float:
    start = time.perf_counter()
    while predicate() < count:
        if time.perf_counter() - start > timeout:
            raise TimeoutError(f"only {predicate()} of {count} after {timeout}s")
        await asyncio.sleep(0.01)
    return time.perf_counter() - start


async def main(args: argparse.Namespace) -> dict[str, object]:
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(PG_BASE)
    await conn.execute(f'CREATE SCHEMA "{schema}"')
    await conn.close()
    stub = TelegramStub(TOKEN)
    await stub.start()
    inference = canned_inference()
    inference_url = await inference.__aenter__()
    env = {
        **os.environ,
        "BOT_TOKEN": TOKEN,
        "BOT_API_BASE_URL": stub.base_url,
        "BOT_INFERENCE_URL": inference_url,
        "BOT_INFERENCE_TOKEN": "bench",
        "BOT_POSTGRES_DSN": f"{PG_BASE}?search_path={schema}",
        "BOT_REDIS_URL": "redis://127.0.0.1:6379/8",
        "BOT_PHOTOS_PER_MINUTE": "100000",
        # The stand-in has no rate limits: lift the send layer's Telegram pacing, so what is measured is the bot's
        # own overhead (with pacing on, a burst is held to Telegram's 30 messages/s by design).
        "BOT_MESSAGES_PER_SECOND": "100000",
        "BOT_CHAT_MESSAGES_PER_SECOND": "100000",
    }
    subprocess.run(["redis-cli", "-n", "8", "flushdb"], check=True, capture_output=True)
    log_path = Path(f"/tmp/bench-bot-{schema}.log")
    log = log_path.open("w")
    # ARTMATCH_BOT_ROOT runs another release's bot (a checkout of it), so two releases meet the same benchmark
    bot_root = os.environ.get("ARTMATCH_BOT_ROOT", str(ROOT))
    bot = subprocess.Popen(
        [sys.executable, "-m", "bot"], cwd=bot_root, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    process = psutil.Process(bot.pid)
    try:
        stub.send_message(1, "en", text="/start")
        await stub.wait_text(1, "ArtMatch", timeout=60)
        rss_idle = process.memory_info().rss

        photo = io.BytesIO()
        Image.new("RGB", (320, 240), "orange").save(photo, "JPEG")
        stub.add_file("bench-photo", photo.getvalue(), "photos/bench.jpg")
        users = list(range(1000, 1000 + args.photos))
        for user in users:
            size = {
                "file_id": "bench-photo",
                "file_unique_id": "b",
                "width": 320,
                "height": 240,
                "file_size": 5000,
            }
            stub.send_message(user, "en", photo=[size])
        photo_seconds = await wait_count(lambda: len(panels(stub)), args.photos, timeout=600)
        rss_after_photos = process.memory_info().rss
        await asyncio.sleep(1)  # the last answers' trailing messages
        units_per_photo = message_units(stub, set(users)) / args.photos

        analysis_ids = {
            int(c.params["chat_id"]): VoteCallback.unpack(
                c.params["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
            ).analysis_id
            for c in panels(stub)
        }
        before = len(stub.sent("answerCallbackQuery"))
        for i in range(args.presses):
            user = users[i % len(users)]
            choice = VOTE_CHOICES[i % len(VOTE_CHOICES)]
            stub.press(user, VoteCallback(analysis_id=analysis_ids[user], choice=choice).pack())
        press_seconds = await wait_count(
            lambda: len(stub.sent("answerCallbackQuery")) - before, args.presses, timeout=600
        )
        rss_end = process.memory_info().rss
        await asyncio.sleep(2)  # let keyboard redraws finish before the stand-in goes away
    finally:
        bot.terminate()
        try:
            bot.wait(15)
        except subprocess.TimeoutExpired:
            bot.kill()
        log.close()
        await inference.__aexit__(None, None, None)
        await stub.stop()
        conn = await asyncpg.connect(PG_BASE)
        await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await conn.close()
    token_leaked = TOKEN.split(":")[1] in log_path.read_text()
    return {
        "photos": args.photos,
        "photo_updates_per_s": round(args.photos / photo_seconds, 1),
        "vote_presses": args.presses,
        "vote_updates_per_s": round(args.presses / press_seconds, 1),
        "telegram_message_units_per_photo_answer": round(units_per_photo, 2),
        # Telegram's overall limit for one bot token is about 30 messages/s, whatever the number of processes
        "photo_answers_per_s_telegram_allows": round(30 / units_per_photo, 2),
        "rss_idle_mib": round(rss_idle / 2**20, 1),
        "rss_after_photos_mib": round(rss_after_photos / 2**20, 1),
        "rss_end_mib": round(rss_end / 2**20, 1),
        "token_in_logs": token_leaked,
        "bot_root": bot_root,
        "command": " ".join(["python benchmarks/bench_bot.py", *sys.argv[1:]]),
        "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
        "machine": "2 CPU cores shared with other work, no GPU; Telegram and inference are local stand-ins",
        "load_average_1min_at_end": round(os.getloadavg()[0], 2),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=200)
    parser.add_argument("--presses", type=int, default=400)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "bot.json")
    result = asyncio.run(main(parser.parse_args()))
    print(json.dumps(result, indent=2))
    parser.parse_args().out.write_text(json.dumps(result, indent=2) + "\n")
