"""Counters of the feedback the bot records, by what became of it. The bot process exposes them (`bot.metrics`).

Counted in `FeedbackRecorder`, the one place every vote and like passes, so each press counts once whichever
handler took it; a queued event replayed later from the outbox is not counted again.
"""

from __future__ import annotations

from prometheus_client import Counter

OUTCOMES_HELP = "outcome: saved, unchanged (already so), queued (Postgres down: in the outbox), refused (not theirs)"

VOTES = Counter(
    "artmatch_bot_votes",
    f"Arena votes, by choice (left, right, both, neither) and {OUTCOMES_HELP}.",
    ["choice", "outcome"],
)
LIKES = Counter(
    "artmatch_bot_likes",
    f"Likes by reaction (like, dislike, clear: the mark taken back on the panel, unlike: 💔 under /likes) and "
    f"{OUTCOMES_HELP}.",
    ["reaction", "outcome"],
)

REACTIONS = {1: "like", -1: "dislike", 0: "clear"}
INVALID = "invalid"
"""The label of a value no button sends (a forged callback): refused, and never a series of its own."""


def count_vote(choice: str, outcome: str, valid_choices: tuple[str, ...]) -> None:
    VOTES.labels(choice=choice if choice in valid_choices else INVALID, outcome=outcome).inc()


def count_like(reaction: int | str, outcome: str) -> None:
    label = reaction if isinstance(reaction, str) else REACTIONS.get(reaction, INVALID)
    LIKES.labels(reaction=label, outcome=outcome).inc()
