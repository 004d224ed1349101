"""Logging set-up for the bot process: one place, and secrets never reach the output.

aiohttp puts the request URL in its exception messages, and the Bot API URL contains the bot token
(`/bot<token>/sendMessage`), so every formatted line, tracebacks included, is scrubbed of configured secrets.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

REDACTED = "***"


class RedactingFormatter(logging.Formatter):
    def __init__(self, secrets: Iterable[str], fmt: str | None = None) -> None:
        super().__init__(fmt)
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return text


def configure_logging(secrets: Iterable[str], level: int = logging.INFO) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(RedactingFormatter(secrets, "%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
