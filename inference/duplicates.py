"""Near-duplicate clusters of a gallery's works, reported as `duplicates.csv` and optionally kept to one each.

Two signals decide that two works are copies of each other, and either suffices:
- CLIP image cosine >= `threshold` (0.95 by default): with real weights this also catches copies that differ in
  more than pixels (a re-photographed print, a recoloured scan), which is what CLIP is good at;
- a perceptual hash (64-bit DCT pHash of the grey 32x32 thumbnail) within `hash_distance` bits: weight-free, so it
  works whatever CLIP is configured (random test weights make cosines meaningless) and it is what resizing,
  re-encoding and slight crops preserve.
Candidate pairs come from a k-NN search (the `neighbours` nearest by CLIP through a FAISS index, never all
pairs), so the cost grows with n·k; near copies are CLIP neighbours even when the weights are poor, because they
are almost the same input. Clusters are the connected components (union-find) of the accepted pairs.

Exact copies (same SHA-256) never reach the gallery (the build keeps the first); they are listed in the same
clusters so the report shows everything that was found.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

DUPLICATES_CSV = "duplicates.csv"
CSV_FIELDS = ("cluster", "kind", "file", "artwork_id", "similarity", "hash_distance", "kept")


@dataclass(frozen=True)
class DedupeOptions:
    threshold: float = 0.95
    """CLIP image cosine at or above which two works are near copies."""
    hash_distance: int = 10
    """Perceptual-hash bits (of 64) within which two works are near copies; -1 turns the hash off."""
    neighbours: int = 10
    """Nearest works checked per work."""
    keep_one: bool = False
    """Leave all but one work of each cluster out of the gallery (the largest image, then the first in order)."""


def phash(image: Image.Image) -> int:
    """64-bit DCT perceptual hash: the signs of the lowest 8x8 frequencies of a 32x32 grey thumbnail against their
    median. Resizing, JPEG and a few per cent of crop move few bits; different pictures differ in ~32."""
    grey = np.asarray(image.convert("L").resize((32, 32), Image.Resampling.BILINEAR), dtype=np.float32)
    low = cv2.dct(grey)[:8, :8].reshape(-1)
    bits = low > np.median(low[1:])
    return int(np.packbits(bits.astype(np.uint8)).view(">u8")[0])


def phash_file(path: Path) -> int:
    with Image.open(path) as image:
        image.draft("L", (64, 64))  # JPEG decodes at 1/8 scale: milliseconds even for a large display copy
        return phash(image)


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[int, int] = {}

    def find(self, x: int) -> int:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


@dataclass
class Member:
    position: int | None
    """Position among the candidate works (None: an exact copy that never reached the gallery)."""
    file: str
    kind: str
    similarity: float
    hash_distance: int | None
    kept: bool
    artwork_id: int | None = None


@dataclass
class Cluster:
    members: list[Member] = field(default_factory=list)
    """The keeper first (the largest image, then the first in order); similarities are to it. `kept`: the
    member is in the gallery."""

    @property
    def kind(self) -> str:
        return "exact" if all(m.kind == "exact" for m in self.members[1:]) else "near"


Search = Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]]
"""(queries, k) -> (cosines, positions) like FAISS over L2-normalised vectors; -1 positions are ignored."""


def near_groups(
    queries: Sequence[int],
    vectors: Callable[[Sequence[int]], np.ndarray],
    search: Search,
    hashes: Callable[[int], int | None],
    options: DedupeOptions,
) -> list[list[int]]:
    """Groups (sorted positions, 2 or more) of near copies among the works that `search` covers, starting from
    the works at `queries`."""
    if not queries:
        return []
    found = _UnionFind()
    query_vectors = vectors(queries)
    for start in range(0, len(queries), 1024):
        block = list(queries[start : start + 1024])
        cosines, positions = search(query_vectors[start : start + 1024], options.neighbours + 1)
        for q, row_cos, row_pos in zip(block, cosines, positions, strict=True):
            for cosine, p in zip(row_cos, row_pos, strict=True):
                p = int(p)
                if p < 0 or p == q:
                    continue
                if cosine >= options.threshold or _hash_close(hashes, q, p, options.hash_distance):
                    found.union(q, p)
    groups: dict[int, list[int]] = {}
    for x in list(found.parent):
        groups.setdefault(found.find(x), []).append(x)
    return sorted(sorted(g) for g in groups.values() if len(g) > 1)


def _hash_close(hashes: Callable[[int], int | None], a: int, b: int, limit: int) -> bool:
    if limit < 0:
        return False
    ha, hb = hashes(a), hashes(b)
    return ha is not None and hb is not None and hamming(ha, hb) <= limit


def make_clusters(
    groups: list[list[int]],
    files: Callable[[int], str],
    vectors: Callable[[Sequence[int]], np.ndarray],
    hashes: Callable[[int], int | None],
    keeper: Callable[[list[int]], int],
    keep_one: bool,
) -> list[Cluster]:
    """One cluster per group, its keeper first, each member's cosine and hash distance to the keeper; with
    `keep_one` only the keeper stays in the gallery (`kept`)."""
    clusters = []
    for group in groups:
        keep = keeper(group)
        order = [keep, *(p for p in group if p != keep)]
        rows = vectors(order)
        cosines = rows @ rows[0]
        first_hash = hashes(keep)
        members = []
        for position, cosine in zip(order, cosines, strict=True):
            own = hashes(position)
            distance = hamming(own, first_hash) if own is not None and first_hash is not None else None
            kind = "near" if position != keep else "first"
            kept = position == keep or not keep_one
            members.append(Member(position, files(position), kind, float(cosine), distance, kept))
        clusters.append(Cluster(members))
    return clusters


def add_exact(clusters: list[Cluster], exact: Sequence[tuple[str, int]], files: Callable[[int], str]) -> list[Cluster]:
    """Exact copies (file, position of the kept original) joined to their original's cluster, or in a new one."""
    by_position = {m.position: c for c in clusters for m in c.members if m.position is not None}
    for file, original in exact:
        cluster = by_position.get(original)
        if cluster is None:
            cluster = Cluster([Member(original, files(original), "first", 1.0, 0, True)])
            clusters.append(cluster)
            by_position[original] = cluster
        cluster.members.append(Member(None, file, "exact", 1.0, 0, False))
    return clusters


def largest_first(pixels: Callable[[int], int]) -> Callable[[list[int]], int]:
    """The keeper: the largest source image, ties to the first in order."""
    return lambda group: min(group, key=lambda p: (-pixels(p), p))


def image_pixels(path: Path | None) -> int:
    """Width x height from the file's header (nothing decoded); 0 when unreadable."""
    if path is None:
        return 0
    try:
        with Image.open(path) as image:
            return int(image.width) * int(image.height)
    except (OSError, ValueError, Image.DecompressionBombError):
        return 0


def write_csv(path: Path, clusters: Sequence[Cluster], previous: Sequence[dict[str, str]] = ()) -> None:
    """`duplicates.csv`, atomically: a row per member, the cluster's first (kept) member first; `previous` rows
    (an earlier report of the same gallery) come first and the new clusters are numbered after them."""
    start = 1 + max((int(r["cluster"]) for r in previous if str(r.get("cluster", "")).isdigit()), default=-1)
    scratch = path.with_name(path.name + ".tmp")
    with scratch.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(CSV_FIELDS)
        writer.writerows([row.get(name, "") for name in CSV_FIELDS] for row in previous)
        for number, cluster in enumerate(clusters, start=start):
            for member in cluster.members:
                kind = cluster.kind if member.kind == "first" else member.kind
                writer.writerow(
                    [
                        number,
                        kind,
                        member.file,
                        "" if member.artwork_id is None else member.artwork_id,
                        f"{member.similarity:.4f}",
                        "" if member.hash_distance is None else member.hash_distance,
                        "yes" if member.kept else "no",
                    ]
                )
    os.replace(scratch, path)


def read_csv(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as source:
        return list(csv.DictReader(source))
