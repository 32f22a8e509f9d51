"""A1111 prompts: phrases with the weights the WebUI gives them, and clean removal."""

from .parser import (
    Granularity,
    ParsedPrompt,
    Phrase,
    TokenKind,
    parse_prompt,
    require_measurable,
)
from .removal import remove_phrases

__all__ = [
    "Granularity",
    "ParsedPrompt",
    "Phrase",
    "TokenKind",
    "parse_prompt",
    "remove_phrases",
    "require_measurable",
]
