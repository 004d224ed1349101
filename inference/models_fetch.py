"""Bring the configured models onto the disk before the service loads them: `python -m inference.models_fetch`.

Every model is a setting holding a local path or a hub id. A local path that exists is used as it is. A hub id is
looked for in `INFERENCE_MODELS_DIR/<owner>/<name>` (complete when our marker file lists its files), then in the
Hugging Face cache, and only then downloaded with `huggingface_hub.snapshot_download` at the revision pinned in
`INFERENCE_MODEL_REVISIONS`: resumable (partial files are kept and continued with a Range request) and checked
against the sizes the hub announces. `INFERENCE_OFFLINE=1` (or `HF_HUB_OFFLINE=1`) forbids downloads: the start then
fails naming every missing model and where it was expected.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError

from inference.settings import ModelSettings

logger = logging.getLogger(__name__)

MARKER = ".artmatch-model.json"
"""Written into a model's folder after a complete download: its presence (with its files) means nothing to fetch."""

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
SKIP_FORMATS = [
    "*.h5",
    "*.ot",
    "*.msgpack",
    "*.onnx",
    "*.tflite",
    "onnx/*",
    "openvino/*",
    "coreml/*",
    "tf_model*",
    "flax_model*",
    "rust_model*",
]
"""Other frameworks' copies of the same weights: the service loads PyTorch (or safetensors) files only."""
TOKENIZER_FILES = [
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "sentencepiece.bpe.model",
]

S = TypeVar("S", bound=ModelSettings)


class ModelsMissing(RuntimeError):
    """Models that are neither on the disk nor allowed to be downloaded."""


@dataclass(frozen=True)
class HubModel:
    """One model setting that names a hub repository."""

    setting: str
    """The environment variable, as the operator knows it."""
    repo_id: str
    revision: str
    allow: list[str] | None = None
    file: str | None = None
    """Within the repository, the file the setting means (the CLIP checkpoint); None means the folder."""

    def local_dir(self, models_dir: Path) -> Path:
        return models_dir / self.repo_id

    def value(self, folder: Path) -> str:
        return str(folder / self.file) if self.file else str(folder)


def is_hub_id(value: str | None) -> bool:
    """`owner/name` that is not an existing path: a local path always wins."""
    return value is not None and HUB_ID.match(value) is not None and not Path(value).exists()


def hub_models(settings: ModelSettings, *, translations: bool = True) -> dict[str, HubModel]:
    """The settings that name hub repositories, keyed by settings field (`translation_models.ru` for a language)."""

    def revision(repo_id: str) -> str:
        return settings.model_revisions.get(repo_id, "main")

    found: dict[str, HubModel] = {}
    candidates: list[tuple[str, str, str | None, list[str] | None, str | None]] = [
        ("clip_weights", "INFERENCE_CLIP_WEIGHTS", settings.clip_weights, [settings.clip_weights_file], "file"),
        ("clip_tokenizer", "INFERENCE_CLIP_TOKENIZER", settings.clip_tokenizer, TOKENIZER_FILES, None),
        ("text_model", "INFERENCE_TEXT_MODEL", settings.text_model, None, None),
        # Only the chosen describer's checkpoint: a CPU machine never downloads LLaVA's 15 GB; a vLLM server loads
        # its own.
        (
            "llava_path",
            "INFERENCE_LLAVA_PATH",
            settings.llava_path if settings.describer == "llava" else None,
            None,
            None,
        ),
        (
            "smolvlm_path",
            "INFERENCE_SMOLVLM_PATH",
            settings.smolvlm_path if settings.describer == "smolvlm" else None,
            None,
            None,
        ),
    ]
    for language, model in settings.translation_models.items() if translations else ():
        candidates.append((f"translation_models.{language}", "INFERENCE_TRANSLATION_MODELS", model, None, None))
    for field, setting, value, allow, file in candidates:
        if value is not None and is_hub_id(value):
            found[field] = HubModel(
                setting, value, revision(value), allow, settings.clip_weights_file if file else None
            )
    return found


def complete(folder: Path, model: HubModel) -> bool:
    """Our marker says a download of this revision finished, and every file it lists is still there."""
    try:
        marker = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if marker.get("repo_id") != model.repo_id or marker.get("revision") != model.revision:
        return False
    if marker.get("allow") != model.allow:
        return False
    files = marker.get("files") or []
    return bool(files) and all((folder / name).is_file() for name in files)


def in_hf_cache(model: HubModel) -> Path | None:
    """The model's snapshot in the Hugging Face cache, found without any request."""
    from huggingface_hub import snapshot_download

    try:
        path = Path(
            snapshot_download(model.repo_id, revision=model.revision, allow_patterns=model.allow, local_files_only=True)
        )
    except Exception:  # noqa: BLE001 - any miss (not cached, bad id) means "not here"
        return None
    if model.file and not (path / model.file).is_file():
        return None
    return path


def hub_offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def download(model: HubModel, folder: Path, endpoint: str | None) -> None:
    """One repository into its folder; partial files from an interrupted run are continued, not restarted."""
    from huggingface_hub import snapshot_download

    started = time.monotonic()
    logger.info("downloading %s@%s (%s) into %s", model.repo_id, model.revision, model.setting, folder)
    snapshot_download(
        model.repo_id,
        revision=model.revision,
        local_dir=folder,
        allow_patterns=model.allow,
        ignore_patterns=None if model.allow else SKIP_FORMATS,
        endpoint=endpoint,
    )
    files = sorted(
        str(path.relative_to(folder))
        for path in folder.rglob("*")
        if path.is_file() and ".cache" not in path.relative_to(folder).parts and path.name != MARKER
    )
    if model.file and model.file not in files:
        raise ModelsMissing(f"{model.setting}: {model.repo_id}@{model.revision} has no file {model.file}")
    size = sum((folder / name).stat().st_size for name in files)
    marker = {"repo_id": model.repo_id, "revision": model.revision, "allow": model.allow, "files": files}
    (folder / MARKER).write_text(json.dumps(marker, indent=2), encoding="utf-8")
    logger.info(
        "downloaded %s: %d files, %.1f MB in %.0f s",
        model.repo_id,
        len(files),
        size / 1e6,
        time.monotonic() - started,
    )


def ensure_models(settings: S, *, translations: bool = True) -> S:
    """The same settings with every hub id replaced by a local folder, downloading what is missing when allowed.

    `translations=False` leaves the translators out (a gallery build writes English and never loads them)."""
    models = hub_models(settings, translations=translations)
    resolved: dict[str, str] = {}
    missing: list[tuple[str, HubModel, Path]] = []
    offline = settings.offline or hub_offline()
    for field, model in models.items():
        folder = model.local_dir(settings.models_dir)
        if complete(folder, model):
            resolved[field] = model.value(folder)
            continue
        cached = in_hf_cache(model)
        if cached is not None:
            resolved[field] = model.value(cached)
            continue
        if offline:
            missing.append((field, model, folder))
            continue
        folder.mkdir(parents=True, exist_ok=True)
        download(model, folder, settings.hub_endpoint)
        resolved[field] = model.value(folder)
    if missing:
        lines = [f"  {m.setting}={m.repo_id} (revision {m.revision}): expected in {folder}" for _, m, folder in missing]
        why = "INFERENCE_OFFLINE=1" if settings.offline else "HF_HUB_OFFLINE=1"
        raise ModelsMissing(
            f"{len(missing)} model(s) missing and downloads are off ({why}):\n"
            + "\n".join(lines)
            + "\nunset it to download them, or put the files there (README, Models)."
        )
    return apply(settings, resolved)


def apply(settings: S, resolved: dict[str, str]) -> S:
    update: dict[str, Any] = {}
    translations = dict(settings.translation_models)
    for field, value in resolved.items():
        if field.startswith("translation_models."):
            translations[field.split(".", 1)[1]] = value
        else:
            update[field] = value
    if translations != settings.translation_models:
        update["translation_models"] = translations
    return settings.model_copy(update=update)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m inference.models_fetch", description=__doc__.splitlines()[0])
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = ensure_models(ModelSettings())
    except ValidationError as exc:
        sys.stderr.write(f"invalid model settings:\n{exc}\n")
        return 2
    except ModelsMissing as exc:
        sys.stderr.write(f"{exc}\n")
        return 1
    lines = [f"{field}: {getattr(settings, field)}" for field in ("clip_weights", "clip_tokenizer", "text_model")]
    describer_paths = {"llava": settings.llava_path, "smolvlm": settings.smolvlm_path}
    if settings.describer in describer_paths:
        lines.append(f"{settings.describer}_path: {describer_paths[settings.describer]}")
    lines += [f"translation_models.{lang}: {model}" for lang, model in settings.translation_models.items()]
    sys.stdout.write("\n".join(lines) + "\n")  # where each model is, for the operator
    return 0


if __name__ == "__main__":
    sys.exit(main())
