"""A small in-process cache of answers with their age, for the HTTP source.

It keeps expired entries (up to a bound) instead of dropping them, because a source that
may serve a stale answer on error needs to know how old that answer is.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

V = TypeVar("V")


@dataclass(frozen=True)
class Entry(Generic[V]):
    value: V
    stored: float


class AnswerCache(Generic[V]):
    """Least-recently-used, bounded by `size`; ages come from `clock` (monotonic seconds)."""

    def __init__(self, size: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.size = size
        self._clock = clock
        self._entries: OrderedDict[Hashable, Entry[V]] = OrderedDict()

    def get(self, key: Hashable, max_age: float) -> Entry[V] | None:
        """The entry if it is at most `max_age` seconds old."""
        entry = self._entries.get(key)
        if entry is None or self.age(entry) > max_age:
            return None
        self._entries.move_to_end(key)
        return entry

    def put(self, key: Hashable, value: V) -> None:
        self._entries[key] = Entry(value, self._clock())
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def age(self, entry: Entry[V]) -> float:
        return self._clock() - entry.stored

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
