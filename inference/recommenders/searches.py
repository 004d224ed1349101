"""The single-index recommenders: one query vector, one FAISS search, the hits below the space's floor dropped."""

from __future__ import annotations

from inference import relevance
from inference.gallery_store import Gallery, Hit
from inference.recommenders.base import Query, Recommender


class ByLook(Recommender):
    """Works that look alike: the photo's CLIP image vector against the gallery's image vectors."""

    name = "by_look"
    uses = frozenset({"image_vector"})
    indices = frozenset({"image"})
    space = relevance.IMAGE

    def recommend(self, query: Query, gallery: Gallery, k: int) -> list[Hit]:
        return self.relevant(gallery.search_image(query.need("image_vector"), k)[0], gallery)


class ByMeaning(Recommender):
    """Works described alike: the description's MiniLM vector against the gallery's own descriptions."""

    name = "by_meaning"
    uses = frozenset({"description", "text_vector"})
    indices = frozenset({"text"})
    space = relevance.TEXT

    def recommend(self, query: Query, gallery: Gallery, k: int) -> list[Hit]:
        return self.relevant(gallery.search_text(query.need("text_vector"), k)[0], gallery)


class ByTextClip(Recommender):
    """Cross-modal: the description through CLIP's text tower, against the gallery's *image* vectors. It finds
    works that look like what the description says, independent of how the gallery's descriptions are worded."""

    name = "by_text_clip"
    uses = frozenset({"description", "clip_text_vector"})
    indices = frozenset({"image"})
    space = relevance.CLIP_TEXT
    """Text-to-image cosines are far lower than image-to-image ones: the same index, its own floor."""

    def recommend(self, query: Query, gallery: Gallery, k: int) -> list[Hit]:
        return self.relevant(gallery.search_image(query.need("clip_text_vector"), k)[0], gallery)
