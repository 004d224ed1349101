"""A user's history as the personal recommenders read it: feedback events, works already seen, count of likes.

The bot owns the history (Postgres); the inference service owns the vectors. So the bot loads this once per
request and sends the events (and the works to exclude), and the service builds the taste profile.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from feedback.taste import FeedbackEvent, events_from_vote
from storage.repositories import Repo

MAX_EVENTS = 2000  # the service's limit; the most recent feedback is kept
MAX_EXCLUDED = 20_000


@dataclass(frozen=True)
class History:
    events: list[FeedbackEvent]
    seen: list[int]
    likes: int  # works marked ❤️ (a profile needs at least one)

    @property
    def has_profile(self) -> bool:
        return self.likes > 0


def _age_days(at: datetime, now: datetime) -> float:
    return max(0.0, (now - at).total_seconds() / 86400.0)


async def load_history(repo: Repo, user_id: int, now: datetime | None = None, *, with_seen: bool = True) -> History:
    """Likes count fully, votes a little (the chosen set's works were somewhat to the user's taste).

    A user with no ❤️ has no profile yet, so their votes are not read; the photo flow skips `seen` too.
    """
    now = now or datetime.now(UTC)
    likes = await repo.history.likes(user_id)
    liked = sum(1 for like in likes if like.value > 0)
    votes = await repo.history.votes(user_id) if liked else []
    seen = await repo.history.seen_artwork_ids(user_id) if with_seen else set()
    events = [FeedbackEvent(like.artwork_id, float(like.value), _age_days(like.at, now)) for like in likes]
    for vote in votes:
        events.extend(events_from_vote(vote.left_ids, vote.right_ids, vote.choice, _age_days(vote.at, now)))
    return History(events=events[:MAX_EVENTS], seen=sorted(seen)[-MAX_EXCLUDED:], likes=liked)
