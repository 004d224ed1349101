"""Request bodies of the taste endpoints and the feedback a request may carry, validated with pydantic.

Limits are part of the contract: a client cannot make one request cost minutes of numpy (2000 feedback events
cover years of use; 20000 excluded works cover a long-time user's whole history).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from feedback.taste import FeedbackEvent
from inference.middleware import ApiError

MAX_K = 20
MAX_FEEDBACK = 2000
MAX_EXCLUDE = 20000
MAX_RECOMMENDERS = 4
DEFAULT_RECOMMENDERS = ("by_look", "by_meaning")

ArtworkIdField = Annotated[int, Field(ge=0)]
Seed = Annotated[int | None, Field(default=None, ge=0, lt=2**63, description="Same seed, same answer.")]


class FeedbackItem(BaseModel):
    """One like (+1), dislike (-1) or weaker vote-derived signal, as the bot stored it."""

    model_config = ConfigDict(allow_inf_nan=False)

    artwork_id: ArtworkIdField
    value: float = Field(ge=-1.0, le=1.0)
    age_days: float = Field(default=0.0, ge=0.0)


Feedback = Annotated[list[FeedbackItem], Field(max_length=MAX_FEEDBACK)]
Exclude = Annotated[list[ArtworkIdField], Field(max_length=MAX_EXCLUDE)]


class SuggestRequest(BaseModel):
    feedback: Feedback = Field(default_factory=list)
    exclude: Exclude = Field(default_factory=list, description="Works not to suggest (e.g. already shown).")
    k: int | None = Field(default=None, ge=1, le=MAX_K, description="Works to suggest (default INFERENCE_TOP_K).")
    exploration: float = Field(default=0.1, ge=0.0, le=1.0, allow_inf_nan=False)
    seed: Seed = None


class OnboardingRequest(BaseModel):
    k: int | None = Field(default=None, ge=1, le=MAX_K, description="Works to show (default INFERENCE_TOP_K).")
    exclude: Exclude = Field(default_factory=list)
    seed: Seed = None


MAX_TRANSLATE_CHARS = 4000  # a 160-token description is ~1000 characters; room for four, not for a book


class TranslateRequest(BaseModel):
    text: str = Field(min_length=1, max_length=MAX_TRANSLATE_CHARS, description="English text, e.g. a description.")
    language: str = Field(
        pattern=r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{1,8})*$",
        max_length=35,
        description="The reader's language as Telegram gives it ('ru', 'en', 'pt-br'); only the primary subtag counts.",
    )

    @property
    def primary_language(self) -> str:
        return self.language.replace("_", "-").split("-", 1)[0].lower()


_feedback_adapter: TypeAdapter[list[FeedbackItem]] = TypeAdapter(Feedback)


def parse_feedback(raw: str | None) -> list[FeedbackItem]:
    """The `feedback` form field of /v1/analyze: a JSON list of events (multipart cannot carry JSON natively)."""
    if raw is None or not raw.strip():
        return []
    try:
        return _feedback_adapter.validate_json(raw)
    except ValidationError as exc:
        problems = [
            {"loc": ["feedback", *(str(part) for part in error.get("loc", ()))], "msg": str(error.get("msg", ""))}
            for error in exc.errors()
        ]
        raise ApiError(422, "invalid_request", problems) from None  # type: ignore[arg-type]


def parse_recommender_names(raw: str | None) -> list[str]:
    """The `recommenders` form field: comma-separated names, duplicates dropped, 1 to MAX_RECOMMENDERS."""
    if raw is None:
        return list(DEFAULT_RECOMMENDERS)
    names = list(dict.fromkeys(name.strip() for name in raw.split(",") if name.strip()))
    if not 1 <= len(names) <= MAX_RECOMMENDERS:
        raise ApiError(422, "invalid_request", f"name 1 to {MAX_RECOMMENDERS} recommenders, comma-separated")
    return names


def to_events(items: Sequence[FeedbackItem], gallery_size: int) -> list[FeedbackEvent]:
    """Events on works of this gallery; ids beyond it (a gallery rebuilt smaller) are dropped, not fatal."""
    return [
        FeedbackEvent(item.artwork_id, item.value, item.age_days) for item in items if item.artwork_id < gallery_size
    ]
