"""One call that runs every analysis of a prompt against one or more images.

(Work in progress: the signature below is the contract; the body lands shortly.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from PIL import Image

from clipprobe_ext.encoders.base import ClipEncoder, Progress
from clipprobe_ext.results import ProbeReport


@dataclass
class ProbeOptions:
    rounds: int = 5  # elimination rounds (the method's k)
    threshold: float = 0.01  # report phrases above this probability each round
    tolerance: float = 0.01  # pruning may lose at most this relative similarity
    synonyms: list[list[str]] = field(default_factory=list)  # groups of alternatives
    granularity: Literal["phrase", "word"] = "phrase"
    contribution: bool = True  # leave-one-out in-context contribution
    prune: bool = True  # suggest a pruned prompt


def parse_synonyms(text: str) -> list[list[str]]:
    """Groups from 'girl | woman; umbrella | parasol' (groups split by ';' or new lines)."""
    raise NotImplementedError


def analyze(
    images: Sequence[Image.Image],
    prompt: str,
    encoder: ClipEncoder,
    options: ProbeOptions | None = None,
    labels: Sequence[str] | None = None,
    progress: Progress | None = None,
) -> ProbeReport:
    """Analyse ``prompt`` against RGB ``images``; raises ``ClipProbeError`` on bad input."""
    raise NotImplementedError
