"""The service under abuse, before and after the hardening: slow bodies, huge JSON, abandoned requests.

    python -m benchmarks.bench_service_abuse [--before 9d38814] [--out benchmarks/results/service_abuse.json]

Runs the service of this working tree and the one of `--before` (extracted with `git archive` into a temporary
folder) as `python -m inference.serve` subprocesses over the same small gallery (ViT-B-32-sized CLIP with random
weights, the real MiniLM, the tiny LLaVA-Next), one at a time, on 127.0.0.1 only, and measures:

- slow bodies: N connections send their headers and half a body, then stall; how many are still open after the
  body timeout (3 s here, INFERENCE_BODY_TIMEOUT_S) plus 2 s;
- big JSON: one 144 MB chunked JSON POST to /v1/suggest, and 144 MB as 8 declared 18 MB bodies (each under the
  old 20 MB cap, so the old service parsed them); the service's peak RSS growth (psutil);
- abandoned requests: N /v1/analyze calls that queue behind the describer and hang up; how many the service
  dropped (/healthz `dropped`), and how long the next real request then takes.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import selectors
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil

from benchmarks.common import QUICK_IDENTIFY_CALIBRATION, ROOT, model_settings
from inference.gallery_build import build_gallery
from inference.gallery_store import FORMAT_VERSION, IDENTIFY_DIR, MANIFEST, Gallery, GalleryMismatchError
from inference.models import Models
from inference.settings import ModelSettings
from tests.factories import image_bytes, synthetic_artwork, write_gallery_folder
from tests.service_process import ServiceProcess

TOKEN = "bench-abuse-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
JSON = {"Content-Type": "application/json"}
BODY_TIMEOUT_S = 3.0
MiB = 1024 * 1024


class Service(ServiceProcess):
    """One `python -m inference.serve` of a source tree, on a loopback port, with its memory at hand."""

    def __init__(self, tree: Path, gallery: Path, env: dict[str, str], log: Path) -> None:
        super().__init__(gallery, env, log, tree=tree)
        self.start(timeout=300)
        assert self.process is not None
        self.ps = psutil.Process(self.process.pid)

    def rss(self) -> int:
        return int(self.ps.memory_info().rss)


def slow_bodies(service: Service, count: int) -> dict[str, Any]:
    """`count` sockets send headers and half of a 1000-byte body, then stall."""
    head = (
        (
            f"POST /v1/suggest HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n"
            "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
        ).encode()
        + b'{"exclude": ['
        + b"1," * 243
    )
    sockets = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", service.port), timeout=5)
        sock.sendall(head)
        sock.setblocking(False)
        sockets.append(sock)
    time.sleep(BODY_TIMEOUT_S + 2.0)
    data: dict[socket.socket, bytes] = dict.fromkeys(sockets, b"")
    closed: set[socket.socket] = set()
    with selectors.DefaultSelector() as selector:
        for sock in sockets:
            selector.register(sock, selectors.EVENT_READ)
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline and len(closed) < count:
            for key, _ in selector.select(timeout=0.2):
                ready = key.fileobj
                assert isinstance(ready, socket.socket)
                try:
                    chunk = ready.recv(65536)
                except (BlockingIOError, ConnectionResetError):
                    chunk = b"" if ready not in closed else b"x"
                if chunk:
                    data[ready] += chunk
                else:
                    closed.add(ready)
                    selector.unregister(ready)
    statuses: dict[str, int] = {}
    for sock, received in data.items():
        status = received.split(b" ", 2)[1].decode() if received.startswith(b"HTTP/") else "none"
        statuses[status] = statuses.get(status, 0) + 1
        sock.close()
    healthy = httpx.get(f"{service.url}/healthz", timeout=10).status_code
    return {
        "connections": count,
        "still_open_after_timeout_plus_2s": count - len(closed),
        "closed_by_server": len(closed),
        "answers": statuses,
        "healthz_after": healthy,
    }


class PeakRss:
    """Samples a process's RSS every 20 ms in a thread; `peak` is the highest seen."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.peak = service.rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self.service.rss())

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def big_json(service: Service, total_mb: int = 144) -> dict[str, Any]:
    event = b'{"artwork_id": 1, "value": 1.0},'
    chunk = event * (MiB // len(event))

    def chunked() -> Iterator[bytes]:
        yield b'{"feedback": ['
        for _ in range(total_mb):
            yield chunk

    results: dict[str, Any] = {}
    with httpx.Client(base_url=service.url, timeout=120, headers=AUTH) as client:
        before = service.rss()
        with PeakRss(service) as sampler:
            start = time.perf_counter()
            try:
                response = client.post("/v1/suggest", content=chunked(), headers=JSON)
                status: int | str = response.status_code
            except httpx.HTTPError as exc:  # the server may close the socket mid-upload
                status = type(exc).__name__
            seconds = time.perf_counter() - start
        results["one_chunked_144MB"] = {
            "status": status,
            "seconds": round(seconds, 2),
            "peak_rss_growth_mib": round((sampler.peak - before) / MiB, 1),
        }
        declared = b'{"feedback": [' + event * (18 * MiB // len(event)) + b'{"artwork_id": 1, "value": 1.0}]}'
        before = service.rss()
        statuses: list[int | str] = []
        with PeakRss(service) as sampler:
            start = time.perf_counter()
            for _ in range(8):
                try:
                    statuses.append(client.post("/v1/suggest", content=declared, headers=JSON).status_code)
                except httpx.HTTPError as exc:
                    statuses.append(type(exc).__name__)
            seconds = time.perf_counter() - start
        results["eight_declared_18MB"] = {
            "statuses": sorted(set(map(str, statuses))),
            "seconds": round(seconds, 2),
            "peak_rss_growth_mib": round((sampler.peak - before) / MiB, 1),
            "rss_growth_after_mib": round((service.rss() - before) / MiB, 1),
        }
    return results


def abandoned(service: Service, count: int) -> dict[str, Any]:
    """`count` describe requests queue up; their clients hang up after 0.5 s; then one real request is timed."""

    def request_bytes(seed: int) -> bytes:
        request = httpx.Request(
            "POST",
            f"{service.url}/v1/analyze",
            data={"recommenders": "by_meaning"},
            files={"image": ("p.jpg", image_bytes(synthetic_artwork(1000 + seed)), "image/jpeg")},
            headers=AUTH,
        )
        body = request.read()
        lines = ["POST /v1/analyze HTTP/1.1", *(f"{k}: {v}" for k, v in request.headers.items())]
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body

    with httpx.Client(base_url=service.url, timeout=300, headers=AUTH) as client:
        photo = {"image": ("w.jpg", image_bytes(synthetic_artwork(999)), "image/jpeg")}
        start = time.perf_counter()
        client.post("/v1/analyze", data={"recommenders": "by_meaning"}, files=photo)
        alone_ms = (time.perf_counter() - start) * 1000
        sockets = []
        for seed in range(count):
            sock = socket.create_connection(("127.0.0.1", service.port), timeout=10)
            sock.sendall(request_bytes(seed))
            sockets.append(sock)
        time.sleep(0.5)
        for sock in sockets:
            sock.close()
        photo = {"image": ("n.jpg", image_bytes(synthetic_artwork(998)), "image/jpeg")}
        start = time.perf_counter()
        response = client.post("/v1/analyze", data={"recommenders": "by_meaning"}, files=photo)
        next_ms = (time.perf_counter() - start) * 1000
        health = client.get("/healthz").json()
    return {
        "abandoned": count,
        "dropped": health.get("dropped", "not reported (no counter before)"),
        "one_analyze_alone_ms": round(alone_ms),
        "next_analyze_after_the_abandoned_ms": round(next_ms),
        "next_status": response.status_code,
    }


def _loads(gallery: Path) -> bool:
    """A cached gallery is reused only while this code still loads it (an older format is rebuilt)."""
    try:
        Gallery.load(gallery)
    except (FileNotFoundError, GalleryMismatchError):
        return False
    return True


def gallery_for(tree: Path, gallery: Path, workdir: Path) -> Path:
    """The gallery as `tree`'s service reads it: a tree from before format 2 refuses a format-2 gallery, and
    format 2 only added identify/ (which such a tree never reads), so it gets a copy labelled with its format."""
    source = (tree / "inference" / "gallery_store.py").read_text()
    found = re.search(r"^FORMAT_VERSION = (\d+)", source, re.MULTILINE)
    version = int(found.group(1)) if found else FORMAT_VERSION
    if version == FORMAT_VERSION:
        return gallery
    copy = workdir / f"gallery-format{version}"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(gallery, copy, ignore=shutil.ignore_patterns(IDENTIFY_DIR))
    manifest = json.loads((copy / MANIFEST).read_text())
    (copy / MANIFEST).write_text(json.dumps({**manifest, "format": version}, indent=2))
    return copy


def build(workdir: Path) -> tuple[Path, dict[str, str]]:
    settings = model_settings(workdir, max_new_tokens=48)
    gallery = workdir / "gallery"
    if not _loads(gallery):
        images, metadata = write_gallery_folder(workdir / "src", 24)
        from inference.factory import build_models

        models: Models = build_models(ModelSettings(**settings))  # type: ignore[arg-type]
        models.load()
        quick = QUICK_IDENTIFY_CALIBRATION  # the threshold is not what abuse tests
        build_gallery(images, gallery, models, metadata, batch_size=8, progress=False, identify_calibration=quick)
    env = {
        **os.environ,
        **{f"INFERENCE_{key.upper()}": str(value) for key, value in settings.items()},
        "INFERENCE_TOKEN": TOKEN,
        "INFERENCE_BODY_TIMEOUT_S": str(BODY_TIMEOUT_S),
        "INFERENCE_BODY_IDLE_TIMEOUT_S": str(BODY_TIMEOUT_S),
        "INFERENCE_DESCRIBE_BATCH_SIZE": "1",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    return gallery, env


def main(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.gettempdir()) / "artmatch-bench-abuse"
    workdir.mkdir(exist_ok=True)
    gallery, env = build(workdir)
    before_tree = Path(tempfile.mkdtemp(prefix="artmatch-before-"))
    archive = subprocess.run(["git", "archive", args.before], cwd=ROOT, check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(before_tree)], input=archive, check=True)
    results: dict[str, Any] = {
        "machine": f"{os.cpu_count()} CPU cores",
        "body_timeout_s": BODY_TIMEOUT_S,
        "before": args.before,
    }
    for label, tree in (("before", before_tree), ("after", ROOT)):
        service = Service(tree, gallery_for(tree, gallery, workdir), env, workdir / f"{label}.log")
        try:
            row = {
                "slow_bodies": slow_bodies(service, args.connections),
                "big_json": big_json(service),
                "abandoned": abandoned(service, args.abandoned),
            }
        finally:
            service.stop()
        results[label] = row
        print(label, json.dumps(row, indent=1))
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", default="9d38814", help="the commit to compare with")
    parser.add_argument("--connections", type=int, default=300)
    parser.add_argument("--abandoned", type=int, default=12)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "service_abuse.json")
    arguments = parser.parse_args()
    arguments.out.write_text(json.dumps(main(arguments), indent=2) + "\n")
