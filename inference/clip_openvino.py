"""CLIP's two towers on OpenVINO, for CPUs: exported once from the torch model, cached on disk, compiled per start.

Why: on a CPU, torch's eager ViT-B/32 reaches about a quarter of the cores' fp32 peak at batch 1; OpenVINO's
compiled graph runs the same model much faster: on one core of the 2-core benchmark machine the image tower of
xlm-roberta-base-ViT-B-32 takes 53 ms in fp32 and 29 ms in bf16 against torch's 127 ms, the text tower 67 and 39
against 170 (benchmarks/results/cpu_look.json). The embeddings agree with torch's to a cosine of 1.00000 in fp32
and at least 0.99994 in bf16, where two different photos are at 0.69 (random weights); 40 photos and 10 texts
found the same top 10 of a 60-work gallery in bf16 as in torch. torch stays the reference and the GPU path
(`INFERENCE_CLIP_RUNTIME=torch`).

The export (`openvino.convert_model` on each tower, traced with an example input) takes 25 s to a minute at real
size on 2 cores, so it runs once: its IR (`.xml` + `.bin`) is written beside the weights, in `openvino/<key>/`,
or, where that folder is read-only, under INFERENCE_CLIP_CACHE_DIR. The key is a digest of everything the IR
depends on (the architecture and its config, the weights file, OpenVINO's version, the precision and this module's
export format), so changing any of them exports anew; an unchanged start finds the IR and never builds the torch
model at all.
Writes are atomic: a scratch folder renamed into place, so a start killed mid-export leaves nothing half-written
to be loaded later. Random weights (no weights file) are exported in memory on every start and never cached:
open_clip draws them afresh each time.

Precision: bf16 where OpenVINO lists BF16 among the CPU's capabilities (AVX-512 BF16 or AMX), else fp32, unless
INFERENCE_CLIP_PRECISION says otherwise. The bf16 IR stores its weights in fp16 (half the disk; OpenVINO computes
in bf16 either way), the fp32 one in fp32.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path
from typing import Any, Literal

import numpy as np

logger = logging.getLogger(__name__)

Runtime = Literal["torch", "openvino"]
Precision = Literal["bf16", "fp32"]

EXPORT_FORMAT = 1
"""Bump when the export itself changes (tower wrappers, input shapes, saved files): every cached IR is redone."""
MANIFEST = "manifest.json"
IMAGE_XML = "image.xml"
TEXT_XML = "text.xml"
FINGERPRINT_BYTES = 1 << 20
"""Bytes hashed at each end of the weights file (a zip checkpoint keeps every tensor's CRC-32 in its tail)."""
OV_PRECISION = {"bf16": "bf16", "fp32": "f32"}

exports = 0
"""Exports done by this process (for tests and logs: a cached start does none)."""


class OpenVinoUnavailable(RuntimeError):
    """OpenVINO was asked for and cannot run here."""


def openvino_installed() -> bool:
    return find_spec("openvino") is not None


def choose_runtime(requested: str, device: str) -> Runtime:
    """'auto': OpenVINO on a CPU when it is installed, torch otherwise (CUDA, or no `cpu` extra)."""
    if requested == "torch":
        return "torch"
    if requested == "openvino":
        if device != "cpu":
            raise OpenVinoUnavailable(
                f"INFERENCE_CLIP_RUNTIME=openvino runs CLIP on the CPU, but the device is {device!r}; "
                "use INFERENCE_CLIP_RUNTIME=torch (or auto) on a GPU"
            )
        if not openvino_installed():
            raise OpenVinoUnavailable(
                "INFERENCE_CLIP_RUNTIME=openvino but OpenVINO is not installed: pip install 'artmatch[cpu]'"
            )
        return "openvino"
    if requested != "auto":
        raise ValueError(f"unknown CLIP runtime {requested!r}")
    return "openvino" if device == "cpu" and openvino_installed() else "torch"


def cpu_has_bf16(core: Any) -> bool:
    return "BF16" in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def choose_precision(requested: str, core: Any) -> Precision:
    """bf16 where the CPU computes it natively (emulated it would be slower than fp32), else fp32."""
    if requested == "fp32":
        return "fp32"
    if requested == "bf16":
        if not cpu_has_bf16(core):
            raise OpenVinoUnavailable(
                "INFERENCE_CLIP_PRECISION=bf16 but this CPU has no native bf16 (OpenVINO's OPTIMIZATION_CAPABILITIES "
                "lack BF16); use auto or fp32"
            )
        return "bf16"
    return "bf16" if cpu_has_bf16(core) else "fp32"


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "artmatch" / "openvino"


def weights_fingerprint(path: Path) -> dict[str, Any]:
    """What identifies a weights file without reading all of it (1.5 GB at real size): its size, mtime and a
    digest of its first and last MiB. A changed checkpoint changes at least one of them."""
    stat = path.stat()
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        digest.update(handle.read(FINGERPRINT_BYTES))
        if stat.st_size > FINGERPRINT_BYTES:
            handle.seek(max(FINGERPRINT_BYTES, stat.st_size - FINGERPRINT_BYTES))
            digest.update(handle.read(FINGERPRINT_BYTES))
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "ends_sha256": digest.hexdigest()}


@dataclass(frozen=True)
class ExportSpec:
    """Everything an exported IR depends on; `key()` names its folder."""

    arch: str
    model_config: dict[str, Any]
    """open_clip's config of the architecture, with a Hugging Face text tower's config.json inlined."""
    weights: Path | None
    precision: Precision
    openvino_version: str

    def key(self) -> str:
        material = {
            "format": EXPORT_FORMAT,
            "arch": self.arch,
            "config": self.model_config,
            "weights": weights_fingerprint(self.weights) if self.weights is not None else None,
            "precision": self.precision,
            "openvino": self.openvino_version,
        }
        digest = hashlib.sha256(json.dumps(material, sort_keys=True, default=str).encode()).hexdigest()
        return f"{self.arch}-{self.precision}-{digest[:16]}"


class IrStore:
    """Where exported IRs live: beside the weights (`<weights folder>/openvino/<key>/`) when that folder can be
    written, else in the fallback cache folder. Both are searched when loading."""

    def __init__(self, weights: Path, fallback: Path) -> None:
        self.places = [weights.parent / "openvino", fallback]

    def find(self, key: str) -> Path | None:
        for place in self.places:
            folder = place / key
            if (folder / MANIFEST).is_file():
                return folder
        return None

    def write(self, key: str, save: Callable[[Path], dict[str, Any]]) -> Path:
        """Run `save(scratch)` in a scratch folder of the first writable place, then rename it into place."""
        errors = []
        for place in self.places:
            try:
                place.mkdir(parents=True, exist_ok=True)
                scratch = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=place))
            except OSError as exc:  # read-only (EROFS, EACCES, EPERM): try the next place
                errors.append(f"{place}: {exc.strerror or exc}")
                continue
            if place is not self.places[0]:
                logger.warning("CLIP's OpenVINO export goes to %s (%s)", place, "; ".join(errors))
            try:
                manifest = save(scratch)
                (scratch / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
                return _rename_into_place(scratch, place / key)
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
        raise OSError(f"nowhere to write CLIP's OpenVINO export: {'; '.join(errors)}")


def _rename_into_place(scratch: Path, target: Path) -> Path:
    if (target / MANIFEST).is_file():  # another process finished the same export first: theirs is as good
        return target
    shutil.rmtree(target, ignore_errors=True)  # a leftover without its manifest is incomplete
    try:
        scratch.rename(target)
    except OSError:
        if not (target / MANIFEST).is_file():
            raise
    return target


@dataclass
class OpenVinoClip:
    """The two compiled towers and what the embedder needs to feed them. Each calling thread gets its own infer
    requests (OpenVINO runs several at once on one compiled model), so callers on different threads (two apps in
    one test process, a start-up task next to the CLIP worker) never share one."""

    image: Any
    text: Any
    manifest: dict[str, Any]
    precision: Precision
    threads: int | None
    folder: Path | None
    """Where the IR was loaded from; None for an in-memory export (random weights)."""
    exported: bool
    """Whether this load exported (False: the IR was found on disk)."""
    _local: threading.local = field(default_factory=threading.local, repr=False)

    def encode_image(self, pixels: np.ndarray) -> np.ndarray:
        """(N, 3, S, S) float32 pixels -> (N, D) unnormalised embeddings."""
        return self._infer("image", np.ascontiguousarray(pixels, dtype=np.float32))

    def encode_text(self, tokens: np.ndarray) -> np.ndarray:
        """(N, context_length) int64 token ids -> (N, D) unnormalised embeddings."""
        return self._infer("text", np.ascontiguousarray(tokens, dtype=np.int64))

    def _infer(self, tower: str, inputs: np.ndarray) -> np.ndarray:
        request = getattr(self._local, tower, None)
        if request is None:
            request = getattr(self, tower).create_infer_request()
            setattr(self._local, tower, request)
        request.infer({0: inputs})
        return np.array(request.get_output_tensor(0).data, dtype=np.float32, copy=True)


def load_openvino_clip(
    spec: ExportSpec,
    store: IrStore | None,
    build_torch: Callable[[], Any],
    example_tokens: Any,
    threads: int | None,
) -> OpenVinoClip:
    """The compiled towers: from the store when an export with this key is there, else exported from the torch
    model `build_torch()` makes (and saved to the store when there is one)."""
    import openvino as ov

    core = ov.Core()
    config: dict[str, Any] = {
        "INFERENCE_PRECISION_HINT": OV_PRECISION[spec.precision],
        "PERFORMANCE_HINT": "LATENCY",
        "NUM_STREAMS": 1,
        # The OS places the CLIP thread next to the describer's and identification's; pinned, OpenVINO's
        # threads would stay on cores those others are using.
        "ENABLE_CPU_PINNING": False,
    }
    if threads is not None:
        config["INFERENCE_NUM_THREADS"] = threads
    key = spec.key()
    folder = store.find(key) if store is not None else None
    exported = folder is None
    image: Any
    text: Any
    if folder is not None:
        manifest = json.loads((folder / MANIFEST).read_text())
        image, text = folder / IMAGE_XML, folder / TEXT_XML
    else:
        start = time.perf_counter()
        if store is not None:  # a writable place is found before the export, not after a minute of it
            folder = store.write(key, lambda scratch: _export_into(scratch, spec, key, build_torch, example_tokens))
            manifest = json.loads((folder / MANIFEST).read_text())
            image, text = folder / IMAGE_XML, folder / TEXT_XML
        else:
            image, text, manifest = _export(spec, key, build_torch, example_tokens)
        where = str(folder) if folder is not None else "memory (random weights are never cached)"
        seconds = time.perf_counter() - start
        logger.info("exported CLIP to OpenVINO (%s) in %.0f s into %s", spec.precision, seconds, where)
    compiled_image = core.compile_model(image, "CPU", config)
    compiled_text = core.compile_model(text, "CPU", config)
    return OpenVinoClip(compiled_image, compiled_text, manifest, spec.precision, threads, folder, exported)


def _export(
    spec: ExportSpec, key: str, build_torch: Callable[[], Any], example_tokens: Any
) -> tuple[Any, Any, dict[str, Any]]:
    image_model, text_model, manifest = export_towers(build_torch(), example_tokens)
    return image_model, text_model, {**manifest, "key": key, "arch": spec.arch, "precision": spec.precision}


def _export_into(
    scratch: Path, spec: ExportSpec, key: str, build_torch: Callable[[], Any], example_tokens: Any
) -> dict[str, Any]:
    """Export and save the IR into `scratch`; the bf16 IR keeps its weights in fp16 (OpenVINO computes in bf16)."""
    import openvino as ov

    image_model, text_model, manifest = _export(spec, key, build_torch, example_tokens)
    compress = spec.precision == "bf16"
    ov.save_model(image_model, scratch / IMAGE_XML, compress_to_fp16=compress)
    ov.save_model(text_model, scratch / TEXT_XML, compress_to_fp16=compress)
    return manifest


def export_towers(model: Any, example_tokens: Any) -> tuple[Any, Any, dict[str, Any]]:
    """Trace open_clip's `encode_image` and `encode_text` into two OpenVINO models with a dynamic batch; the
    manifest says what feeding them needs (input size, preprocessing, context length, embedding size)."""
    import openvino as ov
    import torch

    global exports
    preprocess = dict(getattr(model.visual, "preprocess_cfg", {}) or {})
    side = model.visual.image_size
    height, width = (side, side) if isinstance(side, int) else tuple(side)
    tokens = torch.as_tensor(example_tokens, dtype=torch.long)
    context = int(tokens.shape[1])
    pixels = torch.zeros(1, 3, height, width)
    with torch.no_grad(), _attention_fastpath_off(), warnings.catch_warnings():
        # The tracer warns about every Python-level branch it freezes (the fixed context length, batch-1 checks
        # inside transformers); the towers take fixed-length token rows and any batch, which it handles.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", FutureWarning)  # torch 2.14 deprecates jit tracing; OpenVINO still uses it
        image_model = ov.convert_model(
            _tower(model, "encode_image"), example_input=pixels, input=[ov.PartialShape([-1, 3, height, width])]
        )
        text_model = ov.convert_model(
            _tower(model, "encode_text"),
            example_input=tokens,
            input=[(ov.PartialShape([-1, context]), ov.Type.i64)],
        )
        dim = int(model.encode_image(pixels).shape[-1])
    exports += 1
    manifest = {
        "image_size": [height, width],
        "preprocess": preprocess,
        "context_length": context,
        "embed_dim": dim,
        "openvino": ov.get_version(),
    }
    return image_model, text_model, manifest


def _tower(model: Any, method: str) -> Any:
    """A torch module whose forward is one of the CLIP model's encode methods: what the tracer takes."""
    import torch

    class Tower(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.clip = model

        def forward(self, inputs: torch.Tensor) -> torch.Tensor:
            return getattr(self.clip, method)(inputs)

    return Tower().eval()


@contextlib.contextmanager
def _attention_fastpath_off() -> Iterator[None]:
    """torch's fused MultiheadAttention fast path picks its kernel per call, so tracing twice (the tracer's own
    check) gives two different graphs and the export fails; the plain path traces the same every time."""
    import torch

    before = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        yield
    finally:
        torch.backends.mha.set_fastpath_enabled(before)
