"""ClipProbe's installer: the WebUI runs ``python install.py`` at start-up.

AUTOMATIC1111 1.10 (``launch_utils.run_extension_installer``) and Forge run this file in a
subprocess with the WebUI folder on ``PYTHONPATH``, so ``import launch`` gives
``is_installed``, ``run_pip`` and ``args`` (``--skip-install``).

The engine needs torch, transformers, Pillow and numpy: the WebUI pins those (and gradio),
so ClipProbe never installs, upgrades or downgrades them; it only reports one that is
missing.  The optional openai ``clip`` package (the WebUI's Interrogate CLIP) is installed
when missing, from the same source the WebUI uses (``CLIP_PACKAGE``), with ``--no-deps`` so
that pip cannot touch torch; its small pure-python dependencies are installed if missing.

Prints exactly one line.  Outside the WebUI (no ``launch`` module) it only reports.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os

# Owned and pinned by the WebUI (requirements_versions.txt): never passed to pip here.
PINNED = ("torch", "transformers", "numpy", "Pillow", "gradio")
REQUIRED = ("torch", "transformers", "numpy", "Pillow")
CLIP_PACKAGE = os.environ.get(
    "CLIP_PACKAGE",
    "https://github.com/openai/CLIP/archive/d50d76daa670286dd6cacf3bcd80b5e4823fc8e1.zip",
)
# (name for is_installed, pip requirement) for openai clip and its pure-python dependencies.
OPTIONAL = (
    ("ftfy", "ftfy"),
    ("regex", "regex"),
    ("tqdm", "tqdm"),
    ("packaging", "packaging"),
    ("clip", f"--no-deps {CLIP_PACKAGE}"),
)


def _is_installed(package: str) -> bool:
    """``launch_utils.is_installed`` of 1.10, for use outside the WebUI."""
    try:
        importlib.metadata.distribution(package)
    except importlib.metadata.PackageNotFoundError:
        try:
            return importlib.util.find_spec(package) is not None
        except (ModuleNotFoundError, ValueError):
            return False
    return True


def _launch():
    try:
        import launch
    except ImportError:
        return None
    return launch


def install(launch=None) -> str:
    """Install what is missing; return the one line to print."""
    launch = launch if launch is not None else _launch()
    is_installed = getattr(launch, "is_installed", None) or _is_installed
    run_pip = getattr(launch, "run_pip", None)
    skip = bool(getattr(getattr(launch, "args", None), "skip_install", False))

    parts = []
    missing_required = [name for name in REQUIRED if not is_installed(name)]
    if missing_required:
        parts.append(
            f"missing {', '.join(missing_required)} (the WebUI provides these; "
            "ClipProbe does not install them)"
        )

    missing = [(name, req) for name, req in OPTIONAL if not is_installed(name)]
    if missing and (run_pip is None or skip):
        reason = "--skip-install is set" if run_pip is not None else "not run by the WebUI"
        names = ", ".join(name for name, _ in missing)
        parts.append(f"optional {names} not installed ({reason})")
    elif missing:
        installed, failed = [], []
        for name, requirement in missing:
            if name in PINNED:  # defensive: never reached with the lists above
                continue
            try:
                run_pip(f"install {requirement}", f"{name} for ClipProbe")
            except Exception as exc:
                lines = str(exc).strip().splitlines()
                failed.append(f"{name} ({lines[0] if lines else type(exc).__name__})")
            else:
                installed.append(name)
        if installed:
            parts.append(f"installed {', '.join(installed)}")
        if failed:
            parts.append(f"could not install {', '.join(failed)}")

    if not parts:
        return "ClipProbe: all requirements present"
    return "ClipProbe: " + "; ".join(parts)


def main() -> None:
    print(install())


if __name__ == "__main__":
    main()
