"""WebUI grids in an audited folder: each picture is counted once.

Before: an outputs folder of pictures and their grids was audited as pictures plus grids,
each grid scored as one picture against its first picture's prompt.  Now a grid whose
pictures are audited from their own files (in its folder, or pictures of its prompt
elsewhere) is skipped and listed; a grid whose pictures are not is cut, and those pictures
are audited.  "Counted once" is checked against an audit of the plain
pictures alone: the same phrases, the same numbers.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from test_audit import SETTINGS, assert_same, comparable, options, save_jpeg, save_png
from trained_clip import picture
from webui_grids import webui_grid

from clipprobe_ext.audit.pipeline import run_audit

PROMPTS = ["masterpiece, a red circle", "best quality, a blue square, 8k"]
SIZE = 96  # trained_clip pictures; test_audit's SETTINGS say "Size: 96x96"


def batches() -> list[list]:
    """Two batches of three: (file stem, picture, prompt) each."""
    return [
        [(f"{3 * b + i:05}", picture(b, seed=100 * b + i, size=SIZE), PROMPTS[b]) for i in range(3)]
        for b in range(2)
    ]


def save(folder: Path, stem: str, image, prompt: str, fmt: str) -> Path:
    if fmt == "png":
        return save_png(folder / f"{stem}.png", image, prompt)
    return save_jpeg(folder / f"{stem}.jpg", image, prompt)


def pictures_only(tmp_path: Path, fmt: str = "png") -> Path:
    folder = tmp_path / "pictures"
    folder.mkdir()
    for batch in batches():
        for stem, image, prompt in batch:
            save(folder, stem, image, prompt, fmt)
    return folder


def with_grids(tmp_path: Path, fmt: str = "png", keep=lambda stem: True) -> Path:
    """The pictures ``keep`` chooses, and a grid of each batch (2x2: the last cell empty)."""
    folder = tmp_path / f"outputs-{fmt}"
    folder.mkdir()
    for n, batch in enumerate(batches(), start=1):
        for stem, image, prompt in batch:
            if keep(stem):
                save(folder, stem, image, prompt, fmt)
        grid = webui_grid([image for _, image, _ in batch], 2)
        save(folder, f"grid-{n:04}", grid, batch[0][2], fmt)
    return folder


def numbers(report) -> dict:
    """What the audit measured (``comparable``), without file names: the grids skipped and
    each prompt's example file."""
    data = comparable(report)
    data.pop("grids")
    for summary in data["worst_prompts"]:
        summary.pop("example")
    return data


def grid_names(report) -> list[str]:
    return sorted(Path(s.path).name for s in report.grids)


@pytest.mark.parametrize("fmt", ["png", "jpg"])
def test_grids_whose_pictures_are_in_the_folder_are_skipped(hf_encoder, tmp_path, fmt):
    alone = run_audit([pictures_only(tmp_path, fmt)], hf_encoder, options(tmp_path / "a"))
    folder = with_grids(tmp_path, fmt)
    report = run_audit([folder], hf_encoder, options(tmp_path / "b"))
    assert report.stats.files == 8 and report.stats.pictures == 6  # not "8 pictures"
    assert grid_names(report) == [f"grid-0001.{fmt}", f"grid-0002.{fmt}"]
    assert all("a WebUI grid of 3 pictures, all of them" in s.reason for s in report.grids)
    assert_same(numbers(report), numbers(alone))
    assert report.phrase("masterpiece").pictures == 3  # each picture once
    from clipprobe_ext.report import audit as render

    table = render.format_table(report)
    assert "skipped: 2 WebUI grids of pictures audited on their own" in table
    assert f"grid-0001.{fmt}: a WebUI grid of 3 pictures" in table


def test_a_grid_whose_pictures_are_missing_is_cut_and_audited(hf_encoder, tmp_path):
    alone = run_audit([pictures_only(tmp_path)], hf_encoder, options(tmp_path / "a"))
    folder = with_grids(tmp_path, keep=lambda stem: False)  # the grids alone
    report = run_audit([folder], hf_encoder, options(tmp_path / "b"))
    assert report.stats.files == 2 and report.stats.pictures == 6 and report.grids == []
    assert_same(numbers(report), numbers(alone))
    assert any("2 WebUI grids cut into the 6 pictures" in note for note in report.notes)
    assert report.worst_prompts[0].example.endswith(".png#1")
    again = run_audit([folder], hf_encoder, options(tmp_path / "b"))
    assert again.stats.encoded == 0 and again.stats.from_store == 6  # cells kept in the store
    assert_same(numbers(again), numbers(report))


def test_only_the_pictures_a_grid_lacks_are_taken_from_it(hf_encoder, tmp_path):
    alone = run_audit([pictures_only(tmp_path)], hf_encoder, options(tmp_path / "a"))
    folder = with_grids(tmp_path, keep=lambda stem: stem in ("00000", "00002", "00004"))
    report = run_audit([folder], hf_encoder, options(tmp_path / "b"))
    assert report.stats.pictures == 6 and report.grids == []
    assert report.phrase("masterpiece").pictures == 3
    assert_same(numbers(report), numbers(alone))


def test_grids_in_the_webuis_grids_folder_are_skipped_too(hf_encoder, tmp_path):
    """The WebUI's default: pictures in txt2img-images, grids in txt2img-grids; audited
    together (-r), the grids' pictures are found among the pictures of their prompt."""
    root = tmp_path / "outputs"
    root.mkdir()
    shutil.move(str(pictures_only(tmp_path)), root / "txt2img-images")
    shutil.move(str(with_grids(tmp_path, keep=lambda stem: False)), root / "txt2img-grids")
    report = run_audit([root], hf_encoder, options(tmp_path / "b", recursive=True))
    assert report.stats.pictures == 6 and grid_names(report) == ["grid-0001.png", "grid-0002.png"]
    grids_only = run_audit([root / "txt2img-grids"], hf_encoder, options(tmp_path / "b"))
    assert grids_only.stats.pictures == 6 and grids_only.grids == []


@pytest.mark.parametrize("fmt", ["png", "jpg"])
def test_a_stored_grid_is_recognised_by_its_size_alone(hf_encoder, tmp_path, fmt):
    folder = with_grids(tmp_path, fmt)
    first = run_audit([folder], hf_encoder, options(tmp_path))
    second = run_audit([folder], hf_encoder, options(tmp_path))
    assert second.stats.encoded == 0 and second.stats.pictures == 6
    names = [f"grid-0001.{fmt}", f"grid-0002.{fmt}"]
    assert grid_names(second) == grid_names(first) == names


def test_a_grid_stored_whole_by_an_older_audit_is_still_a_grid(hf_encoder, tmp_path):
    """A store written before grids were told apart holds the grid's own embedding (and
    file record): the grid must not come back from it as one picture."""
    from clipprobe_ext.audit.scan import read_picture
    from clipprobe_ext.store import EmbeddingStore

    folder = with_grids(tmp_path)
    run_audit([folder], hf_encoder, options(tmp_path))
    grid = str(folder / "grid-0001.png")
    with EmbeddingStore(tmp_path / "store.sqlite3") as store:
        record = store.file_record(grid)
        assert record is not None  # its file record is kept, as every file's
        key = hf_encoder.ref.key
        store.put_batch(
            key, images=[(record.hash, hf_encoder.encode_images([picture(0)]).numpy()[0])]
        )
        assert read_picture(grid, store, key).kind == "grid"
    report = run_audit([folder], hf_encoder, options(tmp_path))
    assert report.stats.pictures == 6 and grid_names(report) == ["grid-0001.png", "grid-0002.png"]


def test_a_picture_the_size_of_its_settings_is_no_grid(hf_encoder, tmp_path):
    folder = pictures_only(tmp_path)
    assert f"Size: {SIZE}x{SIZE}" in SETTINGS
    report = run_audit([folder], hf_encoder, options(tmp_path))
    assert report.grids == [] and report.stats.pictures == 6
