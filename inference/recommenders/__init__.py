"""The arena's recommenders. To add one: write a `Recommender` subclass, register an instance below."""

from inference.recommenders.base import Feature, MissingFeature, NeedsProfile, PersonalHit, Query, Recommender
from inference.recommenders.for_you import ForYou
from inference.recommenders.fusion import Fused
from inference.recommenders.registry import REGISTRY, UnknownRecommender, get, names, register, required_indices
from inference.recommenders.searches import ByLook, ByMeaning, ByTextClip
from inference.recommenders.words import WordsLook, WordsMeaning

register(ByLook())
register(ByMeaning())
register(ByTextClip())
register(Fused())
register(ForYou())
register(WordsLook())
register(WordsMeaning())

__all__ = [
    "REGISTRY",
    "Feature",
    "MissingFeature",
    "NeedsProfile",
    "PersonalHit",
    "Query",
    "Recommender",
    "UnknownRecommender",
    "get",
    "names",
    "register",
    "required_indices",
]
