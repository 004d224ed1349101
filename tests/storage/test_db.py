"""create_pool waits for Postgres: the bot may start while the database is still restarting."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import pytest

from storage.db import create_pool


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _with_port(dsn: str, port: int) -> str:
    parts = urlsplit(dsn)
    netloc = parts.netloc.rsplit("@", 1)
    host = f"127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2 else host))


@contextlib.asynccontextmanager
async def _late_proxy(port: int, target: tuple[str, int], delay: float) -> AsyncIterator[None]:
    """Starts forwarding `port` to Postgres only after `delay` seconds, like a database coming back up."""

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection(*target)
        await asyncio.gather(pipe(client_r, server_w), pipe(server_r, client_w))

    servers: list[asyncio.AbstractServer] = []

    async def start_later() -> None:
        await asyncio.sleep(delay)
        servers.append(await asyncio.start_server(handle, "127.0.0.1", port))

    starter = asyncio.create_task(start_later())
    try:
        yield
    finally:
        starter.cancel()
        for server in servers:
            server.close()
            # closing the listener is enough; live client connections end with the pool


async def test_create_pool_waits_until_postgres_accepts(pg_dsn: str) -> None:
    port = _free_port()
    target = urlsplit(pg_dsn)
    async with _late_proxy(port, (target.hostname or "127.0.0.1", target.port or 5432), delay=1.0):
        started = time.monotonic()
        pool = await create_pool(_with_port(pg_dsn, port), wait_seconds=15)
        try:
            assert time.monotonic() - started >= 0.9
            assert await pool.fetchval("SELECT 1") == 1
        finally:
            await pool.close()


async def test_create_pool_gives_up_after_wait_seconds(pg_dsn: str) -> None:
    started = time.monotonic()
    with pytest.raises(OSError):
        await create_pool(_with_port(pg_dsn, _free_port()), wait_seconds=0.8)
    assert 0.7 <= time.monotonic() - started < 10
