"""Vector indices whose type follows the gallery's size, behind one small interface (`VectorIndex`).

The contract every index here keeps (the gallery's image and text indices, the colour and text indices, the
incremental add of works all code against it):

    index.d, index.ntotal            dimension, number of stored rows
    index.spec                       the `IndexSpec` it was built with (stored in the gallery manifest)
    index.search(vectors, k)         -> (scores (n, k) float32, ids (n, k) int64), best first; rows padded with
                                     id -1 (score -inf) when the index finds fewer than k
    index.add(vectors)               appends rows; they get ids ntotal .. ntotal + n - 1 (id = gallery row)
    index.reconstruct(ids)           -> (n, d) float32 rows (an int gives one (d,) row); exact for flat, IVF and
                                     HNSW, decoded (about 1e-3 off) for SQ8; reconstruct_n(start, count) a range
    index.save(path)                 one file in FAISS's own format (no pickle)

The metric is inner product and rows are stored as given: callers L2-normalise (`gallery_store.normalise_rows`)
when they mean cosine similarity.

Why the type follows the size (measured by `benchmarks/bench_index.py` on this 2-core CPU, README "Galleries of
any size"): an exact scan costs ~0.15 ms per 1 000 rows of 512 floats (~100 ms at 1 M), so it is the choice up to
`INFERENCE_EXACT_SEARCH_MAX` rows (exact, nothing to train); above that an inverted file (IVF, nlist ~ 2 sqrt(n)
k-means lists, `nprobe` of them scanned per query) answers in 3-5 ms at 1 M rows with recall@10 0.99. Its nprobe is
tuned at build on sampled gallery rows to reach `INFERENCE_INDEX_TARGET_RECALL` recall@10 against exact search,
and the measured recall is stored with it. SQ8 (one byte per dimension) is chosen when full floats would exceed
`INFERENCE_INDEX_MEMORY_BUDGET_GB`. HNSW is available on request (`INFERENCE_INDEX_KIND=hnsw`) but never chosen
automatically: it builds many times slower, and on clustered embeddings at 1 M an HNSW32 graph stayed at recall
0.70 (efConstruction 40) where IVF reaches 0.99.

`Gallery.vectors()` reads rows back through `reconstruct`: IVF indices keep a direct map (row id -> list and
offset), so no second copy of the vectors is held in memory.

On a machine with CUDA and faiss-gpu (`pip install artmatch[gpu]`), k-means training and searching run on the
GPU; the CPU copy stays the one that is saved and read back. Nothing requires a GPU.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import faiss
import numpy as np
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

logger = logging.getLogger(__name__)

IndexKind = Literal["flat", "ivf", "ivf_sq8", "hnsw"]
KINDS: tuple[IndexKind, ...] = ("flat", "ivf", "ivf_sq8", "hnsw")


class IndexSettings(BaseSettings):
    """How gallery indices are chosen and served; read from `INFERENCE_*` like the service's other settings."""

    model_config = SettingsConfigDict(env_prefix="INFERENCE_", env_file=".env", extra="ignore")

    exact_search_max: int = Field(
        default=20_000,
        ge=0,
        description="Galleries up to this many works are searched exactly (IndexFlatIP); larger ones get an IVF "
        "index. Measured on 2 cores: an exact query costs ~3 ms at 20 000 rows and ~16 ms at 100 000, and /foryou "
        "runs one per interest (~18 ms at 20 000 rows, ~60 ms at 100 000, against ~12 ms through IVF).",
    )
    index_kind: Literal["auto", "flat", "ivf", "ivf_sq8", "hnsw"] = Field(
        default="auto", description="Force one index type; auto follows the size."
    )
    index_target_recall: float = Field(
        default=0.98,
        gt=0.0,
        le=1.0,
        description="recall@10 against exact search that nprobe/efSearch is tuned to (on perturbed gallery rows; "
        "new works not in the gallery score ~0.01-0.02 lower).",
    )
    index_memory_budget_gb: float = Field(
        default=8.0, gt=0.0, description="Above this much float32 storage an IVF index stores 8-bit codes (SQ8)."
    )
    vector_backend: Literal["faiss", "qdrant"] = Field(
        default="faiss", description="faiss in this process, or a Qdrant server / local path (qdrant extra)."
    )
    qdrant_url: str | None = Field(default=None, description="Qdrant server, e.g. http://qdrant:6333.")
    qdrant_path: Path | None = Field(default=None, description="Qdrant local mode folder (tests, small galleries).")
    qdrant_api_key: str | None = None
    qdrant_shards: int = Field(default=1, ge=1, description="Shards per collection on a Qdrant cluster.")
    qdrant_replicas: int = Field(default=1, ge=1, description="Copies of each shard on a Qdrant cluster.")


@dataclass(frozen=True)
class IndexSpec:
    """What index to build and how to search it; stored in the gallery manifest and re-applied at load."""

    kind: IndexKind = "flat"
    nlist: int | None = None
    nprobe: int | None = None
    m: int | None = None
    ef_construction: int | None = None
    ef_search: int | None = None
    recall_at_10: float | None = None
    """Measured at build on sampled gallery rows against exact search; None for flat (exact) or untuned."""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown index kind {self.kind!r}; expected one of {', '.join(KINDS)}")
        if self.kind in ("ivf", "ivf_sq8") and not self.nlist:
            raise ValueError(f"an {self.kind} index needs nlist")
        if self.kind == "hnsw" and not self.m:
            raise ValueError("an hnsw index needs m")

    @property
    def exact(self) -> bool:
        return self.kind == "flat"

    def describe(self) -> str:
        """A short name for logs and benchmark tables, e.g. 'IVF4096,Flat nprobe=16'."""
        if self.kind == "flat":
            return "Flat (exact)"
        if self.kind == "hnsw":
            return f"HNSW{self.m} efC={self.ef_construction} efS={self.ef_search}"
        codes = "SQ8" if self.kind == "ivf_sq8" else "Flat"
        return f"IVF{self.nlist},{codes} nprobe={self.nprobe}"

    def to_dict(self) -> dict[str, object]:
        return {key: value for key, value in asdict(self).items() if value is not None}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> IndexSpec:
        known = {key: raw[key] for key in cls.__dataclass_fields__ if key in raw}
        return cls(**known)


def ivf_lists(n: int) -> int:
    """nlist ~ 2 sqrt(n), a power of two, and at least 39 training rows per list (FAISS's own floor).

    FAISS suggests 4-16 sqrt(n); fewer, larger lists train and fill several times faster on 2 cores (k-means and
    the assignment of every row cost n x nlist dot products) and hold up better when kinds of art are of very
    unequal sizes, at the price of scanning more rows per probe: at 1 M rows, 2048 lists of ~500 rows."""
    wanted = 2.0 * np.sqrt(max(n, 1))
    nlist = 1 << int(round(np.log2(wanted)))
    return int(max(1, min(nlist, n // 39)))


def choose_spec(n: int, dim: int, settings: IndexSettings | None = None) -> IndexSpec:
    """The index for n rows of `dim` floats: exact below the threshold, IVF above (SQ8 past the memory budget)."""
    settings = settings or IndexSettings()
    kind = settings.index_kind
    if kind == "auto":
        if n <= settings.exact_search_max:
            return IndexSpec("flat")
        too_big = n * dim * 4 > settings.index_memory_budget_gb * 2**30
        kind = "ivf_sq8" if too_big else "ivf"
    if kind == "flat":
        return IndexSpec("flat")
    if kind == "hnsw":
        return IndexSpec("hnsw", m=32, ef_construction=80, ef_search=128)
    nlist = ivf_lists(n)
    return IndexSpec(kind, nlist=nlist, nprobe=min(16, nlist))


@runtime_checkable
class VectorIndex(Protocol):
    """See the module docstring: the interface every backend keeps."""

    spec: IndexSpec

    @property
    def d(self) -> int: ...

    @property
    def ntotal(self) -> int: ...

    def search(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]: ...

    def add(self, vectors: np.ndarray) -> None: ...

    def reconstruct(self, ids: int | np.ndarray | list[int]) -> np.ndarray: ...

    def reconstruct_n(self, start: int, count: int) -> np.ndarray: ...

    def save(self, path: Path) -> None: ...


def _rows(vectors: np.ndarray, d: int | None = None) -> np.ndarray:
    rows = np.ascontiguousarray(np.atleast_2d(vectors), dtype=np.float32)
    if d is not None and rows.shape[1] != d:
        raise ValueError(f"vectors have {rows.shape[1]} dimensions, the index {d}")
    return rows


def gpu_available() -> bool:
    """faiss-gpu installed and a CUDA device visible (the CPU wheel has no get_num_gpus or returns 0)."""
    count = getattr(faiss, "get_num_gpus", lambda: 0)
    return bool(count() > 0 and hasattr(faiss, "index_cpu_to_all_gpus"))


DEEP_SEARCH_FROM = 100
"""Searches for fewer rows than this use the tuned nprobe as is (that is what it was tuned for)."""
DEEP_SEARCH_SPAN = 8
"""A top-700 spans several clusters: on 20 k clustered rows in 512 lists, scanning 3.5x k rows found 0.875 of the
exact top-700 and 6.9x found 0.974. Eight times k rows is still a few thousand rows (~1 ms), not a scan."""


class FaissIndex:
    """A FAISS index in this process. `index` is the CPU copy (saved, reconstructed from); searches go to a GPU
    clone when there is one."""

    def __init__(self, index: faiss.Index, spec: IndexSpec | None = None, *, use_gpu: bool | None = None) -> None:
        self.index = index
        self.spec = spec or spec_of(index)
        self._apply_search_params()
        if self.spec.kind in ("ivf", "ivf_sq8"):
            ivf = faiss.extract_index_ivf(self.index)
            if ivf.direct_map.no():
                ivf.make_direct_map()
        self._searcher: faiss.Index = self.index
        if (gpu_available() if use_gpu is None else use_gpu) and self.spec.kind != "hnsw":
            self._searcher = faiss.index_cpu_to_all_gpus(self.index)  # HNSW has no GPU version

    def _apply_search_params(self) -> None:
        if self.spec.kind in ("ivf", "ivf_sq8") and self.spec.nprobe:
            faiss.extract_index_ivf(self.index).nprobe = int(self.spec.nprobe)
        if self.spec.kind == "hnsw" and self.spec.ef_search:
            hnsw: Any = faiss.downcast_index(self.index)
            hnsw.hnsw.efSearch = int(self.spec.ef_search)

    def with_spec(self, spec: IndexSpec) -> FaissIndex:
        """Apply new search parameters (nprobe, efSearch) in place; the stored rows are unchanged."""
        self.spec = spec
        self._apply_search_params()
        if self._searcher is not self.index and spec.kind in ("ivf", "ivf_sq8") and spec.nprobe:
            faiss.GpuParameterSpace().set_index_parameter(self._searcher, "nprobe", int(spec.nprobe))
        return self

    @property
    def d(self) -> int:
        return int(self.index.d)

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    def search(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        rows = _rows(vectors, self.d)
        k = min(int(k), self.ntotal)
        if k <= 0:
            return np.zeros((len(rows), 0), np.float32), np.zeros((len(rows), 0), np.int64)
        params = self._deep_search_params(k)
        if params is not None and self._searcher is self.index:
            scores, ids = self.index.search(rows, k, params=params)
        else:
            scores, ids = self._searcher.search(rows, k)
        return scores, ids

    def _deep_search_params(self, k: int) -> faiss.SearchParametersIVF | None:
        """A deep search (/foryou asks for hundreds of rows per interest) scans the nearest lists until it has seen
        DEEP_SEARCH_SPAN x k rows, which the nprobe tuned for top-10 may not reach. Counting rows (FAISS's
        max_codes) rather than lists keeps the cost fixed when lists are of very unequal sizes, as kinds of art
        are. Per call: nothing shared changes."""
        if self.spec.kind not in ("ivf", "ivf_sq8") or not self.spec.nlist or not self.ntotal or k < DEEP_SEARCH_FROM:
            return None
        rows = DEEP_SEARCH_SPAN * k
        average_lists = int(np.ceil(rows * self.spec.nlist / self.ntotal))
        params = faiss.SearchParametersIVF()
        params.nprobe = int(min(self.spec.nlist, max(int(self.spec.nprobe or 1), 4 * average_lists)))
        params.max_codes = rows
        return params

    def add(self, vectors: np.ndarray) -> None:
        rows = _rows(vectors, self.d)
        self.index.add(rows)
        if self._searcher is not self.index:
            self._searcher.add(rows)

    def reconstruct(self, ids: int | np.ndarray | list[int]) -> np.ndarray:
        if isinstance(ids, int | np.integer):
            return np.asarray(self.index.reconstruct(int(ids)), dtype=np.float32)
        wanted = np.ascontiguousarray(np.asarray(ids, dtype=np.int64).reshape(-1))
        if len(wanted) == 0:
            return np.zeros((0, self.d), np.float32)
        return np.asarray(self.index.reconstruct_batch(wanted), dtype=np.float32).reshape(len(wanted), self.d)

    def reconstruct_n(self, start: int, count: int) -> np.ndarray:
        """Rows start .. start + count - 1 (the whole gallery: `reconstruct_n(0, ntotal)`)."""
        return self.reconstruct(np.arange(start, start + count, dtype=np.int64))

    def save(self, path: Path) -> None:
        faiss.write_index(self.index, str(path))


def spec_of(index: faiss.Index) -> IndexSpec:
    """The spec of an index read without one (a gallery built before specs were stored)."""
    index = faiss.downcast_index(index)
    if isinstance(index, faiss.IndexHNSW):
        graph: Any = index.hnsw
        return IndexSpec("hnsw", m=int(graph.nb_neighbors(1)), ef_search=int(graph.efSearch))
    try:
        ivf = faiss.extract_index_ivf(index)
    except RuntimeError:
        return IndexSpec("flat")
    kind: IndexKind = "ivf_sq8" if isinstance(faiss.downcast_index(ivf), faiss.IndexIVFScalarQuantizer) else "ivf"
    return IndexSpec(kind, nlist=int(ivf.nlist), nprobe=int(ivf.nprobe))


TRAIN_PER_LIST = 48
"""k-means training rows per IVF list: FAISS needs >= 39; beyond ~64 the lists barely change but training time
grows linearly (1 M rows at nlist 2048 train on 98 k rows)."""
KMEANS_ITERATIONS = 10
TUNE_QUERIES = 300
PLATEAU = 0.002
"""Tuning stops short of the target when the next step of the ladder gains less recall than this."""


def build_vector_index(
    vectors: np.ndarray,
    spec: IndexSpec | None = None,
    *,
    settings: IndexSettings | None = None,
    tune: bool = True,
    seed: int = 0,
    use_gpu: bool | None = None,
) -> FaissIndex:
    """Build the index `spec` (default: `choose_spec` for these rows) over `vectors` (stored as given), training
    IVF lists on a sample and tuning nprobe / efSearch to the target recall when `tune`."""
    settings = settings or IndexSettings()
    rows = _rows(vectors)
    n, d = rows.shape
    spec = spec or choose_spec(n, d, settings)
    gpu = gpu_available() if use_gpu is None else use_gpu
    started = time.perf_counter()
    if spec.kind == "flat":
        index: faiss.Index = faiss.IndexFlatIP(d)
        index.add(rows)
        return FaissIndex(index, spec, use_gpu=gpu)
    if spec.kind == "hnsw":
        hnsw = faiss.IndexHNSWFlat(d, int(spec.m or 32), faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = int(spec.ef_construction or 80)
        hnsw.add(rows)
        built = FaissIndex(hnsw, spec, use_gpu=False)
    else:
        nlist = min(int(spec.nlist or ivf_lists(n)), max(1, n))
        rng = np.random.default_rng(seed)
        sample = rows[np.sort(rng.choice(n, size=min(n, nlist * TRAIN_PER_LIST), replace=False))]
        kmeans = faiss.Kmeans(
            d, nlist, niter=KMEANS_ITERATIONS, spherical=True, seed=seed, gpu=gpu, max_points_per_centroid=10**9
        )
        kmeans.train(sample)
        assert kmeans.centroids is not None
        quantizer = faiss.IndexFlatIP(d)
        quantizer.add(kmeans.centroids)
        if spec.kind == "ivf_sq8":
            ivf: Any = faiss.IndexIVFScalarQuantizer(
                quantizer, d, nlist, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
            )
        else:
            ivf = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
        ivf.train(sample)  # the lists are trained already; SQ8 learns its value ranges here
        ivf.add(rows)
        ivf.quantizer = quantizer  # keep the Python object alive as long as the index
        built = FaissIndex(ivf, replace(spec, nlist=nlist), use_gpu=gpu)
    logger.info("built %s over %d rows in %.1f s", built.spec.describe(), n, time.perf_counter() - started)
    if tune:
        tune_search(built, rows, settings.index_target_recall, seed=seed)
    return built


def recall_at(found: np.ndarray, truth: np.ndarray) -> float:
    """Share of the true top-k ids that were found (recall@k with k = truth's width)."""
    hits = sum(len(np.intersect1d(f[f >= 0], t)) for f, t in zip(found, truth, strict=True))
    return hits / truth.size


def tuning_queries(rows: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """Gallery rows moved a little off themselves (a photo of a work is never its exact embedding)."""
    picked = rows[rng.choice(len(rows), size=min(count, len(rows)), replace=False)]
    noise = rng.standard_normal(picked.shape).astype(np.float32)
    noise *= 0.35 * np.linalg.norm(picked, axis=1, keepdims=True) / np.sqrt(rows.shape[1])
    moved = picked + noise
    return np.ascontiguousarray(moved / np.maximum(np.linalg.norm(moved, axis=1, keepdims=True), 1e-12))


def tune_search(index: FaissIndex, rows: np.ndarray, target: float, *, seed: int = 0, k: int = 10) -> IndexSpec:
    """The smallest nprobe (IVF) or efSearch (HNSW) whose recall@k on sampled queries reaches `target`."""
    if index.spec.exact:
        return index.spec
    queries = tuning_queries(rows, TUNE_QUERIES, np.random.default_rng(seed + 1))
    _, truth = faiss.knn(queries, rows, k, metric=faiss.METRIC_INNER_PRODUCT)
    if index.spec.kind == "hnsw":
        ladder = [16, 32, 64, 128, 256, 512, 1024]
        key = "ef_search"
    else:
        nlist = int(index.spec.nlist or 1)
        ladder = sorted({min(p, nlist) for p in (1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 96, 128, 256, 512)})
        key = "nprobe"
    best = index.spec
    for value in ladder:
        candidate = replace(index.spec, ef_search=value) if key == "ef_search" else replace(index.spec, nprobe=value)
        index.with_spec(candidate)
        recall = recall_at(index.search(queries, k)[1], truth)
        if best.recall_at_10 is not None and recall - best.recall_at_10 < PLATEAU:
            break  # SQ8's codes cap its recall below exact: more probes would only cost time
        best = replace(candidate, recall_at_10=round(recall, 4))
        if recall >= target:
            break
    index.with_spec(best)
    logger.info("tuned %s: recall@%d %.3f (target %.2f)", best.describe(), k, best.recall_at_10 or 0.0, target)
    return best


def read_vector_index(path: Path, spec: IndexSpec | None = None, *, use_gpu: bool | None = None) -> FaissIndex:
    """Read an index written by `save`, applying the stored spec's search parameters (nprobe, efSearch)."""
    return FaissIndex(faiss.read_index(str(path)), spec, use_gpu=use_gpu)


def as_vector_index(index: VectorIndex | faiss.Index) -> VectorIndex:
    """Wrap a bare FAISS index (older callers and tests pass one) so everything downstream sees `VectorIndex`."""
    if isinstance(index, faiss.Index):
        return FaissIndex(index)
    return index


def open_vector_index(
    path: Path, spec: IndexSpec | None = None, *, name: str, settings: IndexSettings | None = None
) -> VectorIndex:
    """A gallery index for serving, from the backend the settings choose: the FAISS file itself, or a Qdrant
    collection loaded from it once (`inference.qdrant_index`)."""
    settings = settings or IndexSettings()
    if settings.vector_backend == "qdrant":
        from inference.qdrant_index import QdrantIndex

        return QdrantIndex.from_faiss_file(path, spec, name=name, settings=settings)
    return read_vector_index(path, spec)
