"""Arguments every subcommand shares, written once: the model, the output, progress.

Public API: ``add_model_arguments(parser)`` (``--model``, ``--device``),
``add_output_arguments(parser, json_help, csv_help)`` (``--json``/``--csv``, ``-o FILE``,
``-q``), ``load_encoder(name, device)``.
"""

from __future__ import annotations

import argparse
from typing import Any

from clipprobe_ext.errors import ModelError
from clipprobe_ext.options import DEFAULT_MODEL, MODEL


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
