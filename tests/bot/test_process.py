"""`python -m bot` as a real process: migrates its database at start, answers, keeps its token out of the logs."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import asyncpg
from redis.asyncio import Redis

from tests.bot.conftest import BOT_TOKEN
from tests.bot.telegram_stub import TelegramStub
from tests.fixtures_gallery import SERVICE_TOKEN
from tests.private_services import free_port
from tests.scrape import sample

ROOT = Path(__file__).resolve().parents[2]


async def test_bot_process_migrates_answers_and_never_logs_its_token(
    telegram: TelegramStub, fresh_schema_dsn: Callable[[], Awaitable[str]], redis_url: str, tmp_path: Path
) -> None:
    dsn = await fresh_schema_dsn()
    metrics_port = free_port()
    env = {
        **os.environ,
        "BOT_TOKEN": BOT_TOKEN,
        "BOT_API_BASE_URL": telegram.base_url,
        "BOT_INFERENCE_URL": "http://127.0.0.1:9",  # down: the bot must still start and explain
        "BOT_INFERENCE_TOKEN": SERVICE_TOKEN,
        "BOT_POSTGRES_DSN": dsn,
        "BOT_REDIS_URL": redis_url.rsplit("/", 1)[0] + "/6",
        "BOT_METRICS_PORT": str(metrics_port),
        "BOT_METRICS_HOST": "127.0.0.1",
    }
    log_path = tmp_path / "bot.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "bot"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        telegram.send_message(77, "ru", text="/start")
        await telegram.wait_text(77, "Привет! Я ArtMatch", timeout=60)
        telegram.add_file("p1", b"\xff\xd8\xff\xe0 not really a jpeg", "photos/p1.jpg")
        telegram.send_message(
            77, "en", photo=[{"file_id": "p1", "file_unique_id": "p1", "width": 9, "height": 9, "file_size": 20}]
        )
        await telegram.wait_text(77, "unavailable right now", timeout=60)
        telegram.send_message(77, "ru", text="звёздная ночь над рекой")  # a search by words, the service down
        await telegram.wait_text(77, "Повторите поиск через минуту", timeout=60)
        conn = await asyncpg.connect(dsn)
        try:
            applied = await conn.fetchval("SELECT count(*) FROM schema_migrations")
            seen = await conn.fetchval("SELECT count(*) FROM users WHERE telegram_id = 77")
        finally:
            await conn.close()
        assert applied >= 1 and seen == 1
        menus = [c.params for c in telegram.calls if c.method == "setMyCommands"]
        assert {menu.get("language_code") for menu in menus} == {None, "ru"}
        for menu in menus:  # /search and /color in the command menu of both languages
            commands = json.loads(menu["commands"]) if isinstance(menu["commands"], str) else menu["commands"]
            assert {"search", "color"} <= {command["command"] for command in commands}
        async with aiohttp.ClientSession() as session:  # the process serves its metrics
            async with session.get(f"http://127.0.0.1:{metrics_port}/metrics") as response:
                assert response.status == 200
                assert sample(await response.text(), "artmatch_bot_outbox_length") is not None
    finally:
        process.terminate()
        await asyncio.to_thread(process.wait, 20)
    logs = log_path.read_text()
    assert "migrations applied" in logs or "0001" in logs
    assert BOT_TOKEN.split(":")[1] not in logs
    assert SERVICE_TOKEN not in logs
    # a Redis that keeps nothing on disk (as the test machines run it) is named at start: queued votes die with it
    redis = Redis.from_url(redis_url)
    try:
        config = {str(k): str(v) for k, v in (await redis.config_get("append*")).items()}
    finally:
        await redis.aclose()
    durable = config.get("appendonly") in ("yes", "b'yes'") and config.get("appendfsync") in ("always", "b'always'")
    assert ("Redis does not persist every write" in logs) is not durable
