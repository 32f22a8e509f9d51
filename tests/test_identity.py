"""One model identity (``ModelRef``) for every cache, and what lives on disk across runs.

Two different models under one name must never share a text-cache entry, reference
banks or a calibration; one model under two names may.  The embedding store keeps the
banks and the phrases between processes, and a cache location that cannot hold a store
costs nothing but the speed.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import fitless_copy, folder_ref
from presence_formula import mapped
from test_presence import _independent_presence
from trained_clip import CAPTIONS, picture

from clipprobe_ext.analysis.calibration import (
    CALIBRATION_FILE,
    PresenceCalibration,
    calibration_for,
    save_user_calibration,
    user_calibration_path,
    write_calibration,
)
from clipprobe_ext.analysis.references import (
    IMAGE_COUNT,
    NEUTRAL_PHRASES,
    forget_banks,
    reference_banks,
)
from clipprobe_ext.encoders import factory, registry
from clipprobe_ext.encoders.base import TextEmbeddingCache
from clipprobe_ext.encoders.hf import HFClipEncoder
from clipprobe_ext.encoders.identity import weights_fingerprint
from clipprobe_ext.probe import ProbeOptions, analyze
from clipprobe_ext.store import default_store_path, open_store

ROOT = Path(__file__).resolve().parents[1]
PROMPT = ", ".join(CAPTIONS)
RANKING = ProbeOptions(rounds=2, contribution=False, prune=False)


@pytest.fixture(autouse=True)
def _fresh_factory():
    """No loaded encoder and no in-memory bank from another test: what a test counts is
    its own."""
    factory.clear_cache()
    forget_banks()
    yield
    factory.clear_cache()
    forget_banks()


def unit(t: torch.Tensor) -> torch.Tensor:
    t = t.detach().float()
    return t / t.norm(dim=-1, keepdim=True)


def bank_phrases_of(folder) -> torch.Tensor:
    """The bank phrases through a fresh transformers model: nothing of ClipProbe's."""
    from transformers import CLIPModel, CLIPProcessor

    model = CLIPModel.from_pretrained(folder)
    processor = CLIPProcessor.from_pretrained(folder)
    inputs = processor(text=list(NEUTRAL_PHRASES), return_tensors="pt", padding=True)
    with torch.no_grad():
        return unit(model.get_text_features(**inputs))


# -- identity -----------------------------------------------------------------------------


def test_two_models_under_one_name_share_nothing(tiny_hf_clip_dir, trained_clip_dir):
    name = "hf:my-clip"
    a = HFClipEncoder.from_pretrained(str(tiny_hf_clip_dir), "cpu", model_id=name)
    b = HFClipEncoder.from_pretrained(str(trained_clip_dir), "cpu", model_id=name)
    assert a.ref.name == b.ref.name == name
    assert a.ref != b.ref and a.ref.key != b.ref.key
    assert a.ref.fingerprint != b.ref.fingerprint
    # text cache: separate, and b's phrases are b's own
    assert a.cache is not b.cache
    a.encode_texts(["a red circle"])
    b.encode_texts(["a red circle"])
    assert b.stats.text_forwards == 1
    # banks: each model's own, as its own weights compute them
    banks_a, banks_b = reference_banks(a), reference_banks(b)
    torch.testing.assert_close(
        torch.from_numpy(banks_b.phrases).float(),
        bank_phrases_of(trained_clip_dir),
        atol=1e-5,
        rtol=0,
    )
    torch.testing.assert_close(
        torch.from_numpy(banks_a.phrases).float(),
        bank_phrases_of(tiny_hf_clip_dir),
        atol=1e-5,
        rtol=0,
    )
    # calibration: a user's fit for a's weights is not b's (both under the one name; their
    # folders' own fits set aside)
    fit = PresenceCalibration(0.3, 1.1, "a fit for the tiny model")
    save_user_calibration(a.ref, fit)
    assert calibration_for(folder_ref(None, a.ref.fingerprint, name)).seen_z == 1.1
    assert calibration_for(folder_ref(None, b.ref.fingerprint, name)) is None


def test_a_folder_retrained_in_place_is_another_model(tmp_path, tiny_hf_clip_dir, trained_clip_dir):
    folder = tmp_path / "model"
    shutil.copytree(tiny_hf_clip_dir, folder)
    first = factory.load_encoder(str(folder), "cpu")
    before = first.ref
    shutil.rmtree(folder)
    shutil.copytree(trained_clip_dir, folder)  # other weights, the same name
    second = factory.load_encoder(str(folder), "cpu")
    assert second is not first
    assert second.ref.name == before.name and second.ref.key != before.key
    assert reference_banks(second).phrases.tobytes() != reference_banks(first).phrases.tobytes()


def test_one_model_under_two_names_is_one_identity(tmp_path, tiny_hf_clip_dir, trained_clip_dir):
    copy = shutil.copytree(tiny_hf_clip_dir, tmp_path / "elsewhere")
    a = factory.load_encoder(str(tiny_hf_clip_dir), "cpu")
    b = factory.load_encoder(str(copy), "cpu")
    assert a is not b and a.model_id != b.model_id
    assert a.ref.fingerprint == b.ref.fingerprint and a.ref.key == b.ref.key
    a.encode_texts(["a red umbrella"])
    b.encode_texts(["a red umbrella"])
    assert b.stats.text_forwards == 0  # the same weights: a's entry serves b
    # another dtype is another identity: its embeddings are not the same numbers
    c = factory.load_encoder(str(copy), "cpu", torch.float64)
    assert c.ref.key != a.ref.key and c.ref.dtype == "float64"


def test_the_fingerprint_reads_the_weights_not_the_loader(tiny_hf_clip_dir):
    """The fast folder load gives from_pretrained's weights, so the same identity."""
    from transformers import CLIPModel, CLIPProcessor

    fast = HFClipEncoder.from_pretrained(str(tiny_hf_clip_dir), "cpu")
    slow = HFClipEncoder(
        CLIPModel.from_pretrained(tiny_hf_clip_dir),
        CLIPProcessor.from_pretrained(tiny_hf_clip_dir),
        "hf:loaded another way",
        TextEmbeddingCache(),
    )
    assert fast.ref.key == slow.ref.key
    for name, tensor in slow.model.state_dict().items():
        assert torch.equal(fast.model.state_dict()[name], tensor), name
    # one changed value (the last of a tensor: in the sample) changes the fingerprint
    changed = copy.deepcopy(slow.model)
    with torch.no_grad():
        changed.visual_projection.weight[-1, -1] += 1.0
    assert weights_fingerprint(changed) != fast.fingerprint()
    assert weights_fingerprint(copy.deepcopy(slow.model)) == fast.fingerprint()


def test_the_fingerprint_does_not_follow_the_library_s_buffers(tiny_hf_clip_dir):
    """transformers 4.30 (AUTOMATIC1111) keeps ``position_ids`` in the state dict, the
    version Forge runs does not: the same weights must keep one fingerprint (and one fit)."""
    encoder = HFClipEncoder.from_pretrained(str(tiny_hf_clip_dir), "cpu")
    newer = copy.deepcopy(encoder.model)
    for embeddings in (newer.text_model.embeddings, newer.vision_model.embeddings):
        ids = embeddings.position_ids
        del embeddings.position_ids
        embeddings.register_buffer("position_ids", ids, persistent=False)
    assert set(encoder.model.state_dict()) - set(newer.state_dict())  # the buffers differ
    assert weights_fingerprint(newer) == encoder.fingerprint()


def test_the_openai_preprocessing_key_is_the_same_in_every_process(openai_encoder):
    """repr() of clip's preprocess holds a function's address: a key built on it changed
    with every process, so the audit's store never served an openai CLIP twice."""
    code = (
        "import sys; sys.path.insert(0, 'tests'); import tiny_clip; "
        "from clipprobe_ext.encoders.openai_clip import OpenAIClipEncoder; "
        "print(OpenAIClipEncoder(*tiny_clip.tiny_openai_clip()).ref.key)"
    )
    other = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert other.stdout.strip() == openai_encoder.ref.key


def test_moving_an_encoder_keeps_its_identity(hf_encoder):
    key = hf_encoder.ref.key
    assert hf_encoder.to("cpu") is hf_encoder
    assert hf_encoder.ref.key == key and hf_encoder.ref.device == "cpu"


# -- on disk across processes ---------------------------------------------------------------

RUN = """
import json, sys
from PIL import Image
from clipprobe_ext.encoders import load_encoder
from clipprobe_ext.probe import ProbeOptions, analyze

encoder = load_encoder(sys.argv[1], "cpu")
image = Image.open(sys.argv[2]).convert("RGB")
options = ProbeOptions(rounds=2, contribution=False, prune=False)
report = analyze([image], sys.argv[3], encoder, options)
presence = [report.images[0].presence[p.index] for p in report.measurable]
print(json.dumps({"stats": vars(encoder.stats), "presence": presence}))
"""


def run_process(model: Path, image: Path, prompt: str, cache: Path) -> dict:
    env = dict(os.environ, XDG_CACHE_HOME=str(cache), PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "-c", RUN, str(model), str(image), prompt],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_a_second_process_encodes_no_bank_and_no_phrase(trained_clip_dir, tmp_path):
    image = tmp_path / "circle.png"
    picture(0, seed=4242).save(image)
    cache = tmp_path / "cache"
    first = run_process(trained_clip_dir, image, PROMPT, cache)
    # the picture, the bank pictures, the prompt's phrases and the bank phrases
    assert first["stats"]["image_forwards"] == 1 + IMAGE_COUNT
    assert first["stats"]["text_forwards"] == len(CAPTIONS) + len(NEUTRAL_PHRASES)
    second = run_process(trained_clip_dir, image, PROMPT, cache)
    assert second["stats"]["image_forwards"] == 1  # only the picture itself
    assert second["stats"]["text_forwards"] == 0
    np.testing.assert_allclose(second["presence"], first["presence"], atol=1e-6)
    # and what was stored is what the model computes
    np.testing.assert_allclose(
        second["presence"], _independent_presence(trained_clip_dir, picture(0, 4242), CAPTIONS),
        atol=1e-4,
    )  # fmt: skip
    # a new prompt: only its new phrase is encoded, the banks come from the store
    third = run_process(trained_clip_dir, image, PROMPT + ", a purple star", cache)
    assert third["stats"]["image_forwards"] == 1 and third["stats"]["text_forwards"] == 1
    with sqlite3.connect(cache / "clipprobe" / default_store_path().name) as db:
        assert db.execute("SELECT COUNT(*) FROM bank_images").fetchone()[0] == IMAGE_COUNT


def test_the_store_is_shared_by_the_same_weights_under_another_name(trained_clip_dir, tmp_path):
    first = factory.load_encoder(str(trained_clip_dir), "cpu")
    analyze([picture(1, seed=7)], PROMPT, first, RANKING)
    factory.clear_cache()
    forget_banks()  # as in a new process
    other = factory.load_encoder(str(shutil.copytree(trained_clip_dir, tmp_path / "b")), "cpu")
    analyze([picture(1, seed=7)], PROMPT, other, RANKING)
    assert other.stats.image_forwards == 1 and other.stats.text_forwards == 0


# -- a cache location that cannot hold a store --------------------------------------------------


def test_an_unusable_cache_folder_degrades_to_memory(
    trained_clip_dir, tmp_path, monkeypatch, capfd
):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache folder would be")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    assert open_store() is None
    encoder = factory.load_encoder(str(trained_clip_dir), "cpu")
    assert encoder.embedding_store is None
    report = analyze([picture(0, seed=4242)], PROMPT, encoder, RANKING)
    got = [report.images[0].presence[p.index] for p in report.measurable]
    want = _independent_presence(trained_clip_dir, picture(0, 4242), CAPTIONS)
    np.testing.assert_allclose(got, want, atol=1e-4)
    assert encoder.stats.image_forwards == 1 + IMAGE_COUNT
    out, err = capfd.readouterr()
    assert out == "" and err == ""
    assert blocked.read_text() == "a file where the cache folder would be"


def test_a_store_that_fails_mid_run_is_dropped_without_an_error(trained_clip_dir, monkeypatch):
    encoder = factory.load_encoder(str(trained_clip_dir), "cpu")
    store = encoder.embedding_store
    assert store is not None

    def broken(*args, **kwargs):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(store, "put_batch", broken)
    monkeypatch.setattr(store, "put_bank_images", broken)
    ours, _ = encoder.encode_texts(list(NEUTRAL_PHRASES))
    assert encoder.embedding_store is None  # dropped: memory from here on
    torch.testing.assert_close(ours, bank_phrases_of(trained_clip_dir), atol=1e-5, rtol=0)
    report = analyze([picture(2, seed=3)], PROMPT, encoder, RANKING)
    assert report.images[0].presence  # the analysis went on


def test_stored_texts_are_bounded_oldest_first(tmp_path, monkeypatch):
    import clipprobe_ext.store as store_module

    store = store_module.EmbeddingStore(tmp_path / "store.sqlite3")
    for k in range(12):  # one text a second
        monkeypatch.setattr(store_module.time, "time", lambda k=k: 1000.0 + k)
        store.put_batch("w:x|p:y", texts=[(f"{k}", np.full(4, k, dtype=np.float32))])
    assert store.trim_texts(12) == 0
    assert store.trim_texts(10) == 12 - 8  # down to 80 % of the bound
    kept = store.text_embeddings("w:x|p:y", [str(k) for k in range(12)])
    assert sorted(kept, key=int) == [str(k) for k in range(4, 12)]
    np.testing.assert_array_equal(kept["7"], np.full(4, 7, dtype=np.float32))
    store.close()
    # open_store trims a store over the bound when it opens it
    monkeypatch.setattr(store_module, "MAX_TEXTS", 5)
    opened = open_store(tmp_path / "store.sqlite3")
    assert opened.count("texts") == 4


# -- calibration by weights ---------------------------------------------------------------------


def test_a_user_fit_is_found_by_the_weights_fingerprint(trained_clip_dir, tmp_path):
    fit = PresenceCalibration(-1.0, 0.0, "a fit on my pictures", -2.0, -1.0, -1.5)
    encoder = factory.load_encoder(str(trained_clip_dir), "cpu")
    path = save_user_calibration(encoder.ref, fit)
    assert path == user_calibration_path(encoder.ref.fingerprint)
    assert path.parent == Path(os.environ["XDG_CACHE_HOME"]) / "clipprobe" / "calibrations"
    # the same weights under another name find it (a copy without the folder's own fit)
    other = factory.load_encoder(str(fitless_copy(trained_clip_dir, tmp_path / "b")), "cpu")
    found = calibration_for(other.ref)
    assert found.to_dict() | {"source": ""} == fit.to_dict() | {"source": ""}
    assert found.source.startswith("your fit for these weights (a fit on my pictures")
    # and the analysis uses it, and says so
    image = picture(0, seed=4242)
    report = analyze([image], PROMPT, other, RANKING)
    assert "your fit for these weights" in report.reference
    z, own_z = _independent_presence(trained_clip_dir, image, CAPTIONS, raw_z=True)
    got = [report.images[0].presence[p.index] for p in report.measurable]
    want = np.minimum(mapped(z, -1.0, 0.0), mapped(own_z, -2.0, -1.0))
    np.testing.assert_allclose(got, want, atol=1e-4)


def test_the_model_folders_own_fit_comes_before_the_users(trained_clip_dir, tmp_path):
    folder = shutil.copytree(trained_clip_dir, tmp_path / "own")
    encoder = factory.load_encoder(str(folder), "cpu")
    save_user_calibration(encoder.ref, PresenceCalibration(0.2, 0.9, "user"))
    write_calibration(folder, 0.4, 1.4, "the folder's own")
    assert calibration_for(encoder.ref).source == "this model's own fit (the folder's own)"
    (folder / CALIBRATION_FILE).write_text("not json")  # unreadable: the next in line
    assert calibration_for(encoder.ref).seen_z == 0.9
    user_calibration_path(encoder.ref.fingerprint).unlink()
    assert calibration_for(encoder.ref) is None  # uncalibrated


# -- the offline rule -----------------------------------------------------------------------------


@pytest.mark.parametrize("variable", ["HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"])
@pytest.mark.parametrize(
    ("value", "offline"),
    [("1", True), ("true", True), ("TRUE", True), ("yes", True), ("on", True), (" On ", True),
     ("0", False), ("false", False), ("no", False), ("off", False), ("", False)],
)  # fmt: skip
def test_the_offline_rule(monkeypatch, variable, value, offline):
    from clipprobe_ext.webui import model_choices

    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(variable, value)
    asked = []
    monkeypatch.setattr(registry, "_probe_answers", {})

    def head(url, **kwargs):
        asked.append(url)
        raise ConnectionError("no network in the tests")

    import requests

    monkeypatch.setattr(requests, "head", head)
    assert registry.offline() is offline
    assert model_choices.offline_by_environment() is offline
    # the one probe: offline asks nothing, online asks (and finds nothing here)
    assert model_choices.reachable() is False
    assert registry.probe("https://huggingface.co/x/config.json") is None
    assert bool(asked) is not offline
