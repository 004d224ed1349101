"""What a recommender is: a name, the query features it reads, the gallery indices it searches, and
`recommend(query, gallery, k)`.

The pipeline computes a feature only when some requested recommender reads it (the describer is the slow part,
so a request for `by_look` alone must never wait for it); that is why every recommender states its inputs up
front instead of asking for them while it runs. `recommend` is synchronous (FAISS and numpy): the pipeline
runs it off the event loop.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np

from inference.gallery_store import Gallery, Hit

if TYPE_CHECKING:
    from feedback.taste import TasteProfile

Feature = Literal["image_vector", "description", "text_vector", "clip_text_vector", "query_text_vector"]
"""What the pipeline can compute for one photo, or for a text search's words (the fields of `Query`)."""

# The public, coarse view of the features, by what computes them: "image" is one CLIP pass (fast); every
# description-derived feature waits for the describer (slow).
NEED_OF_FEATURE: dict[Feature, str] = {
    "image_vector": "image",
    "description": "description",
    "text_vector": "description",
    "clip_text_vector": "description",
    "query_text_vector": "text",
}
NEEDS_ORDER = ("image", "description", "text")


class MissingFeature(RuntimeError):
    """A recommender was run on a query without a feature it declared: a pipeline bug, not a client error."""


class NeedsProfile(ValueError):
    """A personal recommender was asked for without feedback that says what the user likes."""

    def __init__(self, name: str) -> None:
        super().__init__(f"{name} needs feedback with at least one liked work")
        self.name = name


@dataclass(frozen=True)
class Query:
    """What the pipeline computed for one photo; features nobody asked for stay None."""

    image_vector: np.ndarray | None = None
    """CLIP image embedding of the photo, (D,)."""
    description: str | None = None
    text_vector: np.ndarray | None = None
    """MiniLM embedding of the description (the gallery's text index space)."""
    clip_text_vector: np.ndarray | None = None
    """CLIP text-tower embedding of the description (the gallery's image index space)."""
    profile: TasteProfile | None = None
    query_text_vector: np.ndarray | None = None
    """CLIP text-tower embedding of a user's words (search by words, `/v1/search/text`): no photo at all."""

    def need(self, feature: Feature) -> Any:
        value = getattr(self, feature)
        if value is None:
            raise MissingFeature(f"the query has no {feature}")
        return value


@dataclass
class PersonalHit(Hit):
    """A hit chosen with the user's taste: `because` is the liked work it resembles most (None: none does)."""

    because: int | None = None

    def to_dict(self) -> dict[str, object]:
        return {**super().to_dict(), "because": self.because}


class Recommender(ABC):
    """One way of choosing works for a photo. Subclasses set the class attributes and `recommend`."""

    name: ClassVar[str]
    uses: ClassVar[frozenset[Feature]]
    indices: ClassVar[frozenset[str]]
    """Gallery indices searched (keys of gallery_store.INDEX_FILES), checked when the gallery loads."""
    personal: ClassVar[bool] = False
    """Needs the user's taste profile (`Query.profile`), so only requests carrying feedback can use it."""
    space: ClassVar[str | None] = None
    """The similarity space its scores live in (`inference.relevance.SPACES`), whose floor its hits must clear;
    None for recommenders whose sets are made of other recommenders' (already floored) hits."""

    @property
    def needs(self) -> list[str]:
        """Which slow or fast computations it waits for: "image" (CLIP), "description" (the describer)."""
        wanted = {NEED_OF_FEATURE[feature] for feature in self.uses}
        return [need for need in NEEDS_ORDER if need in wanted]

    @property
    def answers_text(self) -> bool:
        """A text recommender: it answers a user's words (/v1/search/text), never a photo."""
        return "query_text_vector" in self.uses

    @property
    def fast(self) -> bool:
        """Servable from the CLIP pass alone, as /v1/look is: no describer, no profile."""
        return self.needs == ["image"] and not self.personal

    def info(self) -> dict[str, object]:
        return {
            "name": self.name,
            "needs": self.needs,
            "personal": self.personal,
            "fast": self.fast,
            "text": self.answers_text,
        }

    def relevant(self, hits: list[Hit], gallery: Gallery) -> list[Hit]:
        """The hits at or above the floor of this recommender's space (all of them when the gallery has none)."""
        floor = (gallery.manifest.relevance or {}).get(self.space) if self.space is not None else None
        return hits if floor is None else [hit for hit in hits if floor.admits(hit.score)]

    @abstractmethod
    def recommend(self, query: Query, gallery: Gallery, k: int) -> list[Hit]:
        """Up to k hits, best first; fewer, or none, when fewer clear the relevance floor."""
