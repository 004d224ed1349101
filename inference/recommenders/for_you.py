"""`for_you`: the fused candidates for the photo, re-ranked by the user's taste.

Relevance to the photo stays half of the score (`feedback.suggest.rerank`), so the set still answers the photo
rather than repeating the user's favourites whatever they send.

Relevance: the candidates are the fused pool, whose parts each dropped what is below their floor, so taste only
re-orders works that are close to the photo and never brings back one that is not; no candidate, no set.
"""

from __future__ import annotations

from feedback.suggest import rerank
from inference.gallery_store import Gallery, Hit
from inference.recommenders.base import NeedsProfile, PersonalHit, Query, Recommender
from inference.recommenders.fusion import Fused

CANDIDATES = 50
"""Fused works considered for re-ranking: deep enough for taste to matter, shallow enough to stay on topic."""


class ForYou(Recommender):
    name = "for_you"
    uses = Fused.uses
    indices = Fused.indices
    personal = True

    def __init__(self) -> None:
        self._fused = Fused()

    def recommend(self, query: Query, gallery: Gallery, k: int) -> list[Hit]:
        profile = query.profile
        if profile is None or profile.is_empty:
            raise NeedsProfile(self.name)
        rated = set(profile.liked_ids) | set(profile.disliked_ids)
        fused = self._fused.pool(query, gallery)
        # works the user already marked are not news: drop them unless that would leave the set short
        fresh = [hit for hit in fused if hit.artwork.id not in rated]
        pool = (fresh if len(fresh) >= k else fused)[:CANDIDATES]
        ids = [hit.artwork.id for hit in pool]
        ranked = rerank(profile, ids, gallery.vectors(ids), [hit.score for hit in pool], k)
        return [PersonalHit(gallery.artworks[s.artwork_id], s.score, s.because) for s in ranked]
