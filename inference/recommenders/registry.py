"""Recommenders by name: what the API lists, what a request may name, and which indices the gallery must have."""

from __future__ import annotations

from collections.abc import Iterable

from inference.recommenders.base import Recommender

REGISTRY: dict[str, Recommender] = {}


class UnknownRecommender(KeyError):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        return f"unknown recommender {self.name!r}; known: {', '.join(names())}"


def register(recommender: Recommender) -> Recommender:
    if recommender.name in REGISTRY:
        raise ValueError(f"recommender {recommender.name!r} is registered twice")
    REGISTRY[recommender.name] = recommender
    return recommender


def get(name: str) -> Recommender:
    try:
        return REGISTRY[name]
    except KeyError:
        raise UnknownRecommender(name) from None


def names() -> list[str]:
    return list(REGISTRY)


def required_indices(recommenders: Iterable[Recommender] | None = None) -> dict[str, list[str]]:
    """Gallery index name -> the recommenders that search it (all registered ones by default)."""
    needed: dict[str, list[str]] = {}
    for recommender in REGISTRY.values() if recommenders is None else recommenders:
        for index in sorted(recommender.indices):
            needed.setdefault(index, []).append(recommender.name)
    return needed
