"""The one input resolver (``clipprobe_ext.inputs.resolve``): pictures, prompt, negative
prompt and where each came from, for bytes, paths and PIL images alike."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import pytest
from conftest import make_image
from PIL import Image
from webui_grids import grid_infotext, noisy_picture, png_bytes, webui_grid

from clipprobe_ext.errors import ImageError, PromptError
from clipprobe_ext.images import MAX_SIDE, decode_base64
from clipprobe_ext.inputs import resolve, stored_parameters

PROMPT = "a red umbrella, a girl, rain"
NEGATIVE = "blurry, lowres"
INFOTEXT = f"{PROMPT}\nNegative prompt: {NEGATIVE}\nSteps: 20, Seed: 1, Size: 64x48"


def sources(tmp_path: Path, data: bytes) -> list:
    """The same file as bytes, a path string, a Path and a PIL image."""
    path = tmp_path / "picture.png"
    path.write_bytes(data)
    opened = Image.open(path)
    opened.load()
    return [data, str(path), path, opened]


def test_prompt_and_negative_read_from_the_parameters(tmp_path):
    for source in sources(tmp_path, png_bytes(make_image(1), INFOTEXT)):
        found = resolve(source)
        assert (found.prompt, found.prompt_from) == (PROMPT, "parameters")
        assert (found.negative, found.negative_from) == (NEGATIVE, "parameters")
        assert found.parameters.settings["Seed"] == "1" and found.grid is None
        assert found.labels == ["image"] and len(found.pictures) == 1
        assert np.array_equal(np.asarray(found.pictures[0]), np.asarray(make_image(1)))


def test_a_given_prompt_wins_and_brings_no_stored_negative(tmp_path):
    data = png_bytes(make_image(1), INFOTEXT)
    found = resolve(data, "a castle")
    assert (found.prompt, found.prompt_from) == ("a castle", "given")
    assert (found.negative, found.negative_from) == ("", None)  # it belongs to PROMPT
    found = resolve(data, "a castle", "fog")
    assert (found.negative, found.negative_from) == ("fog", "given")
    found = resolve(data, None, "")  # "" given: no negative prompt, even a stored one
    assert (found.prompt_from, found.negative, found.negative_from) == ("parameters", "", "given")
    found = resolve(data, "   ")  # a blank prompt is no prompt
    assert (found.prompt, found.prompt_from) == (PROMPT, "parameters")


def test_no_prompt_anywhere_says_how_to_give_one(tmp_path):
    plain = png_bytes(make_image(2))
    with pytest.raises(PromptError, match=r"^The image holds no generation parameters .*; send"):
        resolve(plain, ask="send 'prompt'")
    path = sources(tmp_path, plain)[1]
    with pytest.raises(PromptError, match=rf"^{path} holds no generation parameters .*--prompt\.$"):
        resolve(path, name=path, ask="pass one with --prompt")
    no_prompt = png_bytes(make_image(2), "Negative prompt: blurry\nSteps: 20, Seed: 1, Size: 8x8")
    with pytest.raises(PromptError, match="^The image has no prompt in its generation parameters;"):
        resolve(no_prompt)
    found = resolve(plain, "a cat")
    assert found.parameters is None and found.negative_from is None


def test_unreadable_parameters_only_matter_when_the_prompt_comes_from_them():
    garbage = png_bytes(make_image(3), "a cat\x00\x01\x02\nSteps: 20, Seed: 1, Size: 64x48")
    with pytest.raises(PromptError, match="not text"):
        resolve(garbage)
    found = resolve(garbage, "a cat")
    assert found.prompt == "a cat" and found.parameters is None
    assert stored_parameters(Image.open(io.BytesIO(garbage))) is None


def test_a_stored_negative_over_the_limit_is_left_out_with_a_note():
    negative = "blurry, " * 2600  # 20,800 characters: the parameters themselves are fine
    text = f"{PROMPT}\nNegative prompt: {negative}\nSteps: 20, Seed: 1, Size: 64x48"
    found = resolve(png_bytes(make_image(4), text))
    assert (found.prompt, found.negative, found.negative_from) == (PROMPT, "", None)
    assert found.notes == [
        "The negative prompt was not checked: The stored negative prompt is 20,799 characters "
        "long; ClipProbe reads prompts of at most 20,000 characters."
    ]


@pytest.mark.parametrize("given", [None, "a castle"])
def test_a_grid_is_cut_into_its_pictures_for_every_source(tmp_path, given):
    pictures = [noisy_picture(seed=30 + i) for i in range(3)]
    data = png_bytes(webui_grid(pictures, 2), grid_infotext(PROMPT, NEGATIVE, 64, 48))
    for source in sources(tmp_path, data):
        found = resolve(source, given, label="grid.png", cell_label="{label}#{n}")
        assert found.grid is not None and found.grid.count == 3
        assert found.labels == ["grid.png#1", "grid.png#2", "grid.png#3"]
        for got, want in zip(found.pictures, pictures):
            assert np.array_equal(np.asarray(got), np.asarray(want))
        assert found.prompt == (given or PROMPT)
        assert found.notes[0].startswith("The image is a WebUI grid of 3 images (2×2 cells")
        assert ("against the grid's prompt" in found.notes[0]) is (given is None)
    assert resolve(data).labels == ["image 1", "image 2", "image 3"]


def test_a_grid_larger_than_the_side_limit_is_cut_before_it_is_shrunk():
    """Before: the tab shrank a grid wider than 4096 px first, and then saw no grid."""
    pictures = [noisy_picture(seed=40 + i, size=(2100, 8)) for i in range(2)]
    grid = webui_grid(pictures, 1)
    assert grid.width > MAX_SIDE
    found = resolve(grid, "a cat", label="g")
    assert found.grid is None  # no parameters: one picture, shrunk
    assert found.pictures[0].width == MAX_SIDE and grid.width == 4200  # caller's left alone
    found = resolve(png_bytes(grid, grid_infotext(PROMPT, "", 2100, 8)))
    assert found.grid is not None and [p.size for p in found.pictures] == [(2100, 8)] * 2
    assert np.array_equal(np.asarray(found.pictures[1]), np.asarray(pictures[1]))


def test_a_path_string_is_never_decoded_as_base64(tmp_path, monkeypatch):
    data = png_bytes(make_image(5), INFOTEXT)
    text = base64.b64encode(data).decode()
    monkeypatch.chdir(tmp_path)
    for candidate in (text, "data:image/png;base64," + text):
        with pytest.raises(ImageError, match="^Could not find the image file: "):
            resolve(candidate)
    assert resolve(decode_base64(text)).prompt == PROMPT  # decoded on purpose, it is read


@pytest.mark.parametrize("text", ["aGVsbG8", "not base64!", "data:image/png;base64,@@", "/a/b.png"])
def test_bad_base64_is_refused_with_a_clear_message(text):
    with pytest.raises(ImageError) as caught:
        resolve(decode_base64(text, "'image'"))
    assert str(caught.value) == (
        "'image' must be a base64-encoded image or a data:image/...;base64 URL."
    )


def test_base64_of_something_else_is_not_an_image():
    data = decode_base64(base64.b64encode(b"hello world, no picture").decode())
    with pytest.raises(ImageError, match="not an image file"):
        resolve(data, "a cat")


def test_prompts_over_the_limit_are_refused():
    data = png_bytes(make_image(6), INFOTEXT)
    with pytest.raises(PromptError, match="20,000"):
        resolve(data, "cat, " * 4001)
    with pytest.raises(PromptError, match="negative prompt given"):
        resolve(data, "a cat", "cat, " * 4001)
