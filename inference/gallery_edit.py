"""Add works to a built gallery, and remove works from it, without rebuilding.

Adding describes and embeds only the new images (the same batched, resumable steps as a build, with its parts in
`<gallery>/.add-parts/`), appends their rows to the FAISS indices (an IVF index keeps its trained quantizer), to
artworks.jsonl, the palettes and the identification data (the visual vocabulary stays fixed: the new works' words
come from it, their keypoints and postings are appended), and copies their display images. Exact copies of works
already there are skipped; near copies are reported in duplicates.csv (and, with keep-one, left out).

Artwork ids are referenced from Postgres (likes, votes), so they never change: removing a work is a tombstone in
`removed.json`. Searches leave removed works out (`Gallery._search`), suggestions and onboarding too, and the
identification data drops their postings so no shortlist names them.

Every changed file is written to `.pending/` and swapped in at the end, manifest last (`gallery_files.edit`): a
crash mid-edit leaves the old gallery loadable.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from inference.duplicates import (
    DUPLICATES_CSV,
    Cluster,
    DedupeOptions,
    image_pixels,
    make_clusters,
    near_groups,
    phash_file,
    read_csv,
)
from inference.duplicates import write_csv as write_duplicates
from inference.gallery_build import (
    MAX_IMAGE_PIXELS,
    BuildReport,
    _Done,
    _open_parts,
    _process_entries,
)
from inference.gallery_files import edit
from inference.gallery_store import (
    IDENTIFY_DIR,
    MANIFEST,
    Artwork,
    Gallery,
    GalleryMismatchError,
    Manifest,
    load_removed,
    normalise_rows,
)
from inference.identify import Identifier
from inference.ingest import SourceItem
from inference.models import Models
from inference.tagging import Tagger

logger = logging.getLogger(__name__)

ADD_PARTS_DIR = ".add-parts"


def add_to_gallery(
    gallery_dir: Path,
    sources: Sequence[SourceItem],
    models: Models,
    *,
    batch_size: int = 8,
    progress: bool = True,
    max_image_pixels: int = MAX_IMAGE_PIXELS,
    dedupe: DedupeOptions | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> BuildReport:
    """Append `sources` to the gallery at `gallery_dir`; the report's `count` is the number of works added."""
    started = time.perf_counter()
    root = Path(gallery_dir)
    report = BuildReport(root)
    models.load()
    gallery = Gallery.load(root, expected=models.identity())
    live = {a.sha256: f"artwork {a.id} ({a.file})" for a in gallery.artworks if a.id not in gallery.removed}
    parts, extractor = _open_parts(root / ADD_PARTS_DIR, models)
    done = parts.open()
    entries = [(item.name, item.path) for item in sources if item.path is not None]
    kept = _process_entries(
        entries, parts, done, models, extractor, report, batch_size, progress, max_image_pixels, on_batch, live
    )
    new = [done[name] for name in kept if name in done]
    options = dedupe or DedupeOptions()
    paths = {item.name: item.path for item in sources}
    clusters = _near_copies(gallery, new, lambda p: parts.display_path(new[p].sha256), paths, options)
    dropped = {m.position for c in clusters for m in c.members if not m.kept and m.position is not None}
    report.near_dropped = len(dropped)
    report.clusters = len(clusters)
    new = [item for position, item in enumerate(new) if position + len(gallery) not in dropped]
    if new:
        metadata = {item.name: dict(item.metadata) for item in sources}
        _append(gallery, new, metadata, models, parts.display_path, clusters)
    elif clusters:  # every new work was a near copy left out: the report still lists them
        with edit(root) as pending:
            write_duplicates(pending / DUPLICATES_CSV, clusters, read_csv(root / DUPLICATES_CSV))
    report.count = len(new)
    parts.remove()
    report.total_seconds = time.perf_counter() - started
    return report


def _near_copies(
    gallery: Gallery,
    new: list[_Done],
    display: Callable[[int], Path],
    paths: dict[str, Path | None],
    options: DedupeOptions,
) -> list[Cluster]:
    """Clusters of the new works with each other and with the gallery's live works. Positions: gallery ids, then
    `len(gallery) + i` for new work i. Works already in the gallery are always kept (their ids are in use)."""
    if not new:
        return []
    base = len(gallery)
    vectors = normalise_rows(np.stack([item.image_vector for item in new]))
    hashes: dict[int, int | None] = {}

    def hash_of(position: int) -> int | None:
        if position not in hashes:
            path = gallery.image_path(position) if position < base else display(position - base)
            try:
                hashes[position] = phash_file(path)
            except OSError:
                hashes[position] = None
        return hashes[position]

    def rows(positions: Sequence[int]) -> np.ndarray:
        old = [p for p in positions if p < base]
        found = dict(zip(old, gallery.vectors(old), strict=True)) if old else {}
        return normalise_rows(np.stack([found[p] if p < base else vectors[p - base] for p in positions]))

    def search(queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        hits = gallery.search_image(queries, k)  # removed works are left out here
        own_cos = queries @ vectors.T
        width = max(len(row) for row in hits) + own_cos.shape[1]
        cosines = np.full((len(queries), width), -1.0, np.float32)
        positions = np.full((len(queries), width), -1, np.int64)
        for q, row in enumerate(hits):
            cosines[q, : len(row)] = [hit.score for hit in row]
            positions[q, : len(row)] = [hit.artwork.id for hit in row]
            cosines[q, len(row) : len(row) + own_cos.shape[1]] = own_cos[q]
            positions[q, len(row) : len(row) + own_cos.shape[1]] = base + np.arange(own_cos.shape[1])
        return cosines, positions

    def keeper(group: list[int]) -> int:
        if group[0] < base:
            return group[0]  # the gallery's own work stays
        return min(group, key=lambda p: (-image_pixels(paths.get(new[p - base].file)), p))

    def files(position: int) -> str:
        return gallery.artworks[position].file if position < base else new[position - base].file

    queries = [base + i for i in range(len(new))]
    groups = near_groups(queries, rows, search, hash_of, options)
    clusters = make_clusters(groups, files, rows, hash_of, keeper, options.keep_one)
    next_id = base
    for cluster in clusters:
        for member in cluster.members:
            if member.position is not None and member.position < base:
                member.artwork_id = member.position
    dropped = {m.position for c in clusters for m in c.members if not m.kept}
    ids = {}
    for position in queries:
        if position not in dropped:
            ids[position], next_id = next_id, next_id + 1
    for cluster in clusters:
        for member in cluster.members:
            if member.position is not None and member.position >= base:
                member.artwork_id = ids.get(member.position)
    return clusters


def _append(
    gallery: Gallery,
    new: list[_Done],
    metadata: dict[str, dict[str, str]],
    models: Models,
    display: Callable[[str], Path],
    clusters: list[Cluster],
) -> None:
    root = gallery.root
    base = len(gallery)
    image_vectors = np.stack([item.image_vector for item in new])
    text_vectors = np.stack([item.text_vector for item in new])
    # the gallery's label vectors; recomputed (and rewritten at the commit) only when made for other models or labels
    tagger = Tagger.for_gallery(root, models)
    tags = tagger.tag_dicts(image_vectors)
    artworks = [
        Artwork(
            id=base + i,
            file=item.file,
            sha256=item.sha256,
            description=item.description,
            tags=tags[i],
            **metadata.get(item.file, {}),
        )
        for i, item in enumerate(new)
    ]
    identifier = Identifier.load(root / IDENTIFY_DIR).add_works([item.features for item in new])
    # Display copies of the new ids first: nothing refers to them until the manifest counts them.
    for artwork, item in zip(artworks, new, strict=True):
        shutil.copyfile(display(item.sha256), gallery.image_path(artwork.id))
    gallery.image_index.add(normalise_rows(image_vectors))
    gallery.text_index.add(normalise_rows(text_vectors))
    if gallery.description_clip_index is not None:
        descriptions = [item.description for item in new]
        clip_texts = [models.clip.embed_texts(descriptions[at : at + 64]) for at in range(0, len(descriptions), 64)]
        gallery.description_clip_index.add(normalise_rows(np.concatenate(clip_texts)))
    gallery.artworks.extend(artworks)
    gallery.palettes = np.concatenate([gallery.palettes, np.stack([item.palette for item in new])]).astype(np.float32)
    gallery.manifest.count = len(gallery.artworks)
    gallery.manifest.extra = {
        **gallery.manifest.extra,
        "added": int(str(gallery.manifest.extra.get("added", 0))) + len(new),
        "edited_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    _commit(gallery, identifier, base, clusters, None if tagger.loaded else tagger)


def _commit(
    gallery: Gallery,
    identifier: Identifier | None,
    loaded_count: int,
    clusters: Sequence[Cluster] = (),
    tagger: Tagger | None = None,
) -> None:
    """Write the gallery's files into `.pending/` and swap them in (manifest last); new duplicate clusters are
    appended to duplicates.csv; a `tagger` given has recomputed label vectors, written too. Under the edit lock
    the gallery on disk is checked first: another add since this one loaded it refuses the commit (rerun: the
    processed batches are kept), and works another edit removed meanwhile stay removed."""
    root = gallery.root
    with edit(root) as pending:
        on_disk = Manifest.from_json((root / MANIFEST).read_text())
        if on_disk.count != loaded_count:
            raise GalleryChangedError(
                f"gallery {root} changed while this edit ran ({loaded_count} works then, {on_disk.count} now); "
                "rerun the same command"
            )
        removed_meanwhile = load_removed(root, on_disk.count) - gallery.removed
        if removed_meanwhile:
            gallery.removed = gallery.removed | removed_meanwhile
            identifier = identifier.without(gallery.removed) if identifier is not None else None
        gallery.root = pending
        try:
            gallery.save()
        finally:
            gallery.root = root
        if identifier is not None:
            identifier.save(pending / IDENTIFY_DIR)
        if clusters:
            write_duplicates(pending / DUPLICATES_CSV, clusters, read_csv(root / DUPLICATES_CSV))
        if tagger is not None:
            tagger.save(pending)


class GalleryChangedError(GalleryMismatchError):
    """Another edit changed the gallery while this one ran."""


@dataclass
class RemoveReport:
    removed: list[int] = field(default_factory=list)
    already: list[int] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)

    def summary(self) -> str:
        lines = [f"removed {len(self.removed)} works: {', '.join(map(str, self.removed)) or '-'}"]
        if self.already:
            lines.append(f"already removed: {', '.join(map(str, self.already))}")
        if self.unknown:
            lines.append(f"not in the gallery: {', '.join(self.unknown)}")
        return "\n".join(lines)


def resolve_works(gallery: Gallery, ids: Iterable[int] = (), files: Iterable[str] = ()) -> tuple[set[int], list[str]]:
    """Artwork ids named by id or by file (the artwork's `file`, or its bare name when unambiguous)."""
    found: set[int] = set()
    unknown: list[str] = []
    for artwork_id in ids:
        if 0 <= artwork_id < len(gallery):
            found.add(artwork_id)
        else:
            unknown.append(f"id {artwork_id}")
    by_file: dict[str, list[int]] = {}
    for artwork in gallery.artworks:
        by_file.setdefault(artwork.file, []).append(artwork.id)
        by_file.setdefault(Path(artwork.file).name, []).append(artwork.id)
    for name in files:
        matches = sorted(set(by_file.get(name, [])))
        if len(matches) == 1:
            found.add(matches[0])
        else:
            unknown.append(name if not matches else f"{name} (ambiguous: ids {matches})")
    return found, unknown


def remove_from_gallery(gallery_dir: Path, ids: Iterable[int] = (), files: Iterable[str] = ()) -> RemoveReport:
    """Tombstone these works: ids stay, searches, suggestions and identification leave them out."""
    gallery = Gallery.load(Path(gallery_dir))
    wanted, unknown = resolve_works(gallery, ids, files)
    report = RemoveReport(sorted(wanted - gallery.removed), sorted(wanted & gallery.removed), unknown)
    if not report.removed:
        return report
    gallery.removed = gallery.removed | set(report.removed)
    gallery.manifest.extra = {
        **gallery.manifest.extra,
        "removed": len(gallery.removed),
        "edited_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    identifier = Identifier.load(gallery.root / IDENTIFY_DIR).without(gallery.removed)
    _commit(gallery, identifier, len(gallery))
    return report
