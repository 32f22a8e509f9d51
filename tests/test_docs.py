"""The documentation against the code: every relative link of the README and docs/ leads
to a file, and every option a usage block gives a command is an option of that command's
parser."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from clipprobe_ext.cli.app import COMMANDS, build_parser

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")
USAGE = re.compile(r"^clipprobe(?: (analyze|audit|calibrate))?\b", re.MULTILINE)


def code_blocks(text: str) -> list[str]:
    return re.findall(r"^```[a-z]*\n(.*?)^```", text, re.MULTILINE | re.DOTALL)


def usages(text: str) -> list[tuple[str, str]]:
    """(command, its usage with continuation lines) of every ``clipprobe ...`` line in a
    code block; a continuation line is indented."""
    found = []
    for block in code_blocks(text):
        lines = block.splitlines()
        for i, line in enumerate(lines):
            match = USAGE.match(line)
            if not match:
                continue
            usage = [line]
            for rest in lines[i + 1 :]:
                if not rest.startswith(" "):
                    break
                usage.append(rest)
            found.append((match.group(1) or "analyze", " ".join(usage).split("#")[0]))
    return found


def parser_options() -> dict[str, set[str]]:
    subparsers = build_parser()._subparsers._group_actions[0].choices
    return {
        name: {o for action in subparsers[name]._actions for o in action.option_strings}
        for name in COMMANDS
    }


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_relative_link_leads_to_a_file(page: Path) -> None:
    targets = [t for t in LINK.findall(page.read_text()) if "://" not in t]
    missing = [t for t in targets if not (page.parent / t.split("#")[0]).exists()]
    assert not missing


def test_every_documented_option_is_the_commands() -> None:
    options = parser_options()
    checked = 0
    for page in PAGES:
        for command, usage in usages(page.read_text()):
            documented = set(re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)", usage))
            unknown = documented - options[command]
            assert not unknown, f"{page.name}: {command} has no {sorted(unknown)}"
            checked += len(documented)
    assert checked > 40  # the usage blocks were found


def test_the_usage_reader_finds_a_wrong_option() -> None:
    (command, usage), *_ = usages("```\nclipprobe audit DIR [--recursive]\n    [--no-such]\n```\n")
    assert command == "audit"
    assert set(re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)", usage)) - parser_options()["audit"] == {
        "--no-such"
    }


def test_the_library_example_is_the_one_the_facade_test_runs() -> None:
    import clipprobe_ext

    tested = clipprobe_ext.__doc__.split("::\n\n", 1)[1].split("\n\n", 1)[0]
    tested = "\n".join(line.strip() for line in tested.splitlines())
    for page in (ROOT / "README.md", ROOT / "docs" / "api.md"):
        python = re.findall(r"^```python\n(.*?)^```", page.read_text(), re.MULTILINE | re.DOTALL)
        assert python == [tested + "\n"], page.name
