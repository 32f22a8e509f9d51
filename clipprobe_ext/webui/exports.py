"""The tab's JSON and CSV downloads: fresh files per run under the temp dir, old runs pruned.

Public API: ``write_exports(report) -> (json_path, csv_path)``; ``EXPORTS_KEPT`` runs are
kept (gradio serves the files from their paths, so they must outlive the request).
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
import time

from clipprobe_ext.report import data as report_format
from clipprobe_ext.results import ProbeReport

EXPORTS_KEPT = 20
_counter = itertools.count(1)


def export_dir() -> str:
    folder = os.path.join(tempfile.gettempdir(), "clipprobe-exports")
    os.makedirs(folder, exist_ok=True)
    return folder


def write_exports(report: ProbeReport) -> tuple[str, str]:
    """``report.data.to_json``/``to_csv`` into a new folder of ``export_dir()``."""
    folder = export_dir()
    stem = f"clipprobe-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{next(_counter)}"
    run_dir = os.path.join(folder, stem)
    os.makedirs(run_dir, exist_ok=True)
    json_path = os.path.join(run_dir, "clipprobe-report.json")
    csv_path = os.path.join(run_dir, "clipprobe-report.csv")
    with open(json_path, "w", encoding="utf-8") as f:
        f.write(report_format.to_json(report))
    with open(csv_path, "w", encoding="utf-8", newline="") as f:
        f.write(report_format.to_csv(report))
    _prune(folder)
    return json_path, csv_path


def _prune(folder: str) -> None:
    try:
        runs = sorted(
            (os.path.join(folder, d) for d in os.listdir(folder)),
            key=lambda p: os.path.getmtime(p),
        )
        for old in runs[:-EXPORTS_KEPT]:
            shutil.rmtree(old, ignore_errors=True)
    except OSError:
        pass
