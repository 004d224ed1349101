"""The text recommenders: a user's words (any language the multilingual CLIP text tower reads) to works.

Both start from the same query vector, the words through CLIP's text tower, and differ in what they compare it
with, so the arena can tell which way of reading words users prefer:

- `words_look` searches the gallery's *image* vectors: works that look like what the words say, whatever their
  descriptions call it (the cross-modal space, floored like `by_text_clip`).
- `words_meaning` searches the *descriptions'* CLIP text vectors (`inference.words_index`): works whose
  description says what the words say, a Russian query meeting English descriptions in the one space.

Neither reads a photo: they use only `query_text_vector`, which the photo pipeline never computes, so the photo
arena (and /v1/analyze) never runs them.
"""

from __future__ import annotations

from inference import relevance
from inference.gallery_store import Gallery, Hit
from inference.recommenders.base import Query, Recommender


class WordsLook(Recommender):
    """The query's CLIP text vector against the gallery's CLIP image vectors."""

    name = "words_look"
    uses = frozenset({"query_text_vector"})
    indices = frozenset({"image"})
    space = relevance.CLIP_TEXT

    def recommend(self, query: Query, gallery: Gallery, k: int) -> list[Hit]:
        return self.relevant(gallery.search_image(query.need("query_text_vector"), k)[0], gallery)


class WordsMeaning(Recommender):
    """The query's CLIP text vector against the descriptions' CLIP text vectors."""

    name = "words_meaning"
    uses = frozenset({"query_text_vector"})
    indices = frozenset({"description_clip"})
    space = relevance.DESCRIPTION_CLIP

    def recommend(self, query: Query, gallery: Gallery, k: int) -> list[Hit]:
        return self.relevant(gallery.search_description_clip(query.need("query_text_vector"), k)[0], gallery)
