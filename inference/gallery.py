"""Build a gallery from a folder of images with the service's models.

    python -m inference.gallery build --images DIR [--metadata CSV] --out DIR [--batch-size N]

Models come from the same `INFERENCE_*` settings as the service (or `.env`), so the gallery matches the
service that will serve it; the flags override them. Interrupt at any time; rerun the same command to resume.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from tqdm.contrib.logging import logging_redirect_tqdm

from inference.settings import ModelSettings

# ModelSettings fields settable by a flag of the same name (help text names the variable it overrides).
MODEL_FLAGS = {
    "clip_arch": "open_clip architecture (INFERENCE_CLIP_ARCH)",
    "clip_weights": "local open_clip checkpoint file (INFERENCE_CLIP_WEIGHTS)",
    "clip_config": "JSON config of a custom open_clip architecture (INFERENCE_CLIP_CONFIG)",
    "text_model": "local sentence-transformers directory (INFERENCE_TEXT_MODEL)",
    "llava_path": "local LLaVA-1.6 checkpoint directory (INFERENCE_LLAVA_PATH)",
    "max_new_tokens": "description length cap (INFERENCE_MAX_NEW_TOKENS)",
}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m inference.gallery", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="describe and embed a folder of images into a gallery directory")
    build.add_argument(
        "--images", type=Path, required=True, help="folder of JPEG/PNG/WebP images (searched recursively)"
    )
    build.add_argument("--metadata", type=Path, help="CSV with columns file,title,artist,year,style,genre")
    build.add_argument("--out", type=Path, required=True, help="gallery directory to write")
    build.add_argument("--batch-size", type=int, default=8, help="images per model call (default 8)")
    for name, help_text in MODEL_FLAGS.items():
        build.add_argument(f"--{name.replace('_', '-')}", dest=name, help=help_text)
    build.add_argument("--quantization", choices=["auto", "nf4", "none"], help="INFERENCE_QUANTIZATION")
    build.add_argument("--device", choices=["auto", "cpu", "cuda"], help="INFERENCE_DEVICE")
    build.add_argument("--max-image-pixels", type=int, default=40_000_000, help="skip larger images (default 40M)")
    build.add_argument(
        "--identify-calibration",
        type=int,
        default=None,
        metavar="N",
        help="synthetic photos of works outside the gallery that calibrate the identification threshold "
        "(default 200; about a second each)",
    )
    build.add_argument("--no-progress", action="store_true", help="no progress bar (logs, CI)")
    build.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"])
    return parser.parse_args(argv)


def settings_from(args: argparse.Namespace) -> ModelSettings:
    overrides: dict[str, Any] = {
        name: getattr(args, name)
        for name in (*MODEL_FLAGS, "quantization", "device")
        if getattr(args, name) is not None
    }
    try:
        return ModelSettings(**overrides)
    except ValidationError as exc:
        raise SystemExit(f"invalid model settings:\n{exc}") from None


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # models are local paths; never reach for the hub
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    settings = settings_from(args)

    from inference.factory import build_models  # torch & co only once the arguments are fine
    from inference.gallery_build import build_gallery

    if args.identify_calibration is not None and args.identify_calibration < 0:
        raise SystemExit("--identify-calibration must be 0 or more")
    calibration = {} if args.identify_calibration is None else {"identify_calibration": args.identify_calibration}

    try:
        models = build_models(settings)
    except (ValueError, FileNotFoundError) as exc:
        raise SystemExit(f"cannot set up the models: {exc}") from None
    try:
        with logging_redirect_tqdm():  # warnings about skipped files print above the bar, not through it
            report = build_gallery(
                args.images,
                args.out,
                models,
                metadata_csv=args.metadata,
                batch_size=args.batch_size,
                progress=not args.no_progress,
                max_image_pixels=args.max_image_pixels,
                **calibration,
            )
    except KeyboardInterrupt:
        sys.stderr.write(f"\ninterrupted: finished batches are kept in {args.out}/.parts; rerun to resume\n")
        return 130
    except (ValueError, FileNotFoundError) as exc:
        raise SystemExit(f"gallery build failed: {exc}") from None
    print(report.summary())  # noqa: T201 - the command's output
    return 0


if __name__ == "__main__":
    sys.exit(main())
