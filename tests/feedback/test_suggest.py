"""Suggestions: several tastes served, dislikes avoided, variety, exploration, onboarding and re-ranking."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from feedback.suggest import Suggestion, diverse_sample, rerank, suggest
from feedback.taste import FeedbackEvent, TasteProfile
from tests.feedback.vectors import DIM, Gallery, cluster, unit
from tests.feedback.vectors import likes as liked


def mean_pairwise_similarity(vectors: np.ndarray) -> float:
    return float(np.mean([vectors[i] @ vectors[j] for i, j in itertools.combinations(range(len(vectors)), 2)]))


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(11)


@pytest.fixture
def centres(rng: np.random.Generator) -> np.ndarray:
    return unit(rng.standard_normal((8, DIM)))


def test_two_tastes_are_both_served_and_the_blend_between_them_is_not(
    rng: np.random.Generator, centres: np.ndarray
) -> None:
    gallery = Gallery()
    a, b = centres[0], unit(centres[1] - (centres[1] @ centres[0]) * centres[0])  # two unrelated kinds
    likes = gallery.add(cluster(rng, a, 6)) + gallery.add(cluster(rng, b, 6))
    kind_a, kind_b = gallery.add(cluster(rng, a, 30)), gallery.add(cluster(rng, b, 30))
    blend = gallery.add(cluster(rng, unit(a + b), 30, spread=0.25))  # works that look like "the average"
    unrelated = gallery.add(np.concatenate([cluster(rng, centre, 10) for centre in centres[2:]]))
    candidates = kind_a + kind_b + blend + unrelated

    # the test means something: one average vector of the likes would suggest the blend
    average = unit(gallery(likes).mean(axis=0))
    by_average = np.argsort(-(gallery(candidates) @ average))[:10]
    assert all(candidates[i] in blend for i in by_average)

    profile = TasteProfile.build(liked(likes), gallery)
    assert len(profile.interests) >= 2
    picks = suggest(profile, candidates, gallery(candidates), 10, rng=rng, exploration=0.0)
    chosen = {p.artwork_id for p in picks}
    assert len(picks) == 10
    assert chosen & set(kind_a) and chosen & set(kind_b)
    assert not chosen & set(blend)
    assert not chosen & set(unrelated)
    for pick in picks:  # "because you liked" names a liked work of the same kind
        assert pick.because in likes and not pick.explored
        same_kind = kind_a if pick.artwork_id in kind_a else kind_b
        assert (pick.because in likes[:6]) == (same_kind is kind_a)


def test_a_dislike_keeps_near_copies_of_the_disliked_work_out(rng: np.random.Generator, centres: np.ndarray) -> None:
    gallery = Gallery()
    likes = gallery.add(cluster(rng, centres[0], 6))
    disliked = gallery.add(unit(centres[0] + 0.1 * unit(rng.standard_normal(DIM)))[None])[0]
    near_copies = gallery.add(unit(gallery([disliked]) + 0.1 * unit(rng.standard_normal((4, DIM)))))
    others = gallery.add(cluster(rng, centres[0], 20))
    candidates = near_copies + others

    before = TasteProfile.build(liked(likes), gallery)
    shown = {p.artwork_id for p in suggest(before, candidates, gallery(candidates), 5, rng=rng, exploration=0.0)}
    assert shown & set(near_copies)  # they are the closest to the liked kind: without the dislike they come first
    after = TasteProfile.build([*liked(likes), FeedbackEvent(disliked, -1.0)], gallery)
    shown = {p.artwork_id for p in suggest(after, candidates, gallery(candidates), 5, rng=rng, exploration=0.0)}
    assert not shown & set(near_copies)


def test_mmr_gives_a_more_varied_set_than_plain_top_k(rng: np.random.Generator, centres: np.ndarray) -> None:
    gallery = Gallery()
    likes = gallery.add(cluster(rng, centres[0], 6))
    # the liked kind holds families of near-copies (series, details of one painting)
    families = [unit(rng.standard_normal(DIM)) for _ in range(6)]
    candidates = []
    for family in families:
        heart = cluster(rng, centres[0], 1)[0]
        candidates += gallery.add(unit(heart + 0.15 * family + 0.08 * unit(rng.standard_normal((5, DIM)))))
    profile = TasteProfile.build(liked(likes), gallery)
    vectors = gallery(candidates)

    top_k = [candidates[i] for i in np.argsort(-profile.score(vectors), kind="stable")[:6]]
    plain = suggest(profile, candidates, vectors, 6, rng=rng, diversity=0.0, exploration=0.0)
    assert [p.artwork_id for p in plain] == top_k  # diversity 0 is plain top-k by taste
    varied = suggest(profile, candidates, vectors, 6, rng=rng, diversity=0.3, exploration=0.0)
    plain_similarity = mean_pairwise_similarity(gallery(top_k))
    varied_similarity = mean_pairwise_similarity(gallery([p.artwork_id for p in varied]))
    assert varied_similarity < plain_similarity - 0.05
    assert np.mean([p.score for p in varied]) > np.mean(profile.score(vectors))  # still to taste


@pytest.mark.parametrize(("exploration", "expected"), [(0.0, 0), (1.0, 8)])
def test_exploration_share(rng: np.random.Generator, centres: np.ndarray, exploration: float, expected: int) -> None:
    gallery = Gallery()
    likes = gallery.add(cluster(rng, centres[0], 6))
    candidates = gallery.add(np.concatenate([cluster(rng, centre, 10) for centre in centres]))
    profile = TasteProfile.build(liked(likes), gallery)
    picks = suggest(profile, candidates, gallery(candidates), 8, rng=rng, exploration=exploration)
    assert sum(p.explored for p in picks) == expected
    assert all((p.because is None) == p.explored for p in picks)


def test_some_exploration_explores_some_slots(centres: np.ndarray) -> None:
    rng = np.random.default_rng(0)
    gallery = Gallery()
    likes = gallery.add(cluster(rng, centres[0], 6))
    candidates = gallery.add(np.concatenate([cluster(rng, centre, 10) for centre in centres]))
    profile = TasteProfile.build(liked(likes), gallery)
    explored = [p.explored for _ in range(40) for p in suggest(profile, candidates, gallery(candidates), 5, rng=rng)]
    assert 0.02 < np.mean(explored) < 0.25  # the default is 0.1 per slot


@pytest.mark.parametrize("k", [1, 5, 20, 50])
@pytest.mark.parametrize("exploration", [0.0, 0.5])
def test_never_a_duplicate_nor_more_than_k(centres: np.ndarray, k: int, exploration: float) -> None:
    rng = np.random.default_rng(k)
    gallery = Gallery()
    likes = gallery.add(cluster(rng, centres[0], 4))
    copies = cluster(rng, centres[0], 1)
    candidates = gallery.add(np.concatenate([np.repeat(copies, 10, axis=0), cluster(rng, centres[1], 10)]))
    profile = TasteProfile.build(liked(likes), gallery)
    picks = suggest(profile, candidates, gallery(candidates), k, rng=rng, exploration=exploration)
    ids = [p.artwork_id for p in picks]
    assert len(ids) == min(k, len(candidates)) and len(set(ids)) == len(ids)
    assert set(ids) <= set(candidates)
    assert all(isinstance(p, Suggestion) and isinstance(p.artwork_id, int) for p in picks)


def test_nothing_to_suggest(rng: np.random.Generator, centres: np.ndarray) -> None:
    gallery = Gallery()
    profile = TasteProfile.build(liked(gallery.add(cluster(rng, centres[0], 3))), gallery)
    assert suggest(profile, [], np.zeros((0, DIM), dtype=np.float32), 5, rng=rng) == []
    assert suggest(profile, [1], gallery([1]), 0, rng=rng) == []
    assert diverse_sample([], np.zeros((0, DIM), dtype=np.float32), 5, rng) == []


def test_a_new_user_gets_a_diverse_sample(rng: np.random.Generator, centres: np.ndarray) -> None:
    gallery = Gallery()
    kinds = [gallery.add(cluster(rng, centre, 25, spread=0.4)) for centre in centres]
    kind_of = {i: n for n, ids in enumerate(kinds) for i in ids}
    candidates = [i for ids in kinds for i in ids]
    profile = TasteProfile.build([FeedbackEvent(kinds[0][0], -1.0)], gallery)  # dislikes only: still no taste
    picks = suggest(profile, candidates, gallery(candidates), 8, rng=rng)
    assert len(picks) == 8 and all(p.explored and p.because is None for p in picks)
    assert len({kind_of[p.artwork_id] for p in picks}) >= 7  # 8 random works would cover ~5.3 of the 8 kinds


def test_diverse_sample_spreads_over_kinds_from_a_random_start(centres: np.ndarray) -> None:
    rng = np.random.default_rng(3)
    gallery = Gallery()
    kinds = [gallery.add(cluster(rng, centre, 25, spread=0.4)) for centre in centres]
    kind_of = {i: n for n, ids in enumerate(kinds) for i in ids}
    candidates = [i for ids in kinds for i in ids]
    vectors = gallery(candidates)
    samples = [diverse_sample(candidates, vectors, 8, rng) for _ in range(20)]
    assert np.mean([len({kind_of[i] for i in sample}) for sample in samples]) >= 7.0  # random: ~5.3 of 8 kinds
    assert len({sample[0] for sample in samples}) > 10  # not the same start every time
    assert all(len(set(sample)) == 8 for sample in samples)
    everything = diverse_sample(candidates[:5], vectors[:5], 50, rng)
    assert sorted(everything) == sorted(candidates[:5])
    duplicates = diverse_sample([1, 2, 3], np.repeat(vectors[:1], 3, axis=0), 3, rng)
    assert sorted(duplicates) == [1, 2, 3]


def test_rerank_blends_relevance_with_taste(rng: np.random.Generator, centres: np.ndarray) -> None:
    gallery = Gallery()
    likes = gallery.add(cluster(rng, centres[0], 6))
    to_taste = gallery.add(cluster(rng, centres[0], 3))
    not_to_taste = gallery.add(cluster(rng, centres[1], 3))
    # the photo's search ranked them alternately, a work not to taste first
    candidates = [i for pair in zip(not_to_taste, to_taste, strict=True) for i in pair]
    relevance = [1 / 61, 1 / 62, 1 / 63, 1 / 64, 1 / 65, 1 / 66]
    profile = TasteProfile.build(liked(likes), gallery)

    picks = rerank(profile, candidates, gallery(candidates), relevance, 4)
    assert len(picks) == 4
    assert {p.artwork_id for p in picks[:2]} <= set(to_taste)  # taste lifts the less relevant works
    assert not_to_taste[0] in {p.artwork_id for p in picks}  # relevance still counts
    assert all(p.because in likes and not p.explored for p in picks)
    assert [p.score for p in picks] == sorted((p.score for p in picks), reverse=True)

    by_relevance = rerank(profile, candidates, gallery(candidates), relevance, 6, taste_weight=0.0)
    assert [p.artwork_id for p in by_relevance] == candidates
    nobody = TasteProfile.build([], gallery)
    cold = rerank(nobody, candidates, gallery(candidates), relevance, 10)
    assert [p.artwork_id for p in cold] == candidates and all(p.because is None for p in cold)


def test_mismatched_inputs_are_refused(rng: np.random.Generator, centres: np.ndarray) -> None:
    gallery = Gallery()
    ids = gallery.add(cluster(rng, centres[0], 3))
    profile = TasteProfile.build(liked(ids), gallery)
    with pytest.raises(ValueError):
        suggest(profile, ids, gallery(ids[:2]), 2, rng=rng)
    with pytest.raises(ValueError):
        rerank(profile, ids, gallery(ids), [1.0, 0.5], 2)
