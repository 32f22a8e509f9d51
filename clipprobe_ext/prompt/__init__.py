"""A1111 prompts: phrases with the weights the WebUI gives them, and clean removal."""

from .parser import (
    Granularity,
    ParsedPrompt,
    Phrase,
    TokenKind,
    parse_prompt,
    require_measurable,
)
from .removal import (
    RemovalPlan,
    UncleanRemovalError,
    plan_removal,
    removal_blocker,
    remove_phrases,
)

__all__ = [
    "Granularity",
    "ParsedPrompt",
    "Phrase",
    "TokenKind",
    "parse_prompt",
    "RemovalPlan",
    "UncleanRemovalError",
    "plan_removal",
    "removal_blocker",
    "remove_phrases",
    "require_measurable",
]
