"""install.py: installs only what is missing, never the WebUI's pinned packages, one line."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EVERYTHING = {
    "torch",
    "transformers",
    "numpy",
    "Pillow",
    "gradio",
    "clip",
    "ftfy",
    "regex",
    "tqdm",
    "packaging",
}
PINNED_WORDS = ("torch", "transformers", "numpy", "pillow", "gradio")


@pytest.fixture()
def installer():
    spec = importlib.util.spec_from_file_location("clipprobe_install", ROOT / "install.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # importing runs nothing
    return module


def assert_no_pinned(calls):
    for command in calls:
        words = command.lower().replace("/", " ").split()
        assert not any(word in PINNED_WORDS for word in words), command
        assert "--no-deps" in command or "clip" not in command.lower()


def test_all_present(installer, launch_stub):
    launch_stub.installed = set(EVERYTHING)
    assert installer.install() == "ClipProbe: all requirements present"
    assert launch_stub.pip_calls == []


def test_installs_missing_clip_without_touching_torch(installer, launch_stub):
    launch_stub.installed = EVERYTHING - {"clip", "ftfy"}
    line = installer.install()
    assert line == "ClipProbe: installed ftfy, clip"
    assert len(launch_stub.pip_calls) == 2
    assert launch_stub.pip_calls[0] == "install ftfy"
    assert launch_stub.pip_calls[1].startswith("install --no-deps ")
    assert_no_pinned(launch_stub.pip_calls)


@pytest.mark.parametrize("missing", ["torch", "transformers", "numpy", "Pillow"])
def test_never_installs_pinned_packages(installer, launch_stub, missing):
    launch_stub.installed = EVERYTHING - {missing}
    line = installer.install()
    assert launch_stub.pip_calls == []
    assert line.startswith("ClipProbe: missing ")
    assert missing in line
    assert "\n" not in line


def test_nothing_installed_at_all(installer, launch_stub):
    launch_stub.installed = set()
    line = installer.install()
    assert "\n" not in line
    assert_no_pinned(launch_stub.pip_calls)
    assert len(launch_stub.pip_calls) == 5


def test_skip_install_is_honoured(installer, launch_stub):
    launch_stub.installed = EVERYTHING - {"clip"}
    launch_stub.args.skip_install = True
    line = installer.install()
    assert launch_stub.pip_calls == []
    assert line == "ClipProbe: optional clip not installed (--skip-install is set)"


def test_pip_failure_is_one_line(installer, launch_stub):
    launch_stub.installed = EVERYTHING - {"clip"}

    def failing(command, desc=None, live=False):
        raise RuntimeError("Couldn't install clip for ClipProbe.\nCommand: pip ...\nError code: 1")

    launch_stub.run_pip = failing
    line = installer.install()
    assert line == "ClipProbe: could not install clip (Couldn't install clip for ClipProbe.)"


def test_real_is_installed_logic(installer, launch_stub):
    launch_stub.installed = None  # the stand-in asks importlib like launch_utils does
    assert installer.install().startswith("ClipProbe: ")


def test_outside_the_webui(installer, monkeypatch):
    monkeypatch.setitem(sys.modules, "launch", None)  # import launch -> ImportError
    line = installer.install()
    assert line.startswith("ClipProbe: ")
    assert "\n" not in line


def test_runs_as_a_script_outside_the_webui(tmp_path):
    result = subprocess.run(
        [sys.executable, str(ROOT / "install.py")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    assert lines[0] == "ClipProbe: all requirements present"  # the venv has everything
