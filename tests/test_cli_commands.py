"""One command line: subcommands, ``-o`` everywhere, one bound per option, the installed
``clipprobe`` command, lazy imports, and a WebUI grid cut into its pictures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest
import tomllib
from conftest import make_image
from test_audit import save_png
from test_cli import (
    PROMPT_A,
    TEXTS_A,
    assert_one_error_line,
    assert_rounds_match,
    model_args,
    pngs,  # noqa: F401
    rgb,
    run,
)
from test_report import clip_logits
from webui_grids import grid_infotext, noisy_picture, png_bytes, webui_grid

from clipprobe_ext.audit.options import AuditOptions
from clipprobe_ext.cli import main
from clipprobe_ext.cli.app import COMMANDS
from clipprobe_ext.errors import ClipProbeError
from clipprobe_ext.options import OPTIONS, ProbeOptions

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    out = tmp_path / "outputs"
    out.mkdir()
    for i in range(4):
        save_png(out / f"{i:05}.png", make_image(i), ["a red circle, sunset", "a cat, 8k"][i % 2])
    return out


# -- subcommands ---------------------------------------------------------------------------


def test_analyze_is_the_default_command(capsys, tiny_hf_clip_dir, pngs):  # noqa: F811
    argv = [str(pngs["a1"]), *model_args(tiny_hf_clip_dir), "--json", "--rounds", "2"]
    code, plain, _ = run(capsys, *argv)
    assert code == 0
    code, named, _ = run(capsys, "analyze", *argv)
    assert code == 0
    assert json.loads(named)["images"] == json.loads(plain)["images"]
    assert json.loads(plain)["prompt"] == PROMPT_A


def test_help_lists_every_command(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0 and "--prompt" in out  # the default command's options
    for name in COMMANDS:
        assert f"\n  {name}  " in out
    code, out, _ = run(capsys, "audit", "--help")
    assert code == 0 and out.startswith("usage: clipprobe audit") and "--recursive" in out
    assert "-o FILE" in out


def test_usage_errors_name_the_subcommand_to_ask(capsys, tmp_path):
    code, out, err = run(capsys, "audit")
    assert code == 2 and out == ""
    assert_one_error_line(err, "DIR", "(see clipprobe audit --help)")
    code, _, err = run(capsys, "audit", str(tmp_path), "--bogus")
    assert code == 2
    assert_one_error_line(err, "--bogus", "(see clipprobe audit --help)")
    code, _, err = run(capsys, "x.png", "--bogus")
    assert code == 2
    assert_one_error_line(err, "--bogus", "(see clipprobe --help)")


def test_audit_writes_to_o_file(capsys, tiny_hf_clip_dir, folder, tmp_path):
    store = str(tmp_path / "store.sqlite3")
    argv = ["audit", str(folder), "--model", str(tiny_hf_clip_dir), "--cache", store]
    code, stdout, _ = run(capsys, *argv, "--json")
    assert code == 0
    target = tmp_path / "audit.json"
    code, out, err = run(capsys, *argv, "--json", "-o", str(target))
    assert code == 0 and out == "" and err == ""
    written, printed = json.loads(target.read_text(encoding="utf-8")), json.loads(stdout)
    assert written["stats"]["pictures"] == printed["stats"]["pictures"] == 4
    assert written["phrases"] == printed["phrases"]
    table = tmp_path / "audit.txt"
    code, out, _ = run(capsys, *argv, "--output", str(table))
    assert code == 0 and out == ""
    assert "4 pictures, 2 distinct prompts" in table.read_text(encoding="utf-8")
    code, _, err = run(capsys, *argv, "-o", str(tmp_path / "no-such-dir" / "a.txt"))
    assert code == 1
    assert_one_error_line(err, "Could not write")


# -- one bound for rounds and threshold ----------------------------------------------------


@pytest.mark.parametrize(
    ("option", "value"), [("rounds", "0"), ("rounds", "21"), ("threshold", "60%")]
)
def test_analysis_and_audit_refuse_the_same_values_alike(capsys, tmp_path, option, value):
    code, _, analysis = run(capsys, str(tmp_path / "x.png"), f"--{option}", value)
    assert code == 2
    code, _, audit = run(capsys, "audit", str(tmp_path), f"--{option}", value)
    assert code == 2
    strip = lambda err: err.split(" (see ")[0]  # noqa: E731
    assert strip(analysis) == strip(audit)
    spec = OPTIONS[option]
    assert f"between {spec.format(spec.minimum)} and {spec.format(spec.maximum)}" in analysis


@pytest.mark.parametrize(("option", "value"), [("rounds", 21), ("rounds", 0), ("threshold", 0.6)])
def test_audit_options_validate_against_the_analysis_specs(option, value):
    with pytest.raises(ClipProbeError) as analysis:
        ProbeOptions(**{option: value}).validate()
    with pytest.raises(ClipProbeError) as audit:
        AuditOptions(**{option: value}).validate()
    assert str(audit.value) == str(analysis.value)
    top = OPTIONS[option].maximum
    ProbeOptions(**{option: top}).validate()
    AuditOptions(**{option: top}).validate()  # the highest bound is allowed in both
    assert AuditOptions().rounds == ProbeOptions().rounds
    assert AuditOptions().threshold == ProbeOptions().threshold


# -- the installed command -----------------------------------------------------------------


def _entry_point() -> EntryPoint:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    return EntryPoint("clipprobe", scripts["clipprobe"], "console_scripts")


def test_console_script_is_the_command_line():
    assert _entry_point().load() is main


CONSOLE_SCRIPT = """
import re, sys
from {module} import {attr}
if __name__ == "__main__":
    sys.argv[0] = re.sub(r"(-script\\.pyw|\\.exe)?$", "", sys.argv[0])
    sys.exit({attr}())
"""  # what pip writes into bin/clipprobe for a console_scripts entry point


def _console(tmp_path: Path, *argv: str, code: str | None = None):
    point = _entry_point()
    script = tmp_path / "clipprobe"
    script.write_text(code or CONSOLE_SCRIPT.format(module=point.module, attr=point.attr))
    return subprocess.run(
        [sys.executable, str(script), *argv],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_console_script_runs_and_exits_with_the_status(tmp_path, tiny_hf_clip_dir, pngs):  # noqa: F811
    proc = _console(tmp_path, "--help")
    assert proc.returncode == 0 and proc.stdout.startswith("usage: clipprobe ")
    proc = _console(tmp_path, "audit", "--limit", "0", str(tmp_path))
    assert proc.returncode == 2
    assert_one_error_line(proc.stderr, "--limit")
    proc = _console(tmp_path, str(pngs["a1"]), *model_args(tiny_hf_clip_dir), "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["prompt"] == PROMPT_A


LOADED = """
import sys
from clipprobe_ext.cli import main
status = main(sys.argv[1:])
heavy = sorted(m for m in ("torch", "transformers", "numpy", "PIL") if m in sys.modules)
pipeline = "clipprobe_ext.audit.pipeline" in sys.modules
print(status, ",".join(heavy) or "-", pipeline, file=sys.stderr)
"""


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["audit", "--help"],
        ["--rounds", "0", "x.png"],
        ["audit", "/no/such/folder"],
        ["audit", ".", "--rounds", "99"],
    ],
)
def test_help_and_bad_command_lines_load_no_model_library(tmp_path, argv):
    proc = _console(tmp_path, *argv, code=LOADED)
    status, heavy, pipeline = proc.stderr.strip().splitlines()[-1].split()
    assert int(status) in (0, 1, 2)
    assert heavy == "-" and pipeline == "False"


# -- a WebUI grid on the command line --------------------------------------------------------


def test_a_grid_is_cut_and_each_picture_analysed_with_the_grids_prompt(
    capsys, tiny_hf_clip_dir, tmp_path
):
    """Before: ``grid-0002.png`` was analysed as one picture."""
    pictures = [noisy_picture(seed=50 + i) for i in range(3)]
    text = grid_infotext(PROMPT_A, "blurry, lowres", *pictures[0].size)
    grid = tmp_path / "grid-0002.png"
    grid.write_bytes(png_bytes(webui_grid(pictures, 2), text))
    code, out, err = run(capsys, str(grid), *model_args(tiny_hf_clip_dir), "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["prompt"] == PROMPT_A and data["negative"]["negative_prompt"] == "blurry, lowres"
    labels = ["grid-0002.png#1", "grid-0002.png#2", "grid-0002.png#3"]
    assert [im["label"] for im in data["images"]] == labels
    assert any("grid-0002.png is a WebUI grid of 3 images" in note for note in data["notes"])
    logits = clip_logits(tiny_hf_clip_dir, pictures, TEXTS_A)
    for m, image in enumerate(data["images"]):
        assert_rounds_match(image, logits[m], 5)
    # beside a picture of another prompt: the grid's three are one group, the picture another
    other = tmp_path / "other.png"
    other.write_bytes(png_bytes(make_image(9), text.replace(PROMPT_A, "a castle, fog")))
    code, out, _ = run(capsys, str(grid), str(other), *model_args(tiny_hf_clip_dir), "--json")
    assert code == 0
    groups = json.loads(out)
    assert [len(g["images"]) for g in groups] == [3, 1]
    assert rgb(other).size == (64, 48)


# -- progress ---------------------------------------------------------------------------------


class Terminal:
    """A stream that says it is a terminal, keeping what was written."""

    def __init__(self) -> None:
        self.written: list[str] = []

    def isatty(self) -> bool:
        return True

    def write(self, text: str) -> None:
        self.written.append(text)

    def flush(self) -> None:
        pass


def test_one_progress_line_for_steps_and_counts(monkeypatch):
    from clipprobe_ext.cli import progress as module

    clock = iter([0.0, 0.05, 2.0, 2.05, 4.0])
    monkeypatch.setattr(module.time, "monotonic", lambda: next(clock))
    terminal = Terminal()
    line = module.Progress(terminal)
    line.count(0, 10, "Reading")  # t=0: drawn
    line.count(1, 10, "Reading")  # t=0.05: within a tenth of a second, not drawn
    line.count(5, 10, "Reading")  # t=2: 5 done in 2 s, 2 more seconds to go
    line("Loading model", 0.5)  # t=2.05: another message is drawn at once
    line.count(10, 10, "Reading")  # t=4: the last count is always drawn
    shown = [text.strip("\r").rstrip() for text in terminal.written]
    assert shown == [
        "clipprobe: Reading 0/10   0%",
        "clipprobe: Reading 5/10, 2.5/s, 0:02 left  50%",
        "clipprobe: Loading model  50%",
        "clipprobe: Reading 10/10, 2.5/s, 0:00 left 100%",
    ]
    line.clear()
    assert terminal.written[-1] == "\r" + " " * len(terminal.written[-2].strip("\r")) + "\r"
    quiet = Terminal()
    module.Progress(quiet, enabled=False)("Loading model")
    assert quiet.written == []


def test_a_new_count_has_its_own_rate(monkeypatch):
    """The calibration counts its resamples after the audit counted its pictures: the
    second count's rate and time left are its own, not the pictures'."""
    from clipprobe_ext.cli import progress as module

    clock = iter([0.0, 10.0, 10.5, 12.5])
    monkeypatch.setattr(module.time, "monotonic", lambda: next(clock))
    terminal = Terminal()
    line = module.Progress(terminal)
    line.count(0, 100, "Reading")
    line.count(100, 100, "Reading")  # 10 pictures a second
    line.count(0, 50, "Resampling")
    line.count(10, 50, "Resampling")  # 10 in 2 s: 5 a second, 8 s left
    shown = [text.strip("\r").rstrip() for text in terminal.written]
    assert shown[-1] == "clipprobe: Resampling 10/50, 5.0/s, 0:08 left  20%"
