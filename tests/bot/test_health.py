"""The containers' health check (`scripts/healthcheck`, the images' HEALTHCHECK) against the bot's real metrics
server: healthy while the process serves, even with Redis away; unhealthy, in one line, when nothing answers."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import aiohttp
from aiohttp import web
from redis.asyncio import Redis

from bot.metrics import metrics_server
from storage.cache import FeedbackOutbox, create_redis
from tests.private_services import free_port

HEALTHCHECK = Path(__file__).resolve().parents[2] / "scripts" / "healthcheck"


async def healthcheck(url: str) -> tuple[int, str, str]:
    """Run the script as Docker does, without blocking the loop that serves the endpoint."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(HEALTHCHECK), url, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_the_bot_is_healthy_while_its_metrics_server_serves(bot_redis: Redis) -> None:
    port = free_port()
    async with metrics_server("127.0.0.1", port, FeedbackOutbox(bot_redis)):
        code, out, err = await healthcheck(f"http://127.0.0.1:{port}/healthz")
        assert (code, err) == (0, ""), err
        assert out.strip() == f"http://127.0.0.1:{port}/healthz: 200"
    code, _, err = await healthcheck(f"http://127.0.0.1:{port}/healthz")  # the process is gone
    assert code == 1
    assert len(err.strip().splitlines()) == 1 and "refused" in err.lower()


async def test_redis_away_does_not_make_the_bot_unhealthy() -> None:
    """The bot rides out a Redis outage; a health check failing with it would have every replica restarted."""
    dead = create_redis(f"redis://127.0.0.1:{free_port()}/0", retry_budget_s=0.2, socket_connect_timeout=0.2)
    port = free_port()
    try:
        async with metrics_server("127.0.0.1", port, FeedbackOutbox(dead)):
            started = time.monotonic()
            code, _, err = await healthcheck(f"http://127.0.0.1:{port}/healthz")
            assert code == 0, err
            assert time.monotonic() - started < 10  # answered at once, no Redis round trip behind it
            async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}/metrics") as page:
                assert "artmatch_bot_outbox_length NaN" in await page.text()  # the outage is visible, not hidden
    finally:
        await dead.aclose()


async def test_an_error_status_is_unhealthy_and_port_zero_is_not_checked() -> None:
    app = web.Application()

    async def unavailable(request: web.Request) -> web.Response:
        return web.Response(status=503)

    app.router.add_get("/healthz", unavailable)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        code, _, err = await healthcheck(f"http://127.0.0.1:{port}/healthz")
        assert (code, err.strip()) == (1, f"http://127.0.0.1:{port}/healthz: HTTP 503")
    finally:
        await runner.cleanup()
    code, out, _ = await healthcheck("http://127.0.0.1:0/healthz")  # BOT_METRICS_PORT=0: the server is off
    assert code == 0 and "not checked" in out
