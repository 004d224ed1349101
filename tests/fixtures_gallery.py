"""Session fixtures: a small synthetic gallery built with the tiny models, and the inference service over it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from inference.gallery_build import build_gallery
from inference.models import Models
from tests.factories import write_gallery_folder
from tests.service_process import ServiceProcess

SERVICE_TOKEN = "test-inference-token"
GALLERY_SIZE = 14


@pytest.fixture(scope="session")
def gallery_source(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return write_gallery_folder(tmp_path_factory.mktemp("gallery-src"), GALLERY_SIZE)


@pytest.fixture(scope="session")
def tiny_gallery(
    tiny_models: Models, gallery_source: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    images, metadata = gallery_source
    out = tmp_path_factory.mktemp("gallery") / "built"
    build_gallery(
        images, out, tiny_models, metadata_csv=metadata, batch_size=8, progress=False, identify_calibration=8
    )
    return out


@pytest.fixture(scope="session")
def inference_url(
    tiny_gallery: Path, tiny_model_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The real inference service in its own process, over the tiny models and the synthetic gallery."""
    log_path = tmp_path_factory.mktemp("logs") / "inference.log"
    service = ServiceProcess(tiny_gallery, {**tiny_model_env, "INFERENCE_TOKEN": SERVICE_TOKEN}, log_path)
    service.start()
    yield service.url
    service.stop()
