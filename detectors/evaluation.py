"""How well an analyzer does on a labelled corpus: precision, recall, F1 and the misses.

A record is a mapping with ``id``, ``text``, ``label`` (``offplatform_payment``,
``contact_exchange``, ``scam`` or ``benign``) and optionally ``language``,
``hesitant`` (bool) and ``tags`` (``"insisting"`` among them). "Flagged" is
the positive class: any label but ``benign``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from onplatform.detectors.base import CATEGORIES

LABELS: tuple[str, ...] = (*CATEGORIES, "benign")


class CorpusError(ValueError):
    """A corpus file or line that cannot be used; the message names the file and line."""


def read_corpus(path: Path) -> list[dict[str, Any]]:
    """Every labelled record of a JSONL corpus; the first bad line is an error."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise CorpusError(f"{path}: {err.strerror or err}") from err
    records: list[dict[str, Any]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as err:
            raise CorpusError(f"{path}:{number}: invalid JSON: {err}") from err
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            raise CorpusError(f"{path}:{number}: needs an object with a string `text`")
        if record.get("label") not in LABELS:
            raise CorpusError(f"{path}:{number}: label must be one of {', '.join(LABELS)}")
        records.append(record)
    return records


class _Assessing(Protocol):
    def assess(self, words: str) -> Any: ...


@dataclass(frozen=True)
class Scores:
    """Counts for the "flagged" decision on one slice of the corpus."""

    total: int = 0
    true_positives: int = 0
    false_positives: int = 0
    false_negatives: int = 0
    true_negatives: int = 0

    @property
    def precision(self) -> float:
        flagged = self.true_positives + self.false_positives
        return self.true_positives / flagged if flagged else 1.0

    @property
    def recall(self) -> float:
        positives = self.true_positives + self.false_negatives
        return self.true_positives / positives if positives else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def false_positive_rate(self) -> float:
        negatives = self.false_positives + self.true_negatives
        return self.false_positives / negatives if negatives else 0.0

    def add(self, expected: bool, got: bool) -> Scores:
        return Scores(
            total=self.total + 1,
            true_positives=self.true_positives + (expected and got),
            false_positives=self.false_positives + (not expected and got),
            false_negatives=self.false_negatives + (expected and not got),
            true_negatives=self.true_negatives + (not expected and not got),
        )


@dataclass(frozen=True)
class Miss:
    """A record the analyzer got wrong: not flagged, wrongly flagged, or wrong category."""

    id: str
    expected: str
    got: str
    codes: tuple[str, ...]
    language: str = ""


@dataclass(frozen=True)
class EvalReport:
    overall: Scores
    by_label: Mapping[str, Scores]
    by_language: Mapping[str, Scores]
    category_correct: int
    category_total: int
    """Flagged records the analyzer flagged too; of those, how many got the right category."""
    hesitant_correct: int = 0
    hesitant_total: int = 0
    insisting_correct: int = 0
    insisting_total: int = 0
    misses: tuple[Miss, ...] = field(default=())

    @property
    def f1(self) -> float:
        return self.overall.f1

    @property
    def false_positive_rate(self) -> float:
        """Share of benign records that were flagged."""
        return self.overall.false_positive_rate

    @property
    def category_accuracy(self) -> float:
        return self.category_correct / self.category_total if self.category_total else 1.0


def _text(record: Mapping[str, Any], key: str) -> str:
    value = record.get(key)
    if not isinstance(value, str):
        raise ValueError(f"record {record.get('id', '?')}: {key}: expected a string")
    return value


def evaluate(analyzer: _Assessing, records: Iterable[Mapping[str, Any]]) -> EvalReport:
    """Run the analyzer on every record and score it against the labels."""
    overall = Scores()
    by_label: dict[str, Scores] = {}
    by_language: dict[str, Scores] = {}
    category_correct = category_total = 0
    hesitant_correct = hesitant_total = insisting_correct = insisting_total = 0
    misses: list[Miss] = []
    for record in records:
        label = _text(record, "label")
        if label not in LABELS:
            raise ValueError(f"record {record.get('id', '?')}: label: unknown {label!r}")
        language = str(record.get("language") or "")
        assessment = analyzer.assess(_text(record, "text"))
        expected = label != "benign"
        got = bool(assessment.flagged)
        got_label = str(assessment.category) if got else "benign"
        overall = overall.add(expected, got)
        by_label[label] = by_label.get(label, Scores()).add(expected, got)
        if language:
            by_language[language] = by_language.get(language, Scores()).add(expected, got)
        if expected and got:
            category_total += 1
            category_correct += got_label == label
            if "hesitant" in record:
                hesitant_total += 1
                hesitant_correct += bool(assessment.hesitant) == bool(record["hesitant"])
            if "tags" in record:
                insisting_total += 1
                wanted = "insisting" in record.get("tags", ())
                insisting_correct += bool(assessment.insisting) == wanted
        if got_label != label:
            misses.append(
                Miss(
                    str(record.get("id", "?")), label, got_label, tuple(assessment.codes), language
                )
            )
    return EvalReport(
        overall=overall,
        by_label=dict(sorted(by_label.items(), key=lambda kv: LABELS.index(kv[0]))),
        by_language=dict(sorted(by_language.items())),
        category_correct=category_correct,
        category_total=category_total,
        hesitant_correct=hesitant_correct,
        hesitant_total=hesitant_total,
        insisting_correct=insisting_correct,
        insisting_total=insisting_total,
        misses=tuple(misses),
    )


def _row(name: str, scores: Scores) -> str:
    return (
        f"{name:<22}{scores.total:>6}{scores.precision:>8.3f}{scores.recall:>8.3f}"
        f"{scores.f1:>8.3f}{scores.false_positive_rate:>8.3f}"
    )


def format_report(report: EvalReport, max_misses: int = 50) -> str:
    """A plain-text table: overall, per label, per language, then the misses."""
    header = f"{'slice':<22}{'n':>6}{'prec':>8}{'recall':>8}{'f1':>8}{'fpr':>8}"
    lines = [header, "-" * len(header), _row("flagged (all)", report.overall)]
    lines += [_row(f"label {name}", scores) for name, scores in report.by_label.items()]
    lines += [_row(f"lang {name}", scores) for name, scores in report.by_language.items()]
    lines.append("")
    lines.append(f"false-positive rate on benign: {report.false_positive_rate:.3f}")
    lines.append(
        f"category right on flagged: {report.category_correct}/{report.category_total}"
        f" ({report.category_accuracy:.3f})"
    )
    if report.hesitant_total:
        lines.append(
            f"hesitant right on flagged: {report.hesitant_correct}/{report.hesitant_total}"
        )
    if report.insisting_total:
        lines.append(
            f"insisting right on flagged: {report.insisting_correct}/{report.insisting_total}"
        )
    if report.misses:
        lines.append("")
        lines.append(f"misses ({len(report.misses)}):")
        for miss in report.misses[:max_misses]:
            codes = ", ".join(miss.codes) or "-"
            lines.append(f"  {miss.id:<24} expected {miss.expected:<20} got {miss.got:<20} {codes}")
        if len(report.misses) > max_misses:
            lines.append(f"  … and {len(report.misses) - max_misses} more")
    return "\n".join(lines)
