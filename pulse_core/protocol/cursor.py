"""Where one reader is on one topic, and what an arriving `seq` means: deliver, duplicate or gap.

Each topic numbers its events 1, 2, 3, ... with no gap, so a reader that remembers the last
seq it applied knows, for the next one, whether to apply it, drop it as already seen, or first
fetch the ones it skipped. The hub keeps one cursor per topic and one per subscription; a
client keeps one per topic. The cursor only decides; the caller fetches and applies.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Deliver:
    """The next seq (or the first one, when the position is not known yet): apply it."""


@dataclass(frozen=True, slots=True)
class Duplicate:
    """At or before the last seq applied: drop it."""


@dataclass(frozen=True, slots=True)
class Gap:
    """Seqs `first` to `last` (inclusive) are missing before this one: fetch them first."""

    first: int
    last: int

    @property
    def after(self) -> int:
        """The last seq applied: fetch the events after it."""
        return self.first - 1

    @property
    def count(self) -> int:
        return self.last - self.first + 1


DELIVER = Deliver()
DUPLICATE = Duplicate()
Step = Deliver | Duplicate | Gap


class TopicCursor:
    """The last seq applied on one topic; None until it is known."""

    __slots__ = ("seq",)

    def __init__(self, seq: int | None = None) -> None:
        self.seq = seq

    def __repr__(self) -> str:
        return f"TopicCursor(seq={self.seq!r})"

    def check(self, seq: int) -> Step:
        """What `seq` means here; the cursor does not move."""
        last = self.seq
        if last is None or seq == last + 1:
            return DELIVER
        if seq <= last:
            return DUPLICATE
        return Gap(last + 1, seq - 1)

    def advance(self, seq: int) -> None:
        """`seq` was applied (or its gap filled, or given up on); never moves backwards."""
        if self.seq is None or seq > self.seq:
            self.seq = seq

    def on_event(self, seq: int) -> Step:
        """`check`, and move to `seq` unless it is a duplicate: for a reader that applies a
        frame after a gap too (it reports or fills the gap on its own). Written out in full:
        the hub calls it per subscriber per frame."""
        last = self.seq
        if last is None or seq == last + 1:
            self.seq = seq
            return DELIVER
        if seq <= last:
            return DUPLICATE
        self.seq = seq
        return Gap(last + 1, seq - 1)

    def reset(self, seq: int | None) -> None:
        """Carry on after `seq` whatever came before (a `resync`, or a fresh subscription)."""
        self.seq = seq
