"""The identifier: "which gallery work is this photo of, if any?" from local features alone, no learned weights.

Pipeline per photo: RootSIFT keypoints (features.py) -> visual words (vocabulary.py) -> a tf-idf shortlist from
the inverted file (inverted.py) -> geometric verification of the shortlist, best first (geometry.py) -> a claim
only when the best plausible homography has at least the calibrated number of inliers (calibration.py).

State per work: keypoint positions (float16, in the work's working-size pixels), their word ids (uint16 up to
65 536 words) and the working size, plus the work's postings in the inverted file. Everything is plain numpy
arrays in one folder (`save` / `load`, `.npy` files and a JSON header, no pickle); `load(mmap=True)` maps the
big arrays instead of reading them, so a 100 k gallery costs page cache, not process memory.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from inference.identify.calibration import Threshold
from inference.identify.features import FeatureExtractor, LocalFeatures
from inference.identify.geometry import MIN_INLIERS, Verification, verify
from inference.identify.inverted import InvertedIndex
from inference.identify.vocabulary import Vocabulary

FORMAT_VERSION = 1


@dataclass(frozen=True)
class IdentifyConfig:
    """Sizes fixed at build; a query must use the same ones (they travel in the saved header)."""

    # Gallery works: the shared gallery's images are <= 512 px, so more would only upsample.
    gallery_side: int = 512
    gallery_keypoints: int = 600
    # Photos at 512 px: OpenCV's SIFT doubles the image for its first octave, so this is detected at 1024. On the
    # 10 k benchmark (works filling 20-100 % of the frame) 512/800 named 99.0 % (1024/1500: 98.3 %), 0 false claims
    # either way, at 258 ms p50 instead of 591 (benchmarks/results/identify_configs.json). Saved with the gallery,
    # so a gallery built with other sizes keeps its own.
    query_side: int = 512
    query_keypoints: int = 800
    # ~2^14 words at 10 k works keeps posting lists at a few hundred entries; grow it with the gallery.
    vocabulary_words: int = 16384
    # k-means runs on at most this many descriptors sampled from the gallery (training cost is linear in it).
    vocabulary_sample: int = 250_000
    vocabulary_iterations: int = 10
    # Candidates verified per photo: the true work is almost always in the tf-idf top 10 when it is there at all.
    shortlist: int = 15
    target_false_rate: float = 0.01
    seed: int = 0

    @classmethod
    def for_gallery(cls, works: int, **overrides: Any) -> IdentifyConfig:
        """The defaults with a vocabulary for the gallery: 2^14 words up to 10 k works (what the benchmark
        measured), then ~1.6 words per work up to 2^16. Never fewer: on 150 real works 512 words found 15 of 19
        photos at 0.6-1.1 s, 16 384 words all 19 at 0.3-0.65 s (coarse words pair everything with everything).
        Training shrinks it for tiny galleries (a word needs about four descriptors)."""
        words = min(1 << 16, max(cls.vocabulary_words, 1 << math.ceil(math.log2(max(works, 1) * 1.6))))
        return cls(**{"vocabulary_words": words, **overrides})

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> IdentifyConfig:
        return cls(**{k: type(getattr(cls(), k))(v) for k, v in data.items() if k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class Match:
    """A claim: gallery position `index`, the inlier count, calibrated `confidence` and where the work's four
    corners (top-left, top-right, bottom-right, bottom-left of the work) lie in the photo, in its pixels."""

    index: int
    inliers: int
    confidence: float
    corners: list[tuple[float, float]]


@dataclass(frozen=True)
class Candidate:
    """The best verified candidate of a photo, claim or not (what calibration and diagnostics need)."""

    index: int
    verification: Verification
    scale: float


@dataclass(frozen=True)
class Prepared:
    """A photo's half-done identification: its features, their visual words and the tf-idf shortlist."""

    features: LocalFeatures
    words: npt.NDArray[np.uint32]
    shortlist: npt.NDArray[np.int64]


@dataclass
class Identifier:
    config: IdentifyConfig
    vocabulary: Vocabulary
    index: InvertedIndex
    keypoint_offsets: npt.NDArray[np.int64]  # work i owns keypoints offsets[i]:offsets[i+1]
    keypoint_xy: npt.NDArray[np.float16]
    keypoint_frames: npt.NDArray[np.uint8]  # orientation and log-scale, one byte each (features.quantise_frames)
    keypoint_words: npt.NDArray[np.unsignedinteger]
    work_sizes: npt.NDArray[np.float32]  # (width, height) of each work at its working size
    threshold: Threshold = field(default_factory=Threshold.default)
    _extractor: FeatureExtractor | None = field(default=None, repr=False, compare=False)

    @property
    def works(self) -> int:
        return int(self.work_sizes.shape[0])

    # ---- build -------------------------------------------------------------------------------------------

    @classmethod
    def build(cls, images: Iterable[npt.NDArray[np.uint8]], config: IdentifyConfig | None = None) -> Identifier:
        """Build from gallery images (RGB uint8 arrays, gallery order); see `IdentifierBuilder` to stream."""
        builder = IdentifierBuilder(config or IdentifyConfig())
        for image in images:
            builder.add(image)
        return builder.build()

    # ---- query -------------------------------------------------------------------------------------------

    def extractor(self) -> FeatureExtractor:
        if self._extractor is None:
            self._extractor = FeatureExtractor(self.config.query_side, self.config.query_keypoints)
        return self._extractor

    def prepare(self, image: npt.NDArray[np.uint8]) -> Prepared | None:
        """The photo's features, visual words and tf-idf shortlist (None when the image holds too few keypoints
        to identify anything). The first half of `best_candidate`: the service runs it while CLIP runs, then
        verifies the shortlist and, when real CLIP weights are configured, CLIP's top hits too."""
        try:
            features = self.extractor()(image)
        except ValueError:
            return None
        if len(features) < 8:
            return None
        words = self.vocabulary.assign(features.descriptors)
        return Prepared(features, words, self.index.shortlist(words, self.config.shortlist))

    def is_decisive(self, candidate: Candidate | None) -> bool:
        """Three times the threshold's inliers: nothing that strong happens by chance, and a second work that
        strong would be a duplicate in the gallery, so verifying further candidates cannot change the answer."""
        return candidate is not None and candidate.verification.inliers >= 3 * self.threshold.min_inliers

    def verify_candidates(
        self, prepared: Prepared, works: Iterable[int], best: Candidate | None = None, *, claims_only: bool = True
    ) -> Candidate | None:
        """Verify `works` in order and return the candidate with the most inliers, `best` (from an earlier call)
        included; stops early at a decisive one (`is_decisive`). `claims_only` skips the geometric fit of works
        that cannot reach the threshold (the claim is the same; calibration needs every score, so it says no)."""
        features, words = prepared.features, prepared.words
        need = self.threshold.min_inliers if claims_only else MIN_INLIERS
        for work in works:
            if self.is_decisive(best):
                break
            work = int(work)
            if not 0 <= work < self.works:
                continue
            start, end = int(self.keypoint_offsets[work]), int(self.keypoint_offsets[work + 1])
            width, height = (float(v) for v in self.work_sizes[work])
            found = verify(
                features.xy,
                features.frames,
                words,
                self.keypoint_xy[start:end],
                self.keypoint_frames[start:end],
                self.keypoint_words[start:end],
                (width, height),
                seed=self.config.seed,
                min_inliers=need,
            )
            if found is not None and (best is None or found.inliers > best.verification.inliers):
                best = Candidate(work, found, features.scale)
        return best

    def best_candidate(self, image: npt.NDArray[np.uint8], *, claims_only: bool = False) -> Candidate | None:
        """Verify the tf-idf shortlist and return the candidate with the most inliers (None if none plausible;
        with `claims_only`, also None when none could be claimed)."""
        prepared = self.prepare(image)
        if prepared is None:
            return None
        return self.verify_candidates(prepared, prepared.shortlist, claims_only=claims_only)

    def decide(self, best: Candidate | None) -> Match | None:
        """The claim a best candidate makes: None unless it clears the calibrated threshold."""
        if best is None or not self.threshold.accepts(best.verification.inliers):
            return None
        corners = [(float(x) * best.scale, float(y) * best.scale) for x, y in best.verification.corners]
        inliers = best.verification.inliers
        return Match(best.index, inliers, round(self.threshold.confidence(inliers), 4), corners)

    def identify(self, image: npt.NDArray[np.uint8]) -> Match | None:
        """The claimed work, or None when no candidate clears the calibrated threshold (or the image is unusable)."""
        return self.decide(self.best_candidate(image, claims_only=True))

    def calibrate(self, negatives: Iterable[npt.NDArray[np.uint8]]) -> list[int]:
        """Set the threshold from photos of works NOT in the gallery (see calibration.py); returns their scores."""
        scores = []
        for image in negatives:
            best = self.best_candidate(image)
            scores.append(0 if best is None else best.verification.inliers)
        self.threshold = Threshold.calibrate(scores, self.config.target_false_rate)
        return scores

    # ---- edit --------------------------------------------------------------------------------------------

    def add_works(self, works: Sequence[StoredFeatures]) -> Identifier:
        """A new identifier with these works appended (gallery positions `works`, ...), without retraining: their
        descriptors get words from the fixed vocabulary, their keypoints are appended and their postings added to
        the inverted file. The calibrated threshold is kept (it depends on the photos and the vocabulary, hardly on
        a few more works); rebuild the gallery when it has grown many times over."""
        if not works:
            return self
        words = [
            self.vocabulary.assign(w.descriptors.astype(np.float32) / 255.0).astype(self.keypoint_words.dtype)
            for w in works
        ]
        counts = np.array([w.xy.shape[0] for w in works], np.int64)
        offsets = np.concatenate([np.asarray(self.keypoint_offsets), self.keypoint_offsets[-1] + np.cumsum(counts)])
        return replace(
            self,
            index=self.index.add(words),
            keypoint_offsets=offsets.astype(np.int64),
            keypoint_xy=np.concatenate([self.keypoint_xy, *(w.xy for w in works)]).astype(np.float16),
            keypoint_frames=np.concatenate([self.keypoint_frames, *(w.frames for w in works)]).astype(np.uint8),
            keypoint_words=np.concatenate([self.keypoint_words, *words]),
            work_sizes=np.concatenate([self.work_sizes, np.array([w.size for w in works], np.float32).reshape(-1, 2)]),
            _extractor=None,
        )

    def without(self, works: set[int] | frozenset[int]) -> Identifier:
        """A new identifier that never shortlists these works (their postings dropped; positions and keypoints
        stay, so the other works keep their ids). Photos reach a work only through the shortlist or CLIP's hits,
        and the gallery's search already leaves removed works out of those."""
        return replace(self, index=self.index.without(works), _extractor=None) if works else self

    # ---- storage -----------------------------------------------------------------------------------------

    _ARRAYS = ("keypoint_offsets", "keypoint_xy", "keypoint_frames", "keypoint_words", "work_sizes")

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.vocabulary.save(folder)
        self.index.save(folder)
        for name in self._ARRAYS:
            np.save(folder / f"{name}.npy", getattr(self, name), allow_pickle=False)
        header = {
            "format": FORMAT_VERSION,
            "works": self.works,
            "config": asdict(self.config),
            "threshold": self.threshold.to_json(),
        }
        (folder / "identify.json").write_text(json.dumps(header, indent=2))

    @classmethod
    def load(cls, folder: Path, *, mmap: bool = False) -> Identifier:
        """Load a saved identifier; refuses another format version with a clear message."""
        header = json.loads((folder / "identify.json").read_text())
        if header.get("format") != FORMAT_VERSION:
            raise ValueError(
                f"identification data in {folder} has format {header.get('format')}, this code reads "
                f"{FORMAT_VERSION}: rebuild the gallery"
            )
        mode: Literal["r"] | None = "r" if mmap else None
        arrays = {n: np.load(folder / f"{n}.npy", mmap_mode=mode, allow_pickle=False) for n in cls._ARRAYS}
        return cls(
            IdentifyConfig.from_json(header["config"]),
            Vocabulary.load(folder),
            InvertedIndex.load(folder, mmap=mmap),
            threshold=Threshold.from_json(header["threshold"]),
            **arrays,
        )

    def nbytes(self) -> dict[str, int]:
        """Bytes of the stored state by part (the vocabulary is shared, the rest grows with the works)."""
        per_work = sum(int(getattr(self, n).nbytes) for n in self._ARRAYS)
        return {"vocabulary": int(self.vocabulary.centroids.nbytes), "index": self.index.nbytes, "keypoints": per_work}

    def bytes_per_work(self) -> float:
        """What each work costs, index and keypoints; the vocabulary is a fixed cost and left out."""
        parts = self.nbytes()
        return (parts["index"] + parts["keypoints"]) / max(self.works, 1)


@dataclass(frozen=True)
class StoredFeatures:
    """One gallery work's features in the compact form the builder keeps: positions as float16 and descriptors
    as uint8 (what a resumable build writes to disk between runs)."""

    xy: npt.NDArray[np.float16]
    frames: npt.NDArray[np.uint8]
    descriptors: npt.NDArray[np.uint8]
    size: tuple[int, int]

    @classmethod
    def of(cls, features: LocalFeatures) -> StoredFeatures:
        descriptors = np.round(features.descriptors * 255.0).astype(np.uint8)
        return cls(features.xy.astype(np.float16), features.frames, descriptors, features.size)


class IdentifierBuilder:
    """Collect gallery works one by one, then train the vocabulary and index them.

    Descriptors are kept as uint8 (RootSIFT values are in [0, 1]; 1/255 steps change no nearest word that
    matters) until the vocabulary is trained: 77 kB per work at 600 keypoints, the only build-time memory that
    grows with the gallery. For very large galleries, train on a sample of works first (`vocabulary=`).
    """

    def __init__(self, config: IdentifyConfig, vocabulary: Vocabulary | None = None) -> None:
        self.config = config
        self.vocabulary = vocabulary
        self._extractor = FeatureExtractor(config.gallery_side, config.gallery_keypoints)
        self._xy: list[npt.NDArray[np.float16]] = []
        self._frames: list[npt.NDArray[np.uint8]] = []
        self._descriptors: list[npt.NDArray[np.uint8]] = []
        self._sizes: list[tuple[int, int]] = []

    def extract(self, image: npt.NDArray[np.uint8]) -> LocalFeatures:
        return self._extractor(image)

    def add(self, image: npt.NDArray[np.uint8]) -> None:
        self.add_features(self.extract(image))

    def add_features(self, features: LocalFeatures) -> None:
        """Add one work's features (extracted with this config's gallery size, e.g. in worker processes)."""
        self.add_stored(StoredFeatures.of(features))

    def add_stored(self, stored: StoredFeatures) -> None:
        """Add one work's features as stored between runs (e.g. in an interrupted gallery build's parts)."""
        self._xy.append(stored.xy)
        self._frames.append(stored.frames)
        self._descriptors.append(stored.descriptors)
        self._sizes.append(stored.size)

    def build(self) -> Identifier:
        if not self._sizes:
            raise ValueError("an identifier needs at least one gallery work")
        counts = np.array([x.shape[0] for x in self._xy], np.int64)
        offsets = np.zeros(len(counts) + 1, np.int64)
        np.cumsum(counts, out=offsets[1:])
        descriptors = np.concatenate(self._descriptors)
        vocabulary = self.vocabulary
        if vocabulary is None:
            rng = np.random.default_rng(self.config.seed)
            take = min(self.config.vocabulary_sample, descriptors.shape[0])
            sample = descriptors[rng.choice(descriptors.shape[0], take, replace=False)]
            vocabulary = Vocabulary.train(
                sample.astype(np.float32) / 255.0,
                self.config.vocabulary_words,
                seed=self.config.seed,
                iterations=self.config.vocabulary_iterations,
            )
        words = np.empty(descriptors.shape[0], vocabulary.word_dtype)
        chunk = 65536
        for start in range(0, descriptors.shape[0], chunk):
            part = descriptors[start : start + chunk].astype(np.float32) / 255.0
            words[start : start + chunk] = vocabulary.assign(part)
        per_work: Sequence[npt.NDArray[np.unsignedinteger]] = [
            words[offsets[i] : offsets[i + 1]] for i in range(len(counts))
        ]
        index = InvertedIndex.build(per_work, vocabulary.size)
        xy = np.concatenate(self._xy) if self._xy else np.zeros((0, 2), np.float16)
        frames = np.concatenate(self._frames) if self._frames else np.zeros((0, 2), np.uint8)
        sizes = np.array(self._sizes, np.float32).reshape(-1, 2)
        return Identifier(self.config, vocabulary, index, offsets, xy, frames, words, sizes)


def describe(identifier: Identifier) -> dict[str, Any]:
    """Numbers for logs and benchmark reports."""
    parts = identifier.nbytes()
    return {
        "works": identifier.works,
        "vocabulary_words": identifier.vocabulary.size,
        "keypoints_per_work": round(float(identifier.keypoint_xy.shape[0]) / max(identifier.works, 1), 1),
        "bytes_per_work": round(identifier.bytes_per_work(), 1),
        "vocabulary_bytes": parts["vocabulary"],
        "threshold": identifier.threshold.to_json(),
        "mb_at_100k": round(identifier.bytes_per_work() * 100_000 / 1e6 + parts["vocabulary"] / 1e6, 1),
    }
