"""Arguments the subcommands share, written once: the model, the output, progress, and
the folders that ``audit`` and ``calibrate`` read the same way."""

from __future__ import annotations

import argparse
import os
from datetime import datetime
from typing import TYPE_CHECKING, Any

from clipprobe_ext.cli.shell import UsageError
from clipprobe_ext.errors import ClipProbeError, ModelError
from clipprobe_ext.options import DEFAULT_MODEL, MODEL

if TYPE_CHECKING:
    from clipprobe_ext.audit.options import AuditOptions


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        help=f"{MODEL.help} (default {DEFAULT_MODEL})",
    )
    parser.add_argument("--device", choices=["cpu", "cuda"], help="default: cuda when available")


def add_output_arguments(parser: argparse.ArgumentParser, json_help: str, csv_help: str) -> None:
    formats = parser.add_mutually_exclusive_group()
    formats.add_argument("--json", action="store_true", help=json_help)
    formats.add_argument("--csv", action="store_true", help=csv_help)
    parser.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")


def date_argument(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"'{text}' is not a date: use YYYY-MM-DD or 'YYYY-MM-DD HH:MM'"
        ) from None


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"'{text}' is not a positive whole number")
    return value


def add_folder_arguments(parser: argparse.ArgumentParser) -> None:
    """The folders and which of their files: ``DIR...``, ``-r``, ``--since``, ``--limit``."""
    parser.add_argument("folders", nargs="+", metavar="DIR", help="folders (or image files)")
    parser.add_argument("-r", "--recursive", action="store_true", help="include sub-folders")
    parser.add_argument(
        "--since", type=date_argument, metavar="DATE", help="only files modified since DATE"
    )
    parser.add_argument("--limit", type=positive_int, metavar="N", help="only the N newest files")


def folder_options(args: argparse.Namespace, **more: Any) -> AuditOptions:
    """The ``AuditOptions`` of ``add_folder_arguments`` and ``--cache`` (plus ``more``),
    checked: a bad option is a ``UsageError``, a folder that is not there a
    ``ClipProbeError``, before any work."""
    from clipprobe_ext.audit.options import AuditOptions

    options = AuditOptions(
        recursive=args.recursive, since=args.since, limit=args.limit, cache=args.cache, **more
    )
    try:
        options.validate()
    except ClipProbeError as exc:
        raise UsageError(str(exc), args.prog) from exc
    for folder in args.folders:
        if not os.path.exists(folder):
            raise ClipProbeError(f"No such folder or file: {folder}")
    return options


def load_encoder(name: str, device: str | None = None) -> Any:
    """A ``ClipEncoder`` for ``name`` (``clipprobe_ext.encoders.factory``); ``ModelError``.

    Its text embeddings and reference banks are kept in the user's embedding store, so a
    second run pays for neither again."""
    from clipprobe_ext.encoders.factory import load_encoder as load

    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise ModelError("--device cuda was asked for, but this PyTorch sees no CUDA GPU.")
    return load(name, device)
