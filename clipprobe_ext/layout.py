"""Similarity of the images to the prompt with some of its phrases left out.

The whole prompt is read the way the WebUI conditions it: its CLIP text is cut into
75-token chunks (``chunking``) and the chunk embeddings are averaged.  A variant (the
prompt without some phrases) keeps the full prompt's chunk layout: every other phrase
stays in the chunk it was in, only the chunks that lost a phrase change.  That is the
"everything else as written" comparison in-context contribution asks for, and it makes
variants cheap: a chunk that did not change is a cache hit, so measuring a variant
costs one chunk encode, not a whole prompt.  For a prompt of at most 75 tokens there is
a single chunk and a variant is simply the shorter prompt.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from clipprobe_ext.chunking import BREAK, chunk_positions
from clipprobe_ext.encoders.base import ClipEncoder, Progress
from clipprobe_ext.prompt import ParsedPrompt

Variant = frozenset[int]  # phrase indices kept


class PromptLayout:
    """The chunk layout of a prompt's measurable phrases, and variant similarities."""

    def __init__(
        self,
        parsed: ParsedPrompt,
        phrases: Sequence[int],
        encoder: ClipEncoder,
        image_embs: np.ndarray,
    ) -> None:
        self.encoder = encoder
        self.image_embs = image_embs
        self.texts = {p.index: p.text for p in parsed.phrases}
        self.phrases = list(phrases)
        self.chunks = self._assign_chunks(parsed)

    def _assign_chunks(self, parsed: ParsedPrompt) -> list[list[int]]:
        """Phrase indices of each chunk: a phrase belongs where its first token falls."""
        tokens: list[int] = []
        owner: list[int] = []
        breaks = set(parsed.breaks)
        for n, index in enumerate(self.phrases):
            if n and index in breaks:
                tokens.append(BREAK)
                owner.append(-1)
            elif n:
                tokens.append(self.encoder.comma_token)
                owner.append(-1)
            ids = self.encoder.tokenize(self.texts[index]) or [self.encoder.comma_token]
            tokens.extend(ids)
            owner.extend([index] * len(ids))
        chunks: list[list[int]] = []
        seen: set[int] = set()
        for positions in chunk_positions(tokens, self.encoder.comma_token):
            members = []
            for position in positions:
                index = owner[position]
                if index >= 0 and index not in seen:
                    seen.add(index)
                    members.append(index)
            if members:
                chunks.append(members)
        return chunks or [[]]

    @property
    def chunk_count(self) -> int:
        return len(self.chunks)

    def chunk_texts(self, kept: Variant) -> list[str]:
        """The text of every chunk that still holds a phrase."""
        texts = [", ".join(self.texts[i] for i in chunk if i in kept) for chunk in self.chunks]
        return [t for t in texts if t] or [""]

    def embeddings(
        self, variants: Sequence[Variant], progress: Progress | None = None
    ) -> np.ndarray:
        """Unit embeddings of the variants, [len(variants), dim]."""
        per_variant = [self.chunk_texts(v) for v in variants]
        distinct = list(dict.fromkeys(t for texts in per_variant for t in texts))
        embs, _ = self.encoder.encode_texts(distinct, progress)
        table = dict(zip(distinct, embs.numpy().astype(np.float64)))
        out = np.stack([np.mean([table[t] for t in texts], axis=0) for texts in per_variant])
        return out / np.linalg.norm(out, axis=1, keepdims=True).clip(1e-12)

    def similarities(
        self, variants: Sequence[Variant], progress: Progress | None = None
    ) -> np.ndarray:
        """Cosine similarity of every image to every variant, [images, variants]."""
        return self.image_embs @ self.embeddings(variants, progress).T
