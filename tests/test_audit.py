"""The folder audit engine: reading, the embedding store, aggregation.

Every count of model work is read from the encoder's own counters (``stats``), never
from timings; every number the aggregation reports on the trained tiny CLIP is checked
against an independent computation with transformers' ``CLIPModel`` directly.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from conftest import make_image
from PIL import Image, PngImagePlugin
from presence_formula import expected_presence
from test_infotext import exif_with_user_comment
from trained_clip import picture

from clipprobe_ext.analysis.references import (
    IMAGE_COUNT,
    NEUTRAL_PHRASES,
    forget_banks,
    reference_images,
)
from clipprobe_ext.analysis.verdict import NOT_SEEN, SEEN
from clipprobe_ext.audit.aggregate import normalise
from clipprobe_ext.audit.evidence import PhraseEvidence
from clipprobe_ext.audit.pipeline import AuditOptions, run_audit
from clipprobe_ext.errors import ClipProbeError
from clipprobe_ext.store import SCHEMA_VERSION, EmbeddingStore

SETTINGS = "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 96x96"


@pytest.fixture(autouse=True)
def _fresh_banks():
    """Every test starts without in-memory reference banks (they are cached per model)."""
    forget_banks()
    yield
    forget_banks()


def save_png(path: Path, image: Image.Image, prompt: str) -> Path:
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", f"{prompt}\nNegative prompt: blurry, ugly\n{SETTINGS}")
    image.save(path, pnginfo=info)
    return path


def save_jpeg(path: Path, image: Image.Image, prompt: str) -> Path:
    text = f"{prompt}\nNegative prompt: blurry\n{SETTINGS}"
    image.save(path, exif=exif_with_user_comment(b"UNICODE\x00" + text.encode("utf-16-be")))
    return path


PROMPTS = ["masterpiece, best quality, a red circle", "(Masterpiece:1.2), a blue square, 8k"]


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    """Six PNGs and one JPEG with parameters, one PNG without, one broken file, a text file."""
    out = tmp_path / "outputs"
    out.mkdir()
    for i in range(6):
        save_png(out / f"{i:05}.png", make_image(i), PROMPTS[i % 2])
    save_jpeg(out / "00006.jpg", make_image(6), PROMPTS[0])
    make_image(7).save(out / "no-parameters.png")
    (out / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    (out / "notes.txt").write_text("not a picture")
    return out


def options(tmp_path: Path, **kw) -> AuditOptions:
    kw.setdefault("cache", str(tmp_path / "store.sqlite3"))
    kw.setdefault("batch_size", 3)
    return AuditOptions(**kw)


def comparable(report) -> dict:
    """The report without what legitimately differs between runs (timing, work done)."""
    data = report.to_dict()
    for key in ("stats", "notes", "store", "folders"):
        data.pop(key)
    return data


def assert_same(a: dict, b: dict) -> None:
    """Equal, floats to 1e-5 (a batch of other pictures may round the last bits apart)."""
    assert type(a) is type(b) or {type(a), type(b)} <= {int, float}
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            assert_same(a[k], b[k])
    elif isinstance(a, list):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_same(x, y)
    elif isinstance(a, float):
        assert a == pytest.approx(b, abs=1e-5)
    else:
        assert a == b


def test_reads_pictures_and_lists_bad_files_without_failing(folder, hf_encoder, tmp_path):
    report = run_audit([folder], hf_encoder, options(tmp_path))
    assert report.stats.files == 9  # the text file is not an image
    assert report.stats.pictures == 7 and report.prompts == 2
    assert [Path(s.path).name for s in report.no_parameters] == ["no-parameters.png"]
    assert [Path(s.path).name for s in report.unreadable] == ["broken.png"]
    # the JPEG's EXIF prompt counts with the PNGs of the same prompt
    phrase = report.phrase("masterpiece")
    assert phrase is not None and phrase.prompts == 2 and phrase.pictures == 7
    assert report.phrase("a red circle").pictures == 4
    assert report.phrase("8k").pictures == 3
    # the pictures, and the presence score's reference pictures once
    assert hf_encoder.stats.image_forwards == 7 + IMAGE_COUNT


def test_phrases_are_normalised_case_whitespace_and_weights():
    assert normalise("  Best   Quality ") == "best quality"


def test_a_second_run_encodes_nothing(folder, hf_encoder, tmp_path):
    first = run_audit([folder], hf_encoder, options(tmp_path))
    images, texts = hf_encoder.stats.image_forwards, hf_encoder.stats.text_forwards
    # each distinct phrase once (masterpiece, best quality, a red circle, a blue square,
    # 8k) and the reference banks once: nothing per picture
    assert images == 7 + IMAGE_COUNT and texts == 5 + len(NEUTRAL_PHRASES)
    hf_encoder.cache.clear()  # no help from the in-memory caches: only the store
    forget_banks()
    second = run_audit([folder], hf_encoder, options(tmp_path))
    assert hf_encoder.stats.image_forwards == images
    assert hf_encoder.stats.text_forwards == texts
    assert second.stats.encoded == 0 and second.stats.from_store == 7
    assert second.stats.text_encodes == 0
    assert_same(comparable(first), comparable(second))


def test_a_fresh_encoder_process_reuses_the_store(folder, tiny_hf_clip_dir, tmp_path):
    from clipprobe_ext.encoders.hf import HFClipEncoder

    run_audit(
        [folder], HFClipEncoder.from_pretrained(str(tiny_hf_clip_dir), "cpu"), options(tmp_path)
    )
    forget_banks()  # as in a new process: the banks come from the store too
    fresh = HFClipEncoder.from_pretrained(str(tiny_hf_clip_dir), "cpu")
    report = run_audit([folder], fresh, options(tmp_path))
    assert fresh.stats.image_forwards == 0 and fresh.stats.text_forwards == 0
    assert report.stats.from_store == 7


def test_moved_and_copied_pictures_cost_no_encode(folder, hf_encoder, tmp_path):
    run_audit([folder], hf_encoder, options(tmp_path))
    before = hf_encoder.stats.image_forwards
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    shutil.move(folder / "00003.png", moved / "renamed.png")
    copy = tmp_path / "second-folder"
    shutil.copytree(folder, copy)
    report = run_audit([moved, copy], hf_encoder, options(tmp_path))
    assert hf_encoder.stats.image_forwards == before
    assert report.stats.encoded == 0 and report.stats.from_store == 7


def test_an_edited_file_is_encoded_again(folder, hf_encoder, tmp_path):
    run_audit([folder], hf_encoder, options(tmp_path))
    before = hf_encoder.stats.image_forwards
    save_png(folder / "00000.png", make_image(100), PROMPTS[0])  # new pixels, same name
    report = run_audit([folder], hf_encoder, options(tmp_path))
    assert hf_encoder.stats.image_forwards == before + 1
    assert report.stats.encoded == 1


def test_another_model_does_not_reuse_embeddings(folder, hf_encoder, trained_clip_dir, tmp_path):
    from clipprobe_ext.encoders.hf import HFClipEncoder

    run_audit([folder], hf_encoder, options(tmp_path))
    other = HFClipEncoder.from_pretrained(str(trained_clip_dir), "cpu")
    run_audit([folder], other, options(tmp_path))
    assert other.stats.image_forwards == 7 + IMAGE_COUNT  # its own banks too


def test_a_store_of_another_version_is_rebuilt(folder, hf_encoder, tmp_path):
    path = tmp_path / "store.sqlite3"
    first = run_audit([folder], hf_encoder, options(tmp_path))
    with sqlite3.connect(path) as conn:  # as an older ClipProbe would have left it
        conn.execute(
            "UPDATE meta SET value = ? WHERE key LIKE '%schema%'", (str(SCHEMA_VERSION - 1),)
        )
        conn.execute("UPDATE images SET vector = zeroblob(16)")  # a layout this version can't read
    before = hf_encoder.stats.image_forwards
    hf_encoder.cache.clear()
    second = run_audit([folder], hf_encoder, options(tmp_path))
    assert any("rebuilt" in n for n in second.notes)
    assert hf_encoder.stats.image_forwards == before + 7
    assert_same(comparable(first), comparable(second))
    with EmbeddingStore(path) as store:
        assert not store.rebuilt and store.check() == ["ok"]


def test_a_file_that_is_not_sqlite_is_replaced(folder, hf_encoder, tmp_path):
    path = tmp_path / "store.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    report = run_audit([folder], hf_encoder, options(tmp_path))
    assert report.stats.encoded == 7 and any("rebuilt" in n for n in report.notes)


def test_a_foreign_sqlite_file_is_rebuilt(folder, hf_encoder, tmp_path):
    path = tmp_path / "store.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE images (hash TEXT, model TEXT, vector BLOB, extra INT)")
    report = run_audit([folder], hf_encoder, options(tmp_path))
    assert report.stats.encoded == 7 and any("rebuilt" in n for n in report.notes)


def test_a_file_that_vanishes_mid_run_is_listed(folder, hf_encoder, tmp_path):
    doomed = folder / "00005.png"

    def progress(done: int, total: int, message: str) -> None:
        if done == 1:
            doomed.unlink()

    # one reader, batches of one: the window reads ahead 3 files, the doomed one is 8th
    report = run_audit([folder], hf_encoder, options(tmp_path, workers=1, batch_size=1), progress)
    assert [Path(s.path).name for s in report.vanished] == ["00005.png"]
    assert report.stats.pictures == 6


def test_should_stop_keeps_what_was_done_and_the_next_run_continues(folder, hf_encoder, tmp_path):
    calls = []

    def stop() -> bool:
        calls.append(1)
        return len(calls) >= 4

    partial = run_audit([folder], hf_encoder, options(tmp_path, batch_size=1), should_stop=stop)
    assert partial.interrupted and partial.stats.read == 4
    done = partial.stats.encoded
    assert 1 <= done <= 4
    with EmbeddingStore(tmp_path / "store.sqlite3") as store:
        assert store.count("images") == done
    before = hf_encoder.stats.image_forwards
    full = run_audit([folder], hf_encoder, options(tmp_path))
    assert hf_encoder.stats.image_forwards - before == 7 - done
    assert not full.interrupted and full.stats.pictures == 7


def test_since_limit_and_recursive(folder, hf_encoder, tmp_path):
    from datetime import datetime

    sub = folder / "2026-11-01"
    sub.mkdir()
    save_png(sub / "deep.png", make_image(20), "a cat")
    old = datetime(2020, 1, 1).timestamp()
    for name in ("00000.png", "00001.png"):
        os.utime(folder / name, (old, old))
    flat = run_audit([folder], hf_encoder, options(tmp_path))
    deep = run_audit([folder], hf_encoder, options(tmp_path, recursive=True))
    assert deep.stats.pictures == flat.stats.pictures + 1
    recent = run_audit([folder], hf_encoder, options(tmp_path, since=datetime(2021, 1, 1)))
    assert recent.stats.files == flat.stats.files - 2
    newest = run_audit([folder], hf_encoder, options(tmp_path, limit=3))
    assert newest.stats.files == 3
    assert "00000.png" not in {Path(s.path).name for s in newest.no_parameters}


def test_a_missing_folder_is_a_clear_error_and_creates_nothing(hf_encoder, tmp_path):
    with pytest.raises(ClipProbeError, match="No such folder"):
        run_audit([tmp_path / "nope"], hf_encoder, options(tmp_path))
    assert not (tmp_path / "store.sqlite3").exists()


def test_the_seen_signal_is_pluggable(folder, hf_encoder, tmp_path):
    seen_calls: list[PhraseEvidence] = []

    def everything_seen(evidence: PhraseEvidence) -> np.ndarray:
        seen_calls.append(evidence)
        return np.ones(len(evidence.presence), dtype=bool)

    report = run_audit([folder], hf_encoder, options(tmp_path, seen=everything_seen))
    assert len(seen_calls) == 7
    assert all(e.presence.ndim == 1 and e.presence.shape == e.best.shape for e in seen_calls)
    assert all(p.seen_rate == 1.0 and p.verdict == "keep" for p in report.phrases)
    assert report.options["seen"] == "everything_seen"


# -- the numbers, on a model that sees ------------------------------------------------


def independent_audit(model_dir: Path, groups: list[tuple[str, list[str], list[Path]]]):
    """Per phrase and picture: presence, best probability, contribution; computed with
    transformers directly (own features, own presence formula, own softmax and
    elimination loop, prompt variants as text), nothing of ClipProbe's but the inputs of
    the reference banks and the presence constants."""
    import torch
    from transformers import CLIPModel, CLIPProcessor

    model = CLIPModel.from_pretrained(model_dir).eval()
    processor = CLIPProcessor.from_pretrained(model_dir)
    scale = float(model.logit_scale.detach().exp())

    def unit(x: torch.Tensor) -> np.ndarray:
        x = x.double()
        return (x / x.norm(dim=-1, keepdim=True)).numpy()

    def text(texts):
        with torch.no_grad():
            t = processor(text=texts, return_tensors="pt", padding=True)
            return unit(model.get_text_features(**t))

    def pictures(images):
        with torch.no_grad():
            return unit(model.get_image_features(**processor(images=images, return_tensors="pt")))

    # the model's unrelated pairs: everyday phrases x pictures of nothing
    unrelated = pictures(reference_images()) @ text(list(NEUTRAL_PHRASES)).T
    out: dict[str, dict[str, list[float]]] = {}
    for _prompt, phrases, paths in groups:
        img = pictures([Image.open(p).convert("RGB") for p in paths])
        phr = text(phrases)
        z = (img @ phr.T - unrelated.mean()) / unrelated.std()
        own = pictures(reference_images()) @ phr.T  # the phrases on pictures of nothing
        own_z = (img @ phr.T - own.mean(0)) / own.std(0)
        presence = expected_presence(z, own_z)  # [pictures, phrases]
        full = text([", ".join(phrases)])[0]
        without = text([", ".join(p for p in phrases if p != q) for q in phrases])
        for m in range(len(paths)):
            sims = phr @ img[m]
            best = np.zeros(len(phrases))
            remaining = list(range(len(phrases)))
            for _ in range(max(1, min(5, len(phrases) - 1))):
                logits = scale * sims[remaining]
                probs = np.exp(logits - logits.max())
                probs /= probs.sum()
                for r, p in zip(remaining, probs):
                    best[r] = max(best[r], p)
                remaining.pop(int(np.argmax(probs)))
            contribution = full @ img[m] - without @ img[m]
            for k, phrase in enumerate(phrases):
                row = out.setdefault(
                    phrase,
                    {
                        "presence": [],
                        "seen": [],
                        "not_seen": [],
                        "top": [],
                        "best": [],
                        "contribution": [],
                    },
                )
                row["presence"].append(presence[m, k])
                row["seen"].append(float(presence[m, k] >= SEEN))
                row["not_seen"].append(float(presence[m, k] < NOT_SEEN))
                row["top"].append(float(presence[m, k] == presence[m].max()))
                row["best"].append(best[k])
                row["contribution"].append(contribution[k])
    return out


def test_aggregation_matches_an_independent_computation(trained_clip_dir, tmp_path):
    from clipprobe_ext.encoders.hf import HFClipEncoder

    folder = tmp_path / "shapes"
    folder.mkdir()
    # every picture shows a red circle; no picture shows a square or stripes
    groups = [
        ("a red circle, a blue square", ["a red circle", "a blue square"], []),
        ("(A Red  Circle:1.2), green stripes", ["a red circle", "green stripes"], []),
    ]
    for g, (prompt, _, paths) in enumerate(groups):
        for i in range(4):
            paths.append(
                save_png(folder / f"{g}-{i}.png", picture(0, seed=50 + 10 * g + i), prompt)
            )
    encoder = HFClipEncoder.from_pretrained(str(trained_clip_dir), "cpu")
    report = run_audit([folder], encoder, options(tmp_path))
    expected = independent_audit(trained_clip_dir, groups)

    circle = report.phrase("a red circle")
    assert circle.prompts == 2 and circle.pictures == 8
    # Ground truth: every picture shows a red circle and nothing else.  This briefly
    # trained model does not reach SEEN on the scale fitted on the benchmark world (as in
    # test_presence), but the pictured phrase scores above every absent one on every
    # picture and is never pruned; the absent ones are not seen, and pruned.
    absent_presence = expected["a blue square"]["presence"] + expected["green stripes"]["presence"]
    assert min(expected["a red circle"]["presence"]) > max(absent_presence)
    assert circle.verdict != "prune" and circle.not_seen < 4
    for absent in ("a blue square", "green stripes"):  # in no image: not seen
        p = report.phrase(absent)
        assert p.pictures == 4 and p.seen == 0 and p.not_seen == 4 and p.verdict == "prune"
        assert max(expected[absent]["presence"]) < NOT_SEEN
    with_contribution = run_audit([folder], encoder, options(tmp_path, contribution=True))
    assert with_contribution.stats.encoded == 0  # the pictures come from the store
    for name, want in expected.items():
        got = report.phrase(name)
        assert got.seen == int(sum(want["seen"]))
        assert got.not_seen == int(sum(want["not_seen"]))
        assert got.mean_presence == pytest.approx(np.mean(want["presence"]), abs=1e-4)
        assert got.presence_std == pytest.approx(np.std(want["presence"]), abs=1e-4)
        assert got.mean_probability == pytest.approx(np.mean(want["best"]), abs=1e-4)
        assert got.probability_std == pytest.approx(np.std(want["best"]), abs=1e-4)
        assert got.mean_contribution is None  # leave-one-out is off by default
        also = with_contribution.phrase(name)
        assert also.mean_contribution == pytest.approx(np.mean(want["contribution"]), abs=1e-4)
        assert (also.seen, also.mean_presence) == (got.seen, got.mean_presence)
        tokens = len(encoder.tokenizer(name, add_special_tokens=False)["input_ids"])
        assert got.tokens_per_prompt == tokens
    assert {w.prompt for w in report.worst_prompts} == {g[0] for g in groups}
    for w in report.worst_prompts:
        phrases = next(g[1] for g in groups if g[0] == w.prompt)
        share = np.mean([np.mean(expected[name]["seen"]) for name in phrases])
        assert w.seen_share == pytest.approx(share)


def top_presence(evidence: PhraseEvidence) -> np.ndarray:
    return evidence.presence == evidence.presence.max()


def test_habit_words_are_frequent_and_rarely_seen(trained_clip_dir, tmp_path):
    from clipprobe_ext.encoders.hf import HFClipEncoder

    folder = tmp_path / "habits"
    folder.mkdir()
    groups = []
    # the habit: "a blue square" written in every prompt, drawn in one picture of ten
    for kind, caption in [(0, "a red circle"), (2, "green stripes"), (3, "a yellow triangle")]:
        prompt = f"{caption}, a blue square"
        paths = [
            save_png(folder / f"{kind}-{i}.png", picture(kind, seed=200 + 10 * kind + i), prompt)
            for i in range(3)
        ]
        groups.append((prompt, [caption, "a blue square"], paths))
    square = save_png(folder / "1-0.png", picture(1, seed=210), "a blue square")
    groups.append(("a blue square", ["a blue square"], [square]))
    encoder = HFClipEncoder.from_pretrained(str(trained_clip_dir), "cpu")
    # The trained tiny CLIP never reaches the world-fitted SEEN (see above), so "seen" is
    # here the pluggable hook's job: the phrase of highest presence in its picture.
    report = run_audit([folder], encoder, options(tmp_path, seen=top_presence))
    expected = independent_audit(trained_clip_dir, groups)

    habit = report.phrase("a blue square")
    assert (habit.prompts, habit.pictures, habit.seen) == (4, 10, 1)  # only where it is drawn
    assert habit.seen == sum(expected["a blue square"]["top"])
    assert habit.habit and report.habit_words == ["a blue square"]
    assert habit.seen_rate_max == 1.0 and habit.seen_rate_min == 0.0
    for caption in ("a red circle", "green stripes", "a yellow triangle"):
        p = report.phrase(caption)
        assert (p.prompts, p.pictures, p.seen) == (1, 3, 3) and not p.habit
    assert report.worst_prompts[-1].prompt == "a blue square"  # the one that shows it all


def test_the_reader_threads_resize_changes_no_pixel(hf_encoder, tmp_path):
    """The audit resizes square pictures in its reader threads (prepare.py); the stored
    embedding must be the encoder's own for the file, bit for bit in practice."""
    folder = tmp_path / "sizes"
    folder.mkdir()
    shapes = [(96, 96), (97, 60), (32, 32), (20, 20)]  # down, not square, exact, up
    paths = [
        save_png(folder / f"{w}x{h}.png", make_image(i, size=(w, h)), "a cat")
        for i, (w, h) in enumerate(shapes)
    ]
    run_audit([folder], hf_encoder, options(tmp_path))
    direct = hf_encoder.encode_images([Image.open(p).convert("RGB") for p in paths]).numpy()
    with EmbeddingStore(tmp_path / "store.sqlite3") as store:
        from clipprobe_ext.audit.scan import content_hash

        key = hf_encoder.ref.key
        for path, want in zip(paths, direct):
            got = store.image_embedding(content_hash(path.read_bytes()), key)
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
