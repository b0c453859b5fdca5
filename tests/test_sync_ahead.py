"""sync's read-ahead (files/sync.py ``_ahead``): the next chunk read and keyed in a thread
while the target writes this one. Items come in order, each with its prepared value; an
error of the reader or of the preparation is raised at its place, after the items before
it; a caller that stops early leaves no thread behind."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from perfledger.files.sync import _ahead


def _threads() -> int:
    return sum(t.name == "perfledger-sync-read" for t in threading.enumerate())


def test_items_come_in_order_each_with_its_prepared_value() -> None:
    assert list(_ahead(iter(range(50)), lambda i: i * i)) == [(i, i * i) for i in range(50)]
    assert _threads() == 0


def test_an_error_is_raised_at_its_place() -> None:
    def items() -> Iterator[int]:
        yield 1
        yield 2
        raise OSError("source gone")

    got = []
    with pytest.raises(OSError, match="source gone"):
        for item, _ in _ahead(items(), str):
            got.append(item)
    assert got == [1, 2]

    def prepare(i: int) -> int:
        if i == 3:
            raise ValueError("bad chunk 3")
        return i

    got = []
    with pytest.raises(ValueError, match="bad chunk 3"):
        for item, _ in _ahead(iter(range(10)), prepare):
            got.append(item)
    assert got == [0, 1, 2]
    assert _threads() == 0


def test_a_caller_that_stops_early_leaves_no_thread() -> None:
    read = []

    def items() -> Iterator[int]:
        for i in range(1000):
            read.append(i)
            yield i

    with pytest.raises(RuntimeError):
        for item, _ in _ahead(items(), int):
            if item == 5:
                raise RuntimeError("the target failed")
    assert _threads() == 0
    assert len(read) <= 8  # at most a couple read ahead, not the whole source
