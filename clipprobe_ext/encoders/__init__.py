"""CLIP encoders behind one small interface (see ``base.ClipEncoder``)."""

from clipprobe_ext.encoders.base import ClipEncoder, TextEmbeddingCache

__all__ = ["ClipEncoder", "TextEmbeddingCache"]
