"""Typed settings of the bot process, read once at start from `BOT_*` environment variables."""

from __future__ import annotations

import re
from typing import Annotated, Literal, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PLACEHOLDERS = {"", "changeme", "change-me", "123456:ABC"}
# What Telegram accepts as a webhook secret_token (setWebhook): 1-256 characters of A-Z, a-z, 0-9, _ and -.
WEBHOOK_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")
MAKE_SECRET = "python -c 'import secrets; print(secrets.token_urlsafe(32))'"


class BotSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BOT_", env_file=".env", extra="ignore")

    token: SecretStr = Field(description="Telegram bot token from @BotFather.")
    api_base_url: str | None = Field(
        default=None,
        description="Base URL of a self-hosted Telegram Bot API server, e.g. http://127.0.0.1:8081. "
        "None uses api.telegram.org.",
    )
    inference_url: str = "http://127.0.0.1:8000"
    inference_token: SecretStr
    postgres_dsn: str = "postgresql://postgres@127.0.0.1:5432/artmatch"
    redis_url: str = "redis://127.0.0.1:6379/0"
    admin_ids: Annotated[list[int], NoDecode] = Field(default_factory=list)

    top_k: int = Field(default=5, ge=1, le=5, description="Works per set (two sets share a 10-button panel).")
    photos_per_minute: int = 6
    max_photos_in_flight: int = 16
    max_download_bytes: int = 20 * 1024 * 1024
    look_timeout_s: float = 30.0
    analyze_timeout_s: float = 180.0
    analysis_cache_ttl_s: int = 7 * 24 * 3600
    outbox_flush_interval_s: float = 5.0

    chat_messages_per_second: float = Field(
        default=1.0, gt=0, description="Telegram messages per second to one chat (an album counts as one), on average."
    )
    chat_burst: int = Field(
        default=4,
        ge=1,
        description="Messages one chat may get at once before pacing starts: one photo's whole answer (album, "
        "description, album, panel) goes out without a stall; the next photo's answer is paced.",
    )
    messages_per_second: float = Field(default=30.0, gt=0, description="Telegram messages per second, all chats.")
    send_retry_budget_s: float = Field(
        default=30.0, gt=0, description="How long one send may wait out Telegram's 429 flood waits before failing."
    )

    foryou_k: int = Field(default=5, ge=1, le=8, description="Works per /foryou set.")
    foryou_exploration: float = Field(
        default=0.1, ge=0.0, le=1.0, description="Share of /foryou slots given to something new to explore."
    )
    daily_poll_s: float = Field(default=30.0, gt=0, description="How often the daily-pick sender looks for due users.")
    daily_max_per_second: float = Field(
        default=20.0, gt=0, description="Telegram messages per second the daily sender may send (a pick is 3)."
    )
    daily_max_failures: int = Field(default=5, ge=1, description="Failed daily picks in a row before unsubscribing.")
    default_utc_offset_minutes: int = Field(
        default=0, ge=-720, le=840, description="UTC offset assumed by /daily on when the user gives none."
    )
    arena_mode: Literal["sides", "interleaved"] = Field(
        default="sides",
        description="sides: two sets and a vote; interleaved: one team-draft set of two recommenders, "
        "credited from likes.",
    )
    arena_recommenders: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Recommenders the arena may show (comma list); empty = all the inference service offers.",
    )
    search_recommenders: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Text recommenders /search may pit against each other (comma list); empty = all the inference "
        "service lists as text recommenders.",
    )
    search_max_chars: int = Field(
        default=300, ge=10, le=2000, description="Words searched at most; a longer message is cut (the user is told)."
    )
    metrics_port: int = Field(
        default=9101,
        ge=0,
        le=65535,
        description="Port of the Prometheus endpoint (GET /metrics: counts, no user data); 0 turns it off.",
    )
    metrics_host: str = Field(default="0.0.0.0", description="Address the metrics endpoint listens on.")
    arena_refresh_s: float = Field(default=60.0, gt=0, description="How often the arena leaderboard is refitted.")
    arena_bootstrap: int = Field(default=300, ge=0, description="Bootstrap replicates per refit (and per /stats).")

    mode: Literal["polling", "webhook"] = Field(
        default="polling",
        description="polling: one process long-polls Telegram; webhook: Telegram POSTs updates to BOT_WEBHOOK_URL, "
        "so several replicas can share the load (they share state only through Redis and Postgres).",
    )
    webhook_url: str | None = Field(
        default=None, description="Public https URL Telegram calls (set with setWebhook at start); webhook mode only."
    )
    webhook_secret: SecretStr | None = Field(
        default=None,
        description="Telegram sends it in X-Telegram-Bot-Api-Secret-Token; updates without it get 401. Required "
        "in webhook mode.",
    )
    webhook_host: str = Field(default="0.0.0.0", description="Address the webhook server listens on.")
    webhook_port: int = Field(default=8080, ge=0, le=65535, description="Port the webhook server listens on.")
    webhook_path: str = Field(default="/telegram", description="Path the webhook server answers on.")

    @field_validator("token", "inference_token")
    @classmethod
    def _refuse_placeholder(cls, value: SecretStr) -> SecretStr:
        if value.get_secret_value() in PLACEHOLDERS:
            raise ValueError("must be set to a real secret, not a placeholder")
        return value

    @model_validator(mode="after")
    def _webhook_needs_url_and_secret(self) -> Self:
        """Webhook mode without a secret would process any POST from anyone: refuse to start instead."""
        if self.mode != "webhook":
            return self
        if not self.webhook_url or not self.webhook_url.startswith(("https://", "http://")):
            raise ValueError("BOT_MODE=webhook needs BOT_WEBHOOK_URL, the public https URL Telegram will call")
        secret = self.webhook_secret.get_secret_value() if self.webhook_secret else ""
        if not WEBHOOK_SECRET.fullmatch(secret) or secret in PLACEHOLDERS:
            raise ValueError(
                "BOT_MODE=webhook needs BOT_WEBHOOK_SECRET: 1-256 characters of A-Z, a-z, 0-9, _ and -; "
                f"generate one with: {MAKE_SECRET}"
            )
        if not self.webhook_path.startswith("/"):
            raise ValueError("BOT_WEBHOOK_PATH must start with /")
        return self

    @field_validator("arena_recommenders", "search_recommenders", mode="before")
    @classmethod
    def _split_names(cls, value: object) -> object:
        if isinstance(value, str):
            return [part for part in value.replace(" ", "").split(",") if part]
        return value

    @field_validator("admin_ids", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        """Accept `1,2,3` from the environment as well as a JSON list."""
        if isinstance(value, str):
            return [int(part) for part in value.replace(" ", "").split(",") if part]
        if isinstance(value, int):
            return [value]
        return value
