"""Repositories: all SQL of the bot, one class per aggregate, reached through the `Repo` facade."""

from storage.repositories.analyses import SIDES, AnalysesRepository, AnalysisView, ShownSet, Side
from storage.repositories.artworks import ArtworkRecord, ArtworksRepository
from storage.repositories.likes import LIKE_VALUES, LikesRepository
from storage.repositories.repo import Repo
from storage.repositories.users import UserRow, UsersRepository
from storage.repositories.votes import CHOICES, Choice, VotesRepository

__all__ = [
    "CHOICES",
    "LIKE_VALUES",
    "SIDES",
    "AnalysesRepository",
    "AnalysisView",
    "ArtworkRecord",
    "ArtworksRepository",
    "Choice",
    "LikesRepository",
    "Repo",
    "ShownSet",
    "Side",
    "UserRow",
    "UsersRepository",
    "VotesRepository",
]
