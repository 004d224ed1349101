"""Models named by hub id arrive by themselves on first start, from a local stand-in of the hub (no internet)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from inference.models_fetch import MARKER, ModelsMissing, ensure_models
from inference.settings import ModelSettings
from tests.hub_stub import HubStub
from tests.model_factories import TinyClip

CLIP_REPO = "artmatch-test/tiny-clip"
LLAVA_REPO = "artmatch-test/tiny-llava"
MARIAN_REPO = "artmatch-test/tiny-marian"
SMOLVLM_REPO = "artmatch-test/tiny-smolvlm"


@pytest.fixture
def hub_online(monkeypatch: pytest.MonkeyPatch) -> None:
    """The suite runs with HF_HUB_OFFLINE=1 so nothing reaches the internet; these tests reach only the stub."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)


@pytest.fixture
def repos(tmp_path: Path, tiny_clip: TinyClip, tiny_llava_path: Path, tiny_marian_path: Path) -> dict[str, Path]:
    clip = tmp_path / "hub" / "clip"
    clip.mkdir(parents=True)
    shutil.copyfile(tiny_clip.weights, clip / "open_clip_pytorch_model.bin")
    (clip / "README.md").write_text("not wanted: only the checkpoint is fetched")
    return {CLIP_REPO: clip, LLAVA_REPO: tiny_llava_path, MARIAN_REPO: tiny_marian_path}


def hub_settings(
    tmp_path: Path, stub: HubStub | None, tiny_clip: TinyClip, minilm_path: str, **extra: Any
) -> ModelSettings:
    return ModelSettings(
        clip_arch=tiny_clip.arch,
        clip_config=tiny_clip.config_json,
        clip_weights=CLIP_REPO,
        text_model=minilm_path,  # a local path: never fetched
        llava_path=LLAVA_REPO,
        translation_models={"ru": MARIAN_REPO},
        models_dir=tmp_path / "models",
        hub_endpoint=stub.url if stub else "http://127.0.0.1:9",
        **extra,
    )


def same_tree(a: Path, b: Path) -> bool:
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    return bool(files) and all((b / f).read_bytes() == (a / f).read_bytes() for f in files)


def test_first_start_downloads_and_second_fetches_nothing(
    tmp_path: Path, repos: dict[str, Path], tiny_clip: TinyClip, minilm_path: str, hub_online: None
) -> None:
    with HubStub(repos) as stub:
        settings = ensure_models(hub_settings(tmp_path, stub, tiny_clip, minilm_path))
        models = tmp_path / "models"
        assert settings.clip_weights == str(models / CLIP_REPO / "open_clip_pytorch_model.bin")
        assert Path(settings.clip_weights).read_bytes() == tiny_clip.weights.read_bytes()
        assert not (models / CLIP_REPO / "README.md").exists()  # only the file the setting names
        assert settings.llava_path == str(models / LLAVA_REPO)
        assert same_tree(repos[LLAVA_REPO], models / LLAVA_REPO)
        assert settings.translation_models == {"ru": str(models / MARIAN_REPO)}
        assert same_tree(repos[MARIAN_REPO], models / MARIAN_REPO)
        assert settings.text_model == minilm_path
        fetched = {s.path for s in stub.file_gets()}
        assert f"/{LLAVA_REPO}/resolve/{stub.commit}/config.json" in fetched or any(
            p.startswith(f"/{LLAVA_REPO}/resolve/") for p in fetched
        )
        assert all("MiniLM" not in s.path for s in stub.seen)

        stub.seen.clear()
        again = ensure_models(hub_settings(tmp_path, stub, tiny_clip, minilm_path))
        assert stub.seen == []  # present: not even a metadata request
        assert again.llava_path == settings.llava_path and again.clip_weights == settings.clip_weights


def test_the_downloaded_models_load(
    tmp_path: Path, repos: dict[str, Path], tiny_clip: TinyClip, minilm_path: str, hub_online: None
) -> None:
    from inference.factory import build_models

    with HubStub(repos) as stub:
        settings = ensure_models(
            hub_settings(tmp_path, stub, tiny_clip, minilm_path, device="cpu", quantization="none", max_new_tokens=4)
        )
    if tiny_clip.tokenizer is not None:
        settings = settings.model_copy(update={"clip_tokenizer": str(tiny_clip.tokenizer)})
    models = build_models(settings)
    models.load()
    assert models.translators["ru"] is not None


def test_only_the_chosen_describer_is_fetched(
    tmp_path: Path,
    repos: dict[str, Path],
    tiny_smolvlm_path: Path,
    tiny_clip: TinyClip,
    minilm_path: str,
    hub_online: None,
) -> None:
    """The CPU profile (INFERENCE_DESCRIBER=smolvlm) downloads SmolVLM and never LLaVA, even with a LLaVA hub id
    left in the environment; what arrives describes a photo."""
    from inference.smolvlm_describer import SmolVLMDescriber
    from tests.factories import synthetic_artwork

    cpu = {"describer": "smolvlm", "smolvlm_path": SMOLVLM_REPO}
    with HubStub({**repos, SMOLVLM_REPO: tiny_smolvlm_path}) as stub:
        settings = ensure_models(hub_settings(tmp_path, stub, tiny_clip, minilm_path, **cpu))
    fetched = {s.path.split("/resolve/")[0] for s in stub.file_gets()}
    assert f"/{SMOLVLM_REPO}" in fetched and f"/{LLAVA_REPO}" not in fetched
    assert settings.smolvlm_path == str(tmp_path / "models" / SMOLVLM_REPO)
    assert same_tree(tiny_smolvlm_path, Path(settings.smolvlm_path))
    assert settings.llava_path == LLAVA_REPO  # untouched: nothing will load it

    again = ensure_models(hub_settings(tmp_path, None, tiny_clip, minilm_path, offline=True, **cpu))
    assert again.smolvlm_path == settings.smolvlm_path
    describer = SmolVLMDescriber(again.smolvlm_path, "Describe the artwork.", max_new_tokens=4)
    assert describer.describe([synthetic_artwork(1)])[0]


def test_an_interrupted_download_resumes(
    tmp_path: Path, repos: dict[str, Path], tiny_clip: TinyClip, minilm_path: str, hub_online: None
) -> None:
    biggest = max(repos[LLAVA_REPO].rglob("*"), key=lambda p: p.stat().st_size if p.is_file() else -1)
    name = str(biggest.relative_to(repos[LLAVA_REPO]))
    from huggingface_hub import constants

    cut = biggest.stat().st_size * 3 // 4
    assert cut > constants.DOWNLOAD_CHUNK_SIZE  # the client writes whole chunks: the cut must come after one
    with HubStub(repos, cut_after={name: cut}) as stub:
        settings = ensure_models(hub_settings(tmp_path, stub, tiny_clip, minilm_path))
    gets = [s for s in stub.file_gets() if s.path.endswith(f"/{LLAVA_REPO}/resolve/{stub.commit}/{name}")]
    assert len(gets) == 2 and gets[0].range is None
    assert gets[1].range == f"bytes={constants.DOWNLOAD_CHUNK_SIZE}-"  # the second asks only for the rest
    assert (Path(settings.llava_path or "") / name).read_bytes() == biggest.read_bytes()


def test_a_start_that_failed_mid_download_keeps_the_finished_files(
    tmp_path: Path, repos: dict[str, Path], tiny_clip: TinyClip, minilm_path: str, hub_online: None
) -> None:
    """huggingface_hub 2.x drops a plain-HTTP partial file when its process gives up (its temp names are unique per
    process), so the next start fetches that file again from its start, but none of the files already finished."""
    biggest = max(repos[LLAVA_REPO].rglob("*"), key=lambda p: p.stat().st_size if p.is_file() else -1)
    name = str(biggest.relative_to(repos[LLAVA_REPO]))
    with HubStub(repos, cut_after={name: biggest.stat().st_size * 3 // 4}, down_after_cut=True) as stub:
        with pytest.raises(Exception):  # noqa: B017, PT011 - whatever the client raises, the start fails
            ensure_models(hub_settings(tmp_path, stub, tiny_clip, minilm_path))
        assert not (tmp_path / "models" / LLAVA_REPO / MARKER).exists()
        stub.seen.clear()
        settings = ensure_models(hub_settings(tmp_path, stub, tiny_clip, minilm_path))
    llava_gets = [g.path for g in stub.file_gets() if g.path.startswith(f"/{LLAVA_REPO}/")]
    assert llava_gets == [f"/{LLAVA_REPO}/resolve/{stub.commit}/{name}"]
    assert (Path(settings.llava_path or "") / name).read_bytes() == biggest.read_bytes()
    assert same_tree(repos[LLAVA_REPO], Path(settings.llava_path or ""))


def test_offline_start_names_every_missing_model(
    tmp_path: Path, repos: dict[str, Path], tiny_clip: TinyClip, minilm_path: str, hub_online: None
) -> None:
    with HubStub(repos) as stub:
        with pytest.raises(ModelsMissing) as caught:
            ensure_models(hub_settings(tmp_path, stub, tiny_clip, minilm_path, offline=True))
        assert stub.seen == []
    message = str(caught.value)
    models = tmp_path / "models"
    assert f"INFERENCE_LLAVA_PATH={LLAVA_REPO}" in message and str(models / LLAVA_REPO) in message
    assert f"INFERENCE_CLIP_WEIGHTS={CLIP_REPO}" in message
    assert f"INFERENCE_TRANSLATION_MODELS={MARIAN_REPO}" in message
    assert "INFERENCE_OFFLINE=1" in message and "MiniLM" not in message


def test_offline_start_uses_what_is_present(
    tmp_path: Path, repos: dict[str, Path], tiny_clip: TinyClip, minilm_path: str, hub_online: None
) -> None:
    with HubStub(repos) as stub:
        ensure_models(hub_settings(tmp_path, stub, tiny_clip, minilm_path))
    settings = ensure_models(hub_settings(tmp_path, None, tiny_clip, minilm_path, offline=True))
    assert settings.llava_path == str(tmp_path / "models" / LLAVA_REPO)
    (tmp_path / "models" / LLAVA_REPO / "config.json").unlink()  # damaged: no longer counts as present
    with pytest.raises(ModelsMissing, match="INFERENCE_LLAVA_PATH"):
        ensure_models(hub_settings(tmp_path, None, tiny_clip, minilm_path, offline=True))
    assert (tmp_path / "models" / LLAVA_REPO / MARKER).is_file()


def test_cli_downloads_then_offline_cli_succeeds(
    tmp_path: Path, repos: dict[str, Path], tiny_clip: TinyClip, minilm_path: str
) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("INFERENCE_", "HF_", "TRANSFORMERS_"))},
        "HF_HOME": str(tmp_path / "hf-home"),
        "INFERENCE_MODELS_DIR": str(tmp_path / "models"),
        "INFERENCE_CLIP_ARCH": tiny_clip.arch,
        "INFERENCE_CLIP_CONFIG": str(tiny_clip.config_json),
        "INFERENCE_CLIP_WEIGHTS": CLIP_REPO,
        "INFERENCE_TEXT_MODEL": minilm_path,
        "INFERENCE_LLAVA_PATH": LLAVA_REPO,
        "INFERENCE_TRANSLATION_MODELS": f'{{"ru": "{MARIAN_REPO}"}}',
    }
    command = [sys.executable, "-m", "inference.models_fetch"]
    offline = subprocess.run(command, env={**env, "INFERENCE_OFFLINE": "1"}, capture_output=True, text=True)
    assert offline.returncode == 1
    assert f"INFERENCE_LLAVA_PATH={LLAVA_REPO}" in offline.stderr and "Traceback" not in offline.stderr
    with HubStub(repos) as stub:
        online = subprocess.run(command, env={**env, "HF_ENDPOINT": stub.url}, capture_output=True, text=True)
    assert online.returncode == 0, online.stderr
    assert f"llava_path: {tmp_path / 'models' / LLAVA_REPO}" in online.stdout
    assert "downloading artmatch-test/tiny-llava" in online.stderr  # the progress log
    assert stub.file_gets()
    again = subprocess.run(command, env={**env, "INFERENCE_OFFLINE": "1"}, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr


def test_service_start_fails_offline_naming_the_missing_model(tmp_path: Path, minilm_path: str) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("INFERENCE_")},
        "INFERENCE_TOKEN": "a-test-token",
        "INFERENCE_GALLERY_DIR": str(tmp_path / "gallery"),
        "INFERENCE_MODELS_DIR": str(tmp_path / "models"),
        "INFERENCE_TEXT_MODEL": minilm_path,
        "INFERENCE_LLAVA_PATH": LLAVA_REPO,
        "INFERENCE_TRANSLATION_MODELS": "{}",
        "INFERENCE_OFFLINE": "1",
    }
    started = subprocess.run(
        [sys.executable, "-m", "inference.serve", "--port", "0"], env=env, capture_output=True, text=True, timeout=120
    )
    assert started.returncode == 1
    assert f"INFERENCE_LLAVA_PATH={LLAVA_REPO}" in started.stderr
    assert str(tmp_path / "models" / LLAVA_REPO) in started.stderr


def test_the_service_downloads_its_models_on_first_start_and_serves(
    tmp_path: Path, repos: dict[str, Path], tiny_gallery: Path, tiny_model_env: dict[str, str]
) -> None:
    """The real `python -m inference.serve`: LLaVA and the translator are hub ids, fetched before the models load;
    the next start, offline, finds them and fetches nothing."""
    import httpx

    from tests.service_process import ServiceProcess

    env = {
        **tiny_model_env,
        "INFERENCE_TOKEN": "a-test-token",
        "INFERENCE_LLAVA_PATH": LLAVA_REPO,
        "INFERENCE_TRANSLATION_MODELS": f'{{"ru": "{MARIAN_REPO}"}}',
        "INFERENCE_MODELS_DIR": str(tmp_path / "models"),
        "HF_HOME": str(tmp_path / "hf-home"),
        "HF_HUB_OFFLINE": "0",  # ServiceProcess sets 1; this start may reach the stub, nothing else exists
    }
    with HubStub(repos) as stub:
        service = ServiceProcess(tiny_gallery, {**env, "HF_ENDPOINT": stub.url}, tmp_path / "first.log")
        service.start(timeout=180)
        try:
            headers = {"Authorization": "Bearer a-test-token"}
            translated = httpx.post(
                f"{service.url}/v1/translate", json={"text": "a calm sea", "language": "ru"}, headers=headers
            )
        finally:
            service.stop()
    fetched = {s.path.split("/resolve/")[0] for s in stub.file_gets()}
    assert fetched == {f"/{LLAVA_REPO}", f"/{MARIAN_REPO}"}
    assert translated.status_code == 200, translated.text
    assert (tmp_path / "models" / LLAVA_REPO / MARKER).is_file()
    assert "downloading artmatch-test/tiny-llava" in service.log_tail(100_000)

    again = ServiceProcess(tiny_gallery, {**env, "INFERENCE_OFFLINE": "1"}, tmp_path / "second.log")
    again.start(timeout=180)
    again.stop()
    assert "downloading" not in again.log_tail(100_000)
