"""ArtMatch Telegram bot (aiogram 3)."""
