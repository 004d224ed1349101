"""Build a gallery from a folder of images with the service's models, add works to it or remove them.

    python -m inference.gallery build --images DIR [--metadata CSV] --out DIR [--batch-size N]
    python -m inference.gallery build --source DIR|CSV|PARQUET --out DIR [--dedupe keep-one]
    python -m inference.gallery add --gallery DIR --source DIR|CSV|PARQUET
    python -m inference.gallery remove --gallery DIR --ids 3,5 | --files a.jpg
    python -m inference.gallery bootstrap --out DIR [--source DIR|CSV|PARQUET] [--museum-works N]

Models come from the same `INFERENCE_*` settings as the service (or `.env`), so the gallery matches the
service that will serve it; the flags override them. Interrupt at any time; rerun the same command to resume.
`bootstrap` builds a default gallery when DIR holds none (`inference.gallery_bootstrap`: `GALLERY_*` settings).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from tqdm.contrib.logging import logging_redirect_tqdm

from inference.settings import ModelSettings

if TYPE_CHECKING:
    from inference.duplicates import DedupeOptions
    from inference.gallery_build import BuildReport
    from inference.ingest import Ingested
    from inference.models import Models

# ModelSettings fields settable by a flag of the same name (help text names the variable it overrides).
MODEL_FLAGS = {
    "clip_arch": "open_clip architecture (INFERENCE_CLIP_ARCH)",
    "clip_weights": "local open_clip checkpoint file (INFERENCE_CLIP_WEIGHTS)",
    "clip_config": "JSON config of a custom open_clip architecture (INFERENCE_CLIP_CONFIG)",
    "clip_tokenizer": "local directory of the CLIP text tower's tokenizer and config (INFERENCE_CLIP_TOKENIZER)",
    "text_model": "local sentence-transformers directory (INFERENCE_TEXT_MODEL)",
    "llava_path": "local LLaVA-1.6 checkpoint directory (INFERENCE_LLAVA_PATH)",
    "smolvlm_path": "SmolVLM checkpoint directory or hub id, for INFERENCE_DESCRIBER=smolvlm (INFERENCE_SMOLVLM_PATH)",
    "max_new_tokens": "description length cap (INFERENCE_MAX_NEW_TOKENS)",
}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m inference.gallery", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="describe and embed a folder of images into a gallery directory")
    where = build.add_mutually_exclusive_group(required=True)
    where.add_argument("--images", type=Path, help="folder of JPEG/PNG/WebP images (searched recursively)")
    where.add_argument("--source", type=Path, help=SOURCE_HELP)
    build.add_argument("--out", type=Path, required=True, help="gallery directory to write")
    build.add_argument(
        "--identify-calibration",
        type=int,
        default=None,
        metavar="N",
        help="synthetic photos of works outside the gallery that calibrate the identification threshold "
        "(default 200; about a second each)",
    )
    _source_flags(build)
    _model_flags(build)

    add = commands.add_parser("add", help="add works to a built gallery without rebuilding it")
    add.add_argument("--gallery", type=Path, required=True, help="the built gallery directory")
    add.add_argument("--source", type=Path, required=True, help=SOURCE_HELP)
    _source_flags(add)
    _model_flags(add)

    remove = commands.add_parser("remove", help="remove works from a gallery (their ids are never reused)")
    remove.add_argument("--gallery", type=Path, required=True, help="the built gallery directory")
    remove.add_argument("--ids", default="", help="artwork ids, comma-separated: 3,5")
    remove.add_argument("--files", nargs="+", default=[], help="the works' files (as in artworks.jsonl, or bare names)")
    remove.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"])

    bootstrap = commands.add_parser(
        "bootstrap",
        help="build a default gallery in --out unless one is there: from GALLERY_SOURCE, or public-domain "
        "paintings fetched from a museum's open-access API",
    )
    bootstrap.add_argument("--out", type=Path, required=True, help="gallery directory (left alone when built)")
    bootstrap.add_argument("--source", type=Path, help=f"GALLERY_SOURCE: {SOURCE_HELP}; unset fetches from a museum")
    bootstrap.add_argument("--museum-works", type=int, help="GALLERY_MUSEUM_WORKS: how many paintings (default 2000)")
    bootstrap.add_argument("--museum-api-url", help="GALLERY_MUSEUM_API_URL (default https://api.artic.edu/api/v1)")
    bootstrap.add_argument("--museum-image-url", help="GALLERY_MUSEUM_IMAGE_URL: IIIF base (default: the API's)")
    bootstrap.add_argument("--museum-contact", help="GALLERY_MUSEUM_CONTACT: e-mail or URL for the User-Agent")
    bootstrap.add_argument("--identify-calibration", type=int, default=None, metavar="N", help="as for build")
    _source_flags(bootstrap, from_settings=True)
    _model_flags(bootstrap)
    return parser.parse_args(argv)


SOURCE_HELP = (
    "a folder tree (Style/artist-name_title-1889.jpg, as WikiArt dumps come), or a CSV/Parquet file with a "
    "'path' (relative to the table's folder) or 'url' column and optional title,artist,year,style,genre"
)


def _source_flags(command: argparse.ArgumentParser, *, from_settings: bool = False) -> None:
    """`from_settings`: the fetch flags default to the `GALLERY_*` settings (bootstrap) instead of constants."""
    command.add_argument(
        "--metadata",
        type=Path,
        help="CSV with columns file,title,artist,year,style,genre" + (" (GALLERY_METADATA)" if from_settings else ""),
    )
    command.add_argument(
        "--dedupe",
        choices=["report", "keep-one"],
        default="report",
        help="near-duplicate clusters: only list them in duplicates.csv (default), or keep one work per cluster",
    )
    command.add_argument(
        "--near-threshold", type=float, default=0.95, help="CLIP image cosine of near copies (default 0.95)"
    )
    command.add_argument(
        "--hash-distance",
        type=int,
        default=10,
        help="perceptual-hash bits (of 64) within which images are near copies (default 10; -1: off)",
    )
    if from_settings:
        command.add_argument(
            "--fetch-delay", type=float, help="GALLERY_FETCH_DELAY: seconds between requests to one host (default 1)"
        )
        command.add_argument(
            "--max-download-mb", type=float, help="GALLERY_MAX_IMAGE_MB: abandon images above this size (default 5)"
        )
        return
    command.add_argument(
        "--fetch-delay", type=float, default=1.0, help="seconds between requests to one host (default 1)"
    )
    command.add_argument(
        "--max-download-mb", type=float, default=30.0, help="abandon downloads above this size (default 30)"
    )


def _model_flags(command: argparse.ArgumentParser) -> None:
    command.add_argument("--batch-size", type=int, default=8, help="images per model call (default 8)")
    for name, help_text in MODEL_FLAGS.items():
        command.add_argument(f"--{name.replace('_', '-')}", dest=name, help=help_text)
    command.add_argument("--quantization", choices=["auto", "nf4", "none"], help="INFERENCE_QUANTIZATION")
    command.add_argument("--device", choices=["auto", "cpu", "cuda"], help="INFERENCE_DEVICE")
    command.add_argument("--max-image-pixels", type=int, default=40_000_000, help="skip larger images (default 40M)")
    command.add_argument("--no-progress", action="store_true", help="no progress bar (logs, CI)")
    command.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"])


def settings_from(args: argparse.Namespace) -> ModelSettings:
    overrides: dict[str, Any] = {
        name: getattr(args, name)
        for name in (*MODEL_FLAGS, "quantization", "device")
        if getattr(args, name) is not None
    }
    from inference.models_fetch import ModelsMissing, ensure_models

    try:
        return ensure_models(ModelSettings(**overrides), translations=False)  # a build writes English only
    except ValidationError as exc:
        raise SystemExit(f"invalid model settings:\n{exc}") from None
    except ModelsMissing as exc:
        raise SystemExit(str(exc)) from None


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    if args.command == "remove":
        return _remove(args)
    if getattr(args, "identify_calibration", None) is not None and args.identify_calibration < 0:
        raise SystemExit("--identify-calibration must be 0 or more")
    if args.command == "bootstrap":
        return _bootstrap(args)

    from inference.gallery_store import GalleryMismatchError

    models = _load_models(args)
    out = args.out if args.command == "build" else args.gallery
    try:
        with logging_redirect_tqdm():  # warnings about skipped files print above the bar, not through it
            report = _build(args, models) if args.command == "build" else _add(args, models)
    except KeyboardInterrupt:
        sys.stderr.write(f"\ninterrupted: finished batches are kept in {out}; rerun the same command to resume\n")
        return 130
    except (ValueError, FileNotFoundError, GalleryMismatchError) as exc:
        raise SystemExit(f"gallery {args.command} failed: {exc}") from None
    print(report.summary())  # noqa: T201 - the command's output
    return 0


def _load_models(args: argparse.Namespace) -> Models:
    settings = settings_from(args)  # hub ids become local folders, downloaded when missing (README, Models)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # from here on models are local paths; never reach for the hub
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from inference.factory import build_models  # torch & co only once the arguments are fine

    try:
        return build_models(settings)
    except (ValueError, FileNotFoundError) as exc:
        raise SystemExit(f"cannot set up the models: {exc}") from None


def _ingested(args: argparse.Namespace, out: Path) -> Ingested:
    from inference.ingest import ingest

    options = {"per_host_delay": args.fetch_delay, "max_bytes": int(args.max_download_mb * 1024 * 1024)}
    return ingest(args.source, out, metadata_csv=args.metadata, progress=not args.no_progress, fetch_options=options)


def _dedupe(args: argparse.Namespace) -> DedupeOptions:
    from inference.duplicates import DedupeOptions

    return DedupeOptions(
        threshold=args.near_threshold, hash_distance=args.hash_distance, keep_one=args.dedupe == "keep-one"
    )


def _build_options(args: argparse.Namespace) -> dict[str, Any]:
    """`build_gallery` keyword arguments from the flags that `build` and `bootstrap` share."""
    options: dict[str, Any] = {
        "batch_size": args.batch_size,
        "max_image_pixels": args.max_image_pixels,
        "dedupe": _dedupe(args),
    }
    if args.identify_calibration is not None:
        options["identify_calibration"] = args.identify_calibration
    return options


def _build(args: argparse.Namespace, models: Models) -> BuildReport:
    from inference.gallery_build import build_gallery

    common: dict[str, Any] = {**_build_options(args), "progress": not args.no_progress}
    if args.images is not None:
        return build_gallery(args.images, args.out, models, metadata_csv=args.metadata, **common)
    ingested = _ingested(args, args.out)
    report = build_gallery(None, args.out, models, sources=ingested.items, **common)
    report.skipped.extend(ingested.failures)
    return report


def _add(args: argparse.Namespace, models: Models) -> BuildReport:
    from inference.gallery_edit import add_to_gallery

    ingested = _ingested(args, args.gallery)
    report = add_to_gallery(
        args.gallery,
        ingested.items,
        models,
        batch_size=args.batch_size,
        progress=not args.no_progress,
        max_image_pixels=args.max_image_pixels,
        dedupe=_dedupe(args),
    )
    report.skipped.extend(ingested.failures)
    return report


BOOTSTRAP_FLAGS = {
    "source": "source",
    "metadata": "metadata",
    "museum_works": "museum_works",
    "museum_api_url": "museum_api_url",
    "museum_image_url": "museum_image_url",
    "museum_contact": "museum_contact",
    "fetch_delay": "fetch_delay",
    "max_download_mb": "max_image_mb",
}
"""bootstrap flag -> `BootstrapSettings` field it overrides."""


def _bootstrap(args: argparse.Namespace) -> int:
    from inference.gallery_bootstrap import EX_TEMPFAIL, BootstrapSettings, FetchIncomplete, bootstrap, is_built
    from inference.museum import MuseumError

    if is_built(args.out):  # before settings and models: a built gallery costs nothing, whatever they say
        print(f"gallery {args.out} is already built (manifest.json present): nothing fetched or built")  # noqa: T201
        return 0
    overrides = {
        field: getattr(args, flag) for flag, field in BOOTSTRAP_FLAGS.items() if getattr(args, flag) is not None
    }
    try:
        settings = BootstrapSettings(**overrides)
    except ValidationError as exc:
        raise SystemExit(f"invalid gallery settings:\n{exc}") from None
    from inference.gallery_store import GalleryMismatchError

    try:
        with logging_redirect_tqdm():
            report = bootstrap(
                args.out,
                settings,
                lambda: _load_models(args),
                progress=not args.no_progress,
                build_options=_build_options(args),
            )
    except KeyboardInterrupt:
        sys.stderr.write(f"\ninterrupted: downloads and finished batches are kept in {args.out}; rerun to resume\n")
        return 130
    except FetchIncomplete as exc:
        sys.stderr.write(f"gallery bootstrap: {exc}\n")
        return EX_TEMPFAIL
    except MuseumError as exc:
        raise SystemExit(f"gallery bootstrap failed: the museum could not be listed: {exc}") from None
    except (ValueError, FileNotFoundError, GalleryMismatchError) as exc:
        raise SystemExit(f"gallery bootstrap failed: {exc}") from None
    if report is not None:
        print(report.summary())  # noqa: T201 - the command's output
    return 0


def _remove(args: argparse.Namespace) -> int:
    from inference.gallery_edit import remove_from_gallery
    from inference.gallery_store import GalleryMismatchError

    try:
        ids = [int(part) for part in args.ids.replace(" ", "").split(",") if part]
    except ValueError:
        raise SystemExit(f"--ids takes comma-separated numbers, not {args.ids!r}") from None
    files = [name for value in args.files for name in value.split(",") if name]
    if not ids and not files:
        raise SystemExit("name the works to remove with --ids or --files")
    try:
        report = remove_from_gallery(args.gallery, ids, files)
    except (FileNotFoundError, GalleryMismatchError) as exc:
        raise SystemExit(f"gallery remove failed: {exc}") from None
    print(report.summary())  # noqa: T201 - the command's output
    return 1 if report.unknown and not report.removed else 0


if __name__ == "__main__":
    sys.exit(main())
