"""The library facade (``import clipprobe_ext``): its docstring's example runs on the tests'
tiny CLIP, and each of its four functions answers what the function it stands for
answers on the same input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import make_image
from test_audit import save_png

import clipprobe_ext as clipprobe
from clipprobe_ext.audit.options import AuditOptions
from clipprobe_ext.audit.pipeline import run_audit
from clipprobe_ext.compare import compare
from clipprobe_ext.encoders.factory import load_encoder
from clipprobe_ext.images import load_image
from clipprobe_ext.probe import analyze
from clipprobe_ext.report.data import report_data
from clipprobe_ext.report.text import format_table

PROMPT = "a red star, a blue ring, masterpiece"  # the example's


def example(doc: str) -> list[str]:
    """The indented example of a docstring, dedented."""
    lines = doc.split("::\n\n", 1)[1].splitlines()
    return [line.strip() for line in lines[: lines.index("")]]


@pytest.fixture()
def picture(tmp_path: Path) -> Path:
    path = tmp_path / "pic.png"
    make_image(3, (96, 80)).save(path)
    return path


def test_the_docstring_example_runs_and_prints_the_analysis_table(
    tiny_hf_clip_dir: Path, picture: Path, capsys: pytest.CaptureFixture
) -> None:
    lines = example(clipprobe.__doc__)
    assert len(lines) == 4 and lines[0] == "import clipprobe_ext as clipprobe"
    code = "\n".join(lines)
    code = code.replace('"openai/clip-vit-base-patch32"', repr(str(tiny_hf_clip_dir)))
    code = code.replace('"pic.png"', repr(str(picture)))
    namespace: dict = {}
    exec(compile(code, "example", "exec"), namespace)

    direct = analyze(
        [load_image(picture)], PROMPT, load_encoder(str(tiny_hf_clip_dir)), None, ["pic.png"]
    )
    assert report_data(namespace["report"]) == report_data(direct)
    assert capsys.readouterr().out == format_table(direct) + "\n"
    assert [v.verdict for v in namespace["report"].verdicts] == [v.verdict for v in direct.verdicts]


def test_analyze_takes_paths_and_pictures_alike(tiny_hf_clip_dir: Path, picture: Path) -> None:
    clip = clipprobe.load_encoder(str(tiny_hf_clip_dir), "cpu")
    from_path = clipprobe.analyze([picture, picture], PROMPT, clip, negative="blurry")
    image = load_image(picture)
    direct = analyze([image, image], PROMPT, clip, None, ["pic.png", "pic.png"], negative="blurry")
    assert report_data(from_path) == report_data(direct)
    from_image = clipprobe.analyze(image, PROMPT, clip)
    assert [a.label for a in from_image.images] == ["image 1"]


def test_audit_equals_run_audit(tiny_hf_clip_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "outputs"
    folder.mkdir()
    for i, prompt in enumerate([PROMPT, PROMPT, "a green cross, masterpiece"]):
        save_png(folder / f"{i:05}.png", make_image(i), prompt)
    clip = clipprobe.load_encoder(str(tiny_hf_clip_dir), "cpu")
    facade = clipprobe.audit(folder, clip, AuditOptions(cache=str(tmp_path / "a.sqlite3")))
    direct = run_audit([folder], clip, AuditOptions(cache=str(tmp_path / "b.sqlite3")))
    assert facade.stats.pictures == direct.stats.pictures == 3
    assert facade.phrases == direct.phrases
    assert facade.worst_prompts == direct.worst_prompts


def test_compare_equals_compare(tiny_hf_clip_dir: Path, picture: Path, tmp_path: Path) -> None:
    clip = clipprobe.load_encoder(str(tiny_hf_clip_dir), "cpu")
    report = clipprobe.analyze(picture, PROMPT, clip)
    regenerated = tmp_path / "new.png"
    make_image(4, (96, 80)).save(regenerated)
    facade = clipprobe.compare(report, picture, regenerated, "a red circle", clip)
    direct = compare(report, load_image(picture), load_image(regenerated), "a red circle", clip)
    assert facade.to_dict() == direct.to_dict()


def test_the_functions_keep_their_names_beside_the_modules_of_the_same_name() -> None:
    import clipprobe_ext.audit.pipeline  # noqa: F401
    import clipprobe_ext.compare  # noqa: F401

    assert clipprobe.audit.__module__ == clipprobe.compare.__module__ == "clipprobe_ext"
    assert callable(clipprobe.audit) and callable(clipprobe.compare)
    assert clipprobe.ProbeReport.__name__ == "ProbeReport"
    with pytest.raises(AttributeError):
        clipprobe.no_such_name  # noqa: B018


def test_importing_the_package_loads_no_torch() -> None:
    code = "import sys, clipprobe_ext; print('torch' in sys.modules, 'PIL' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
