"""Runs the node tests of javascript/clipprobe.js (tests/js/*.test.js) under pytest."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

JS_TESTS = Path(__file__).parent / "js"


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_javascript_send_to_and_tab_switch():
    files = sorted(str(p) for p in JS_TESTS.glob("*.test.js"))
    assert files
    done = subprocess.run(
        ["node", "--test", *files], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "# fail 0" in done.stdout
