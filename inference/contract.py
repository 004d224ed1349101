"""The typed contract between the bot and the inference service, and the arena's vocabulary: defined once here.

The service declares these models as FastAPI `response_model`s (so `/docs` shows every shape) and the bot's
client parses each answer into them, so a field renamed on one side fails loudly in tests instead of as a
`KeyError` in a user's chat. Pure pydantic: importing it loads no model, no torch, no FAISS, so the bot (and
storage, for the literals) can import it without the ML stack.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

VoteChoice = Literal["left", "right", "both", "neither"]
"""A vote on a two-set analysis: one side won, both were good, or neither was."""
VOTE_CHOICES: tuple[VoteChoice, ...] = get_args(VoteChoice)

Side = Literal["left", "right"]
"""Where a recommender's set was shown (A = left, B = right); interleaving stores its two teams the same way."""
SIDES: tuple[Side, ...] = get_args(Side)

ArenaMode = Literal["sides", "interleaved"]
"""`sides`: two sets and a vote; `interleaved`: one team-draft set, credited from likes."""
ARENA_MODES: tuple[ArenaMode, ...] = get_args(ArenaMode)


class _Answer(BaseModel):
    """Answers tolerate fields added by a newer service (the bot ignores them), never missing ones."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class Tag(_Answer):
    """A zero-shot label of a work or a photo (`inference.tagging`): `kind` is style, genre or mood; `name` is the
    label's stable English key, `ru` its Russian name; `score` is its softmax share within its kind."""

    kind: str
    name: str
    ru: str = ""
    score: float = Field(ge=0.0, le=1.0)


class PaletteColour(_Answer):
    """One of a work's dominant colours (`inference.palette`): sRGB hex and its share of the pixels."""

    hex: str = Field(pattern=r"^#[0-9a-f]{6}$")
    weight: float = Field(ge=0.0, le=1.0)


class Artwork(_Answer):
    """A gallery work as clients see it; `file` is its source file's name relative to the images folder."""

    artwork_id: int = Field(ge=0)
    id: int | None = Field(default=None, ge=0, description="The same gallery row as `artwork_id`; always sent.")
    file: str = ""
    title: str = ""
    artist: str = ""
    year: str = ""
    style: str = ""
    genre: str = ""
    description: str = ""
    tags: list[Tag] = Field(default_factory=list, description="The work's zero-shot tags, computed at build.")


class Hit(Artwork):
    """A recommended work with its similarity score (higher is closer); `because` only from personal recommenders:
    the liked work it resembles most."""

    score: float = 0.0
    because: int | None = None


Sets = dict[str, list[Hit]]
"""Recommender name -> its hits, best first."""


class Match(_Answer):
    """"This photo shows this gallery work": the exact work recognised in the photo (issue 8). `confidence` is the
    calibrated chance that a photo of a work *outside* the gallery would score lower; `corners` are where the
    work's corners (top-left, top-right, bottom-right, bottom-left) lie in the uploaded photo, in its pixels."""

    artwork_id: int = Field(ge=0)
    file: str = ""
    title: str = ""
    artist: str = ""
    year: str = ""
    confidence: float = Field(ge=0.0, le=1.0)
    inliers: int = Field(ge=0)
    corners: list[tuple[float, float]] = Field(min_length=4, max_length=4)


class IdentifyResponse(_Answer):
    """`POST /v1/identify`: the recognised work, or `match: null` when no gallery work is in the photo."""

    image_sha256: str
    match: Match | None = None
    timings_ms: dict[str, float] = Field(default_factory=dict)


class TextSearchRequest(BaseModel):
    """`POST /v1/search/text`: words in any language the CLIP text tower reads (Russian and English at least)."""

    model_config = ConfigDict(extra="forbid")

    query: str = Field(
        max_length=10_000,
        description="Any length a chat message has (Telegram allows 4096); the text tower reads its first tokens.",
    )
    k: int = Field(default=5, ge=1, le=50)
    recommenders: list[str] | None = Field(
        default=None, description="Text recommenders to run (default: all of them, one set each)."
    )


class ColorSearchRequest(BaseModel):
    """`POST /v1/search/color`: a colour as `#rrggbb`/`rrggbb`/`#rgb` or a colour name in English or Russian."""

    model_config = ConfigDict(extra="forbid")

    color: str = Field(max_length=64)
    k: int = Field(default=5, ge=1, le=50)


class SearchResponse(_Answer):
    """A word or colour search: one set per recommender, in the same `Hit` shape as the photo sets. `query` echoes
    what was searched (the normalised text, or the colour's hex); `palettes` maps artwork_id -> its palette for the
    hits of a colour search, so a client can draw the strip."""

    query: str
    recommendations: Sets
    palettes: dict[int, list[PaletteColour]] = Field(default_factory=dict)
    timings_ms: dict[str, float] = Field(default_factory=dict)


class LookResponse(_Answer):
    """`POST /v1/look`: the fast visual set (CLIP + FAISS only), with the recognised work, if any. A recognised work
    is left out of every set (the user has it in front of them); an empty set means nothing cleared the gallery's
    relevance floor ("nothing in the gallery looks close")."""

    image_sha256: str
    recommendations: Sets
    match: Match | None = None
    tags: list[Tag] = Field(
        default_factory=list, description="The photo's zero-shot style, genre and mood tags, best first per kind."
    )
    timings_ms: dict[str, float] = Field(default_factory=dict)
    models: dict[str, Any] = Field(default_factory=dict)


class AnalyzeResponse(LookResponse):
    """`POST /v1/analyze`: the description (empty when no named recommender needed one) and one set per name."""

    description: str | None = None


class TranslateResponse(_Answer):
    """`POST /v1/translate`: a description in the user's language (the describer writes English)."""

    text: str
    language: str
    timings_ms: dict[str, float] = Field(default_factory=dict)


class RecommenderInfo(_Answer):
    """One entry of the arena's registry; `fast` ones need only the CLIP pass, so /v1/look can serve them."""

    name: str
    needs: list[str] = Field(default_factory=list)
    personal: bool = False
    fast: bool = False
    text: bool = Field(
        default=False,
        description="A text recommender: it answers words (/v1/search/text), never a photo; photo arenas skip it.",
    )


class RecommendersResponse(_Answer):
    recommenders: list[RecommenderInfo]


class LikedWork(_Answer):
    artwork_id: int
    title: str = ""
    artist: str = ""


class Suggestion(Artwork):
    """A personal pick: `because` names the liked work it comes from (None: an exploration pick or no match)."""

    score: float = 0.0
    because: LikedWork | None = None
    explored: bool = False


class ProfileSummary(_Answer):
    interests: int
    likes: int


class SuggestResponse(_Answer):
    """`POST /v1/suggest`."""

    suggestions: list[Suggestion]
    profile: ProfileSummary


class OnboardingResponse(_Answer):
    """`POST /v1/onboarding`: a diverse sample for a new user to pick favourites from."""

    artworks: list[Artwork]


class HealthResponse(_Answer):
    status: str
    gallery_size: int
    models: dict[str, Any] = Field(default_factory=dict)
    dropped: dict[str, int] = Field(
        default_factory=dict, description="Per model queue: requests dropped unserved because their client left."
    )
    identification: dict[str, Any] | None = Field(
        default=None,
        description="Identification facts (works, visual words, bytes per work, calibrated threshold); "
        "null when it is turned off.",
    )
    describer: dict[str, Any] | None = Field(
        default=None,
        description="A describer server's state (INFERENCE_DESCRIBER=vllm): `ready`, and the `problem` when it is "
        "not, which makes `status` 'degraded' (/v1/look still works, descriptions fail); null for an in-process one.",
    )
