"""Zero-shot style, genre and mood tags from CLIP: an image vector against the text vectors of curated labels.

Every label's prompts (`inference.tag_labels`) are embedded once with the CLIP text tower, averaged and
normalised; tagging a batch of image vectors is then one small matrix product per kind (50 labels x D), so the
service tags a query photo from the CLIP vector it already has, at no measurable cost, and the build tags every
work at assembly. Scores are CLIP's zero-shot probabilities: a softmax over the kind's labels of the cosine
similarities times CLIP's logit scale (100), so the tags of one kind sum to at most 1.

The label vectors are a gallery file (`TAG_LABELS`, keyed by `TAG_LABELS_KEY`: a digest of the models' identity and
every label prompt), written by the build and by an add that had to recompute them; the service and `gallery add`
read it instead of running the text tower over every prompt again (tens of seconds on a CPU), and recompute the
vectors only when the digest differs (other models, or labels edited since the build).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np

from inference.contract import Tag
from inference.gallery_store import ModelIdentity
from inference.models import ImageTextEmbedder, Models
from inference.tag_labels import KINDS, LABELS, Label

LOGIT_SCALE = 100.0
"""CLIP's learned temperature (exp of its logit_scale, clamped at 100 in training)."""
TOP_PER_KIND = 3
TAG_LABELS = "tag_labels.npy"
"""The gallery's label vectors (labels x D float32, in the labels' order)."""
TAG_LABELS_KEY = "tag_labels.json"
"""What `TAG_LABELS` was made from: {"digest": `label_digest`, "labels": count, "dim": D}."""

logger = logging.getLogger(__name__)


def label_digest(identity: ModelIdentity, labels: Sequence[Label] | None = None) -> str:
    """SHA-256 of the models' (normalised) identity and every label's kind, name and prompts, in order."""
    labels = LABELS if labels is None else labels
    key = json.dumps(
        {
            "models": asdict(identity.normalised()),
            "labels": [[label.kind, label.name, label.prompts()] for label in labels],
        },
        sort_keys=True,
    )
    return hashlib.sha256(key.encode()).hexdigest()


def load_label_vectors(root: Path, digest: str, labels: Sequence[Label] | None = None) -> np.ndarray | None:
    """The gallery's stored label vectors when they were made for `digest`; None when absent, stale or unreadable."""
    labels = LABELS if labels is None else labels
    try:
        key = json.loads((Path(root) / TAG_LABELS_KEY).read_text(encoding="utf-8"))
        if not isinstance(key, dict) or key.get("digest") != digest:
            return None
        vectors = np.load(Path(root) / TAG_LABELS, allow_pickle=False)
    except (OSError, ValueError):
        return None
    if vectors.ndim != 2 or vectors.shape[0] != len(labels) or vectors.dtype.kind != "f":
        return None
    return vectors


class Tagger:
    """Tags image vectors of one CLIP model with the labels' averaged prompt vectors."""

    def __init__(self, labels: Sequence[Label], label_vectors: np.ndarray, digest: str | None = None) -> None:
        self.labels = list(labels)
        self.digest = digest
        """`label_digest` of the models and labels the vectors were made with, when known."""
        self.loaded = False
        """True when the vectors were read from a gallery's `TAG_LABELS` rather than computed."""
        self.label_vectors = np.ascontiguousarray(label_vectors, dtype=np.float32)
        self._kinds = {
            kind: np.array([i for i, label in enumerate(self.labels) if label.kind == kind]) for kind in KINDS
        }

    @classmethod
    def build(cls, clip: ImageTextEmbedder, labels: Sequence[Label] | None = None) -> Tagger:
        """Embed every prompt of every label with the CLIP text tower (one batched call, done once)."""
        labels = LABELS if labels is None else labels
        prompts = [label.prompts() for label in labels]
        vectors = clip.embed_texts([prompt for group in prompts for prompt in group])
        rows, at = [], 0
        for group in prompts:
            mean = vectors[at : at + len(group)].mean(axis=0)
            rows.append(mean / max(float(np.linalg.norm(mean)), 1e-12))
            at += len(group)
        return cls(labels, np.stack(rows))

    @classmethod
    def for_gallery(
        cls, root: Path, models: Models, labels: Sequence[Label] | None = None, *, save: bool = False
    ) -> Tagger:
        """The tagger from the gallery's stored label vectors when their digest matches these models and labels;
        otherwise built with the text tower (one log line says why) and, with `save`, written into `root`.
        The service passes save=False: its gallery may be a read-only volume."""
        labels = LABELS if labels is None else labels
        digest = label_digest(models.identity(), labels)
        vectors = load_label_vectors(root, digest, labels)
        if vectors is not None:
            tagger = cls(labels, vectors, digest)
            tagger.loaded = True
            return tagger
        reason = "missing" if not (Path(root) / TAG_LABELS_KEY).is_file() else "made for other models or labels"
        logger.info("%s in %s %s: embedding %d label prompts", TAG_LABELS, root, reason, len(labels))
        tagger = cls.build(models.clip, labels)
        tagger.digest = digest
        if save:
            tagger.save(root)
        return tagger

    def save(self, folder: Path) -> None:
        """Write the label vectors and their key into `folder` (vectors first, each file replaced atomically)."""
        if self.digest is None:
            raise ValueError("a tagger without a digest cannot be saved: use Tagger.for_gallery")
        folder = Path(folder)
        scratch = folder / (TAG_LABELS + ".tmp")
        with scratch.open("wb") as out:
            np.save(out, self.label_vectors, allow_pickle=False)
        os.replace(scratch, folder / TAG_LABELS)
        key = {"digest": self.digest, "labels": len(self.labels), "dim": int(self.label_vectors.shape[1])}
        scratch = folder / (TAG_LABELS_KEY + ".tmp")
        scratch.write_text(json.dumps(key, indent=2) + "\n", encoding="utf-8")
        os.replace(scratch, folder / TAG_LABELS_KEY)

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
