"""What every route module shares: the pipeline of the running app and the documented auth scheme."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPBearer

from inference.pipeline import Pipeline

# Only documents the scheme in /docs; BearerAuth checks the token before any body is read.
_bearer_doc = HTTPBearer(auto_error=False, description="INFERENCE_TOKEN")
SECURED = [Security(_bearer_doc)]


def _pipeline(request: Request) -> Pipeline:
    return request.app.state.pipeline


PipelineDep = Annotated[Pipeline, Depends(_pipeline)]
