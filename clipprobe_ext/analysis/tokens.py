"""How many of CLIP's tokens each phrase spends, and where the WebUI's 75-token chunks break.

The WebUI's own token counter shows one number.  A user pruning a prompt also wants to
know which phrases are expensive, which one got cut in half by a chunk boundary (its
two halves are read by different CLIP passes), and what a pruned prompt saves.

The token sequence is built the way ``tokenize_line`` in ``modules/sd_hijack_clip.py``
(A1111 1.10) reads a prompt: extra-network tags are dropped, brackets and weights are
not tokens, every ``BREAK`` closes the chunk, and the commas between phrases are tokens
(where the WebUI prefers to cut).  The cut itself is ``chunking.chunk_positions``, the
project's mirror of the WebUI's rule.  Each phrase of the parsed prompt (phrases or
words: the analysis' own parse) is tokenized on its own, as is the run of commas
between two of them.

Approximations, all rare: a schedule ``[a:b:N]`` is counted at its last step (``b``); an
alternation ``[a|b]`` counts all its options (an upper bound: the WebUI reads one per
step); punctuation touching a separating comma (``wow!, cat``) may be one BPE token in
the WebUI and is two here.  ``AND`` splits the prompt into sub-prompts that the WebUI
conditions separately: each is chunked on its own, and the headline count is the
largest, as in the WebUI's counter.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

from clipprobe_ext.chunking import BREAK, CHUNK_LENGTH, chunk_positions
from clipprobe_ext.prompt import ParsedPrompt, parse_prompt

Tokenizer = Callable[[str], Sequence[int]]

_SEPARATOR_WORDS = re.compile(r"\bBREAK\b|\bAND\b")
_TAG_RE = re.compile(r"<(\w+):([^>]+)>")  # extra networks, as modules/extra_networks.py


@dataclass(frozen=True)
class PhraseTokens:
    """One phrase's share of the token budget."""

    index: int  # phrase index in the parsed prompt
    text: str
    tokens: int  # CLIP tokens of its text (0 for extra-network tags)
    measurable: bool
    subprompt: int  # which ``AND`` part it belongs to (0 without AND)
    chunks: list[int]  # chunk numbers (within its sub-prompt, 0-based) its tokens fall in

    @property
    def straddles(self) -> bool:
        """True when a chunk boundary cuts the phrase: CLIP reads its halves apart."""
        return len(self.chunks) > 1


@dataclass(frozen=True)
class TokenBudget:
    """The token budget of one prompt (the largest ``AND`` part where there are several)."""

    prompt: str
    tokens: int  # tokens CLIP reads (separating commas included, padding not)
    webui_count: int  # the number the WebUI's counter shows (a chunk cut early counts 75)
    limit: int  # 75, 150, 225, ...: the counter's denominator
    chunk_sizes: list[int]  # tokens in each chunk of the largest sub-prompt
    chunk_phrases: list[list[int]]  # phrase indices with tokens in each of those chunks
    phrases: list[PhraseTokens]
    subprompts: int = 1
    chunk_length: int = CHUNK_LENGTH

    @property
    def chunk_count(self) -> int:
        return len(self.chunk_sizes)

    @property
    def straddling(self) -> list[int]:
        """Indices of the phrases a chunk boundary cuts in two."""
        return [p.index for p in self.phrases if p.straddles]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["chunk_count"] = self.chunk_count
        d["straddling"] = self.straddling
        for p, row in zip(self.phrases, d["phrases"]):
            row["straddles"] = p.straddles
        return d


@dataclass(frozen=True)
class TokenSaving:
    """What a pruned prompt saves against the original."""

    original_tokens: int  # CLIP tokens
    pruned_tokens: int
    original_chunks: int
    pruned_chunks: int
    removed: list[int] = field(default_factory=list)  # phrase indices of the original
    original_webui_count: int | None = None  # what the WebUI's counter shows
    pruned_webui_count: int | None = None

    @property
    def tokens_saved(self) -> int:
        return self.original_tokens - self.pruned_tokens

    @property
    def chunks_saved(self) -> int:
        return self.original_chunks - self.pruned_chunks

    def to_dict(self) -> dict:
        d = asdict(self)
        d["tokens_saved"] = self.tokens_saved
        d["chunks_saved"] = self.chunks_saved
        return d


@functools.cache
def _simple_tokenizer():
    from clip.simple_tokenizer import SimpleTokenizer

    return SimpleTokenizer()


def default_tokenizer(text: str) -> list[int]:
    """CLIP's BPE tokenizer (openai ``clip.simple_tokenizer``, shipped with the WebUI):
    the same vocabulary as every SD 1.x text encoder, no model weights needed."""
    return list(_simple_tokenizer().encode(text))


def token_budget(
    prompt: ParsedPrompt | str,
    tokenize: Tokenizer | None = None,
    chunk_length: int = CHUNK_LENGTH,
) -> TokenBudget:
    """Tokens per phrase, chunk boundaries and totals of a WebUI prompt (parsed, or a
    string parsed into phrases here)."""
    tokenize = tokenize or default_tokenizer
    comma = _single_token(tokenize, ",")
    parsed = prompt if isinstance(prompt, ParsedPrompt) else parse_prompt(prompt)
    prompt = parsed.prompt
    # Per sub-prompt: the token sequence and, for every position, the phrase it belongs to.
    sequences: list[tuple[list[int], list[int]]] = [([], [])]
    counts: dict[int, int] = {}
    subprompt_of: dict[int, int] = {}
    # Tags are cut out before tokenizing (as the WebUI does), so the separators on both
    # sides of a tag form one gap: ",<lora:x:1>," reads as ",," (one BPE token).
    previous_end = 0
    pending_tags: list[int] = []
    for phrase in parsed.phrases:
        if not phrase.measurable:
            counts[phrase.index] = 0
            pending_tags.append(phrase.index)
            continue
        gap = prompt[previous_end : phrase.start]
        for index in pending_tags:
            before_tag = prompt[previous_end : parsed.phrases[index].start]
            ands = sum(m.group() == "AND" for m in _SEPARATOR_WORDS.finditer(before_tag))
            subprompt_of[index] = len(sequences) - 1 + ands
        pending_tags = []
        _add_gap(_TAG_RE.sub("", gap), tokenize, sequences)
        previous_end = phrase.end
        subprompt_of[phrase.index] = len(sequences) - 1
        ids = list(tokenize(phrase.text))
        counts[phrase.index] = len(ids)
        tokens, owner = sequences[-1]
        tokens.extend(ids)
        owner.extend([phrase.index] * len(ids))
    for index in pending_tags:
        before_tag = prompt[previous_end : parsed.phrases[index].start]
        ands = sum(m.group() == "AND" for m in _SEPARATOR_WORDS.finditer(before_tag))
        subprompt_of[index] = len(sequences) - 1 + ands
    _add_gap(_TAG_RE.sub("", prompt[previous_end:]), tokenize, sequences)

    chunks_of: dict[int, list[int]] = {}
    # per sub-prompt: (tokens, WebUI count, chunk sizes, phrases of each chunk)
    per_subprompt: list[tuple[int, int, list[int], list[list[int]]]] = []
    for tokens, owner in sequences:
        # An empty chunk is real: the WebUI pads and encodes it (``BREAK`` at the start).
        positions = chunk_positions(tokens, comma, chunk_length)
        members: list[list[int]] = []
        for number, chunk in enumerate(positions):
            members.append([])
            for position in chunk:
                index = owner[position]
                if index >= 0 and number not in chunks_of.setdefault(index, []):
                    chunks_of[index].append(number)
                    members[-1].append(index)
        sizes = [len(c) for c in positions]
        # The WebUI counts 75 for every chunk it closed early, the last one's own length
        # unless a trailing BREAK closed it too.
        closed_last = bool(tokens) and tokens[-1] == BREAK
        webui = chunk_length * (len(sizes) - 1) + (chunk_length if closed_last else sizes[-1])
        per_subprompt.append((sum(sizes), webui, sizes, members))

    largest = max(range(len(per_subprompt)), key=lambda k: per_subprompt[k][1])
    real, webui, sizes, members = per_subprompt[largest]
    phrases = [
        PhraseTokens(
            p.index,
            p.text,
            counts[p.index],
            p.measurable,
            subprompt_of[p.index],
            chunks_of.get(p.index, []),
        )
        for p in parsed.phrases
    ]
    return TokenBudget(
        prompt=prompt,
        tokens=real,
        webui_count=webui,
        limit=math.ceil(max(webui, 1) / chunk_length) * chunk_length,
        chunk_sizes=sizes,
        chunk_phrases=members,
        phrases=phrases,
        subprompts=len(per_subprompt),
        chunk_length=chunk_length,
    )


def token_saving(
    original: TokenBudget, pruned: TokenBudget, removed: Sequence[int] = ()
) -> TokenSaving:
    """Tokens and chunks the pruned prompt saves (negative when it costs more)."""
    return TokenSaving(
        original.tokens,
        pruned.tokens,
        original.chunk_count,
        pruned.chunk_count,
        list(removed),
        original.webui_count,
        pruned.webui_count,
    )


def model_token_budget(
    prompt: ParsedPrompt | str, tokenize: Tokenizer
) -> tuple[TokenBudget, Tokenizer, str | None]:
    """The budget with a model's tokenizer (ids without start and end markers, ``,`` one
    token), or with CLIP's BPE where it does not fit: ``(budget, the tokenizer used, why
    the model's did not fit or None)``."""
    try:
        return token_budget(prompt, tokenize), tokenize, None
    except ValueError as exc:
        return token_budget(prompt, default_tokenizer), default_tokenizer, str(exc)


def _single_token(tokenize: Tokenizer, text: str) -> int:
    ids = list(tokenize(text))
    if len(ids) != 1:
        raise ValueError(f"the tokenizer reads {text!r} as {len(ids)} tokens, expected one")
    return ids[0]


def _add_gap(gap: str, tokenize: Tokenizer, sequences: list[tuple[list[int], list[int]]]) -> None:
    """The separators between two phrases: commas are tokens, BREAK closes the chunk,
    AND starts a new sub-prompt; brackets, weights and whitespace are not read."""
    last = 0
    for match in _SEPARATOR_WORDS.finditer(gap):
        _add_commas(gap[last : match.start()], tokenize, sequences[-1])
        last = match.end()
        if match.group() == "BREAK":
            sequences[-1][0].append(BREAK)
            sequences[-1][1].append(-1)
        else:
            sequences.append(([], []))
    _add_commas(gap[last:], tokenize, sequences[-1])


def _add_commas(text: str, tokenize: Tokenizer, sequence: tuple[list[int], list[int]]) -> None:
    commas = "".join(c for c in text if c in ", \t\n").strip()
    if "," not in commas:
        return
    ids = list(tokenize(commas))
    sequence[0].extend(ids)
    sequence[1].extend([-1] * len(ids))
