"""The phrase detector: rules that combine lexicon groups within a sentence.

A rule fires when each of its ``all`` groups (and one of its ``any`` groups)
matches in the same sentence, or within ``window`` neighbouring sentences,
and none of its ``none`` groups does. The context stage then moves the score
by the words around the evidence (a job about a payment API, "through
Upwork", a negation), and records each move.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import regex

from onplatform.detectors.base import Adjustment, Finding, MessageText, Span
from onplatform.detectors.lexicon import Lexicon, Rule, load_lexicon

_SENTENCE_END = re.compile(r"(?<=[.!?;。！？؟])\s+|[。！？؟]|\n\s*\n|\n(?=\s*[-*•\d])|\n")


@dataclass(frozen=True)
class _Match:
    start: int
    end: int
    sentence: int


class Sentences:
    """Sentence boundaries of a normalised text, found once."""

    def __init__(self, text: str) -> None:
        self.starts = [0] + [m.end() for m in _SENTENCE_END.finditer(text)]
        self.length = len(text)

    def index(self, position: int) -> int:
        return bisect.bisect_right(self.starts, position) - 1

    def bounds(self, first: int, last: int) -> tuple[int, int]:
        end = self.starts[last + 1] if last + 1 < len(self.starts) else self.length
        return self.starts[first], end


def find_groups(
    lexicon: Lexicon, text: str, sentences: Sentences, names: Sequence[str] | None = None
) -> dict[str, list[_Match]]:
    found: dict[str, list[_Match]] = {}
    for name in names if names is not None else lexicon.groups:
        pattern = lexicon.groups[name]
        hits = [_Match(m.start(), m.end(), sentences.index(m.start()))
                for m in pattern.finditer(text) if m.end() > m.start()]
        if hits:
            found[name] = hits
    return found


class PhraseDetector:
    """Finds asks to pay, talk or share contacts outside Upwork, and scam patterns."""

    name = "phrases"

    def __init__(self, lexicon: Lexicon) -> None:
        self.lexicon = lexicon
        self._rule_groups = sorted({g for r in lexicon.rules for g in (*r.all, *r.any, *r.none)})
        self._context_groups = sorted({adj.group for adj in lexicon.context})
        self._anchor = regex.compile("|".join(
            f"(?:{lexicon.groups[g].pattern})" for g in self._rule_groups
        ) or r"(?!x)x")

    def detect(self, text: MessageText) -> Sequence[Finding]:
        normalized = text.normalized
        if not normalized or self._anchor.search(normalized) is None:
            return ()
        sentences = Sentences(normalized)
        matches = find_groups(self.lexicon, normalized, sentences, self._rule_groups)
        context: dict[str, list[_Match]] | None = None
        findings: list[Finding] = []
        for rule in self.lexicon.rules:
            hit = self._fire(rule, matches)
            if hit is None:
                continue
            if context is None:
                context = find_groups(self.lexicon, normalized, sentences, self._context_groups)
            findings.append(self._finding(rule, hit, text, sentences, context))
        return findings

    def _fire(self, rule: Rule, matches: Mapping[str, list[_Match]]) -> list[_Match] | None:
        if any(name not in matches for name in rule.all):
            return None
        if rule.any and not any(name in matches for name in rule.any):
            return None
        first_group = rule.all[0] if rule.all else next(n for n in rule.any if n in matches)
        for anchor in matches[first_group]:
            low, high = anchor.sentence - rule.window, anchor.sentence + rule.window
            chosen = [anchor]
            for name in rule.all[1:]:
                near = [m for m in matches[name] if low <= m.sentence <= high]
                if not near:
                    break
                chosen.append(min(near, key=lambda m: abs(m.start - anchor.start)))
            else:
                if rule.any:
                    near = [m for name in rule.any for m in matches.get(name, ())
                            if low <= m.sentence <= high]
                    if not near:
                        continue
                    chosen.append(min(near, key=lambda m: abs(m.start - anchor.start)))
                if any(low <= m.sentence <= high for name in rule.none
                       for m in matches.get(name, ())):
                    continue
                return chosen
        return None

    def _finding(
        self,
        rule: Rule,
        hit: list[_Match],
        text: MessageText,
        sentences: Sentences,
        context: Mapping[str, list[_Match]],
    ) -> Finding:
        first = min(m.sentence for m in hit)
        last = max(m.sentence for m in hit)
        adjustments = []
        for adj in self.lexicon.context:
            if any(first <= m.sentence <= last for m in context.get(adj.group, ())):
                adjustments.append(Adjustment(adj.reason, adj.delta))
        score = min(1.0, max(0.0, rule.score + sum(a.delta for a in adjustments)))
        evidence: tuple[Span, ...] = tuple(
            text.span(m.start, m.end) for m in sorted(hit, key=lambda m: m.start)
        )
        return Finding(detector=self.name, code=rule.code, category=rule.category,
                       score=round(score, 3), evidence=evidence, base_score=rule.score,
                       adjustments=tuple(adjustments))


def create(options: Mapping[str, Any], lexicon: Lexicon | None = None) -> PhraseDetector:
    return PhraseDetector(lexicon if lexicon is not None else load_lexicon())
