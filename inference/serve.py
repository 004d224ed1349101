"""Run the inference service: `python -m inference.serve --gallery DIR --port N [--host 127.0.0.1]`.

Settings come from `INFERENCE_*` variables (or `.env`); the flags given here override them. A gallery built
with other models than the configured ones makes the process exit at start, naming what differs.
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import uvicorn
from pydantic import ValidationError

from inference.api import create_app
from inference.models_fetch import ModelsMissing, ensure_models
from inference.settings import InferenceSettings


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m inference.serve", description=__doc__.splitlines()[0])
    parser.add_argument("--gallery", type=Path, help="gallery directory (overrides INFERENCE_GALLERY_DIR)")
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], help="overrides INFERENCE_DEVICE")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    return parser.parse_args(argv)


def settings_from(args: argparse.Namespace) -> InferenceSettings:
    overrides: dict[str, Any] = {}
    if args.gallery is not None:
        overrides["gallery_dir"] = args.gallery
    if args.device is not None:
        overrides["device"] = args.device
    try:
        return InferenceSettings(**overrides)
    except ValidationError as exc:  # e.g. INFERENCE_TOKEN unset: a clear message, not a traceback
        raise SystemExit(f"invalid inference settings:\n{exc}") from None


def uvicorn_options(settings: InferenceSettings) -> dict[str, Any]:
    """uvicorn's own limits: idle kept-alive sockets are closed, and connections beyond the cap get 503 at once
    (the body-read deadline itself is `middleware.BodyTimeout`)."""
    return {"limit_concurrency": settings.max_connections, "timeout_keep_alive": settings.keep_alive_s}


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:  # hub ids become local folders here, downloaded on first start (README, Models)
        settings = ensure_models(settings_from(args))
    except ModelsMissing as exc:
        raise SystemExit(str(exc)) from None
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # from here on models are local paths; never reach for the hub
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    app = create_app(settings)
    # Our AccessLog writes one line per request with timings: uvicorn's own access log would double it.
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=False,
        lifespan="on",
        **uvicorn_options(settings),
    )


if __name__ == "__main__":
    main()
