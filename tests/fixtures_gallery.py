"""Session fixtures: a small synthetic gallery built with the tiny models, and the inference service over it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from inference.gallery_build import build_gallery
from inference.models import Models
from tests.factories import write_gallery_folder

ROOT = Path(__file__).resolve().parents[1]
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
    build_gallery(images, out, tiny_models, metadata_csv=metadata, batch_size=8, progress=False)
    return out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def inference_url(
    tiny_gallery: Path, tiny_model_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The real inference service in its own process, over the tiny models and the synthetic gallery."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("logs") / "inference.log"
    env = {
        **os.environ,
        **tiny_model_env,
        "INFERENCE_TOKEN": SERVICE_TOKEN,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "inference.serve", "--gallery", str(tiny_gallery), "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"inference service exited: {log_path.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"inference service did not start: {log_path.read_text()[-3000:]}")
        time.sleep(0.3)
    yield url
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
