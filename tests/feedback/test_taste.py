"""Taste profiles: interests from likes, dislikes, recency and "because you liked"."""

from __future__ import annotations

import numpy as np
import pytest

from feedback.taste import FeedbackEvent, TasteProfile, events_from_vote
from tests.feedback.vectors import DIM, Gallery, cluster, likes, unit


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(7)


@pytest.fixture
def centres(rng: np.random.Generator) -> np.ndarray:
    return unit(rng.standard_normal((4, DIM)))


@pytest.mark.parametrize(
    ("choice", "left_sign", "right_sign"),
    [("left", 1, -1), ("right", -1, 1), ("both", 1, 1), ("neither", -1, -1)],
)
def test_events_from_vote_directions(choice: str, left_sign: int, right_sign: int) -> None:
    events = events_from_vote([1, 2], [3, 4, 5], choice, age_days=2.0)
    by_id = {event.artwork_id: event for event in events}
    assert sorted(by_id) == [1, 2, 3, 4, 5]
    assert all(np.sign(by_id[i].value) == left_sign for i in (1, 2))
    assert all(np.sign(by_id[i].value) == right_sign for i in (3, 4, 5))
    assert all(0 < abs(event.value) < 0.5 and event.age_days == 2.0 for event in events)  # weaker than a like


def test_events_from_vote_rejects_an_unknown_choice() -> None:
    with pytest.raises(ValueError):
        events_from_vote([1], [2], "maybe", age_days=0.0)


def test_likes_in_two_separate_kinds_make_two_interests(rng: np.random.Generator, centres: np.ndarray) -> None:
    gallery = Gallery()
    a = gallery.add(cluster(rng, centres[0], 6))
    b = gallery.add(cluster(rng, centres[1], 6))
    profile = TasteProfile.build(likes(a + b), gallery)
    assert len(profile.interests) >= 2
    for interest in profile.interests:  # each interest is one kind, not a blend
        assert set(interest.artwork_ids) <= set(a) or set(interest.artwork_ids) <= set(b)
    assert {i for interest in profile.interests for i in interest.artwork_ids} == set(a + b)
    assert sum(interest.weight for interest in profile.interests) == pytest.approx(1.0)
    queries = profile.query_vectors()
    assert queries.shape == (len(profile.interests), DIM) and queries.dtype == np.float32
    assert np.allclose(np.linalg.norm(queries, axis=1), 1.0, atol=1e-5)


def test_likes_of_one_kind_stay_one_interest(rng: np.random.Generator, centres: np.ndarray) -> None:
    gallery = Gallery()
    a = gallery.add(cluster(rng, centres[0], 12))
    profile = TasteProfile.build(likes(a), gallery)
    assert len(profile.interests) == 1


def test_few_likes_give_at_most_one_interest_per_three(rng: np.random.Generator, centres: np.ndarray) -> None:
    gallery = Gallery()
    ids = gallery.add(np.stack([cluster(rng, centre, 1)[0] for centre in centres[:3]]))
    assert len(TasteProfile.build(likes(ids), gallery).interests) == 1
    assert len(TasteProfile.build(likes(ids), gallery, max_interests=1).interests) == 1


def test_dislike_pushes_near_duplicates_down(rng: np.random.Generator, centres: np.ndarray) -> None:
    gallery = Gallery()
    liked = gallery.add(cluster(rng, centres[0], 6))
    others = gallery.add(cluster(rng, centres[0], 10))
    disliked = gallery.add(cluster(rng, centres[0], 1))[0]
    near_copies = gallery.add(unit(gallery([disliked]) + 0.05 * unit(rng.standard_normal((3, DIM)))))
    before = TasteProfile.build(likes(liked), gallery)
    after = TasteProfile.build([*likes(liked), FeedbackEvent(disliked, -1.0)], gallery)
    assert after.disliked_ids == [disliked] and disliked not in after.liked_ids
    drop = before.score(gallery(near_copies)) - after.score(gallery(near_copies))
    drop_elsewhere = before.score(gallery(others)) - after.score(gallery(others))
    assert drop.min() > 0.2 and drop.min() > 3 * drop_elsewhere.max()
    assert after.score(gallery(near_copies)).max() < after.score(gallery(others)).min()


def test_a_chance_like_among_dislikes_of_its_kind_stops_steering(rng: np.random.Generator, centres: np.ndarray) -> None:
    gallery = Gallery()
    loved = gallery.add(cluster(rng, centres[0], 6))
    chance = gallery.add(cluster(rng, centres[1], 1))
    rejected = gallery.add(cluster(rng, centres[1], 4))
    unknown = gallery.add(cluster(rng, centres[2], 10))
    of_chance_kind = gallery.add(cluster(rng, centres[1], 10))
    events = [*likes(loved), *likes(chance), *(FeedbackEvent(i, -1.0) for i in rejected)]
    profile = TasteProfile.build(events, gallery)
    assert profile.score(gallery(of_chance_kind)).mean() < profile.score(gallery(unknown)).mean()
    assert profile.score(gallery(of_chance_kind)).mean() < profile.score(gallery(loved)).mean()


def test_dislikes_alone_are_no_taste(rng: np.random.Generator, centres: np.ndarray) -> None:
    gallery = Gallery()
    disliked = gallery.add(cluster(rng, centres[0], 3))
    profile = TasteProfile.build([FeedbackEvent(i, -1.0) for i in disliked], gallery)
    assert profile.is_empty and profile.liked_ids == [] and sorted(profile.disliked_ids) == disliked
    assert profile.because(gallery(disliked)) == [None, None, None]
    assert profile.query_vectors().shape[0] == 0
    assert TasteProfile.build([], gallery).is_empty


def test_recent_likes_outweigh_old_ones(rng: np.random.Generator, centres: np.ndarray) -> None:
    gallery = Gallery()
    old = gallery.add(cluster(rng, centres[0], 6))
    recent = gallery.add(cluster(rng, centres[1], 6))
    old_kind = gallery.add(cluster(rng, centres[0], 20))
    recent_kind = gallery.add(cluster(rng, centres[1], 20))
    profile = TasteProfile.build([*likes(old, age_days=180), *likes(recent, age_days=1)], gallery)
    assert set(profile.interests[0].artwork_ids) <= set(recent)
    assert profile.interests[0].weight > 0.9
    candidates = old_kind + recent_kind
    top = np.argsort(-profile.score(gallery(candidates)))[:10]
    assert all(candidates[i] in recent_kind for i in top)


def test_feedback_on_one_work_is_summed(rng: np.random.Generator, centres: np.ndarray) -> None:
    gallery = Gallery()
    liked = gallery.add(cluster(rng, centres[0], 3))
    changed = liked[0]
    events = [*likes(liked, age_days=10), FeedbackEvent(changed, -1.0, age_days=0)]
    profile = TasteProfile.build(events, gallery)
    assert changed in profile.disliked_ids and changed not in profile.liked_ids
    voted = TasteProfile.build(events_from_vote(liked[:2], [], "left", age_days=0), gallery)
    assert sorted(voted.liked_ids) == sorted(liked[:2])  # weak, but still positive evidence


def test_because_names_the_nearest_liked_work(rng: np.random.Generator, centres: np.ndarray) -> None:
    gallery = Gallery()
    liked = gallery.add(np.stack([cluster(rng, centre, 1, spread=0.3)[0] for centre in centres[:3]]))
    profile = TasteProfile.build(likes(liked), gallery)
    candidates = np.concatenate([cluster(rng, gallery([i])[0], 2, spread=0.3) for i in reversed(liked)])
    assert profile.because(candidates) == [liked[2], liked[2], liked[1], liked[1], liked[0], liked[0]]
    assert profile.because(candidates[:0]) == []


def test_because_names_only_works_the_user_liked_themselves(rng: np.random.Generator, centres: np.ndarray) -> None:
    """A work that is in the profile only because its set won a vote is never the "because you liked" one."""
    gallery = Gallery()
    liked = gallery.add(cluster(rng, centres[0], 1, spread=0.3))
    voted = gallery.add(cluster(rng, centres[1], 2, spread=0.3))
    events = [*likes(liked), *events_from_vote(voted, [], "left", age_days=0.0)]
    profile = TasteProfile.build(events, gallery)
    assert set(voted) <= set(profile.liked_ids)  # the vote still shapes the taste...
    near_voted = cluster(rng, gallery([voted[0]])[0], 3, spread=0.1)
    assert profile.because(near_voted) == [liked[0]] * 3  # ...but only a real like explains a suggestion
    only_votes = TasteProfile.build(events_from_vote(voted, [], "left", age_days=0.0), gallery)
    assert only_votes.because(near_voted) == [None] * 3


def test_scores_follow_the_rows(rng: np.random.Generator, centres: np.ndarray) -> None:
    gallery = Gallery()
    liked = gallery.add(cluster(rng, centres[0], 4))
    profile = TasteProfile.build(likes(liked), gallery)
    near, far = cluster(rng, centres[0], 5), cluster(rng, centres[3], 5)
    scores = profile.score(np.concatenate([near, far]))
    assert scores.shape == (10,) and scores.dtype == np.float32
    assert scores[:5].min() > scores[5:].max()
    assert profile.score(near[:0]).shape == (0,)
