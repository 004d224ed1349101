"""A gallery index kept in Qdrant, behind the same `VectorIndex` interface as the FAISS ones.

For galleries that outgrow one machine's memory (`INFERENCE_VECTOR_BACKEND=qdrant`): the vectors live in a Qdrant
server (`INFERENCE_QDRANT_URL`), which shards and replicates them (README, "Galleries of any size"); without a URL
the client's local mode (`INFERENCE_QDRANT_PATH`, or in memory) serves the same calls from this process. Local
mode is a brute-force numpy scan, for tests and small galleries, not a performance path.

One collection per gallery index (`artmatch-<index>-<fingerprint of the FAISS file>`), filled from the gallery's
FAISS file the first time it is served; the gallery folder stays the portable source of truth, and `save` writes
the collection back to a FAISS file. Point id = artwork id = gallery row, as in FAISS. Needs the `qdrant` extra.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from inference.vector_index import FaissIndex, IndexSettings, IndexSpec, build_vector_index, read_vector_index

try:
    from qdrant_client import QdrantClient, models
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError("INFERENCE_VECTOR_BACKEND=qdrant needs qdrant-client: pip install 'artmatch[qdrant]'") from exc

UPLOAD_BATCH = 1024
HNSW_EF = 128
"""Search-time beam of Qdrant's HNSW graph on a server (local mode scans everything and ignores it)."""


_CLIENTS: dict[tuple[str, str], QdrantClient] = {}


def connect(settings: IndexSettings) -> QdrantClient:
    """The server when a URL is set, else local mode in a folder, else in memory (a fresh store per call).

    One client per server or folder, shared by a gallery's indices: a local-mode folder is locked by the client
    that opened it."""
    if settings.qdrant_url:
        key = ("url", settings.qdrant_url)
        if key not in _CLIENTS:
            _CLIENTS[key] = QdrantClient(url=settings.qdrant_url, api_key=settings.qdrant_api_key)
        return _CLIENTS[key]
    if settings.qdrant_path is not None:
        key = ("path", str(Path(settings.qdrant_path).resolve()))
        if key not in _CLIENTS:
            _CLIENTS[key] = QdrantClient(path=key[1])
        return _CLIENTS[key]
    return QdrantClient(":memory:")


def fingerprint(path: Path) -> str:
    """Which FAISS file a collection was filled from: its location, size and modification time."""
    stat = Path(path).stat()
    key = f"{Path(path).resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
    return hashlib.sha1(key.encode()).hexdigest()[:12]


class QdrantIndex:
    """Inner-product (DOT) search over one Qdrant collection; rows stored as given, like the FAISS indices."""

    def __init__(
        self, client: QdrantClient, collection: str, d: int, spec: IndexSpec | None = None, *, server: bool = False
    ) -> None:
        self.client = client
        self.server = server
        """A Qdrant server (HNSW, search parameters apply) rather than local mode (an exact scan)."""
        self.collection = collection
        self._d = d
        self.spec = spec or IndexSpec("flat")
        """The gallery's spec, kept so the manifest does not change with the backend; Qdrant uses its own HNSW."""
        self._ntotal = int(client.count(collection, exact=True).count)

    @classmethod
    def create(
        cls,
        client: QdrantClient,
        collection: str,
        d: int,
        spec: IndexSpec | None = None,
        *,
        settings: IndexSettings | None = None,
    ) -> QdrantIndex:
        """A new empty collection (an existing one of that name is replaced), sharded and replicated as set."""
        settings = settings or IndexSettings()
        if client.collection_exists(collection):
            client.delete_collection(collection)
        client.create_collection(
            collection,
            vectors_config=models.VectorParams(size=d, distance=models.Distance.DOT),
            shard_number=settings.qdrant_shards,
            replication_factor=settings.qdrant_replicas,
        )
        return cls(client, collection, d, spec, server=settings.qdrant_url is not None)

    @classmethod
    def from_faiss_file(
        cls, path: Path, spec: IndexSpec | None, *, name: str, settings: IndexSettings | None = None
    ) -> QdrantIndex:
        """The collection holding this FAISS file's rows, filled from it unless a complete one already exists."""
        settings = settings or IndexSettings()
        client = connect(settings)
        source = read_vector_index(path, spec, use_gpu=False)
        collection = f"artmatch-{name}-{fingerprint(path)}"
        if client.collection_exists(collection):
            existing = cls(client, collection, source.d, source.spec, server=settings.qdrant_url is not None)
            if existing.ntotal == source.ntotal:
                return existing
        index = cls.create(client, collection, source.d, source.spec, settings=settings)
        for start in range(0, source.ntotal, 16 * UPLOAD_BATCH):
            index.add(source.reconstruct_n(start, min(16 * UPLOAD_BATCH, source.ntotal - start)))
        return index

    @property
    def d(self) -> int:
        return self._d

    @property
    def ntotal(self) -> int:
        return self._ntotal

    def search(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        rows = np.ascontiguousarray(np.atleast_2d(vectors), dtype=np.float32)
        k = min(int(k), self.ntotal)
        scores = np.full((len(rows), max(k, 0)), -np.inf, dtype=np.float32)
        ids = np.full((len(rows), max(k, 0)), -1, dtype=np.int64)
        if k <= 0 or len(rows) == 0:
            return scores, ids
        params = models.SearchParams(hnsw_ef=max(HNSW_EF, k)) if self.server else None
        requests = [models.QueryRequest(query=row.tolist(), limit=k, params=params) for row in rows]
        for i, response in enumerate(self.client.query_batch_points(self.collection, requests=requests)):
            for j, point in enumerate(response.points[:k]):
                scores[i, j] = point.score
                ids[i, j] = int(point.id)
        return scores, ids

    def add(self, vectors: np.ndarray) -> None:
        rows = np.ascontiguousarray(np.atleast_2d(vectors), dtype=np.float32)
        if rows.shape[1] != self.d:
            raise ValueError(f"vectors have {rows.shape[1]} dimensions, the index {self.d}")
        ids = list(range(self._ntotal, self._ntotal + len(rows)))
        self.client.upload_collection(self.collection, vectors=rows, ids=ids, batch_size=UPLOAD_BATCH, wait=True)
        self._ntotal += len(rows)

    def reconstruct(self, ids: int | np.ndarray | list[int]) -> np.ndarray:
        single = isinstance(ids, int | np.integer)
        wanted = np.asarray([ids] if single else ids, dtype=np.int64).reshape(-1)
        if len(wanted) and (wanted.min() < 0 or wanted.max() >= self.ntotal):
            raise IndexError(f"ids out of range 0..{self.ntotal - 1}")
        records = self.client.retrieve(self.collection, ids=[int(i) for i in wanted], with_vectors=True)
        by_id: dict[int, Any] = {int(record.id): record.vector for record in records}
        rows = np.asarray([by_id[int(i)] for i in wanted], dtype=np.float32).reshape(len(wanted), self.d)
        return rows[0] if single else rows

    def reconstruct_n(self, start: int, count: int) -> np.ndarray:
        return self.reconstruct(np.arange(start, start + count, dtype=np.int64))

    def save(self, path: Path) -> None:
        """Write the collection back as a FAISS file of the gallery's spec, so the folder stays portable."""
        rows = self.reconstruct_n(0, self.ntotal)
        spec = self.spec if self.spec.kind == "flat" or self.ntotal else IndexSpec("flat")
        index: FaissIndex = build_vector_index(rows, spec, tune=False, use_gpu=False)
        index.save(path)
