"""CLIP on OpenVINO (the CPU runtime) against torch (the reference), with the tiny multilingual CLIP: the vectors
agree, the export is cached beside the weights and reused, a change exports anew, a read-only weights folder falls
back to the cache folder, and INFERENCE_CLIP_RUNTIME=torch keeps the old path."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest

from inference import clip_openvino
from inference.clip_openvino import MANIFEST, OpenVinoUnavailable, choose_precision, choose_runtime
from inference.embedders import ClipEmbedder
from inference.factory import build_models
from inference.settings import ModelSettings
from tests.factories import synthetic_artwork
from tests.model_factories import TINY_XLMR_CLIP_CONFIG, TinyClip

pytest.importorskip("openvino")

TEXTS = ["рыцарь на белом коне", "stormy sea at night", "a", "🌊 🌅 🐎 " * 30]
SIDE = cast(dict[str, int], TINY_XLMR_CLIP_CONFIG["vision_cfg"])["image_size"]
"""The tiny CLIP's input side: images of this size reach both runtimes as the same pixels."""


def has_bf16() -> bool:
    import openvino as ov

    return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def copy_weights(tiny: TinyClip, folder: Path) -> Path:
    """A private copy of the tiny CLIP's weights and config (exports land beside them, not in the shared cache)."""
    folder.mkdir(parents=True)
    shutil.copy(tiny.weights, folder)
    shutil.copy(tiny.config_json, folder)
    return folder


@pytest.fixture
def weights_dir(tiny_xlmr_clip: TinyClip, tmp_path: Path) -> Path:
    return copy_weights(tiny_xlmr_clip, tmp_path / "clip")


@dataclass
class Exported:
    """One fp32 export shared by the module's tests (an export costs seconds even for the tiny model)."""

    weights_dir: Path
    cache: Path
    clip: ClipEmbedder
    exports: int
    files: dict[str, int]


@pytest.fixture(scope="module")
def exported(tiny_xlmr_clip: TinyClip, tmp_path_factory: pytest.TempPathFactory) -> Exported:
    root = tmp_path_factory.mktemp("exported")
    folder = copy_weights(tiny_xlmr_clip, root / "clip")
    clip = embedder(tiny_xlmr_clip, folder, root / "cache", runtime="openvino", precision="fp32")
    exports = exports_during(clip)
    return Exported(folder, root / "cache", clip, exports, ir_files(folder / "openvino"))


@pytest.fixture(scope="module")
def reference(tiny_xlmr_clip: TinyClip, exported: Exported) -> ClipEmbedder:
    return embedder(tiny_xlmr_clip, exported.weights_dir, exported.cache, runtime="torch")


def embedder(tiny: TinyClip, weights_dir: Path, cache: Path, **options: object) -> ClipEmbedder:
    return ClipEmbedder(
        tiny.arch,
        str(weights_dir / tiny.weights.name),
        "cpu",
        weights_dir / tiny.config_json.name,
        tokenizer=str(tiny.tokenizer),
        cache_dir=cache,
        **options,  # type: ignore[arg-type]
    )


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def ir_files(folder: Path) -> dict[str, int]:
    return {str(path.relative_to(folder)): path.stat().st_mtime_ns for path in folder.rglob("*") if path.is_file()}


def exports_during(load: ClipEmbedder) -> int:
    before = clip_openvino.exports
    load.load()
    return clip_openvino.exports - before


# --- agreement with torch ---------------------------------------------------------------------------------------


def test_openvino_vectors_agree_with_torch_in_fp32(exported: Exported, reference: ClipEmbedder) -> None:
    # at the model's input size both runtimes see the same pixels: only the runtime differs
    images = [synthetic_artwork(seed, (SIDE, SIDE)) for seed in range(6)]

    image_agreement = cosines(exported.clip.embed_images(images), reference.embed_images(images))
    text_agreement = cosines(exported.clip.embed_texts(TEXTS), reference.embed_texts(TEXTS))

    assert exported.clip.runtime == "openvino" and reference.runtime == "torch"
    assert image_agreement.min() > 0.999, image_agreement
    assert text_agreement.min() > 0.999, text_agreement
    # a batch is no different from its rows one at a time (the export's batch axis is dynamic)
    alone = np.concatenate([exported.clip.embed_texts([text]) for text in TEXTS])
    np.testing.assert_allclose(exported.clip.embed_texts(TEXTS), alone, atol=1e-5)


def test_photos_of_any_size_embed_as_torch_embeds_them(exported: Exported, reference: ClipEmbedder) -> None:
    """End to end, the numpy preprocessing included: photos larger and smaller than the input, every aspect."""
    sizes = [(1024, 768), (768, 1024), (640, 640), (97, 41), (24, 300)]
    photos = [synthetic_artwork(seed, size) for seed, size in enumerate(sizes)]

    agreement = cosines(exported.clip.embed_images(photos), reference.embed_images(photos))

    assert agreement.min() > 0.998, agreement


def test_the_export_is_cached_beside_the_weights_and_a_second_start_reuses_it(
    tiny_xlmr_clip: TinyClip, exported: Exported
) -> None:
    assert exported.exports == 1
    folders = list((exported.weights_dir / "openvino").iterdir())
    assert len(folders) == 1 and (folders[0] / MANIFEST).is_file()
    assert {"image.xml", "image.bin", "text.xml", "text.bin"} <= {Path(name).name for name in exported.files}

    second = embedder(tiny_xlmr_clip, exported.weights_dir, exported.cache, runtime="openvino", precision="fp32")

    assert exports_during(second) == 0
    assert ir_files(exported.weights_dir / "openvino") == exported.files  # nothing rewritten, nothing added
    assert not exported.cache.exists()  # nothing went to the fallback either
    assert "IR from" in second.describe_runtime() and "exported to" in exported.clip.describe_runtime()
    photos = [synthetic_artwork(seed) for seed in range(3)]
    np.testing.assert_allclose(second.embed_images(photos), exported.clip.embed_images(photos), atol=1e-6)


def test_bf16_exports_anew_and_still_agrees_with_torch(
    tiny_xlmr_clip: TinyClip, exported: Exported, reference: ClipEmbedder
) -> None:
    if not has_bf16():
        pytest.skip("this CPU has no native bf16")
    fast = embedder(tiny_xlmr_clip, exported.weights_dir, exported.cache, runtime="openvino", precision="bf16")
    images = [synthetic_artwork(seed, (SIDE, SIDE)) for seed in range(6)]

    assert exports_during(fast) == 1
    assert len(list((exported.weights_dir / "openvino").iterdir())) == 2  # the fp32 one is kept
    assert cosines(fast.embed_images(images), reference.embed_images(images)).min() > 0.99
    assert cosines(fast.embed_texts(TEXTS), reference.embed_texts(TEXTS)).min() > 0.99


def test_replaced_weights_export_anew(tiny_xlmr_clip: TinyClip, weights_dir: Path, tmp_path: Path) -> None:
    import torch

    cache = tmp_path / "cache"
    assert exports_during(embedder(tiny_xlmr_clip, weights_dir, cache, runtime="openvino", precision="fp32")) == 1
    # the operator replaces the checkpoint: same file name, other tensors
    weights = weights_dir / tiny_xlmr_clip.weights.name
    state = torch.load(weights, map_location="cpu")
    state["visual.proj"] = torch.flip(state["visual.proj"], dims=[0])
    torch.save(state, weights)
    changed = embedder(tiny_xlmr_clip, weights_dir, cache, runtime="openvino", precision="fp32")

    assert exports_during(changed) == 1
    assert len(list((weights_dir / "openvino").iterdir())) == 2
    reference = embedder(tiny_xlmr_clip, weights_dir, cache, runtime="torch")
    images = [synthetic_artwork(seed, (SIDE, SIDE)) for seed in range(3)]
    assert cosines(changed.embed_images(images), reference.embed_images(images)).min() > 0.999


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[bool]:
    """Make `folder` read-only for this process, root included (chmod, then the immutable flag); yields whether
    that worked."""
    folder.chmod(0o555)
    immutable = False
    if os.geteuid() == 0 and shutil.which("chattr"):
        immutable = subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode == 0
    try:
        probe = folder / ".probe"
        try:
            probe.write_text("x")
        except OSError:
            yield True
        else:
            probe.unlink()
            yield False
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
        folder.chmod(0o755)


def test_a_read_only_weights_folder_sends_the_export_to_the_cache_folder(
    tiny_xlmr_clip: TinyClip, weights_dir: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    with read_only(weights_dir) as locked:
        if not locked:
            pytest.skip("cannot make a folder read-only here")
        first = embedder(tiny_xlmr_clip, weights_dir, cache, runtime="openvino", precision="fp32")
        assert exports_during(first) == 1
        assert not (weights_dir / "openvino").exists()
        assert [path.parent.parent for path in cache.rglob(MANIFEST)] == [cache]
        # and the next start finds it there
        again = embedder(tiny_xlmr_clip, weights_dir, cache, runtime="openvino", precision="fp32")
        assert exports_during(again) == 0


def test_with_nowhere_to_write_the_export_auto_falls_back_to_torch_and_openvino_refuses(
    tiny_xlmr_clip: TinyClip, weights_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    with read_only(weights_dir) as locked, read_only(cache) as cache_locked:
        if not (locked and cache_locked):
            pytest.skip("cannot make a folder read-only here")
        before = clip_openvino.exports
        with pytest.raises(OSError, match="nowhere to write"):
            embedder(tiny_xlmr_clip, weights_dir, cache, runtime="openvino").load()
        assert clip_openvino.exports == before  # found out before the export, not after it
        clip = embedder(tiny_xlmr_clip, weights_dir, cache, runtime="auto")
        with caplog.at_level("WARNING"):
            vectors = clip.embed_images([synthetic_artwork(1)])

    assert clip.runtime == "torch" and vectors.shape == (1, clip.dim)
    assert "using torch" in caplog.text


def test_random_weights_are_exported_in_memory_and_never_cached(tiny_xlmr_clip: TinyClip, tmp_path: Path) -> None:
    clip = ClipEmbedder(
        tiny_xlmr_clip.arch,
        None,
        "cpu",
        tiny_xlmr_clip.config_json,
        tokenizer=str(tiny_xlmr_clip.tokenizer),
        runtime="openvino",
        cache_dir=tmp_path / "cache",
    )
    assert exports_during(clip) == 1
    assert clip.embed_texts(["a storm"]).shape == (1, clip.dim)
    assert not (tmp_path / "cache").exists()


# --- choosing the runtime ---------------------------------------------------------------------------------------


def test_torch_runtime_keeps_the_reference_path(tiny_xlmr_clip: TinyClip, weights_dir: Path, tmp_path: Path) -> None:
    import open_clip
    import torch

    clip = embedder(tiny_xlmr_clip, weights_dir, tmp_path / "cache", runtime="torch")
    photo = synthetic_artwork(3, (200, 120))

    vector = clip.embed_images([photo])

    assert clip.runtime == "torch" and clip.describe_runtime() == "torch (cpu)"
    assert not (weights_dir / "openvino").exists()
    # exactly open_clip's own preprocessing and model
    model, _, preprocess = open_clip.create_model_and_transforms(
        tiny_xlmr_clip.arch, pretrained=str(weights_dir / tiny_xlmr_clip.weights.name), text_cfg=clip._text_config()
    )
    with torch.inference_mode():
        expected = torch.nn.functional.normalize(model.eval().encode_image(preprocess(photo)[None]), dim=-1)
    np.testing.assert_allclose(vector, expected.numpy(), atol=1e-6)


def test_auto_is_openvino_on_a_cpu_and_torch_on_a_gpu() -> None:
    assert choose_runtime("auto", "cpu") == "openvino"
    assert choose_runtime("auto", "cuda") == "torch"
    assert choose_runtime("torch", "cpu") == "torch"
    with pytest.raises(OpenVinoUnavailable, match="INFERENCE_CLIP_RUNTIME=torch"):
        choose_runtime("openvino", "cuda")


def test_precision_is_bf16_only_where_the_cpu_has_it() -> None:
    import openvino as ov

    core = ov.Core()
    assert choose_precision("auto", core) == ("bf16" if has_bf16() else "fp32")
    assert choose_precision("fp32", core) == "fp32"


def test_the_settings_reach_the_compiled_model(tiny_model_settings: dict[str, Any], tmp_path: Path) -> None:
    """INFERENCE_CLIP_RUNTIME/PRECISION/CACHE_DIR through the factory, and the thread count the service passes."""
    from inference.threads import ThreadPlan

    settings = ModelSettings(
        **{**tiny_model_settings, "clip_precision": "fp32", "clip_cache_dir": tmp_path, "translation_models": {}}
    )
    models = build_models(settings, ThreadPlan.split(clip=1, describer=1, cores=2))
    clip = models.clip
    assert isinstance(clip, ClipEmbedder)
    clip.load()

    import openvino as ov

    compiled = clip._openvino
    assert clip.runtime == "openvino" and compiled is not None
    assert compiled.image.get_property("INFERENCE_PRECISION_HINT") == ov.Type.f32
    assert int(compiled.image.get_property("INFERENCE_NUM_THREADS")) == 1
    torch_models = build_models(settings.model_copy(update={"clip_runtime": "torch"}))
    assert isinstance(torch_models.clip, ClipEmbedder) and torch_models.clip.requested_runtime == "torch"
