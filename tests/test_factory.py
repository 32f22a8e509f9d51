"""The model factory and registry: names, caches, and failing fast without network.

Models are the tiny transformers CLIP of ``tiny_clip`` saved as a folder, and the same
files laid out as a Hugging Face cache entry (what a download leaves behind), so the hub
path is exercised for real without any network.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import make_image

from clipprobe_ext.encoders import factory, registry
from clipprobe_ext.errors import ModelError

ROOT = Path(__file__).resolve().parents[1]
UNREACHABLE = "http://127.0.0.1:9"  # nothing listens on the discard port: refused at once


@pytest.fixture(autouse=True)
def _fresh_caches():
    factory.clear_cache()
    yield
    factory.clear_cache()


@pytest.fixture()
def hub_cache(tmp_path, tiny_hf_clip_dir, monkeypatch) -> Path:
    """A Hugging Face cache holding ``tiny-org/tiny-clip`` (snapshot + refs/main)."""
    root = tmp_path / "hub"
    repo = root / "models--tiny-org--tiny-clip"
    snapshot = repo / "snapshots" / "0123456789abcdef"
    shutil.copytree(tiny_hf_clip_dir, snapshot)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123456789abcdef")
    monkeypatch.setattr(registry, "hub_cache_dir", lambda: str(root))
    return root


def test_folder_loads_and_is_cached_by_name_device_dtype(tiny_hf_clip_dir):
    a = factory.load_encoder(str(tiny_hf_clip_dir), "cpu")
    assert factory.load_encoder(str(tiny_hf_clip_dir), "cpu") is a
    b = factory.load_encoder(str(tiny_hf_clip_dir), "cpu", torch.float64)
    assert b is not a and next(b.model.parameters()).dtype == torch.float64
    assert b.cache is not a.cache  # float64 and float32 embeddings never mix


def test_text_cache_follows_the_weights_not_the_name(tmp_path, tiny_hf_clip_dir):
    import tiny_clip

    folder = tmp_path / "model"
    shutil.copytree(tiny_hf_clip_dir, folder)
    first = factory.load_encoder(str(folder), "cpu")
    first.encode_texts(["a red umbrella"])
    time.sleep(0.01)
    tiny_clip.save_tiny_hf_clip(folder, seed=1)  # other weights under the same name
    second = factory.load_encoder(str(folder), "cpu")
    assert second is not first and second.cache is not first.cache
    e1, _ = first.encode_texts(["a red umbrella"])
    e2, _ = second.encode_texts(["a red umbrella"])
    assert not torch.allclose(e1, e2)  # a name-keyed cache would have returned e1


def test_hub_name_loads_from_the_cache_without_network(hub_cache, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", UNREACHABLE)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(registry, "probe", lambda url: pytest.fail(f"network call to {url}"))
    assert registry.is_local("tiny-org/tiny-clip")
    encoder = factory.load_encoder("tiny-org/tiny-clip", "cpu")
    assert encoder.encode_images([make_image(1)]).shape[0] == 1
    assert "0123456789abcdef" in registry.files_stamp("tiny-org/tiny-clip")
    assert encoder.ref.source.endswith("0123456789abcdef")


def test_local_models(hub_cache, tiny_hf_clip_dir):
    found = registry.local_models(["openai/clip-vit-large-patch14", str(tiny_hf_clip_dir)])
    assert found == [str(tiny_hf_clip_dir), "tiny-org/tiny-clip"]
    assert not registry.is_local("openai/clip-vit-large-patch14")
    assert not registry.is_local("openai-clip:ViT-B/32") or os.path.isfile(
        os.path.expanduser("~/.cache/clip/ViT-B-32.pt")
    )


def test_incomplete_cache_entry_is_not_local(hub_cache):
    weights = next((hub_cache / "models--tiny-org--tiny-clip" / "snapshots").iterdir())
    for f in weights.iterdir():
        if f.name.startswith(("model.", "pytorch_model")):
            f.unlink()
    assert not registry.is_local("tiny-org/tiny-clip")


def test_not_local_and_hub_unreachable_fails_fast_and_quietly(monkeypatch, capfd, tmp_path):
    """Before: 115 s of hub retries (and 'Retrying in 8s' warnings) before the message."""
    monkeypatch.setenv("HF_ENDPOINT", UNREACHABLE)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(registry, "hub_cache_dir", lambda: str(tmp_path))
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "ENDPOINT", UNREACHABLE)
    start = time.monotonic()
    with pytest.raises(ModelError, match="not available offline.*could not be reached"):
        factory.load_encoder("openai/clip-vit-large-patch14", "cpu")
    assert time.monotonic() - start < 5  # a behaviour bound (no retry loop), not a benchmark
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_offline_env_fails_at_once_without_any_request(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(registry, "hub_cache_dir", lambda: str(tmp_path))
    monkeypatch.setattr(registry, "probe", lambda url: pytest.fail(f"network call to {url}"))
    with pytest.raises(ModelError, match="offline mode is on"):
        factory.load_encoder("openai/clip-vit-large-patch14", "cpu")
    with pytest.raises(ModelError, match="not available offline"):
        factory.load_encoder("openai/clip-vit-large-patch14", "cpu", allow_download=False)


@pytest.mark.parametrize(
    ("name", "needle"),
    [
        ("./no/such/folder", "does not exist"),
        ("openai-clip:", "Name the model"),
        ("openai-clip:NoSuchNet", "neither a file nor an openai clip model"),
        ("", "No CLIP model"),
    ],
)
def test_errors(name, needle):
    with pytest.raises(ModelError, match=needle):
        factory.load_encoder(name, "cpu")


def test_file_is_not_a_folder(tmp_path):
    path = tmp_path / "weights.bin"
    path.write_bytes(b"x")
    with pytest.raises(ModelError, match="is a file"):
        factory.load_encoder(str(path), "cpu")


def test_openai_clip_file(tmp_path):
    """``openai-clip:PATH`` through ``clip.load``; the same numbers as the model itself."""
    import clip
    import tiny_clip

    path = tiny_clip.save_openai_clip_file(tmp_path / "tiny.pt")
    assert registry.is_local(f"openai-clip:{path}")
    encoder = factory.load_encoder(f"openai-clip:{path}", "cpu")
    assert factory.load_encoder(f"openai-clip:{path}", "cpu") is encoder
    reference, preprocess = clip.load(str(path), device="cpu", jit=False)
    with torch.no_grad():
        want = reference.encode_image(preprocess(make_image(2))[None])[0]
    got = encoder.encode_images([make_image(2)])[0]
    assert torch.allclose(got, want / want.norm(), atol=1e-5)


def test_cli_first_run_without_network_prints_one_line(tmp_path):
    """``python -m clipprobe_ext`` with no network and no cache: the message, nothing else."""
    image = tmp_path / "a.png"
    make_image(1).save(image)
    env = {
        k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    }
    env.update(HF_ENDPOINT=UNREACHABLE, HF_HOME=str(tmp_path / "hf"), PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "-m", "clipprobe_ext", str(image), "--prompt", "a cat", "--device", "cpu"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    assert proc.returncode == 1 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "not available offline" in lines[0] and "could not be reached" in lines[0]
