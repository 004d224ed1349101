"""Repositories: all SQL of the bot, one class per aggregate, reached through the `Repo` facade."""

from storage.repositories.analyses import (
    SIDES,
    AnalysesRepository,
    AnalysisKind,
    AnalysisView,
    Mode,
    Recognised,
    ShownSet,
    Side,
)
from storage.repositories.arena import ArenaRepository, InterleavedRecord
from storage.repositories.artworks import ArtworkRecord, ArtworksRepository
from storage.repositories.daily import DailyRepository, DailySubscription, next_run
from storage.repositories.history import HistoryRepository, LikeEntry, VoteEntry
from storage.repositories.likes import LIKE_VALUES, LikedPage, LikedWork, LikesRepository
from storage.repositories.repo import Repo
from storage.repositories.suggestions import SuggestionKind, SuggestionsRepository, SuggestionView
from storage.repositories.users import ForgottenUser, UserRow, UsersRepository
from storage.repositories.votes import CHOICES, Choice, VotesRepository

__all__ = [
    "ArenaRepository",
    "DailyRepository",
    "DailySubscription",
    "ForgottenUser",
    "HistoryRepository",
    "InterleavedRecord",
    "LikeEntry",
    "LikedPage",
    "LikedWork",
    "Mode",
    "SuggestionKind",
    "SuggestionView",
    "SuggestionsRepository",
    "VoteEntry",
    "next_run",
    "CHOICES",
    "LIKE_VALUES",
    "SIDES",
    "AnalysesRepository",
    "AnalysisKind",
    "AnalysisView",
    "ArtworkRecord",
    "ArtworksRepository",
    "Choice",
    "LikesRepository",
    "Repo",
    "Recognised",
    "ShownSet",
    "Side",
    "UserRow",
    "UsersRepository",
    "VotesRepository",
]
