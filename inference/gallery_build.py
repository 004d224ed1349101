"""Turn a folder of images (and an optional metadata CSV) into a gallery directory (see `gallery_store`).

Describing thousands of paintings with LLaVA takes hours, so the build is batched and resumable: each batch's
vectors and descriptions are written to `<out>/.parts/` as soon as they exist (NumPy arrays saved without
pickle, and JSONL), and a rerun of the same build skips every file already there. Parts made by other models
are discarded, never mixed in. Only when all files are done is the gallery assembled and `.parts` removed.

Each batch also extracts the works' local features for identification (RootSIFT of the display copy, stored
compactly in the parts). At assembly the identifier is built from them (visual vocabulary, inverted file),
its threshold calibrated on synthetic phone photos of procedural paintings that are not in the gallery, and
saved in `<out>/identify/` (see `inference.identify`).

Each batch also takes every work's dominant palette (`inference.palette`, k-means in CIELAB), kept in the parts
too; at assembly every work is tagged zero-shot (style, genre, mood: `inference.tagging`) from its CLIP vector.

Broken files (empty, not an image, truncated, decompression bombs) are listed and skipped; exact duplicates
(same SHA-256) are reported and only the first, in sorted path order, is kept. Artwork ids follow that order,
so a resumed build and a clean one give the same gallery.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from inference.duplicates import (
    DUPLICATES_CSV,
    Cluster,
    DedupeOptions,
    add_exact,
    image_pixels,
    largest_first,
    make_clusters,
    near_groups,
    phash_file,
)
from inference.duplicates import write_csv as write_duplicates
from inference.gallery_store import (
    FORMAT_VERSION,
    IDENTIFY_DIR,
    IMAGES_DIR,
    MANIFEST,
    Artwork,
    Gallery,
    Manifest,
    build_index,
    check_indices,
    normalise_rows,
)
from inference.identify import IdentifierBuilder, IdentifyConfig, StoredFeatures
from inference.identify.features import FeatureExtractor
from inference.identify.identifier import describe as describe_identifier
from inference.identify.synthetic import outside_photos
from inference.images import ImageRejected, decode_image
from inference.ingest import (
    Metadata,
    Skipped,
    SourceItem,
    find_images,
    read_metadata,
)
from inference.models import Models
from inference.palette import extract_palette
from inference.recommenders import required_indices
from inference.relevance import DESCRIPTION_CLIP, gallery_floors
from inference.tagging import Tagger, label_digest
from inference.words_index import embed_descriptions, words_floor

logger = logging.getLogger(__name__)

DISPLAY_MAX_SIDE = 1280
DISPLAY_QUALITY = 90
MAX_IMAGE_PIXELS = 40_000_000
PARTS_DIR = ".parts"
IDENTIFY_CALIBRATION = 200
"""Synthetic photos of outside works the identification threshold is calibrated on by default: ~1 s each on
two cores, so minutes against the hours of describing; enough for the fitted null tail (calibration.py)."""


@dataclass(frozen=True)
class Duplicate:
    file: str
    same_as: str


@dataclass
class BuildReport:
    out_dir: Path
    count: int = 0
    processed: int = 0
    resumed: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    duplicates: list[Duplicate] = field(default_factory=list)
    seconds: float = 0.0
    total_seconds: float = 0.0
    identify: dict[str, object] = field(default_factory=dict)
    """The identifier's numbers (`inference.identify.identifier.describe`) and its build time."""
    clusters: int = 0
    """Duplicate clusters (exact and near) written to duplicates.csv."""
    near_dropped: int = 0
    """Near copies left out of the gallery (`--dedupe keep-one`)."""

    @property
    def images_per_second(self) -> float:
        """Throughput of the model work of this run (decode, CLIP, describe, embed), without loading."""
        return self.processed / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        lines = [
            f"gallery {self.out_dir}: {self.count} artworks",
            f"  processed now: {self.processed} images in {self.seconds:.1f} s "
            f"({self.images_per_second:.2f} images/s); resumed from an earlier run: {self.resumed}",
            f"  total time {self.total_seconds:.1f} s",
            f"  skipped broken files: {len(self.skipped)}",
            *(f"    {s.file}: {s.reason}" for s in self.skipped),
            f"  exact duplicates skipped: {len(self.duplicates)}",
            *(f"    {d.file} = {d.same_as}" for d in self.duplicates),
            f"  duplicate clusters (exact and near): {self.clusters}, listed in duplicates.csv; "
            f"near copies left out (keep-one): {self.near_dropped}",
        ]
        if self.identify:
            threshold = self.identify.get("threshold")
            min_inliers = threshold.get("min_inliers") if isinstance(threshold, dict) else None
            lines.append(
                f"  identification: {self.identify.get('bytes_per_work')} bytes/work "
                f"({self.identify.get('mb_at_100k')} MB at 100 k works), "
                f"{self.identify.get('vocabulary_words')} visual words, threshold {min_inliers} inliers "
                f"calibrated on {self.identify.get('calibration_photos')} outside photos, "
                f"built in {self.identify.get('seconds')} s"
            )
        return "\n".join(lines)


@dataclass
class _Done:
    """One image's results, from this run or from the parts of an interrupted one."""

    file: str
    sha256: str
    description: str
    image_vector: np.ndarray
    text_vector: np.ndarray
    features: StoredFeatures
    """Local features of the display copy, for identification."""
    palette: np.ndarray
    """Dominant palette (5, 4): L, a, b, weight (`inference.palette`)."""


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        for chunk in iter(lambda: source.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class _Parts:
    """Per-batch results of an unfinished build, in `<out>/.parts/` (nothing pickled)."""

    def __init__(self, root: Path, fingerprint: dict[str, object]) -> None:
        self.root = root
        self.display = root / "display"
        self.fingerprint = fingerprint
        self._next_part = 0

    def open(self) -> dict[str, _Done]:
        """Results of earlier runs with the same models, by file; parts of other models are deleted."""
        stamp = self.root / "models.json"
        if self.root.exists() and (not stamp.is_file() or json.loads(stamp.read_text()) != self.fingerprint):
            logger.warning("discarding %s: it was made with other models", self.root)
            shutil.rmtree(self.root)
        self.display.mkdir(parents=True, exist_ok=True)
        stamp.write_text(json.dumps(self.fingerprint, indent=2))
        done: dict[str, _Done] = {}
        for records_path in sorted(self.root.glob("part-*.jsonl")):
            done.update({item.file: item for item in self._read(records_path)})
            self._next_part = max(self._next_part, int(records_path.stem.removeprefix("part-")) + 1)
        return done

    def _read(self, records_path: Path) -> list[_Done]:
        stem = records_path.with_suffix("")
        try:
            records = [json.loads(line) for line in records_path.read_text().splitlines() if line]
            image = np.load(f"{stem}.image.npy", allow_pickle=False)
            text = np.load(f"{stem}.text.npy", allow_pickle=False)
            features = _read_features(Path(f"{stem}.identify.npz"))
            palettes = np.load(f"{stem}.palette.npy", allow_pickle=False)
        except (OSError, ValueError, KeyError) as exc:
            logger.warning("ignoring unreadable part %s: %s", records_path.name, exc)
            return []
        if not len(records) == len(image) == len(text) == len(features) == len(palettes):
            logger.warning("ignoring inconsistent part %s", records_path.name)
            return []
        return [
            _Done(r["file"], r["sha256"], r["description"], image[i], text[i], features[i], palettes[i])
            for i, r in enumerate(records)
        ]

    def write(self, items: list[_Done]) -> None:
        """Arrays first, the JSONL last and atomically: a part counts only once its JSONL exists."""
        stem = self.root / f"part-{self._next_part:06d}"
        self._next_part += 1
        arrays = {
            "image": [i.image_vector for i in items],
            "text": [i.text_vector for i in items],
            "palette": [i.palette for i in items],
        }
        for suffix, rows in arrays.items():
            with open(f"{stem}.{suffix}.npy", "wb") as out:
                np.save(out, np.stack(rows).astype(np.float32), allow_pickle=False)
        _write_features(Path(f"{stem}.identify.npz"), [i.features for i in items])
        records = [{"file": i.file, "sha256": i.sha256, "description": i.description} for i in items]
        scratch = Path(f"{stem}.jsonl.tmp")
        scratch.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
        os.replace(scratch, f"{stem}.jsonl")

    def display_path(self, sha256: str) -> Path:
        return self.display / f"{sha256}.jpg"

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def _write_features(path: Path, features: list[StoredFeatures]) -> None:
    """One part's local features as flat arrays plus a count per work (np.savez: no pickle)."""
    with path.open("wb") as out:
        np.savez(
            out,
            counts=np.array([f.xy.shape[0] for f in features], np.int64),
            xy=np.concatenate([f.xy for f in features]).astype(np.float16),
            frames=np.concatenate([f.frames for f in features]).astype(np.uint8),
            descriptors=np.concatenate([f.descriptors for f in features]).astype(np.uint8),
            sizes=np.array([f.size for f in features], np.int64).reshape(-1, 2),
        )


def _read_features(path: Path) -> list[StoredFeatures]:
    with np.load(path, allow_pickle=False) as data:
        counts, sizes = data["counts"], data["sizes"]
        xy, frames, descriptors = data["xy"], data["frames"], data["descriptors"]
    if len(counts) != len(sizes) or not int(counts.sum()) == len(xy) == len(frames) == len(descriptors):
        raise ValueError("inconsistent identification features")
    offsets = np.concatenate(([0], np.cumsum(counts)))
    return [
        StoredFeatures(xy[a:b], frames[a:b], descriptors[a:b], (int(w), int(h)))
        for a, b, (w, h) in zip(offsets[:-1], offsets[1:], sizes, strict=True)
    ]


def _decode(path: Path, max_pixels: int) -> Image.Image:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImageRejected("unreadable", f"cannot read the file: {exc.strerror or exc}") from exc
    return decode_image(data, max_pixels=max_pixels, max_side=DISPLAY_MAX_SIDE)


def _batches(items: list[tuple[str, Path, str]], size: int) -> Iterator[list[tuple[str, Path, str]]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _check_paths(images_dir: Path, out_dir: Path) -> None:
    if not images_dir.is_dir():
        raise FileNotFoundError(f"images folder {images_dir} does not exist")
    source, out = images_dir.resolve(), out_dir.resolve()
    if out == source or out in source.parents:
        raise ValueError(f"the output folder {out_dir} must not contain the source images ({images_dir})")


def build_gallery(
    images_dir: Path | None,
    out_dir: Path,
    models: Models,
    metadata_csv: Path | None = None,
    batch_size: int = 8,
    progress: bool = True,
    *,
    max_image_pixels: int = MAX_IMAGE_PIXELS,
    on_batch: Callable[[int], None] | None = None,
    identify_calibration: int = IDENTIFY_CALIBRATION,
    sources: Sequence[SourceItem] | None = None,
    dedupe: DedupeOptions | None = None,
) -> BuildReport:
    """Build (or finish building) a gallery in `out_dir` from the images under `images_dir` (with `metadata_csv`),
    or from `sources` (`inference.ingest`: a folder tree, a table, fetched URLs; ids follow their order).
    `on_batch(n)` runs after each saved batch, with the number of images done so far in this run: a progress
    hook, and how tests interrupt a build. `identify_calibration` synthetic photos of outside works calibrate
    the identification threshold. Near copies are reported in `duplicates.csv` (`dedupe`, `inference.duplicates`)."""
    started = time.perf_counter()
    out_dir = Path(out_dir)
    report = BuildReport(out_dir)
    if sources is None:
        if images_dir is None:
            raise ValueError("give an images folder or a list of sources")
        images_dir = Path(images_dir)
        _check_paths(images_dir, out_dir)
        metadata = read_metadata(Path(metadata_csv), images_dir) if metadata_csv is not None else Metadata()
        found = find_images(images_dir, exclude=out_dir.resolve())
        entries = [(path.relative_to(images_dir).as_posix(), path) for path in found]
    else:
        metadata = Metadata(by_path={item.name: dict(item.metadata) for item in sources})
        entries = [(item.name, item.path) for item in sources if item.path is not None]

    models.load()
    parts, extractor = _open_parts(out_dir / PARTS_DIR, models)
    done = parts.open()
    kept = _process_entries(
        entries, parts, done, models, extractor, report, batch_size, progress, max_image_pixels, on_batch
    )

    finished = [done[f] for f in kept if f in done]  # kept files that failed to decode are not in `done`
    if not finished:
        raise ValueError(f"no usable images in {images_dir or 'the source'}: nothing to build a gallery from")
    options = dedupe or DedupeOptions()
    clusters = find_build_duplicates(finished, dict(entries), parts, report.duplicates, options)
    dropped = {m.position for c in clusters for m in c.members if not m.kept and m.position is not None}
    finished = [item for position, item in enumerate(finished) if position not in dropped]
    report.near_dropped = len(dropped)
    report.clusters = len(clusters)
    _assemble(out_dir, finished, metadata, models, parts, report, identify_calibration, progress)
    write_duplicates(out_dir / DUPLICATES_CSV, clusters)
    report.count = len(finished)
    parts.remove()
    report.skipped.sort(key=lambda s: s.file)
    report.total_seconds = time.perf_counter() - started
    return report


def _open_parts(root: Path, models: Models) -> tuple[_Parts, FeatureExtractor]:
    """The resumable parts folder for these models, and the identification feature extractor of the build."""
    identity = models.identity().normalised()
    features = IdentifyConfig()
    extractor = FeatureExtractor(features.gallery_side, features.gallery_keypoints)
    parts = _Parts(
        root,
        {
            "format": FORMAT_VERSION,
            "models": asdict(identity),
            "describer": models.describer.name,
            "identify_features": {"side": extractor.max_side, "keypoints": extractor.max_keypoints},
        },
    )
    return parts, extractor


def _process_entries(
    entries: Sequence[tuple[str, Path | None]],
    parts: _Parts,
    done: dict[str, _Done],
    models: Models,
    extractor: FeatureExtractor,
    report: BuildReport,
    batch_size: int,
    progress: bool,
    max_image_pixels: int,
    on_batch: Callable[[int], None] | None = None,
    existing: Mapping[str, str] | None = None,
) -> list[str]:
    """Hash, decode, embed, describe and extract features of `entries` (name, local path) in batches, saving
    each batch to `parts`; returns the kept names in order. Exact copies of an earlier entry, or of a work in
    `existing` (sha256 -> what it is, when adding to a gallery), are reported and left out."""
    kept: list[str] = []  # names in id order, once processed
    first_by_sha: dict[str, str] = dict(existing or {})
    pending: list[tuple[str, Path, str]] = []
    for relative, path in entries:
        if path is None or not path.is_file():
            report.skipped.append(Skipped(relative, "missing file"))
            continue
        if path.stat().st_size == 0:
            report.skipped.append(Skipped(relative, "empty file"))
            continue
        sha = _sha256_file(path)
        if sha in first_by_sha:
            report.duplicates.append(Duplicate(relative, first_by_sha[sha]))
            continue
        first_by_sha[sha] = relative
        kept.append(relative)
        earlier = done.get(relative)
        if earlier is not None and earlier.sha256 == sha and parts.display_path(sha).is_file():
            report.resumed += 1
        else:
            done.pop(relative, None)
            pending.append((relative, path, sha))

    loop_started = time.perf_counter()
    with tqdm(total=len(pending), unit="img", desc="building gallery", disable=not progress) as bar:
        for batch in _batches(pending, max(1, batch_size)):
            images, decoded = [], []
            for relative, path, sha in batch:
                try:
                    images.append(_decode(path, max_image_pixels))
                    decoded.append((relative, sha))
                except ImageRejected as exc:
                    reason = "empty file" if exc.code == "empty" else exc.message
                    logger.warning("skipping %s: %s", relative, reason)
                    report.skipped.append(Skipped(relative, reason))
            if images:
                results = _process(images, decoded, models, parts, extractor)
                parts.write(results)
                done.update({item.file: item for item in results})
                report.processed += len(results)
            bar.update(len(batch))
            if on_batch is not None:
                on_batch(report.processed)
    report.seconds = time.perf_counter() - loop_started
    return kept


def find_build_duplicates(
    items: list[_Done],
    paths: Mapping[str, Path | None],
    parts: _Parts,
    exact: Sequence[Duplicate],
    options: DedupeOptions,
) -> list[Cluster]:
    """Near-copy clusters among the processed works (`inference.duplicates`: CLIP k-NN through a temporary index
    of the build's own kind, pHash of the display copies), with the exact copies the build left out joined in.
    Members' `position`s index `items`; `kept` says which stay in the gallery."""
    vectors = normalise_rows(np.stack([item.image_vector for item in items]))
    index = build_index(vectors)
    hashes: dict[int, int] = {}

    def hash_of(position: int) -> int | None:
        if position not in hashes:
            hashes[position] = phash_file(parts.display_path(items[position].sha256))
        return hashes[position]

    def search(queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        return index.search(queries, min(k, len(items)))

    def rows(positions: Sequence[int]) -> np.ndarray:
        return vectors[list(positions)]

    groups = near_groups(list(range(len(items))), rows, search, hash_of, options)
    keeper = largest_first(lambda p: image_pixels(paths.get(items[p].file)))
    clusters = make_clusters(groups, lambda p: items[p].file, rows, hash_of, keeper, options.keep_one)
    position_of = {item.file: position for position, item in enumerate(items)}
    originals = [(d.file, position_of[d.same_as]) for d in exact if d.same_as in position_of]
    clusters = add_exact(clusters, originals, lambda p: items[p].file)
    ids, next_id = {}, 0
    dropped = {m.position for c in clusters for m in c.members if not m.kept}
    for position in range(len(items)):
        if position not in dropped:
            ids[position], next_id = next_id, next_id + 1
    for cluster in clusters:
        for member in cluster.members:
            member.artwork_id = ids.get(member.position) if member.position is not None else None
    return clusters


def build_gallery_naive(
    images_dir: Path, out_dir: Path, models: Models, metadata_csv: Path | None = None
) -> BuildReport:
    """One image per model call: the baseline that benchmarks compare the batched build against."""
    return build_gallery(images_dir, out_dir, models, metadata_csv, batch_size=1, progress=False)


def _process(
    images: list[Image.Image],
    decoded: list[tuple[str, str]],
    models: Models,
    parts: _Parts,
    extractor: FeatureExtractor,
) -> list[_Done]:
    image_vectors = models.clip.embed_images(images)
    descriptions = models.describer.describe(images)
    text_vectors = models.text.embed_texts(descriptions)
    features = [StoredFeatures.of(extractor(np.asarray(image))) for image in images]
    palettes = [extract_palette(image) for image in images]
    for image, (_, sha) in zip(images, decoded, strict=True):
        image.save(parts.display_path(sha), "JPEG", quality=DISPLAY_QUALITY)
    return [
        _Done(relative, sha, description, image_vectors[i], text_vectors[i], features[i], palettes[i])
        for i, ((relative, sha), description) in enumerate(zip(decoded, descriptions, strict=True))
    ]


_DISPLAY_NAME = re.compile(r"^\d+\.jpg$")


def _assemble(
    out_dir: Path,
    items: list[_Done],
    metadata: Metadata,
    models: Models,
    parts: _Parts,
    report: BuildReport,
    identify_calibration: int,
    progress: bool,
) -> None:
    (out_dir / MANIFEST).unlink(missing_ok=True)  # a half-replaced gallery must not load as a whole one
    report.identify = _build_identifier(out_dir / IDENTIFY_DIR, items, identify_calibration, progress)
    display_dir = out_dir / IMAGES_DIR
    display_dir.mkdir(parents=True, exist_ok=True)
    for stale in display_dir.iterdir():
        if _DISPLAY_NAME.match(stale.name):
            stale.unlink()
    image_vectors = np.stack([item.image_vector for item in items])
    tagger = Tagger.build(models.clip)  # fresh at every build; the service and `gallery add` read the file
    tagger.digest = label_digest(models.identity())
    tagger.save(out_dir)
    tags = tagger.tag_dicts(image_vectors)
    artworks = []
    for artwork_id, item in enumerate(items):
        shutil.copyfile(parts.display_path(item.sha256), display_dir / f"{artwork_id}.jpg")
        artworks.append(
            Artwork(
                id=artwork_id,
                file=item.file,
                sha256=item.sha256,
                description=item.description,
                tags=tags[artwork_id],
                **metadata.lookup(item.file),
            )
        )
    text_vectors = np.stack([item.text_vector for item in items])
    descriptions = [item.description for item in items]
    description_clip = embed_descriptions(models.clip, descriptions)  # what search by words reads

    def clip_texts(ids: list[int]) -> np.ndarray:
        return description_clip[ids]

    floors = gallery_floors(image_vectors, text_vectors, clip_texts)
    words = words_floor(models.clip, [artwork.title for artwork in artworks], descriptions, description_clip)
    if words is not None:
        floors[DESCRIPTION_CLIP] = words

    manifest = Manifest(
        models=models.identity().normalised(),
        describer=models.describer.name,
        count=len(items),
        extra={
            "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "skipped": len(report.skipped),
            "duplicates": len(report.duplicates),
        },
        relevance=floors,
    )
    image_index = build_index(image_vectors)
    text_index = build_index(text_vectors)
    palettes = np.stack([item.palette for item in items]).astype(np.float32)
    description_clip_index = build_index(description_clip)
    Gallery(out_dir, manifest, artworks, image_index, text_index, palettes, description_clip_index).save()
    # A recommender registered with a new index fails the build here, not the service's start later.
    check_indices(out_dir, required_indices())


def _build_identifier(folder: Path, items: list[_Done], calibration: int, progress: bool) -> dict[str, object]:
    """Vocabulary, inverted file and keypoints from the works' stored features; the threshold calibrated on
    `calibration` synthetic photos of procedural paintings, which no gallery holds."""
    started = time.perf_counter()
    builder = IdentifierBuilder(IdentifyConfig.for_gallery(len(items)))
    for item in items:
        builder.add_stored(item.features)
    identifier = builder.build()
    photos = outside_photos(calibration)
    identifier.calibrate(
        tqdm(photos, total=calibration, unit="photo", desc="calibrating identification", disable=not progress)
    )
    shutil.rmtree(folder, ignore_errors=True)
    identifier.save(folder)
    return {
        **describe_identifier(identifier),
        "calibration_photos": calibration,
        "seconds": round(time.perf_counter() - started, 1),
    }
