"""Routes that need no photo: suggestions from a user's feedback, and the onboarding sample for new users."""

from __future__ import annotations

from fastapi import APIRouter

from feedback.suggest import Suggestion
from inference import contract
from inference.deps import SECURED, PipelineDep
from inference.gallery_store import Gallery, Hit
from inference.schemas import OnboardingRequest, SuggestRequest, to_events
from inference.settings import InferenceSettings
from inference.suggestions import onboarding, suggest_for


def taste_router(settings: InferenceSettings) -> APIRouter:
    router = APIRouter(tags=["taste"], dependencies=SECURED)

    @router.post("/v1/suggest", response_model_exclude_unset=True)
    async def suggest(pipeline: PipelineDep, body: SuggestRequest) -> contract.SuggestResponse:
        """Works for this user from their feedback alone: taste-ranked, varied, a few exploration picks."""
        gallery = pipeline.gallery
        result = await pipeline.rank(
            lambda: suggest_for(
                gallery,
                to_events(body.feedback, len(gallery)),
                body.exclude,
                body.k or settings.top_k,
                exploration=body.exploration,
                seed=body.seed,
            )
        )
        return contract.SuggestResponse(
            suggestions=[_suggestion(gallery, suggestion) for suggestion in result.suggestions],
            profile=contract.ProfileSummary(
                interests=len(result.profile.query_vectors()), likes=len(result.profile.liked_ids)
            ),
        )

    @router.post("/v1/onboarding", response_model_exclude_unset=True)
    async def onboard(pipeline: PipelineDep, body: OnboardingRequest) -> contract.OnboardingResponse:
        """Works spread over the gallery, for a new user to pick what they like."""
        gallery = pipeline.gallery
        ids = await pipeline.rank(lambda: onboarding(gallery, body.exclude, body.k or settings.top_k, seed=body.seed))
        return contract.OnboardingResponse(
            artworks=[contract.Artwork.model_validate({"artwork_id": i, **gallery.artworks[i].public()}) for i in ids]
        )

    return router


def _suggestion(gallery: Gallery, suggestion: Suggestion) -> contract.Suggestion:
    because = None
    if suggestion.because is not None:
        liked = gallery.artworks[suggestion.because]
        because = contract.LikedWork(artwork_id=liked.id, title=liked.title, artist=liked.artist)
    hit = Hit(gallery.artworks[suggestion.artwork_id], suggestion.score).to_dict()
    return contract.Suggestion.model_validate({**hit, "because": because, "explored": suggestion.explored})
