"""The command line's ``--negative`` and ``--heatmaps`` on real PNG files and tiny CLIPs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image
from PIL.PngImagePlugin import PngInfo
from test_cli import INFOTEXT, PROMPT_A, model_args, pngs, run, write_png  # noqa: F401
from trained_clip import picture

from clipprobe_ext.encoders.hf import HFClipEncoder
from clipprobe_ext.heatmaps import phrase_heatmaps
from clipprobe_ext.heatmaps.cli_output import slug


def test_negative_prompt_read_from_the_images_parameters(capsys, tiny_hf_clip_dir, pngs):  # noqa: F811
    code, out, _ = run(capsys, str(pngs["a1"]), "--json", *model_args(tiny_hf_clip_dir))
    assert code == 0
    data = json.loads(out)
    assert data["negative"]["negative_prompt"] == "blurry, lowres"  # INFOTEXT's
    assert [p["text"] for p in data["negative"]["phrases"]] == ["blurry", "lowres"]
    assert data["tokens"]["tokens"] == sum(p["tokens"] for p in data["tokens"]["phrases"]) + 2


def test_negative_given_on_the_command_line_wins(capsys, tiny_hf_clip_dir, pngs):  # noqa: F811
    argv = [str(pngs["a1"]), "--json", *model_args(tiny_hf_clip_dir)]
    code, out, _ = run(capsys, *argv, "--negative", "text, watermark")
    assert code == 0
    assert json.loads(out)["negative"]["negative_prompt"] == "text, watermark"
    code, out, _ = run(capsys, *argv, "--negative", "")
    assert code == 0 and json.loads(out)["negative"] is None
    # --prompt: the stored negative belongs to another prompt, so none is checked
    code, out, _ = run(capsys, *argv, "--prompt", "a girl")
    assert code == 0 and json.loads(out)["negative"] is None


def test_images_of_a_group_with_different_negatives(capsys, tiny_hf_clip_dir, tmp_path):
    for n, negative in enumerate(["blurry", "text"], start=1):
        info = PngInfo()
        info.add_text(
            "parameters", f"{PROMPT_A}\nNegative prompt: {negative}\nSteps: 20, Seed: 1, Size: 8x8"
        )
        Image.new("RGB", (40, 30), (n * 60, 20, 20)).save(tmp_path / f"n{n}.png", pnginfo=info)
    code, out, _ = run(
        capsys,
        str(tmp_path / "n1.png"),
        str(tmp_path / "n2.png"),
        "--json",
        *model_args(tiny_hf_clip_dir),
    )
    assert code == 0
    data = json.loads(out)
    assert data["negative"]["negative_prompt"] == "blurry"
    assert any(
        "2 different negative prompts" in note and "n1.png" in note for note in data["notes"]
    )


def test_negative_in_the_table(capsys, tiny_hf_clip_dir, pngs):  # noqa: F811
    code, out, _ = run(capsys, str(pngs["a1"]), *model_args(tiny_hf_clip_dir), "--color", "never")
    assert code == 0
    assert "Negative prompt, checked" in out and "blurry, lowres" in out
    assert "Token budget" in out and "WebUI count " in out and "/75;" in out


def test_heatmaps_folder_holds_every_phrase_map_of_a_real_model(capsys, trained_clip_dir, tmp_path):
    image = picture(0, seed=31)
    path = tmp_path / "red circle.png"
    image.save(path)
    out_dir = tmp_path / "maps"
    prompt = "a red circle, a blue square, <lora:x:1>"
    code, out, err = run(
        capsys,
        str(path),
        "--prompt",
        prompt,
        "--heatmaps",
        str(out_dir),
        "--json",
        "-q",
        *model_args(trained_clip_dir),
    )
    assert code == 0, err
    names = sorted(p.name for p in out_dir.iterdir())
    stem = slug("red circle")
    assert names == [
        f"{stem}-01-a-red-circle.png",
        f"{stem}-02-a-blue-square.png",
        f"{stem}-contact.png",
        f"{stem}-heatmaps.json",
    ]
    for name in names[:2]:
        with Image.open(out_dir / name) as overlay:
            assert overlay.size == image.size
    data = json.loads((out_dir / f"{stem}-heatmaps.json").read_text())
    assert [p["phrase"] for p in data["phrases"]] == ["a red circle", "a blue square"]
    # the maps the CLI wrote are the ones the heatmap engine computes for this picture
    encoder = HFClipEncoder.from_pretrained(str(trained_clip_dir), device="cpu")
    expected = phrase_heatmaps(
        encoder, Image.open(path).convert("RGB"), ["a red circle", "a blue square"]
    )
    for entry, heatmap in zip(data["phrases"], expected):
        np.testing.assert_allclose(np.array(entry["grid"]), np.asarray(heatmap.grid), atol=2e-4)
    assert any("Heatmaps: 4 files written" in n for n in json.loads(out)["notes"])


def test_heatmaps_into_a_file_is_one_error_line(capsys, tiny_hf_clip_dir, pngs, tmp_path):  # noqa: F811
    target = tmp_path / "taken"
    target.write_text("x")
    code, _, err = run(
        capsys, str(pngs["a1"]), "--heatmaps", str(target), *model_args(tiny_hf_clip_dir)
    )
    assert code == 1
    assert err.strip().count("\n") == 0 and "is a file" in err
    assert Path(target).read_text() == "x"


def test_a_stored_negative_prompt_too_long_costs_only_its_check(capsys, tiny_hf_clip_dir, tmp_path):
    from clipprobe_ext.options import MAX_PROMPT_CHARS

    negative = "blurry, " * (MAX_PROMPT_CHARS // 8 + 10)
    info = PngInfo()
    info.add_text(
        "parameters", f"{PROMPT_A}\nNegative prompt: {negative}\nSteps: 20, Seed: 1, Size: 8x8"
    )
    path = tmp_path / "long-negative.png"
    Image.new("RGB", (40, 30), (90, 20, 20)).save(path, pnginfo=info)
    code, out, _ = run(capsys, str(path), "--json", *model_args(tiny_hf_clip_dir))
    assert code == 0
    data = json.loads(out)
    assert data["negative"] is None and data["prompt"] == PROMPT_A
    assert any(n.startswith("The negative prompt was not checked") for n in data["notes"])


def test_analyze_refuses_a_negative_prompt_that_is_not_text(hf_encoder):
    import pytest

    from clipprobe_ext.errors import PromptError
    from clipprobe_ext.probe import analyze

    with pytest.raises(PromptError, match="negative prompt"):
        analyze([Image.new("RGB", (8, 8))], "a girl", hf_encoder, negative="blurry\x00")
