"""The ``clipprobe`` command line: argparse subcommands, the first of them the default.

Each subcommand is a module of this package with ``NAME``, ``HELP`` (one line for the
list of commands), ``DESCRIPTION``, ``EPILOG``, ``add_arguments(parser)`` and
``run(args, progress) -> shell.Outcome``; it imports what it runs inside ``run``, so that
``--help`` and a bad command line load no model library.  A new subcommand is such a
module plus its name in ``COMMANDS``.

``clipprobe IMAGE...`` is ``clipprobe analyze IMAGE...``: a command line whose first word
is not a command's name goes to the default command (an image file named like a command
is given as ``./audit`` or after ``analyze``), and so does ``clipprobe --help``, whose
text ends with the list of commands.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Sequence
from types import ModuleType

from clipprobe_ext.cli.progress import PROG
from clipprobe_ext.cli.shell import Parser, UsageError, run_guarded

COMMANDS = (
    "analyze",
    "audit",
    "calibrate",
)  # modules of clipprobe_ext.cli; the first is the default
DEFAULT = COMMANDS[0]


def command(name: str) -> ModuleType:
    return importlib.import_module(f"clipprobe_ext.cli.{name}")


def _commands_epilog(modules: dict[str, ModuleType]) -> str:
    width = max(len(name) for name in modules)
    lines = [f"  {name:<{width}}  {module.HELP}" for name, module in modules.items()]
    return (
        f"commands ({PROG} COMMAND --help for each):\n"
        + "\n".join(lines)
        + f"\n{PROG} IMAGE... is short for {PROG} {DEFAULT} IMAGE..."
    )


def build_parser() -> argparse.ArgumentParser:
    """The parser of every subcommand (each under its own name)."""
    modules = {name: command(name) for name in COMMANDS}
    parser = Parser(prog=PROG, description=modules[DEFAULT].DESCRIPTION)
    subcommands = parser.add_subparsers(
        dest="command", metavar="COMMAND", parser_class=Parser, required=True
    )
    for name, module in modules.items():
        prog = PROG if name == DEFAULT else f"{PROG} {name}"
        epilog = module.EPILOG or ""
        if name == DEFAULT:
            epilog = f"{epilog}\n\n{_commands_epilog(modules)}".strip()
        sub = subcommands.add_parser(
            name,
            prog=prog,
            help=module.HELP,
            description=module.DESCRIPTION,
            epilog=epilog or None,
            formatter_class=_Formatter,
        )
        module.add_arguments(sub)
        sub.set_defaults(run=module.run, prog=prog)
    return parser


class _Formatter(argparse.HelpFormatter):
    """Wrapped help, but the epilog's list of commands kept one per line."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        paragraphs = text.split("\n\n")
        return "\n\n".join(
            p
            if p.startswith("commands (")
            else super(_Formatter, self)._fill_text(p, width, indent)
            for p in paragraphs
        )


def parse(argv: Sequence[str]) -> argparse.Namespace:
    """``argv`` parsed, the default command's name put in front where none is given."""
    words = list(argv)
    if not words or words[0] not in COMMANDS:
        words.insert(0, DEFAULT)
    args, unknown = build_parser().parse_known_args(words)
    if unknown:  # said by the subcommand, whose --help lists what it takes
        raise UsageError(f"unrecognized arguments: {' '.join(unknown)}", args.prog)
    return args


def run(argv: Sequence[str]) -> int:
    """The command line on ``argv``; the exit status (``shell``)."""
    return run_guarded(lambda: parse(argv))
