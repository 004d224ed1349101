"""Offline comparison of the embedders: does each way of searching put works of the same artist, style and genre
first? The table a maintainer reads before choosing models, before users vote in the arena.

    python -m benchmarks.eval_retrieval --gallery DIR [--k 10] [--max-queries 2000] [--out results.json]

Runs on any built gallery and loads no model: every vector it needs is stored in the gallery (image vectors, the
descriptions' MiniLM vectors and their CLIP text vectors), and so are the zero-shot tags. Every work (or a seeded
sample of `--max-queries` of them) queries all the others, exactly (no ANN), per recommender that works from a
gallery work:

- by_look: its CLIP image vector against the image vectors;
- by_meaning: its description's MiniLM vector against the descriptions' (the `text` index);
- by_text_clip: its description's CLIP text vector against the image vectors (what a word search by look does);
- words_meaning: its description's CLIP text vector against the descriptions' CLIP text vectors;
- fused: reciprocal-rank fusion of by_look, by_meaning and by_text_clip, as the `fused` recommender does.

For each label (artist, style, genre from the gallery CSV) it reports precision@k and mean average precision of
"same label" over the queries whose label is known and shared with at least one other work, next to what a random
ranking would score (`chance`). Styles like "Baroque|Dutch Golden Age" count as the same when they share a part;
names compare case-insensitively. It also scores the zero-shot tagger: the share of works whose top style (genre)
tag is one the CSV names (`inference.tag_labels.labels_for_csv`), at 1 and at 3.

With random weights the numbers are a smoke test of the mechanism and the output says so in a banner: when the
manifest names no CLIP weights, or weights the test and benchmark factories write (`tests/model_factories.py`: the
tiny `artmatch-tiny-*` architectures, `*-random.pt` files).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from inference.gallery_store import Gallery  # noqa: E402
from inference.recommenders.fusion import RRF_K  # noqa: E402
from inference.tag_labels import LABELS, labels_for_csv  # noqa: E402

LABEL_FIELDS = ("artist", "style", "genre")
TAG_KINDS = ("style", "genre")
RECOMMENDERS = ("by_look", "by_meaning", "by_text_clip", "words_meaning", "fused")
FUSED_PARTS = ("by_look", "by_meaning", "by_text_clip")
SMOKE_BANNER = (
    "SMOKE TEST ONLY: random weights. This gallery was built with random CLIP weights (none, or a test factory's), "
    "so these numbers test the mechanism, not the models."
)
CHUNK = 256
RANDOM_MARKERS = ("random", "artmatch-tiny")
"""Names of the random-weight CLIPs the test and benchmark factories write."""


@dataclass(frozen=True)
class Spaces:
    """The gallery's stored vectors, L2-normalised rows: what each recommender queries with and searches."""

    image: np.ndarray
    text: np.ndarray
    description_clip: np.ndarray

    def pair(self, recommender: str) -> tuple[np.ndarray, np.ndarray]:
        """(query vectors, searched vectors) of a single-index recommender."""
        return {
            "by_look": (self.image, self.image),
            "by_meaning": (self.text, self.text),
            "by_text_clip": (self.description_clip, self.image),
            "words_meaning": (self.description_clip, self.description_clip),
        }[recommender]


def read_spaces(gallery: Gallery) -> Spaces:
    ids = np.arange(len(gallery), dtype=np.int64)
    if gallery.description_clip_index is None:
        raise ValueError(f"gallery {gallery.root} has no description_clip index; rebuild it")
    return Spaces(
        image=_unit(gallery.image_index.reconstruct(ids)),
        text=_unit(gallery.text_index.reconstruct(ids)),
        description_clip=_unit(gallery.description_clip_index.reconstruct(ids)),
    )


def _unit(rows: np.ndarray) -> np.ndarray:
    rows = np.asarray(rows, dtype=np.float32).reshape(len(rows), -1)
    return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)


def label_sets(values: Sequence[str]) -> list[frozenset[str]]:
    """Each work's label as a set of lower-cased parts ("Baroque|Dutch Golden Age" -> {baroque, dutch golden age})."""
    return [frozenset(part.strip().lower() for part in value.split("|") if part.strip()) for value in values]


def rankings(queries: np.ndarray, searched: np.ndarray, asked: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """For each asked work, every other allowed work, best first (exact inner products), as (q, m) indices."""
    others = np.flatnonzero(allowed)
    out = np.empty((len(asked), len(others) - 1), dtype=np.int64)
    for start in range(0, len(asked), CHUNK):
        rows = asked[start : start + CHUNK]
        scores = queries[rows] @ searched[others].T
        scores[others[None, :] == rows[:, None]] = -np.inf  # a work never finds itself
        order = np.argsort(-scores, axis=1, kind="stable")[:, :-1]  # the last one is the work itself
        out[start : start + len(rows)] = others[order]
    return out


def fuse(parts: Sequence[np.ndarray], rrf_k: int = RRF_K) -> np.ndarray:
    """Reciprocal-rank fusion of full rankings (the same works in each row), best first; ties keep the first
    part's order."""
    count = parts[0].shape[1]
    size = int(max(part.max() for part in parts)) + 1
    weights = 1.0 / (rrf_k + np.arange(1, count + 1, dtype=np.float64))
    fused = np.empty_like(parts[0])
    for row in range(parts[0].shape[0]):
        scores = np.zeros(size)
        for part in parts:
            scores[part[row]] += weights
        first = parts[0][row]
        fused[row] = first[np.argsort(-scores[first], kind="stable")]
    return fused


def label_scores(
    ranked: np.ndarray, asked: np.ndarray, labels: Sequence[frozenset[str]], k: int
) -> dict[str, float | int]:
    """precision@k, mAP and their chance levels over the asked works that share their label with another one."""
    precisions, average_precisions, chances = [], [], []
    for row, work in enumerate(asked.tolist()):
        mine = labels[work]
        if not mine:
            continue
        relevant = np.fromiter((bool(mine & labels[other]) for other in ranked[row]), dtype=bool, count=ranked.shape[1])
        total = int(relevant.sum())
        if total == 0:
            continue
        precisions.append(float(relevant[:k].mean()))
        hits = np.flatnonzero(relevant)
        average_precisions.append(float(np.mean(np.arange(1, total + 1) / (hits + 1))))
        chances.append(total / len(relevant))
    if not precisions:
        return {"queries": 0}
    return {
        "queries": len(precisions),
        f"precision@{k}": round(float(np.mean(precisions)), 4),
        "mAP": round(float(np.mean(average_precisions)), 4),
        "chance": round(float(np.mean(chances)), 4),
    }


def tagger_accuracy(gallery: Gallery) -> dict[str, dict[str, float | int]]:
    """Share of works whose top zero-shot tag of a kind is one the CSV names (at 1 and 3), and the chance level."""
    report: dict[str, dict[str, float | int]] = {}
    for kind in TAG_KINDS:
        at1 = at3 = scored = 0
        for artwork in gallery.artworks:
            if artwork.id in gallery.removed:
                continue
            truth = set(labels_for_csv(kind, getattr(artwork, kind)))
            tags = [str(tag["name"]) for tag in artwork.tags if tag.get("kind") == kind]
            if not truth or not tags:
                continue
            scored += 1
            at1 += tags[0] in truth
            at3 += bool(truth & set(tags[:3]))
        labels = sum(1 for label in LABELS if label.kind == kind)
        report[kind] = (
            {
                "works": scored,
                "accuracy@1": round(at1 / scored, 4),
                "accuracy@3": round(at3 / scored, 4),
                "chance@1": round(1 / labels, 4),
            }
            if scored
            else {"works": 0}
        )
    return report


def evaluate(gallery_dir: Path, k: int = 10, max_queries: int = 2000, seed: int = 0) -> dict[str, object]:
    gallery = Gallery.load(gallery_dir)
    spaces = read_spaces(gallery)
    allowed = np.ones(len(gallery), dtype=bool)
    allowed[list(gallery.removed)] = False
    candidates = np.flatnonzero(allowed)
    if len(candidates) < 2:
        raise ValueError(f"gallery {gallery_dir} has fewer than two works: nothing to retrieve")
    rng = np.random.default_rng(seed)
    asked = np.sort(rng.choice(candidates, max_queries, replace=False)) if len(candidates) > max_queries else candidates
    labels = {field: label_sets([getattr(a, field) for a in gallery.artworks]) for field in LABEL_FIELDS}

    ranked: dict[str, np.ndarray] = {}
    for name in RECOMMENDERS:
        if name == "fused":
            ranked[name] = fuse([ranked[part] for part in FUSED_PARTS])
        else:
            queries, searched = spaces.pair(name)
            ranked[name] = rankings(queries, searched, asked, allowed)
    weights = gallery.manifest.models.clip_weights
    arch = gallery.manifest.models.clip_arch
    random = weights is None or any(marker in f"{arch} {weights}" for marker in RANDOM_MARKERS)
    return {
        "gallery": str(gallery_dir),
        "works": int(allowed.sum()),
        "queries": len(asked),
        "k": k,
        "models": {
            "clip": f"{gallery.manifest.models.clip_arch}:{weights or 'random'}",
            "text": gallery.manifest.models.text_model,
            "describer": gallery.manifest.describer,
        },
        "random_weights": random,
        "labelled": {field: sum(1 for s in labels[field] if s) for field in LABEL_FIELDS},
        "retrieval": {
            name: {field: label_scores(ranked[name], asked, labels[field], k) for field in LABEL_FIELDS}
            for name in RECOMMENDERS
        },
        "tagger": tagger_accuracy(gallery),
    }


def render(result: dict[str, object], echo: Callable[[str], None] = print) -> None:
    """The table, with rich when it is installed, plain text otherwise."""
    k = result["k"]
    retrieval = result["retrieval"]
    assert isinstance(retrieval, dict)
    rows = []
    for name, fields in retrieval.items():
        cells = [name]
        for field in LABEL_FIELDS:
            score = fields[field]
            cells.append(
                f"{score[f'precision@{k}']:.3f} / {score['mAP']:.3f} ({score['chance']:.3f})"
                if score["queries"]
                else "-"
            )
        rows.append(cells)
    header = ["recommender", *(f"{field}: P@{k} / mAP (chance)" for field in LABEL_FIELDS)]
    tagger = result["tagger"]
    assert isinstance(tagger, dict)
    tag_rows = [
        [kind, str(s["works"]), f"{s['accuracy@1']:.3f}", f"{s['accuracy@3']:.3f}", f"{s['chance@1']:.3f}"]
        if s["works"]
        else [kind, "0", "-", "-", "-"]
        for kind, s in tagger.items()
    ]
    title = f"{result['works']} works, {result['queries']} queries, models {result['models']}"
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        _plain(result, title, header, rows, tag_rows, echo)
        return
    console = Console()
    if result["random_weights"]:
        console.print(f"[bold red]{SMOKE_BANNER}[/bold red]")
    table = Table(*header, title=f"Retrieval: {title}")
    for cells in rows:
        table.add_row(*cells)
    console.print(table)
    tags = Table("kind", "works", "accuracy@1", "accuracy@3", "chance@1", title="Zero-shot tagger vs the CSV")
    for cells in tag_rows:
        tags.add_row(*cells)
    console.print(tags)


def _plain(
    result: dict[str, object],
    title: str,
    header: list[str],
    rows: list[list[str]],
    tag_rows: list[list[str]],
    echo: Callable[[str], None],
) -> None:
    if result["random_weights"]:
        echo(f"*** {SMOKE_BANNER} ***")
    echo(f"Retrieval: {title}")
    for cells in [header, *rows]:
        echo(" | ".join(cells))
    echo("Zero-shot tagger vs the CSV: kind | works | accuracy@1 | accuracy@3 | chance@1")
    for cells in tag_rows:
        echo(" | ".join(cells))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.eval_retrieval", description=__doc__.splitlines()[0])
    parser.add_argument("--gallery", type=Path, required=True, help="a built gallery directory")
    parser.add_argument("--k", type=int, default=10, help="precision at this rank (default 10)")
    parser.add_argument("--max-queries", type=int, default=2000, help="query works sampled (default 2000)")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)
    if args.k < 1 or args.max_queries < 1:
        parser.error("--k and --max-queries must be at least 1")
    result = evaluate(args.gallery, args.k, args.max_queries)
    render(result)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
