"""An inverted file over visual words, scored with tf-idf (bag of visual words, Sivic & Zisserman 2003).

Scoring a photo touches only the posting lists of the words it contains, so its cost depends on how many works
share those words, not on a scan of the gallery; with the vocabulary grown with the gallery (postings of a few
hundred entries each) it stays in the milliseconds. Postings are stored flat (CSR): `offsets[w]:offsets[w+1]`
indexes `doc_ids` (uint32) and `tf` (uint8 term counts, capped at 255), five bytes per (work, distinct word).

Weights: w(d, t) = sqrt(tf) * idf(t) / |d|, with idf(t) = log(N / df(t)) and |d| the L2 norm of the work's
vector. The square root damps bursts (a repeated texture that lands many keypoints in one word) so that one
repetitive pattern cannot dominate a score.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt


class InvertedIndex:
    """CSR posting lists plus `idf` per word and `norms` per work."""

    def __init__(
        self,
        offsets: npt.NDArray[np.int64],
        doc_ids: npt.NDArray[np.uint32],
        tf: npt.NDArray[np.uint8],
        idf: npt.NDArray[np.float32],
        norms: npt.NDArray[np.float32],
    ) -> None:
        self.offsets = offsets
        self.doc_ids = doc_ids
        self.tf = tf
        self.idf = idf
        self.norms = norms

    @property
    def works(self) -> int:
        return int(self.norms.shape[0])

    @property
    def nbytes(self) -> int:
        return sum(int(a.nbytes) for a in (self.offsets, self.doc_ids, self.tf, self.idf, self.norms))

    @classmethod
    def build(cls, words_per_work: Sequence[npt.NDArray[np.integer]], vocabulary_size: int) -> InvertedIndex:
        """Index the visual words of each work (work i = position i)."""
        n = len(words_per_work)
        docs_parts, words_parts, tf_parts = [], [], []
        for doc, words in enumerate(words_per_work):
            unique, counts = np.unique(np.asarray(words, np.int64), return_counts=True)
            docs_parts.append(np.full(unique.shape[0], doc, np.uint32))
            words_parts.append(unique)
            tf_parts.append(np.minimum(counts, 255).astype(np.uint8))
        docs = np.concatenate(docs_parts) if docs_parts else np.zeros(0, np.uint32)
        words = np.concatenate(words_parts) if words_parts else np.zeros(0, np.int64)
        tf = np.concatenate(tf_parts) if tf_parts else np.zeros(0, np.uint8)
        return cls._from_postings(docs, words, tf, n, vocabulary_size, n)

    @classmethod
    def _from_postings(
        cls,
        docs: npt.NDArray[np.unsignedinteger],
        words: npt.NDArray[np.integer],
        tf: npt.NDArray[np.uint8],
        works: int,
        vocabulary_size: int,
        collection: int,
    ) -> InvertedIndex:
        """CSR, idf and norms from (work, word, tf) postings; postings of one word keep their given order (works
        in increasing order). `collection` is the N of idf."""
        order = np.argsort(words, kind="stable")  # stable: postings stay sorted by work
        docs, words, tf = docs[order], words[order], tf[order]
        df_counts = np.bincount(words, minlength=vocabulary_size)
        offsets = np.zeros(vocabulary_size + 1, np.int64)
        offsets[1:] = np.cumsum(df_counts)
        df = df_counts.astype(np.float64)
        idf = np.where(df > 0, np.log(max(collection, 1) / np.maximum(df, 1.0)), 0.0).astype(np.float32)
        weights = np.sqrt(tf.astype(np.float32)) * idf[words]
        norms = np.sqrt(np.bincount(docs, weights=weights.astype(np.float64) ** 2, minlength=works)).astype(np.float32)
        return cls(offsets, docs.astype(np.uint32), tf, idf, norms)

    def _postings(self) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.int64], npt.NDArray[np.uint8]]:
        words = np.repeat(np.arange(self.offsets.shape[0] - 1, dtype=np.int64), np.diff(self.offsets))
        return np.asarray(self.doc_ids), words, np.asarray(self.tf)

    def add(self, words_per_work: Sequence[npt.NDArray[np.integer]]) -> InvertedIndex:
        """A new index with these works appended (positions `works`, `works + 1`, ...): their postings go after
        the existing ones of each word, and idf and norms are recomputed for the grown collection (N: the works
        that have postings, so removed works do not count). Linear in the postings; no vocabulary change."""
        extra = InvertedIndex.build(words_per_work, self.offsets.shape[0] - 1)
        old_docs, old_words, old_tf = self._postings()
        new_docs, new_words, new_tf = extra._postings()
        docs = np.concatenate([old_docs, new_docs.astype(np.int64) + self.works]).astype(np.uint32)
        works = self.works + len(words_per_work)
        return InvertedIndex._from_postings(
            docs,
            np.concatenate([old_words, new_words]),
            np.concatenate([old_tf, new_tf]),
            works,
            self.offsets.shape[0] - 1,
            int(np.unique(docs).shape[0]),
        )

    def without(self, works: set[int] | frozenset[int]) -> InvertedIndex:
        """A new index where these works have no postings (so no shortlist names them); positions unchanged."""
        docs, words, tf = self._postings()
        keep = ~np.isin(docs, np.fromiter(works, np.int64, len(works)))
        docs = docs[keep]
        return InvertedIndex._from_postings(
            docs, words[keep], tf[keep], self.works, self.offsets.shape[0] - 1, int(np.unique(docs).shape[0])
        )

    def scores(self, words: npt.NDArray[np.integer]) -> npt.NDArray[np.float32]:
        """Cosine tf-idf similarity of a photo's words to every work (zeros where no word is shared)."""
        n = self.works
        if words.shape[0] == 0 or n == 0:
            return np.zeros(n, np.float32)
        unique, counts = np.unique(np.asarray(words, np.int64), return_counts=True)
        unique_q = np.sqrt(counts.astype(np.float32)) * self.idf[unique]
        starts, ends = self.offsets[unique], self.offsets[unique + 1]
        lengths = ends - starts
        total = int(lengths.sum())
        if total == 0:
            return np.zeros(n, np.float32)
        # Positions of every posting of the query's words, without a Python loop over words.
        first = np.repeat(starts - np.concatenate(([0], np.cumsum(lengths)[:-1])), lengths)
        positions = first + np.arange(total)
        q = np.repeat(unique_q * self.idf[unique], lengths)
        contribution = q * np.sqrt(self.tf[positions].astype(np.float32))
        raw = np.bincount(self.doc_ids[positions], weights=contribution, minlength=n)
        return (raw / np.maximum(self.norms, 1e-12)).astype(np.float32)

    def shortlist(self, words: npt.NDArray[np.integer], count: int) -> npt.NDArray[np.int64]:
        """The `count` best-scoring works, best first; works sharing no word are left out."""
        s = self.scores(words)
        count = min(count, int(np.count_nonzero(s)))
        if count == 0:
            return np.zeros(0, np.int64)
        top = np.argpartition(-s, count - 1)[:count]
        return top[np.argsort(-s[top], kind="stable")].astype(np.int64)

    def save(self, folder: Path) -> None:
        for name in ("offsets", "doc_ids", "tf", "idf", "norms"):
            np.save(folder / f"ivf_{name}.npy", getattr(self, name), allow_pickle=False)

    @classmethod
    def load(cls, folder: Path, *, mmap: bool = False) -> InvertedIndex:
        mode: Literal["r"] | None = "r" if mmap else None

        def part(name: str) -> np.ndarray:
            return np.load(folder / f"ivf_{name}.npy", mmap_mode=mode, allow_pickle=False)

        return cls(part("offsets"), part("doc_ids"), part("tf"), part("idf"), part("norms"))
