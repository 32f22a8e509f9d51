"""The token budget against an independent oracle of the WebUI's ``tokenize_line``.

The oracle below follows A1111 1.10.1 step by step: extra-network tags removed
(``extra_networks.parse_prompt``), the prompt split into weighted fragments the way
``prompt_parser.parse_prompt_attention`` does (BREAK as its own fragment), each fragment
tokenized by the transformers ``CLIPTokenizer`` (what the WebUI's SD 1.x text encoder
uses), then cut into 75-token chunks by ``FrozenCLIPEmbedderWithCustomWordsBase
.tokenize_line``'s loop, written out again here (not ``clipprobe_ext.chunking``).  The
budget itself uses openai's ``clip.simple_tokenizer`` and the project's prompt parser, so
the two sides share no code.
"""

from __future__ import annotations

import random
import re

import pytest

from clipprobe_ext.analysis.tokens import default_tokenizer, token_budget, token_saving
from clipprobe_ext.prompt import parse_prompt, remove_phrases

# ----------------------------------------------------------------------------- the oracle

_ATTENTION = re.compile(
    r"\\\(|\\\)|\\\[|\\]|\\\\|\\|\(|\[|:\s*([+-]?[.\d]+)\s*\)|\)|]|[^\\()\[\]:]+|:", re.X
)
_BREAK = re.compile(r"\s*\bBREAK\b\s*", re.S)
_TAG = re.compile(r"<(\w+):([^>]+)>")


def oracle_fragments(text: str) -> list[list]:
    """[text, weight] fragments with the semantics of parse_prompt_attention (1.10.1)."""
    out: list[list] = []
    rounds: list[int] = []
    squares: list[int] = []

    def scale(start: int, factor: float) -> None:
        for fragment in out[start:]:
            fragment[1] *= factor

    for match in _ATTENTION.finditer(text):
        piece, weight = match.group(0), match.group(1)
        if piece.startswith("\\"):
            out.append([piece[1:], 1.0])
        elif piece == "(":
            rounds.append(len(out))
        elif piece == "[":
            squares.append(len(out))
        elif weight is not None and rounds:
            scale(rounds.pop(), float(weight))
        elif piece == ")" and rounds:
            scale(rounds.pop(), 1.1)
        elif piece == "]" and squares:
            scale(squares.pop(), 1 / 1.1)
        else:
            for k, part in enumerate(_BREAK.split(piece)):
                if k:
                    out.append(["BREAK", -1])
                out.append([part, 1.0])
    for start in rounds:
        scale(start, 1.1)
    for start in squares:
        scale(start, 1 / 1.1)
    out = out or [["", 1.0]]
    merged = [out[0]]
    for fragment in out[1:]:
        if fragment[1] == merged[-1][1]:
            merged[-1][0] += fragment[0]
        else:
            merged.append(fragment)
    return merged


def oracle_tokenize_line(line: str, tokenizer, comma: int) -> tuple[list[list[int]], int]:
    """(chunks without start/end/padding, the WebUI's token_count) as tokenize_line gives."""
    fragments = oracle_fragments(_TAG.sub("", line))
    ids = tokenizer([t for t, _ in fragments], add_special_tokens=False)["input_ids"]
    chunks: list[list[int]] = []
    chunk: list[int] = []
    count = 0
    last_comma = -1

    def next_chunk(is_last: bool = False) -> None:
        nonlocal chunk, count, last_comma
        count += len(chunk) if is_last else 75
        chunks.append(chunk)
        chunk = []
        last_comma = -1

    for tokens, (text, weight) in zip(ids, fragments):
        if text == "BREAK" and weight == -1:
            next_chunk()
            continue
        for token in tokens:
            if token == comma:
                last_comma = len(chunk)
            elif len(chunk) == 75 and last_comma != -1 and len(chunk) - last_comma <= 20:
                moved = chunk[last_comma + 1 :]
                chunk = chunk[: last_comma + 1]
                next_chunk()
                chunk = moved
            if len(chunk) == 75:
                next_chunk()
            chunk.append(token)
    if chunk or not chunks:
        next_chunk(is_last=True)
    return chunks, count


@pytest.fixture(scope="module")
def hf_tokenizer(tmp_path_factory):
    import json

    from tiny_clip import _bpe_vocab_and_merges
    from transformers import CLIPTokenizer

    folder = tmp_path_factory.mktemp("bpe")
    vocab, merges = _bpe_vocab_and_merges()
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    return CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"))


WORDS = [
    "masterpiece",
    "best quality",
    "a girl",
    "long silver hair",
    "photorealistic",
    "highly detailed face",
    "8k uhd",
    "cinematic lighting",
    "bokeh",
    "intricate embroidery on a velvet dress",
    "standing in a field of sunflowers at dusk",
    "extremely absurdres",
    "hyperdetailed",
    "red",
    "oil painting by greg rutkowski",
]


def random_prompt(rng: random.Random) -> str:
    parts = []
    for _ in range(rng.randint(1, 45)):
        word = rng.choice(WORDS)
        style = rng.random()
        if style < 0.15:
            word = f"({word}:{rng.choice(['1.2', '0.8', '1.35'])})"
        elif style < 0.25:
            word = f"(({word}))"
        elif style < 0.3:
            word = f"[{word}]"
        elif style < 0.33:
            word = f"<lora:detail{rng.randint(1, 3)}:0.{rng.randint(1, 9)}>"
        parts.append(word)
        parts.append(rng.choice([", ", ", ", ", ", ",", ",, ", " BREAK ", ", BREAK, ", "\n"]))
    return "".join(parts[:-1]) if rng.random() < 0.7 else "".join(parts)


def test_tokenizer_counts_agree_with_the_webui_tokenizer(hf_tokenizer) -> None:
    for text in WORDS + ["a, b,, c", "8k, uhd!", "Ünïcode café", "x" * 50]:
        assert default_tokenizer(text) == hf_tokenizer(text, add_special_tokens=False)["input_ids"]


def test_chunks_match_the_webui_on_random_prompts(hf_tokenizer) -> None:
    comma = hf_tokenizer(",", add_special_tokens=False)["input_ids"][0]
    rng = random.Random(6)
    multi_chunk = 0
    for _ in range(300):
        prompt = random_prompt(rng)
        chunks, webui_count = oracle_tokenize_line(prompt, hf_tokenizer, comma)
        budget = token_budget(prompt)
        assert budget.chunk_sizes == [len(c) for c in chunks], prompt
        assert budget.webui_count == webui_count, prompt
        assert budget.tokens == sum(len(c) for c in chunks)
        assert budget.limit == -(-max(webui_count, 1) // 75) * 75
        # Every token of a phrase is counted once: phrase tokens + separators = total.
        separators = budget.tokens - sum(p.tokens for p in budget.phrases)
        assert separators >= 0
        multi_chunk += budget.chunk_count > 1
    assert multi_chunk > 100  # the random prompts really exercised long prompts


def test_straddling_phrases_and_the_comma_backtrack() -> None:
    # 50 tokens, a comma at position 50, then a 30-token phrase: when the chunk is full
    # the comma is 25 tokens back (more than 20), so the cut falls inside the phrase.
    first = " ".join(["red"] * 50)
    budget = token_budget(f"{first}, " + " ".join(["blue"] * 30))
    assert [p.tokens for p in budget.phrases] == [50, 30]
    assert budget.chunk_sizes == [75, 6]
    assert budget.phrases[1].chunks == [0, 1] and budget.straddling == [1]
    # 69 tokens and a comma at 69: the cut moves back to the comma, the next phrase
    # starts chunk 1 whole; an 80-token phrase there is cut again at 75.
    first = ", ".join(["red"] * 35)  # 35 words + 34 commas
    budget = token_budget(f"{first}, " + " ".join(["green"] * 10))
    assert budget.chunk_sizes == [70, 10]
    assert budget.phrases[-1].chunks == [1] and not budget.straddling
    assert budget.chunk_phrases[1] == [35]
    budget = token_budget(f"{first}, " + " ".join(["blue"] * 80))
    assert budget.chunk_sizes == [70, 75, 5]
    assert budget.phrases[-1].chunks == [1, 2] and budget.straddling == [35]
    assert budget.webui_count == 155 and budget.limit == 225


def test_break_and_tags_and_and() -> None:
    budget = token_budget("a cat, <lora:x:1> BREAK a dog")
    assert budget.chunk_sizes == [3, 2]  # "a cat ," | "a dog"; the tag costs nothing
    assert budget.webui_count == 75 + 2 and budget.limit == 150
    assert [p.tokens for p in budget.phrases] == [2, 0, 2]
    assert budget.chunk_phrases == [[0], [2]]
    split = token_budget("a cat AND a dog with a hat")
    assert split.subprompts == 2
    assert [p.subprompt for p in split.phrases] == [0, 1]
    assert split.tokens == 5 and split.chunk_sizes == [5]  # the larger part


def test_pruned_prompt_saves_tokens_and_chunks() -> None:
    prompt = ", ".join(f"word{i} thing" for i in range(30))  # 30*3 + 29 = 119 tokens
    parsed = parse_prompt(prompt)
    removed = list(range(0, 30, 2))
    pruned = remove_phrases(prompt, parsed, removed)
    before, after = token_budget(prompt), token_budget(pruned)
    saving = token_saving(before, after, removed)
    assert before.chunk_count == 2 and after.chunk_count == 1
    expected = sum(p.tokens for p in before.phrases if p.index in removed) + len(removed)
    assert saving.tokens_saved == expected == before.tokens - after.tokens
    assert saving.chunks_saved == 1
    assert saving.to_dict()["tokens_saved"] == expected


def test_to_dict_is_plain_json() -> None:
    import json

    budget = token_budget("a, (b:1.2) BREAK c")
    d = json.loads(json.dumps(budget.to_dict()))
    assert d["chunk_count"] == 2 and d["straddling"] == []
    assert d["phrases"][1]["text"] == "b" and d["phrases"][1]["straddles"] is False


def test_straddling_phrase_and_the_budget_in_words() -> None:
    from clipprobe_ext.report.reasons import token_lines

    first = " ".join(["red"] * 50)
    budget = token_budget(f"{first}, " + " ".join(["blue"] * 30))
    blue = budget.phrases[1]
    assert (blue.index, blue.text) == (1, " ".join(["blue"] * 30))
    assert (blue.tokens, blue.chunks, blue.straddles) == (30, [0, 1], True)
    # both counts, each labelled: the WebUI's counter and CLIP's own tokens
    lines = token_lines(budget)
    assert lines[0] == "WebUI count 81/150; 81 CLIP tokens in 2 chunks (75, 6)"
    assert lines[1].endswith("(30 CLIP tokens) is cut between chunks 1 and 2")
