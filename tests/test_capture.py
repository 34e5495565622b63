"""Bounded capture keeps the head and the tail of a stream and counts what it dropped."""

from __future__ import annotations

import string
from typing import List

from hypothesis import given
from hypothesis import strategies as st

from pytest_parallel_hypotheses.engine.capture import BoundedCapture


def captured(limit: int, *chunks: bytes) -> BoundedCapture:
    capture = BoundedCapture(limit)
    for chunk in chunks:
        capture.feed(chunk)
    return capture


def test_a_stream_within_the_limit_is_kept_whole() -> None:
    capture = captured(10, b"hello ", b"you")
    assert (capture.text(), capture.total, capture.truncated) == ("hello you", 9, False)


def test_a_stream_of_exactly_the_limit_is_not_truncated() -> None:
    capture = captured(6, b"abc", b"def")
    assert (capture.text(), capture.truncated) == ("abcdef", False)


def test_a_long_stream_keeps_head_and_tail_around_a_marker() -> None:
    capture = captured(8, b"HEAD", b"-" * 100, b"TAIL")
    assert capture.truncated
    assert capture.text() == "HEAD\n[... 100 bytes omitted; 108 bytes in all ...]\nTAIL"


def test_the_tail_is_the_last_bytes_even_inside_a_big_chunk() -> None:
    capture = captured(4, b"ab" + b"x" * 50 + b"yz")
    assert capture.text().endswith("]\nyz")
    assert capture.text().startswith("ab\n")


def test_an_odd_limit_gives_the_extra_byte_to_the_tail() -> None:
    capture = captured(5, b"0123456789")
    assert capture.text() == "01\n[... 5 bytes omitted; 10 bytes in all ...]\n789"


def test_invalid_utf8_is_replaced_not_raised() -> None:
    assert captured(100, b"ok \xff\xfe end").text() == "ok \ufffd\ufffd end"


def test_a_multibyte_character_cut_at_the_boundary_becomes_a_replacement() -> None:
    euro = "\u20ac".encode()  # three bytes
    assert captured(4, b"a" + euro + b"b" * 20 + b"yz").text().startswith("a\ufffd\n[...")


def test_no_input_is_empty_text() -> None:
    assert (captured(4).text(), captured(4).total) == ("", 0)


@given(
    chunks=st.lists(st.text(alphabet=string.ascii_letters, max_size=40), max_size=30),
    limit=st.integers(min_value=2, max_value=64),
)
def test_any_chunking_keeps_exactly_the_first_and_last_bytes(chunks: List[str], limit: int) -> None:
    data = "".join(chunks)
    capture = captured(limit, *(chunk.encode() for chunk in chunks))
    assert capture.total == len(data)
    if len(data) <= limit:
        assert capture.text() == data
    else:
        head, tail = data[: limit // 2], data[len(data) - (limit - limit // 2) :]
        omitted = len(data) - limit
        marker = f"\n[... {omitted} bytes omitted; {len(data)} bytes in all ...]\n"
        assert capture.text() == head + marker + tail
