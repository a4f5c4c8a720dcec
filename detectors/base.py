"""The contract between onplatform and its detectors.

A detector is a plain object with a ``name`` and a pure ``detect`` method: it
reads a normalised :class:`MessageText` and returns frozen :class:`Finding`
values that carry their own explanation (evidence and score adjustments).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol, runtime_checkable

Category = Literal["offplatform_payment", "contact_exchange", "scam"]
CATEGORIES: tuple[Category, ...] = ("scam", "offplatform_payment", "contact_exchange")
"""Categories by precedence: a scam outranks the others."""


@dataclass(frozen=True)
class Span:
    """A piece of evidence, located on the original (not normalised) text."""

    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Adjustment:
    """One reason a finding's score moved away from its rule's base score."""

    reason: str
    delta: float


@dataclass(frozen=True)
class Finding:
    detector: str
    code: str
    category: Category
    score: float
    evidence: tuple[Span, ...] = ()
    base_score: float = 0.0
    adjustments: tuple[Adjustment, ...] = ()

    def moved(self, *moves: Adjustment) -> Finding:
        """The finding with more score moves recorded, its score kept within 0 to 1."""
        score = min(1.0, max(0.0, self.score + sum(move.delta for move in moves)))
        return replace(self, score=round(score, 3), adjustments=(*self.adjustments, *moves))

    def excerpt(self, limit: int = 60) -> str:
        """Short evidence for logs: never the whole message."""
        joined = " … ".join(span.text for span in self.evidence)
        return joined if len(joined) <= limit else joined[: limit - 1] + "…"


NEGATED = "context.negated"
"""The adjustment that sets a request a negation forbids to 0 (shown, never counted)."""


@dataclass(frozen=True)
class MessageText:
    """A client's words, with a normalised form mapped back to the original.

    ``offsets[i]`` is the index in ``original`` of the character that produced
    ``normalized[i]``; ``offsets`` has one extra entry for the end. It is a
    ``range`` when normalising kept every character in place (the common case).
    """

    original: str
    normalized: str
    offsets: Sequence[int] = field(repr=False)
    disguised: tuple[tuple[int, int], ...] = field(default=(), repr=False)
    """Ranges of ``original`` written to get past a filter: leetspeak, spaced or dotted
    letters, look-alike letters, "name at mail dot com", number words. Folding case,
    accents and compatibility forms does not count."""

    def is_disguised(self, span: Span) -> bool:
        return any(start < span.end and span.start < end for start, end in self.disguised)

    def span(self, start: int, end: int) -> Span:
        if not self.normalized:
            return Span(0, 0, "")
        first = self.offsets[min(start, len(self.offsets) - 1)]
        last = self.offsets[min(max(end - 1, start), len(self.offsets) - 1)] + 1
        last = max(last, first)
        return Span(first, last, self.original[first:last])


@runtime_checkable
class Detector(Protocol):
    """Anything with a name and a pure detect method is a detector."""

    name: str

    def detect(self, text: MessageText) -> Sequence[Finding]: ...


class DetectorFactory(Protocol):
    """Builds a detector from its ``[detectors.<name>]`` table."""

    def __call__(self, options: Mapping[str, Any]) -> Detector: ...
