"""The visual vocabulary: k-means centroids of RootSIFT descriptors, trained at gallery build.

A descriptor's visual word is its nearest centroid. A large vocabulary (2^14 words at 10 k works) makes a shared
word a fairly specific match, which is what lets geometric verification work from word ids alone, with no
per-work descriptors stored. Assignment uses an HNSW graph over the centroids: exact search against 16 k
centroids costs ~2 M multiply-adds per descriptor, HNSW a few hundred distance computations, and an occasional
near-miss word only loses one tentative correspondence.
"""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np
import numpy.typing as npt

# HNSW graph degree and search breadth for word assignment: recall of the true nearest centroid ~95 %.
_HNSW_M = 32
_HNSW_EF_SEARCH = 64


class Vocabulary:
    """`centroids` (K x D float32). `assign(descriptors)` gives word ids."""

    def __init__(self, centroids: npt.NDArray[np.float32]) -> None:
        self.centroids = np.ascontiguousarray(centroids, np.float32)
        self._index: faiss.Index | None = None

    @property
    def size(self) -> int:
        return int(self.centroids.shape[0])

    @property
    def word_dtype(self) -> type[np.unsignedinteger]:
        """The smallest unsigned type that holds a word id (uint16 up to 65 536 words)."""
        return np.uint16 if self.size <= 1 << 16 else np.uint32

    @classmethod
    def train(
        cls, descriptors: npt.NDArray[np.float32], words: int, *, seed: int = 0, iterations: int = 12
    ) -> Vocabulary:
        """k-means on a sample of gallery descriptors. Fewer distinct descriptors than `words` shrinks the
        vocabulary rather than failing (tiny galleries in tests)."""
        x = np.ascontiguousarray(descriptors, np.float32)
        if x.shape[0] < 8:
            # A gallery of flat images: too few descriptors for k-means. Each descriptor is its own word (or one
            # empty word), so the build still succeeds; such works cannot be identified anyway.
            return cls(x if x.shape[0] else np.zeros((1, x.shape[1] if x.ndim == 2 else 128), np.float32))
        k = int(min(words, max(2, x.shape[0] // 4)))
        kmeans = faiss.Kmeans(
            x.shape[1],
            k,
            niter=iterations,
            seed=seed,
            max_points_per_centroid=64,
            min_points_per_centroid=4,
            verbose=False,
        )
        kmeans.train(x)
        return cls(np.asarray(kmeans.centroids, np.float32))

    def _search_index(self) -> faiss.Index:
        if self._index is None:
            d = self.centroids.shape[1]
            index: faiss.Index
            if self.size <= 4096:  # exact search is cheap enough and avoids building the graph
                index = faiss.IndexFlatL2(d)
            else:
                hnsw = faiss.IndexHNSWFlat(d, _HNSW_M)
                hnsw.hnsw.efConstruction = 80
                hnsw.hnsw.efSearch = _HNSW_EF_SEARCH
                index = hnsw
            index.add(self.centroids)
            self._index = index
        return self._index

    def assign(self, descriptors: npt.NDArray[np.float32]) -> npt.NDArray[np.uint32]:
        """Nearest word id per descriptor (uint32; callers narrow to `word_dtype` for storage)."""
        if descriptors.shape[0] == 0:
            return np.zeros(0, np.uint32)
        _, ids = self._search_index().search(np.ascontiguousarray(descriptors, np.float32), 1)
        return np.maximum(ids[:, 0], 0).astype(np.uint32)

    def save(self, folder: Path) -> None:
        np.save(folder / "vocabulary.npy", self.centroids, allow_pickle=False)

    @classmethod
    def load(cls, folder: Path) -> Vocabulary:
        return cls(np.load(folder / "vocabulary.npy", allow_pickle=False))
