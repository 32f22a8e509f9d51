"""The WebUI's 75-token chunking rule (modules/sd_hijack_clip.py, A1111 1.10)."""

from clipprobe_ext.chunking import BREAK, chunk_positions, chunk_tokens

COMMA = 267


def test_short_sequence_is_one_chunk() -> None:
    assert chunk_tokens([1, 2, 3], COMMA) == [[1, 2, 3]]
    assert chunk_tokens([], COMMA) == [[]]


def test_hard_split_at_75_without_a_nearby_comma() -> None:
    tokens = list(range(1000, 1080))
    assert [len(c) for c in chunk_tokens(tokens, COMMA)] == [75, 5]


def test_words_after_a_late_comma_move_to_the_next_chunk() -> None:
    tokens = [7] * 70 + [COMMA] + [8] * 10  # comma at index 70, within 20 of the end
    chunks = chunk_tokens(tokens, COMMA)
    assert chunks[0] == [7] * 70 + [COMMA]
    assert chunks[1] == [8] * 10


def test_comma_too_far_back_does_not_move_words() -> None:
    tokens = [7] * 40 + [COMMA] + [8] * 44  # comma 35 tokens before the cut
    assert [len(c) for c in chunk_tokens(tokens, COMMA)] == [75, 10]


def test_break_forces_a_new_chunk_and_trailing_break_adds_none() -> None:
    assert chunk_tokens([1, 2, BREAK, 3, BREAK], COMMA) == [[1, 2], [3]]


def test_positions_point_back_into_the_sequence() -> None:
    tokens = [7] * 70 + [COMMA] + [8] * 10
    positions = chunk_positions(tokens, COMMA)
    assert [tokens[i] for c in positions for i in c] == tokens
