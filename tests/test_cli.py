"""The command line, in-process (``main([...])``) and as ``python -m clipprobe_ext``.

Runs on real PNG files (with and without a WebUI ``parameters`` chunk) and the tiny
transformers CLIP folder; the numbers are checked against transformers' own forward
pass (see ``test_report.clip_logits``).
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import make_image
from PIL import Image
from PIL.PngImagePlugin import PngInfo
from test_report import clip_logits, elimination

from clipprobe_ext.cli import main

ROOT = Path(__file__).resolve().parents[1]
PROMPT_A = "a red umbrella, a girl, rain"
TEXTS_A = ["a red umbrella", "a girl", "rain"]
PROMPT_B = "a castle on a hill, fog"
INFOTEXT = (
    "{prompt}\nNegative prompt: blurry, lowres\n"
    "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: {seed}, Size: 64x48, Model: sd15"
)


def write_png(path: Path, seed: int, prompt: str | None = None) -> Path:
    info = None
    if prompt is not None:
        info = PngInfo()
        info.add_text("parameters", INFOTEXT.format(prompt=prompt, seed=seed))
    make_image(seed).save(path, pnginfo=info)
    return path


@pytest.fixture()
def pngs(tmp_path: Path) -> dict[str, Path]:
    return {
        "a1": write_png(tmp_path / "a1.png", 1, PROMPT_A),
        "a2": write_png(tmp_path / "a2.png", 2, PROMPT_A),
        "b": write_png(tmp_path / "b.png", 3, PROMPT_B),
        "plain": write_png(tmp_path / "plain.png", 4),
    }


def rgb(path: Path) -> Image.Image:
    with Image.open(path) as im:
        return im.convert("RGB")


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def model_args(model_dir: Path) -> list[str]:
    return ["--model", str(model_dir), "--device", "cpu"]


def assert_rounds_match(image_json: dict, logits: np.ndarray, rounds: int) -> None:
    expected = elimination(logits, rounds)
    assert len(image_json["ranking"]["rounds"]) == len(expected)
    for r, want in zip(image_json["ranking"]["rounds"], expected):
        got = dict(zip(r["candidates"], r["probabilities"]))
        assert set(got) == set(want)
        for i, p in want.items():
            assert got[i] == pytest.approx(p, abs=2e-5)


def assert_one_error_line(err: str, *needles: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("clipprobe: error: ")
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0]


# -- in-process ----------------------------------------------------------------------------


def test_json_with_prompt_matches_clip(capsys, tiny_hf_clip_dir, pngs):
    files = [pngs["a1"], pngs["plain"]]
    code, out, err = run(
        capsys,
        *map(str, files),
        "--prompt",
        PROMPT_A,
        *model_args(tiny_hf_clip_dir),
        "--rounds",
        "3",
        "--json",
    )
    assert code == 0, err
    assert err == ""  # stderr is not a terminal: no progress
    data = json.loads(out)
    assert data["prompt"] == PROMPT_A
    assert [p["text"] for p in data["phrases"]] == TEXTS_A
    assert [im["label"] for im in data["images"]] == ["a1.png", "plain.png"]
    logits = clip_logits(tiny_hf_clip_dir, [rgb(f) for f in files], TEXTS_A)
    for m, image in enumerate(data["images"]):
        assert_rounds_match(image, logits[m], 3)
    assert data["options"]["rounds"] == 3


def test_prompt_read_from_png_parameters_and_grouped(capsys, tiny_hf_clip_dir, pngs):
    files = [pngs["a1"], pngs["b"], pngs["a2"]]
    code, out, err = run(capsys, *map(str, files), *model_args(tiny_hf_clip_dir), "--json")
    assert code == 0, err
    data = json.loads(out)
    assert isinstance(data, list) and len(data) == 2  # two prompts, two reports
    first, second = data
    assert first["prompt"] == PROMPT_A  # negative prompt and settings are not part of it
    assert [im["label"] for im in first["images"]] == ["a1.png", "a2.png"]
    assert second["prompt"] == PROMPT_B
    assert [im["label"] for im in second["images"]] == ["b.png"]
    logits = clip_logits(tiny_hf_clip_dir, [rgb(pngs["a1"]), rgb(pngs["a2"])], TEXTS_A)
    for m, image in enumerate(first["images"]):
        assert_rounds_match(image, logits[m], 5)


def test_single_prompt_from_parameters_gives_one_report(capsys, tiny_hf_clip_dir, pngs):
    code, out, err = run(
        capsys, str(pngs["a1"]), str(pngs["a2"]), *model_args(tiny_hf_clip_dir), "--json"
    )
    assert code == 0, err
    data = json.loads(out)
    assert isinstance(data, dict) and data["prompt"] == PROMPT_A
    assert len(data["images"]) == 2


def test_csv_rows(capsys, tiny_hf_clip_dir, pngs):
    files = [pngs["a1"], pngs["a2"]]
    code, out, err = run(
        capsys,
        *map(str, files),
        *model_args(tiny_hf_clip_dir),
        "--csv",
        "--rounds",
        "2",
        "--no-prune",
    )
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    # then the negative prompt stored in the images ("blurry, lowres"), checked
    assert [r["image"] for r in rows] == ["a1.png"] * 3 + ["a2.png"] * 3 + ["mean"] * 3 + [
        "negative"
    ] * 2
    assert [r["text"] for r in rows[9:]] == ["blurry", "lowres"]
    rows = rows[:9]
    assert [r["text"] for r in rows[:3]] == TEXTS_A
    assert "round_2" in rows[0] and "round_3" not in rows[0]
    logits = clip_logits(tiny_hf_clip_dir, [rgb(f) for f in files], TEXTS_A)
    for m in range(2):
        want = elimination(logits[m], 2)
        for row in rows[3 * m : 3 * m + 3]:
            i = int(row["phrase_index"])
            assert float(row["round_1"]) == pytest.approx(want[0][i], abs=2e-5)
            if i in want[1]:
                assert float(row["round_2"]) == pytest.approx(want[1][i], abs=2e-5)
            else:
                assert row["round_2"] == "" and row["top_round"] == "1"
            assert row["pruned"] == "false"
    means = rows[6:]
    for row in means:
        i = int(row["phrase_index"])
        best = [float(r["max_probability"]) for r in rows[:6] if int(r["phrase_index"]) == i]
        assert float(row["max_probability"]) == pytest.approx(np.mean(best))


def test_table_to_file_with_options(capsys, tiny_hf_clip_dir, pngs, tmp_path):
    target = tmp_path / "report.txt"
    code, out, err = run(
        capsys,
        str(pngs["a1"]),
        *model_args(tiny_hf_clip_dir),
        "--synonyms",
        "girl|woman",
        "--synonyms",
        "umbrella | parasol; rain | drizzle",
        "--threshold",
        "5%",
        "--tolerance",
        "0.02",
        "-o",
        str(target),
    )
    assert code == 0, err
    assert out == ""
    text = target.read_text(encoding="utf-8")
    assert "\x1b[" not in text
    assert "Elimination rounds — phrases above 5.0 %" in text
    assert "Synonym groups" in text and "parasol" in text and "drizzle" in text
    assert "Verdicts" in text and "Suggested prompt" in text


def test_words_and_no_contribution(capsys, tiny_hf_clip_dir, pngs):
    code, out, err = run(
        capsys,
        str(pngs["a1"]),
        *model_args(tiny_hf_clip_dir),
        "--words",
        "--no-contribution",
        "--no-prune",
        "--json",
    )
    assert code == 0, err
    data = json.loads(out)
    assert data["options"]["granularity"] == "word"
    assert "umbrella" in [p["text"] for p in data["phrases"]]
    assert data["pruning"] is None
    assert all(im["contribution"] is None for im in data["images"])


def test_help(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0 and "--prompt" in out and "openai-clip:" in out


# -- errors --------------------------------------------------------------------------------


def test_no_prompt_anywhere_is_an_error(capsys, tiny_hf_clip_dir, pngs):
    code, out, err = run(capsys, str(pngs["plain"]), *model_args(tiny_hf_clip_dir))
    assert code == 1 and out == ""
    assert_one_error_line(err, "plain.png", "--prompt")


def test_missing_and_corrupt_images(capsys, tiny_hf_clip_dir, tmp_path):
    code, _, err = run(capsys, str(tmp_path / "nope.png"), "--prompt", "x")
    assert code == 1
    assert_one_error_line(err, "nope.png")
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really a png")
    code, _, err = run(capsys, str(broken), "--prompt", "x", *model_args(tiny_hf_clip_dir))
    assert code == 1
    assert_one_error_line(err)


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["--rounds", "0"], "Rounds"),
        (["--rounds", "three"], "three"),
        (["--threshold", "abc"], "abc"),
        (["--threshold", "1.5"], "threshold"),
        (["--tolerance", "-0.1"], "tolerance"),
        (["--synonyms", "girl"], "synonym"),
        (["--json", "--csv"], "--csv"),
        (["--device", "tpu"], "tpu"),
    ],
)
def test_bad_options_are_usage_errors(capsys, pngs, argv, needle):
    code, out, err = run(capsys, str(pngs["a1"]), *argv)
    assert code == 2 and out == ""
    assert_one_error_line(err, needle)


def test_no_image_is_a_usage_error(capsys):
    code, _, err = run(capsys, "--prompt", "x")
    assert code == 2
    assert_one_error_line(err)


def test_missing_model_folder(capsys, pngs, tmp_path):
    code, _, err = run(
        capsys, str(pngs["a1"]), "--model", str(tmp_path / "no-model"), "--device", "cpu"
    )
    assert code == 1
    assert_one_error_line(err, "does not exist")


def test_folder_that_is_not_a_model(capsys, pngs, tmp_path):
    code, _, err = run(capsys, str(pngs["a1"]), "--model", str(tmp_path), "--device", "cpu")
    assert code == 1
    assert_one_error_line(err, "Could not load")


def test_empty_prompt(capsys, pngs, tiny_hf_clip_dir):
    code, _, err = run(capsys, str(pngs["a1"]), "--prompt", "  ", *model_args(tiny_hf_clip_dir))
    assert code == 1
    assert_one_error_line(err, "empty")


def test_interrupt_is_one_line(capsys, pngs, monkeypatch):
    import clipprobe_ext.cli.analyze as cli

    def interrupted(*_a, **_k):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "load_encoder", interrupted)
    code, out, err = run(capsys, str(pngs["a1"]))
    assert code == 130 and out == ""
    assert err.strip() == "clipprobe: interrupted"


def test_unwritable_output(capsys, pngs, tiny_hf_clip_dir, tmp_path):
    target = tmp_path / "missing-dir" / "out.json"
    code, _, err = run(
        capsys, str(pngs["a1"]), *model_args(tiny_hf_clip_dir), "--json", "-o", str(target)
    )
    assert code == 1
    assert_one_error_line(err, "Could not write")


# -- openai clip through clip.load -----------------------------------------------------------


def test_openai_clip_model_file(capsys, pngs, tmp_path):
    """``openai-clip:PATH`` goes through ``clip.load``; numbers match the model's own forward."""
    import torch
    from clip.model import CLIP

    torch.manual_seed(0)
    # width 64: clip.load's build_model derives the head count as width // 64
    model = CLIP(16, 32, 2, 64, 8, 77, 49408, 64, 1, 2).eval()
    with torch.no_grad():
        model.token_embedding.weight.normal_(0, 1.0)
        model.logit_scale.fill_(4.0)
    weights = tmp_path / "tiny-clip.pt"
    # the openai checkpoints are TorchScript archives; clip.load(jit=False) rebuilds them
    example = (torch.zeros(1, 3, 32, 32), torch.zeros(1, 77, dtype=torch.long))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TracerWarnings of the tracing itself
        torch.jit.save(torch.jit.trace(model, example, check_trace=False), str(weights))

    code, out, err = run(
        capsys,
        str(pngs["a1"]),
        "--model",
        f"openai-clip:{weights}",
        "--device",
        "cpu",
        "--json",
        "--rounds",
        "3",
    )
    assert code == 0, err
    data = json.loads(out)
    assert data["model_id"] == f"openai-clip:{weights}"

    import clip

    model, preprocess = clip.load(str(weights), device="cpu", jit=False)
    with torch.no_grad():
        image = model.encode_image(preprocess(rgb(pngs["a1"]))[None])
        text = model.encode_text(clip.tokenize(TEXTS_A))
        image = image / image.norm(dim=-1, keepdim=True)
        text = text / text.norm(dim=-1, keepdim=True)
        logits = (model.logit_scale.exp() * image @ text.T)[0].double().numpy()
    assert_rounds_match(data["images"][0], logits, 3)


def test_openai_clip_unknown_name(capsys, pngs):
    code, _, err = run(capsys, str(pngs["a1"]), "--model", "openai-clip:ViT-Z/99")
    assert code == 1
    assert_one_error_line(err, "ViT-Z/99", "ViT-L/14")


def test_openai_clip_file_that_is_not_a_model(capsys, pngs, tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"nothing")
    code, _, err = run(capsys, str(pngs["a1"]), "--model", f"openai-clip:{junk}")
    assert code == 1
    assert_one_error_line(err, "junk.pt")


# -- as a program ----------------------------------------------------------------------------


def _python_m(*argv: str, **env: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    return subprocess.run(
        [sys.executable, "-m", "clipprobe_ext", *argv],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_python_m_json(tiny_hf_clip_dir, pngs):
    proc = _python_m(str(pngs["a1"]), *model_args(tiny_hf_clip_dir), "--json")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    data = json.loads(proc.stdout)
    assert data["prompt"] == PROMPT_A
    logits = clip_logits(tiny_hf_clip_dir, [rgb(pngs["a1"])], TEXTS_A)
    assert_rounds_match(data["images"][0], logits[0], 5)


def test_python_m_model_not_available_offline(pngs):
    proc = _python_m(
        str(pngs["a1"]),
        "--model",
        "openai/clip-vit-base-patch32-not-cached",
        "--device",
        "cpu",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
    )
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert_one_error_line(proc.stderr, "not available offline", "local folder")


def test_python_m_usage_error():
    proc = _python_m("--rounds", "5")
    assert proc.returncode == 2
    assert_one_error_line(proc.stderr)


# -- a batch never dies for one file; prompts are bounded text ----------------------------


def write_png_size(path: Path, size: tuple[int, int], text: str | None) -> Path:
    info = None
    if text is not None:
        info = PngInfo()
        info.add_text("parameters", text)
    make_image(7, size).save(path, pnginfo=info)
    return path


@pytest.mark.parametrize("size", [(1, 1), (3, 1), (7, 3), (500, 1)])
def test_tiny_images_are_analysed(capsys, tiny_hf_clip_dir, tmp_path, size):
    """Before: "unexpected ValueError: mean must have 1 elements ..." for the whole run."""
    path = write_png_size(tmp_path / "tiny.png", size, None)
    code, out, err = run(
        capsys, str(path), "--prompt", PROMPT_A, *model_args(tiny_hf_clip_dir), "--json"
    )
    assert code == 0, err
    data = json.loads(out)
    logits = clip_logits(tiny_hf_clip_dir, [rgb(path)], TEXTS_A, written_out=True)
    assert_rounds_match(data["images"][0], logits[0], 5)


def test_batch_skips_bad_files_and_says_so(capsys, tiny_hf_clip_dir, pngs, tmp_path):
    """Before: the first bad file ended the whole run with status 1."""
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really a png")
    loop = tmp_path / "loop.png"
    os.symlink(loop, loop)
    files = [pngs["a1"], broken, pngs["plain"], loop, pngs["a2"]]
    code, out, err = run(capsys, *map(str, files), *model_args(tiny_hf_clip_dir), "--json")
    assert code == 3, err
    lines = err.strip().splitlines()
    assert len(lines) == 3 and all(line.startswith("clipprobe: skipped ") for line in lines)
    assert "broken.png" in lines[0] and "plain.png" in lines[1] and "--prompt" in lines[1]
    assert "loop.png" in lines[2] and "symbolic-link loop" in lines[2]
    data = json.loads(out)
    assert [im["label"] for im in data["images"]] == ["a1.png", "a2.png"]


def test_every_file_bad_is_an_error(capsys, pngs, tmp_path):
    code, out, err = run(capsys, str(pngs["plain"]), str(tmp_path / "gone.png"))
    assert code == 1 and out == ""
    assert (
        err.strip().splitlines()[-1] == "clipprobe: error: None of the 2 images could be analysed."
    )


def test_symlink_loop_is_named(capsys, tmp_path):
    """Before: "No such image file"."""
    loop = tmp_path / "loop.png"
    os.symlink(loop, loop)
    code, _, err = run(capsys, str(loop), "--prompt", "x")
    assert code == 1
    assert_one_error_line(err, "loop.png", "symbolic-link loop")


def test_binary_garbage_in_parameters_is_refused(capsys, tiny_hf_clip_dir, tmp_path):
    """Before: random bytes in the parameters chunk were analysed as a prompt."""
    garbage = bytes(np.random.default_rng(3).integers(0, 256, 400, dtype=np.uint8))
    path = write_png_size(tmp_path / "junk.png", (64, 48), garbage.decode("latin-1"))
    code, out, err = run(capsys, str(path), *model_args(tiny_hf_clip_dir))
    assert code == 1 and out == ""
    assert_one_error_line(err, "junk.png", "not text")


def test_huge_parameters_are_refused_before_parsing(capsys, tmp_path, monkeypatch):
    """Before: a 50 MB chunk took 5 minutes and 6.8 GB; now refused by its length."""
    import clipprobe_ext.infotext as infotext

    path = write_png_size(tmp_path / "huge.png", (64, 48), "a cat, " * 3_000_000)
    monkeypatch.setattr(infotext, "parse_parameters", lambda text: pytest.fail("parsed"))
    code, out, err = run(capsys, str(path), "--model", "/no/such/model")
    assert code == 1 and out == ""
    assert_one_error_line(err, "huge.png", "21,000,000 characters", "20,000")


def test_prompt_limit_applies_to_the_command_line(capsys, pngs):
    code, out, err = run(capsys, str(pngs["a1"]), "--prompt", "cat, " * 4001)
    assert code == 1 and out == ""
    assert_one_error_line(err, "--prompt", "20,000")


def test_prompt_from_parameters_over_the_limit(capsys, tmp_path):
    path = write_png_size(tmp_path / "long.png", (64, 48), "cat, " * 4001 + "\n" + INFOTEXT[-60:])
    code, _, err = run(capsys, str(path), "--model", "/no/such/model")
    assert code == 1
    assert_one_error_line(err, "prompt stored in", "20,000")


def test_long_prompt_prints_no_library_warning(tiny_hf_clip_dir, pngs):
    """A phrase over 77 tokens is chunked on purpose; before, transformers printed "Token
    indices sequence length is longer than the specified maximum" to the terminal."""
    prompt = "a cat, " + " ".join(f"word{i} thing" for i in range(60))  # one long phrase
    proc = _python_m(str(pngs["a1"]), "--prompt", prompt, *model_args(tiny_hf_clip_dir))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert "75-token chunks" in proc.stdout


def test_ctrl_c_during_imports_exits_130():
    """Before: the interrupt escaped as a signal death (-2) with a traceback."""
    code = (
        "import builtins, runpy\n"
        "real = builtins.__import__\n"
        "def fake(name, *a, **k):\n"
        "    if name == 'argparse':\n"
        "        raise KeyboardInterrupt\n"
        "    return real(name, *a, **k)\n"
        "builtins.__import__ = fake\n"
        "runpy.run_module('clipprobe_ext', run_name='__main__', alter_sys=True)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 130, proc.stderr
    assert proc.stderr == "clipprobe: interrupted\n"
