"""``clipprobe audit``: the command line, kill -9 and resume, two at once.

The subprocess tests run the real command line with the tiny CLIP; a wrapper slows the
image tower down (a sleep per batch) so that a kill or a second process lands mid-run.
Work done is read from the store and the reports, never from timings.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import make_image
from test_audit import assert_same, comparable, save_png

from clipprobe_ext.audit.pipeline import AuditOptions, run_audit
from clipprobe_ext.cli import main as clipprobe
from clipprobe_ext.store import EmbeddingStore

ROOT = Path(__file__).resolve().parent.parent
PROMPTS = [
    "masterpiece, best quality, a red circle, sunset",
    "best quality, a blue square, (ultra detailed:1.3)",
    "a cat, 8k, trending on artstation",
]

SLOW_CLI = """
import signal, sys, time
# A shell without job control starts background jobs with SIGINT ignored (CI may run so);
# Ctrl-C is what the test sends, so take Python's own handler back.
signal.signal(signal.SIGINT, signal.default_int_handler)
sys.path.insert(0, {root!r})
from clipprobe_ext.encoders.hf import HFClipEncoder

original = HFClipEncoder._encode_image_batch

def slow(self, images):
    time.sleep({delay})
    return original(self, images)

HFClipEncoder._encode_image_batch = slow
from clipprobe_ext.cli import main
sys.exit(main(["audit", *sys.argv[1:]]))
"""


def main(argv: list[str]) -> int:
    """``clipprobe audit ARGV...``, in-process."""
    return clipprobe(["audit", *argv])


@pytest.fixture()
def pictures(tmp_path: Path) -> Path:
    out = tmp_path / "outputs"
    out.mkdir()
    for i in range(24):
        save_png(out / f"{i:05}.png", make_image(i, size=(40, 40)), PROMPTS[i % 3])
    make_image(99).save(out / "no-parameters.png")
    return out


def slow_cli(tmp_path: Path, delay: float) -> Path:
    script = tmp_path / f"slow_cli_{delay}.py"
    script.write_text(SLOW_CLI.format(root=str(ROOT), delay=delay))
    return script


def env() -> dict[str, str]:
    return {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
    }


def stored_images(store: Path) -> int:
    try:
        with sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=5) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM images").fetchone()[0])
    except sqlite3.Error:  # not created yet
        return 0


def wait_for(process: subprocess.Popen, store: Path, count: int, limit: float = 180) -> int:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        n = stored_images(store)
        if n >= count:
            return n
        if process.poll() is not None:
            out, err = process.communicate()
            pytest.fail(f"finished before {count} embeddings were stored: {err[-2000:]}")
        time.sleep(0.02)
    process.kill()
    pytest.fail("the audit stored nothing in time")


def cli_args(folder: Path, model: Path, store: Path, *extra: str) -> list[str]:
    return [str(folder), "--model", str(model), "--cache", str(store), "-q", *extra]


# -- in-process ----------------------------------------------------------------------------


def test_table_json_csv_and_html(pictures, tiny_hf_clip_dir, tmp_path, capsys):
    store = tmp_path / "s.sqlite3"
    assert main(cli_args(pictures, tiny_hf_clip_dir, store)) == 0
    table = capsys.readouterr().out
    assert "24 pictures, 3 distinct prompts" in table and "best quality" in table
    assert "Without generation parameters (1)" in table
    assert main(cli_args(pictures, tiny_hf_clip_dir, store, "--json")) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["stats"]["encoded"] == 0 and data["stats"]["from_store"] == 24
    best = next(p for p in data["phrases"] if p["phrase"] == "best quality")
    assert (best["prompts"], best["pictures"]) == (2, 16)
    assert main(cli_args(pictures, tiny_hf_clip_dir, store, "--csv")) == 0
    rows = capsys.readouterr().out.splitlines()
    assert rows[0].startswith("phrase,prompts,pictures,seen,seen_rate")
    assert len(rows) == 1 + len(data["phrases"])
    html = tmp_path / "report.html"
    assert main(cli_args(pictures, tiny_hf_clip_dir, store, "--html", str(html))) == 0
    text = html.read_text()
    # frequency, seen rate, and the writing effect
    assert text.count("data:image/png;base64,") == 3 and "best quality" in text
    assert "<script" not in text and "http" not in text.replace("https://", "")  # self-contained


def test_errors_are_one_line_and_change_nothing(tiny_hf_clip_dir, tmp_path, capsys):
    store = tmp_path / "s.sqlite3"
    assert main(cli_args(tmp_path / "missing", tiny_hf_clip_dir, store)) == 1
    err = capsys.readouterr().err
    assert err.startswith("clipprobe: error: No such folder") and err.count("\n") == 1
    assert not store.exists()
    assert main([str(tmp_path), "--since", "last tuesday"]) == 2
    assert "clipprobe: error:" in capsys.readouterr().err
    assert main([str(tmp_path), "--limit", "0"]) == 2
    assert "--limit" in capsys.readouterr().err
    assert main([str(tmp_path), "--model", str(tmp_path / "no-model"), "--cache", str(store)]) == 1
    assert capsys.readouterr().err.count("\n") == 1
    assert not store.exists()


def test_main_module_dispatches_audit():
    result = subprocess.run(
        [sys.executable, "-m", "clipprobe_ext", "audit", "--help"],
        cwd=ROOT,
        env=env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0 and "--recursive" in result.stdout and "--cache" in result.stdout


# -- processes -----------------------------------------------------------------------------


def test_kill_9_then_resume_computes_only_what_is_missing(pictures, tiny_hf_clip_dir, tmp_path):
    from clipprobe_ext.encoders.hf import HFClipEncoder

    store = tmp_path / "killed.sqlite3"
    args = cli_args(pictures, tiny_hf_clip_dir, store, "--batch-size", "2", "--workers", "1")
    process = subprocess.Popen(
        [sys.executable, str(slow_cli(tmp_path, 0.25)), *args],
        env=env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for(process, store, 4)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    kept = stored_images(store)
    assert 4 <= kept < 24
    with EmbeddingStore(store) as opened:
        assert opened.check() == ["ok"] and not opened.rebuilt

    encoder = HFClipEncoder.from_pretrained(str(tiny_hf_clip_dir), "cpu")
    resumed = run_audit([pictures], encoder, AuditOptions(cache=str(store)))
    assert encoder.stats.image_forwards == 24 - kept  # only what was missing
    assert resumed.stats.encoded == 24 - kept and resumed.stats.from_store == kept

    fresh = HFClipEncoder.from_pretrained(str(tiny_hf_clip_dir), "cpu")
    uninterrupted = run_audit(
        [pictures], fresh, AuditOptions(cache=str(tmp_path / "fresh.sqlite3"))
    )
    assert fresh.stats.image_forwards == 24
    assert_same(comparable(resumed), comparable(uninterrupted))


def test_ctrl_c_exits_130_and_keeps_what_was_encoded(pictures, tiny_hf_clip_dir, tmp_path):
    store = tmp_path / "interrupted.sqlite3"
    args = cli_args(pictures, tiny_hf_clip_dir, store, "--batch-size", "2", "--workers", "1")
    process = subprocess.Popen(
        [sys.executable, str(slow_cli(tmp_path, 0.25)), *args],
        env=env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen = wait_for(process, store, 2)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130
    assert out == "" and err.startswith("clipprobe: interrupted after") and err.count("\n") == 1
    kept = stored_images(store)
    assert seen <= kept < 24


def test_two_audits_at_once_on_one_store(pictures, tiny_hf_clip_dir, tmp_path):
    store = tmp_path / "shared.sqlite3"
    other = tmp_path / "other"
    other.mkdir()  # overlapping work: half the same pictures, half new ones
    for i in range(12):
        save_png(other / f"o{i}.png", make_image(i, size=(40, 40)), PROMPTS[i % 3])
        save_png(other / f"n{i}.png", make_image(100 + i, size=(40, 40)), PROMPTS[i % 3])
    script = slow_cli(tmp_path, 0.15)
    runs = [
        subprocess.Popen(
            [
                sys.executable,
                str(script),
                *cli_args(folder, tiny_hf_clip_dir, store, "--json", "--batch-size", "2"),
            ],
            env=env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for folder in (pictures, other)
    ]
    outputs = [r.communicate(timeout=300) for r in runs]
    assert [r.returncode for r in runs] == [0, 0], [e[-2000:] for _, e in outputs]
    reports = [json.loads(out) for out, _ in outputs]
    assert reports[0]["stats"]["pictures"] == 24 and reports[1]["stats"]["pictures"] == 24
    with EmbeddingStore(store) as opened:
        assert opened.check() == ["ok"]
        assert opened.count("images") == 36  # 24 + 12 new; the shared 12 stored once
        assert opened.count("files") == 25 + 24
    # a third run over both folders finds everything stored, and agrees with fresh runs
    from clipprobe_ext.encoders.hf import HFClipEncoder

    encoder = HFClipEncoder.from_pretrained(str(tiny_hf_clip_dir), "cpu")
    both = run_audit([pictures, other], encoder, AuditOptions(cache=str(store)))
    assert encoder.stats.image_forwards == 0 and both.stats.from_store == 48
    fresh = HFClipEncoder.from_pretrained(str(tiny_hf_clip_dir), "cpu")
    for folder, report in zip((pictures, other), reports):
        alone = run_audit([folder], fresh, AuditOptions(cache=str(tmp_path / f"{folder.name}.db")))
        assert_same(comparable(alone), {k: v for k, v in report.items() if k in comparable(alone)})
