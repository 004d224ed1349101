"""What search by words needs from a gallery build: the descriptions through CLIP's text tower, and their floor.

`words_meaning` compares a query's CLIP text vector with these vectors (text to text, in the one multilingual space,
so a Russian query meets an English description), `words_look` compares it with the image vectors. Both are built
at gallery build from what the build already has (descriptions, the CLIP model); nothing here is trained.

The floor of the description space is measured on short, query-like texts against *other* works' descriptions: a
work's title when the metadata has one, else the first words of its description. Description-to-description pairs
would set it far too high (every description starts "The painting shows ..."), and a user's words are short.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from inference.models import ImageTextEmbedder
from inference.relevance import QUANTILE, Floor, floor_from_scores, ordered_pairs, pair_scores

EMBED_CHUNK = 64
QUERY_WORDS = 6
"""Words of a description that stand in for a query when a work has no title."""


def embed_descriptions(clip: ImageTextEmbedder, descriptions: Sequence[str]) -> np.ndarray:
    """CLIP text vectors (n, D) of the descriptions, in chunks (each cut to the text tower's context)."""
    if not descriptions:
        return np.zeros((0, clip.dim), dtype=np.float32)
    chunks = [
        clip.embed_texts(list(descriptions[at : at + EMBED_CHUNK])) for at in range(0, len(descriptions), EMBED_CHUNK)
    ]
    return np.concatenate(chunks).astype(np.float32)


def query_like(title: str, description: str) -> str:
    """A short stand-in for a user's words about this work: its title, else its description's first words."""
    return title.strip() or " ".join(description.split()[:QUERY_WORDS])


def words_floor(
    clip: ImageTextEmbedder,
    titles: Sequence[str],
    descriptions: Sequence[str],
    description_vectors: np.ndarray,
    quantile: float = QUANTILE,
) -> Floor | None:
    """The floor of query-to-description search: query-like texts of sampled works against the descriptions of
    the others (ordered pairs, as `relevance.cross_floor`). None below two works."""
    n = len(description_vectors)
    if n < 2:
        return None
    first, second = ordered_pairs(n)
    asked = np.unique(first)
    queries = embed_descriptions(clip, [query_like(titles[i], descriptions[i]) for i in asked])
    return floor_from_scores(pair_scores(queries, description_vectors, np.searchsorted(asked, first), second), quantile)
