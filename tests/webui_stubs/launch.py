"""Mirrors launch.py of AUTOMATIC1111 v1.10.1 (re-exports of modules/launch_utils.py).

``args`` holds the flags install scripts read; ``is_installed`` is the real 1.10 logic
unless a test sets ``installed``; ``run_pip`` records its commands in ``pip_calls`` and
skips when ``args.skip_install`` (as 1.10 does) instead of running pip.
"""

import argparse
import importlib.metadata
import importlib.util
import sys

args = argparse.Namespace(skip_install=False)
python = sys.executable
index_url = ""
installed = None  # set of names to pretend are installed (None: ask importlib)
pip_calls = []


def is_installed(package):
    if installed is not None:
        return package in installed
    try:
        dist = importlib.metadata.distribution(package)
    except importlib.metadata.PackageNotFoundError:
        try:
            spec = importlib.util.find_spec(package)
        except ModuleNotFoundError:
            return False
        return spec is not None
    return dist is not None


def run_pip(command, desc=None, live=False):
    if args.skip_install:
        return None
    pip_calls.append(command)
    return ""
