"""`fused`: reciprocal-rank fusion of the single-index recommenders.

RRF needs no score calibration between indices (cosines of CLIP images, MiniLM texts and CLIP text-to-image
live on different scales), and a work ranked well by two of them beats one ranked first by a single one.

Relevance: RRF scores are ranks, not similarities, so they have no floor of their own. Each part drops its hits
below its own space's floor before fusion, so a fused work is one that at least one way of looking finds close;
when none does, the fused set is empty.
"""

from __future__ import annotations

from collections.abc import Sequence

from inference.gallery_store import Artwork, Gallery, Hit
from inference.recommenders.base import Query, Recommender
from inference.recommenders.searches import ByLook, ByMeaning, ByTextClip

RRF_K = 60
"""The usual constant of Cormack et al.: damps the weight of the very first ranks."""
FUSION_DEPTH = 50
"""How deep each part is searched: a work at rank 40 of two parts still makes the fused top."""

PARTS: tuple[Recommender, ...] = (ByLook(), ByMeaning(), ByTextClip())


def reciprocal_rank_fusion(rankings: Sequence[Sequence[Hit]], rrf_k: int = RRF_K) -> list[Hit]:
    """Hits scored by sum over rankings of 1 / (rrf_k + rank), best first (ties: first seen first)."""
    scores: dict[int, float] = {}
    artworks: dict[int, Artwork] = {}
    for ranking in rankings:
        for rank, hit in enumerate(ranking, start=1):
            artworks.setdefault(hit.artwork.id, hit.artwork)
            scores[hit.artwork.id] = scores.get(hit.artwork.id, 0.0) + 1.0 / (rrf_k + rank)
    order = sorted(scores, key=lambda artwork_id: -scores[artwork_id])  # stable: first seen wins ties
    return [Hit(artworks[artwork_id], scores[artwork_id]) for artwork_id in order]


class Fused(Recommender):
    """By look, by meaning and by CLIP text at once."""

    name = "fused"
    uses = frozenset().union(*(part.uses for part in PARTS))
    indices = frozenset().union(*(part.indices for part in PARTS))

    def pool(self, query: Query, gallery: Gallery, depth: int = FUSION_DEPTH) -> list[Hit]:
        """Every work any part found within `depth`, fused: the candidates of `for_you` too."""
        return reciprocal_rank_fusion([part.recommend(query, gallery, depth) for part in PARTS])

    def recommend(self, query: Query, gallery: Gallery, k: int) -> list[Hit]:
        return self.pool(query, gallery)[:k]
