"""Zero-shot style, genre and mood tags from CLIP: an image vector against the text vectors of curated labels.

Every label's prompts (`inference.tag_labels`) are embedded once with the CLIP text tower, averaged and
normalised; tagging a batch of image vectors is then one small matrix product per kind (50 labels x D), so the
service tags a query photo from the CLIP vector it already has, at no measurable cost, and the build tags every
work at assembly. Scores are CLIP's zero-shot probabilities: a softmax over the kind's labels of the cosine
similarities times CLIP's logit scale (100), so the tags of one kind sum to at most 1.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from inference.contract import Tag
from inference.models import ImageTextEmbedder
from inference.tag_labels import KINDS, LABELS, Label

LOGIT_SCALE = 100.0
"""CLIP's learned temperature (exp of its logit_scale, clamped at 100 in training)."""
TOP_PER_KIND = 3


class Tagger:
    """Tags image vectors of one CLIP model with the labels' averaged prompt vectors."""

    def __init__(self, labels: Sequence[Label], label_vectors: np.ndarray) -> None:
        self.labels = list(labels)
        self.label_vectors = np.ascontiguousarray(label_vectors, dtype=np.float32)
        self._kinds = {
            kind: np.array([i for i, label in enumerate(self.labels) if label.kind == kind]) for kind in KINDS
        }

    @classmethod
    def build(cls, clip: ImageTextEmbedder, labels: Sequence[Label] = LABELS) -> Tagger:
        """Embed every prompt of every label with the CLIP text tower (one batched call, done once)."""
        prompts = [label.prompts() for label in labels]
        vectors = clip.embed_texts([prompt for group in prompts for prompt in group])
        rows, at = [], 0
        for group in prompts:
            mean = vectors[at : at + len(group)].mean(axis=0)
            rows.append(mean / max(float(np.linalg.norm(mean)), 1e-12))
            at += len(group)
        return cls(labels, np.stack(rows))

    def vector(self, kind: str, name: str) -> np.ndarray:
        """The label's averaged, normalised text vector (D,)."""
        for label, row in zip(self.labels, self.label_vectors, strict=True):
            if (label.kind, label.name) == (kind, name):
                return row.copy()
        raise KeyError(f"no {kind} label {name!r}")

    def tag(self, vectors: np.ndarray, top: int = TOP_PER_KIND) -> list[list[Tag]]:
        """For each (L2-normalised) image vector, its `top` labels per kind, best first, kinds in KINDS order."""
        vectors = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
        similarities = vectors @ self.label_vectors.T
        tags: list[list[Tag]] = [[] for _ in range(len(vectors))]
        for kind in KINDS:
            columns = self._kinds[kind]
            if len(columns) == 0:
                continue
            logits = LOGIT_SCALE * similarities[:, columns].astype(np.float64)
            logits -= logits.max(axis=1, keepdims=True)
            probabilities = np.exp(logits)
            probabilities /= probabilities.sum(axis=1, keepdims=True)
            order = np.argsort(-probabilities, axis=1, kind="stable")[:, :top]
            for row, picks in enumerate(order):
                for pick in picks:
                    label = self.labels[columns[pick]]
                    # floored to 4 places, so a kind's scores never sum above 1 after rounding
                    score = float(np.floor(probabilities[row, pick] * 1e4) / 1e4)
                    tags[row].append(Tag(kind=kind, name=label.name, ru=label.ru, score=score))
        return tags

    def tag_dicts(self, vectors: np.ndarray) -> list[list[dict[str, object]]]:
        """`tag` as plain dicts, the way `artworks.jsonl` stores them."""
        return [[tag.model_dump() for tag in row] for row in self.tag(vectors)]
