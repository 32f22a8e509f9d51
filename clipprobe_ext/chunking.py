"""Split a long token sequence into 75-token chunks the way the WebUI conditions prompts.

CLIP reads at most 75 tokens (77 with the start and end markers).  The WebUI does not
truncate a longer prompt: it cuts it into 75-token chunks, moving the words after the
last comma into the next chunk when that comma is near the end (``comma_padding_backtrack``,
20 tokens by default), and starts a new chunk at every ``BREAK``.  Mirrors
``FrozenCLIPEmbedderWithCustomWordsBase.tokenize_line`` in ``modules/sd_hijack_clip.py``
of AUTOMATIC1111 1.10 (without textual-inversion embeddings, which CLIP cannot read).
"""

from __future__ import annotations

from collections.abc import Sequence

CHUNK_LENGTH = 75
COMMA_BACKTRACK = 20
BREAK = -1  # sentinel in a token sequence: force a new chunk here


def chunk_tokens(
    tokens: Sequence[int],
    comma_token: int,
    chunk_length: int = CHUNK_LENGTH,
    backtrack: int = COMMA_BACKTRACK,
) -> list[list[int]]:
    """Cut ``tokens`` (no start/end markers; ``BREAK`` sentinels allowed) into chunks.

    Always returns at least one chunk; an empty chunk only for an empty sequence.
    """
    positions = chunk_positions(tokens, comma_token, chunk_length, backtrack)
    return [[tokens[i] for i in chunk] for chunk in positions]


def chunk_positions(
    tokens: Sequence[int],
    comma_token: int,
    chunk_length: int = CHUNK_LENGTH,
    backtrack: int = COMMA_BACKTRACK,
) -> list[list[int]]:
    """Like ``chunk_tokens`` but each chunk lists positions in ``tokens``, so callers can
    tell which phrase every token of a chunk came from."""
    chunks: list[list[int]] = []
    chunk: list[int] = []
    last_comma = -1

    def close() -> None:
        nonlocal chunk, last_comma
        chunks.append(chunk)
        chunk = []
        last_comma = -1

    for position, token in enumerate(tokens):
        if token == BREAK:
            close()
            continue
        if token == comma_token:
            last_comma = len(chunk)
        elif (
            backtrack
            and len(chunk) == chunk_length
            and last_comma != -1
            and len(chunk) - last_comma <= backtrack
        ):
            moved = chunk[last_comma + 1 :]
            chunk = chunk[: last_comma + 1]
            close()
            chunk = moved
        if len(chunk) == chunk_length:
            close()
        chunk.append(position)
    if chunk or not chunks:
        close()
    return chunks
