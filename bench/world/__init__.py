"""A ground-truth picture world for benchmarks (see ``scenes`` for the API)."""

from world.scenes import (
    COLOURS,
    QUALITY_TAGS,
    SHAPES,
    STYLE_WORDS,
    STYLES,
    Scene,
    World,
    WorldObject,
    WorldSpec,
    domain_spec,
    object_phrase,
)

__all__ = [
    "COLOURS",
    "QUALITY_TAGS",
    "SHAPES",
    "STYLES",
    "STYLE_WORDS",
    "Scene",
    "World",
    "WorldObject",
    "WorldSpec",
    "domain_spec",
    "object_phrase",
]
