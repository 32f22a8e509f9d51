"""Every option of an analysis, defined once: default, bounds, unit, label and help.

The CLI's arguments, the WebUI's Settings and sliders and the API's request model are all
derived from ``OPTIONS``, so a limit or a default changes in one place.  One unit rule:
``threshold`` and ``tolerance`` are stored as fractions (``ProbeOptions``, the API, JSON
and CSV) and shown as percent wherever a person reads or types them; the CLI takes
``5%`` or ``0.05`` and refuses a bare number of 1 or more as ambiguous.
``MAX_PROMPT_CHARS`` is the one prompt-size limit of every entry point.  Pure: imports
neither gradio nor ``modules.*``.
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from clipprobe_ext.errors import ClipProbeError, PromptError
from clipprobe_ext.report.numbers import percent

DEFAULT_MODEL = "openai/clip-vit-base-patch32"
OPENAI_PREFIX = "openai-clip:"

# The API already capped prompts at 20,000 characters; prompts of real use are below
# 2,000.  Beyond this the text is refused before it is parsed or tokenized.
MAX_PROMPT_CHARS = 20_000

Unit = Literal["", "percent"]


@dataclass(frozen=True)
class OptionSpec:
    """One option.  ``minimum``/``maximum`` are inclusive and in stored units."""

    name: str
    kind: type
    default: Any
    label: str
    help: str
    minimum: float | None = None
    maximum: float | None = None
    step: float | None = None  # in shown units
    unit: Unit = ""
    choices: tuple[str, ...] = ()
    setting: bool = False  # also a WebUI Settings entry (the default of the tab and API)
    limits: dict[str, int] = field(default_factory=dict)  # synonyms: group counts and sizes

    @property
    def settings_key(self) -> str:
        """Key in the WebUI's Settings.  Percent options get a new key (values there are
        percent now): an old ``clipprobe_threshold: 0.01`` is never read as 0.01 %."""
        return f"clipprobe_{self.name}" + ("_percent" if self.unit == "percent" else "")

    def to_display(self, value: float) -> float:
        return 100.0 * value if self.unit == "percent" else value

    def from_display(self, value: float) -> float:
        return value / 100.0 if self.unit == "percent" else value

    def format(self, value: Any) -> str:
        if self.unit == "percent":
            return percent(value)
        if isinstance(value, float):
            return f"{value:g}"
        return str(value)

    def clamp(self, value: Any) -> Any:
        """``value`` within the bounds, the default when it is not a number at all."""
        try:
            number = self.kind(value)
        except (TypeError, ValueError):
            return self.default
        if isinstance(number, float) and not math.isfinite(number):
            return self.default
        if self.minimum is not None:
            number = max(number, self.kind(self.minimum))
        if self.maximum is not None:
            number = min(number, self.kind(self.maximum))
        return number

    def slider(self) -> dict[str, Any]:
        """gradio Slider keywords, in shown units."""
        if self.minimum is None or self.maximum is None:
            raise ValueError(f"{self.name} is not a number with bounds")
        return {
            "minimum": _shown(self.to_display(self.minimum)),
            "maximum": _shown(self.to_display(self.maximum)),
            "step": self.step,
            "value": _shown(self.to_display(self.default)),
            "label": self.label + (" (%)" if self.unit == "percent" else ""),
            "info": self.help,
        }

    def api_field(self) -> dict[str, Any]:
        """pydantic ``Field`` keywords (stored units; pydantic 1 and 2 spell these alike)."""
        out: dict[str, Any] = {"description": self.help}
        if self.minimum is not None:
            out["ge"] = self.minimum
        if self.maximum is not None:
            out["le"] = self.maximum
        if self.unit == "percent":
            out["description"] += " (a fraction: 0.01 is 1 %)"
        return out

    def check(self, value: Any) -> None:
        """``ClipProbeError`` when ``value`` is outside the bounds (message in shown units)."""
        if self.choices:
            if value not in self.choices:
                names = " or ".join(repr(c) for c in self.choices)
                raise ClipProbeError(f"{self.label} is {names}, not {value!r}.")
            return
        if self.minimum is None and self.maximum is None:
            return
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ClipProbeError(f"{self.label} must be a number, not {value!r}.") from None
        low = self.minimum if self.minimum is not None else -math.inf
        high = self.maximum if self.maximum is not None else math.inf
        if not (low <= number <= high) or (self.kind is int and number != int(number)):
            what = "a whole number" if self.kind is int else "a value"
            raise ClipProbeError(
                f"{self.label} must be {what} between {self.format(low)} and "
                f"{self.format(high)}, not {self.format(value)}."
            )


def _shown(value: float) -> float | int:
    rounded = round(value, 6)
    return int(rounded) if rounded == int(rounded) else rounded


def _meta(spec: OptionSpec) -> dict[str, OptionSpec]:
    return {"spec": spec}


@dataclass
class ProbeOptions:
    """The options of one analysis; see ``OPTIONS`` for each one's bounds and help."""

    rounds: int = field(
        default=5,
        metadata=_meta(
            OptionSpec(
                "rounds",
                int,
                5,
                "Rounds",
                "each round lists the phrases above the threshold, then removes the top one",
                minimum=1,
                maximum=20,
                step=1,
                setting=True,
            )
        ),
    )
    threshold: float = field(
        default=0.01,
        metadata=_meta(
            OptionSpec(
                "threshold",
                float,
                0.01,
                "Threshold",
                "a round reports the phrases whose probability is above this",
                minimum=0.0,
                maximum=0.5,
                step=0.1,
                unit="percent",
                setting=True,
            )
        ),
    )
    tolerance: float = field(
        default=0.01,
        metadata=_meta(
            OptionSpec(
                "tolerance",
                float,
                0.01,
                "Pruning tolerance",
                "the share of the prompt's similarity to the image a pruned prompt may lose",
                minimum=0.0,
                maximum=0.2,
                step=0.1,
                unit="percent",
                setting=True,
            )
        ),
    )
    synonyms: list[list[str]] = field(
        default_factory=list,
        metadata=_meta(
            OptionSpec(
                "synonyms",
                list,
                (),
                "Synonym groups",
                "groups of alternatives ranked against each other, e.g. 'girl | woman; "
                "umbrella | parasol'",
                limits={"max_groups": 64, "min_size": 2, "max_size": 64, "max_chars": 500},
            )
        ),
    )
    granularity: Literal["phrase", "word"] = field(
        default="phrase",
        metadata=_meta(
            OptionSpec(
                "granularity",
                str,
                "phrase",
                "Granularity",
                "probe the prompt phrase by phrase (between commas) or word by word",
                choices=("phrase", "word"),
            )
        ),
    )
    contribution: bool = field(
        default=True,
        metadata=_meta(
            OptionSpec(
                "contribution",
                bool,
                True,
                "In-context contribution",
                "how much the whole prompt's similarity drops without each phrase",
            )
        ),
    )
    prune: bool = field(
        default=True,
        metadata=_meta(
            OptionSpec(
                "prune",
                bool,
                True,
                "Pruned prompt",
                "search for the shortest prompt that keeps the similarity within the tolerance",
            )
        ),
    )

    def validate(self) -> None:
        """Raise ``ClipProbeError`` for options no analysis can run with (``OPTIONS``' bounds)."""
        for name, spec in OPTIONS.items():
            if name != "synonyms":
                spec.check(getattr(self, name))
        limits = OPTIONS["synonyms"].limits
        if len(self.synonyms) > limits["max_groups"]:
            raise ClipProbeError(
                f"At most {limits['max_groups']} synonym groups, not {len(self.synonyms)}."
            )
        for group in self.synonyms:
            words = [t for t in group if t.strip()]
            if len(words) < limits["min_size"]:
                raise PromptError(
                    f"A synonym group needs at least two alternatives: {' | '.join(group)!r}."
                )
            if len(group) > limits["max_size"]:
                raise PromptError(
                    f"A synonym group holds at most {limits['max_size']} alternatives, "
                    f"not {len(group)}."
                )
            if any(len(t) > limits["max_chars"] for t in group):
                raise PromptError(f"A synonym is at most {limits['max_chars']} characters long.")


OPTIONS: dict[str, OptionSpec] = {f.name: f.metadata["spec"] for f in fields(ProbeOptions)}

MODEL = OptionSpec(
    "model",
    str,
    DEFAULT_MODEL,
    "CLIP model",
    f"a transformers hub name or a local folder holding a transformers CLIP; "
    f"'{OPENAI_PREFIX}ViT-L/14' (or '{OPENAI_PREFIX}/path/model.pt') for the openai clip "
    "package",
    setting=True,
)


def parse_synonyms(text: str) -> list[list[str]]:
    """Groups from ``'girl | woman; umbrella | parasol'`` (groups split by ';' or new lines)."""
    groups = []
    for chunk in re.split(r"[;\n]", text or ""):
        words = [w.strip() for w in chunk.split("|")]
        words = [w for w in words if w]
        if words:
            groups.append(words)
    return groups


def check_prompt_length(text: str, source: str = "The prompt") -> str:
    """``text`` unchanged, or ``PromptError`` when it is longer than ``MAX_PROMPT_CHARS``."""
    if len(text) > MAX_PROMPT_CHARS:
        raise PromptError(
            f"{source} is {len(text):,} characters long; ClipProbe reads prompts of at most "
            f"{MAX_PROMPT_CHARS:,} characters."
        )
    return text


# -- command line --------------------------------------------------------------------------


def _cli_number(spec: OptionSpec) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        raw = text.strip()
        if spec.kind is int:
            try:
                return int(raw)
            except ValueError:
                raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        percent = raw.endswith("%")
        try:
            value = float(raw[:-1] if percent else raw)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number or percentage: {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"not a number: {text!r}")
        if spec.unit != "percent":
            return value
        if percent:
            return value / 100.0
        if value >= 1:
            raise argparse.ArgumentTypeError(
                f"{text!r} is ambiguous: write a percentage ({raw}%) or a fraction "
                f"({value / 100:g})"
            )
        return value

    parse.__name__ = spec.name  # argparse names the type in its messages
    return parse


def _bounds_help(spec: OptionSpec) -> str:
    if spec.minimum is None or spec.maximum is None:
        return ""
    return f"; {spec.format(spec.minimum)} to {spec.format(spec.maximum)}"


def add_number_argument(parser: argparse.ArgumentParser, name: str) -> None:
    """``--NAME`` for the number option ``OPTIONS[name]``: its type, default, bounds, help."""
    spec = OPTIONS[name]
    example = " (5% or 0.05)" if spec.unit == "percent" else ""
    text = f"{spec.help}{example}; default {spec.format(spec.default)}{_bounds_help(spec)}"
    parser.add_argument(
        f"--{name}",
        type=_cli_number(spec),
        default=spec.default,
        metavar="PERCENT" if spec.unit == "percent" else "N",
        help=text.replace("%", "%%"),  # argparse formats help with %
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The analysis options as command-line arguments (defaults and bounds from ``OPTIONS``)."""
    for name in ("rounds", "threshold", "tolerance"):
        add_number_argument(parser, name)
    spec = OPTIONS["synonyms"]
    parser.add_argument(
        "--synonyms",
        action="append",
        default=[],
        metavar='"A|B"',
        help=f"{spec.help}; repeatable".replace("%", "%%"),
    )
    parser.add_argument(
        "--words",
        action="store_true",
        help="probe word by word, not phrase by phrase (granularity)",
    )
    parser.add_argument(
        "--no-contribution",
        action="store_true",
        help=f"skip the {OPTIONS['contribution'].label.lower()}",
    )
    parser.add_argument(
        "--no-prune", action="store_true", help="skip the search for a pruned prompt"
    )


def options_from_args(args: argparse.Namespace) -> ProbeOptions:
    """``ProbeOptions`` from ``add_arguments``' namespace, validated (``ClipProbeError``)."""
    options = ProbeOptions(
        rounds=args.rounds,
        threshold=args.threshold,
        tolerance=args.tolerance,
        synonyms=[group for text in args.synonyms for group in parse_synonyms(text)],
        granularity="word" if args.words else "phrase",
        contribution=not args.no_contribution,
        prune=not args.no_prune,
    )
    options.validate()
    return options
