"""The phrase detector: rules that combine lexicon groups within a sentence.

A rule fires when each of its ``all`` groups (and one of its ``any`` groups)
matches in the same sentence, or within ``window`` neighbouring sentences,
and none of its ``none`` groups does. A request that a ``negation`` term
forbids ("please don't ask me to pay outside Upwork", "no me pidas pagar por
fuera", "numaranızı paylaşmayın") does not count: one of its words is part of
the negation, or its first word follows the negation within ``NEGATION_REACH``
words of the same sentence. The context stage then moves the score
by the words around the evidence (a job about a payment API, "through
Upwork", a negation), and records each move.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from onplatform.detectors.base import NEGATED, Adjustment, Finding, MessageText, Span
from onplatform.detectors.lexicon import Lexicon, Rule, load_lexicon
from onplatform.detectors.matcher import Hit, Scan, hit_order

NEGATION_GROUP = "negation"
NEGATION_REACH = 3
"""Words allowed between a negation and the request it forbids: "don't [ask me to] pay"."""


def find_groups(
    lexicon: Lexicon, text: str, names: Sequence[str] | None = None
) -> dict[str, list[Hit]]:
    """Hits of the named groups (all groups by default) in a normalised text."""
    scan = lexicon.matcher.scan(text)
    return scan.groups(names if names is not None else lexicon.groups)


class PhraseDetector:
    """Finds asks to pay, talk or share contacts outside Upwork, and scam patterns."""

    name = "phrases"

    def __init__(self, lexicon: Lexicon) -> None:
        self.lexicon = lexicon
        self.matcher = lexicon.matcher
        regex_groups = self.matcher.regexes
        # What a rule needs before it is worth a look, from the groups the scan has read
        # in full: every `all` group found, and one of its `any` groups when none of them
        # has regex terms. Groups with regex terms are read only when a rule asks, so
        # they are left to `_fire`; this check keeps those regexes from running on
        # messages that lack the rule's other groups.
        self._needs = [
            (
                rule,
                frozenset(name for name in rule.all if name not in regex_groups),
                frozenset(rule.any)
                if not any(name in regex_groups for name in rule.any)
                else frozenset(),
            )
            for rule in lexicon.rules
        ]
        # A rule that needs a context group ("half here on Upwork, half outside") keeps
        # that group's own moves as they were tuned; for the others, words inside the
        # evidence are the ask itself, not its context (``ContextAdjustment.moves``).
        self._own_groups = {rule: frozenset((*rule.all, *rule.any)) for rule in lexicon.rules}

    def detect(self, text: MessageText) -> Sequence[Finding]:
        normalized = text.normalized
        if not normalized:
            return ()
        scan = self.matcher.scan(normalized)
        found = scan.found
        if not found and not self.matcher.regexes:
            return ()
        present = found.keys()
        findings: list[Finding] = []
        for rule, needs, one_of in self._needs:
            if not present >= needs or (one_of and present.isdisjoint(one_of)):
                continue
            hit, negated = self._fire(rule, scan)
            if hit is not None:
                findings.append(self._finding(rule, hit, text, scan, negated))
        return findings

    @staticmethod
    def _fire(rule: Rule, scan: Scan) -> tuple[list[Hit] | None, bool]:
        """The hits of the rule's first match, and whether every match was negated (then
        the first negated one is returned, so that ``--explain`` can show it at 0)."""
        if rule.max_words and scan.word_count > rule.max_words:
            return None, False
        for name in rule.all:
            if not scan.has(name):
                return None, False
        if rule.any and not any(scan.has(name) for name in rule.any):
            return None, False
        first_group = rule.all[0] if rule.all else next(n for n in rule.any if scan.has(n))
        nones = [m.sentence for name in rule.none for m in scan.get(name)]
        window = rule.window
        forbidden: list[Hit] | None = None
        for anchor in scan.get(first_group):
            low, high = anchor.sentence - window, anchor.sentence + window
            chosen = [anchor]
            for name in rule.all[1:]:
                near = [m for m in scan.get(name) if low <= m.sentence <= high]
                if not near:
                    break
                chosen.append(_nearest(near, anchor.start))
            else:
                if rule.any:
                    near = [
                        m for name in rule.any for m in scan.get(name) if low <= m.sentence <= high
                    ]
                    if not near:
                        continue
                    chosen.append(_nearest(near, anchor.start))
                if any(low <= sentence <= high for sentence in nones):
                    continue
                if _negated(chosen, scan):
                    forbidden = forbidden or chosen
                    continue
                return chosen, False
        return forbidden, forbidden is not None

    def _finding(
        self, rule: Rule, hit: list[Hit], text: MessageText, scan: Scan, negated: bool = False
    ) -> Finding:
        first = min(m.sentence for m in hit)
        last = max(m.sentence for m in hit)
        spans: list[Span] = []
        for m in sorted(set(hit), key=hit_order):
            start, end = scan.char_span(m)
            spans.append(text.span(start, end))
        finding = Finding(
            detector=self.name,
            code=rule.code,
            category=rule.category,
            score=round(rule.score, 3),
            evidence=tuple(spans),
            base_score=rule.score,
        )
        own = self._own_groups[rule]
        moves = [
            Adjustment(adj.reason, adj.delta)
            for adj in self.lexicon.context
            if adj.moves(rule.category, (first, last), scan, () if adj.group in own else hit)
        ]
        if moves:
            finding = finding.moved(*moves)
        if negated:  # kept at 0 so that --explain shows why the request did not count
            finding = finding.moved(Adjustment(NEGATED, -finding.score))
        return finding


def _negated(chosen: list[Hit], scan: Scan) -> bool:
    """Whether a negation forbids the request made of these hits.

    Either a hit lies inside a negation ("don't share", "paylaşmayın", "teilen Sie
    keine": the verb carries it), or a negation ends at most ``NEGATION_REACH``
    words before the request's first word, in its sentence ("don't ask me to pay").
    """
    first = min(chosen, key=hit_order)
    negations = scan.get_in_sentences(
        NEGATION_GROUP, first.sentence, max(hit.sentence for hit in chosen)
    )
    if not negations:
        return False
    for negation in negations:
        if any(negation.start <= hit.start < negation.end for hit in chosen):
            return True
        if (
            negation.sentence == first.sentence
            and negation.start <= first.start
            and first.start - negation.end <= NEGATION_REACH
        ):
            return True
    return False


def _nearest(hits: list[Hit], start: int) -> Hit:
    """The first of the hits that start nearest to ``start``."""
    if len(hits) == 1:
        return hits[0]
    return min(hits, key=lambda m: abs(m.start - start))


def create(options: Mapping[str, Any], lexicon: Lexicon | None = None) -> PhraseDetector:
    return PhraseDetector(lexicon if lexicon is not None else load_lexicon())
