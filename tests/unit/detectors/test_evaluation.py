"""Metrics on a tiny hand-made set, worked out by hand."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from onplatform.detectors.evaluation import evaluate, format_report


@dataclass
class _Result:
    flagged: bool
    category: str | None
    hesitant: bool = False
    insisting: bool = False
    codes: tuple[str, ...] = ()


class _Fake:
    """Answers from a table keyed by the text."""

    def __init__(self, answers: dict[str, _Result]) -> None:
        self.answers = answers

    def assess(self, words: str) -> _Result:
        return self.answers[words]


RECORDS = [
    {"id": "a", "text": "a", "label": "offplatform_payment", "language": "en"},  # TP, right
    {"id": "b", "text": "b", "label": "scam", "language": "en"},  # TP, wrong category
    {"id": "c", "text": "c", "label": "contact_exchange", "language": "fr"},  # FN
    {"id": "d", "text": "d", "label": "benign", "language": "fr"},  # FP
    {"id": "e", "text": "e", "label": "benign", "language": "en"},  # TN
    {"id": "f", "text": "f", "label": "benign"},  # TN, no language
]
ANSWERS = {
    "a": _Result(True, "offplatform_payment", codes=("payment.direct",)),
    "b": _Result(True, "contact_exchange"),
    "c": _Result(False, None),
    "d": _Result(True, "contact_exchange", codes=("contact.phone",)),
    "e": _Result(False, None),
    "f": _Result(False, None),
}


def test_metrics() -> None:
    """precision 2/3, recall 2/3, F1 2/3, FPR 1/3, category 1/2; misses listed."""
    report = evaluate(_Fake(ANSWERS), RECORDS)
    assert report.overall.precision == pytest.approx(2 / 3)
    assert report.overall.recall == pytest.approx(2 / 3)
    assert report.f1 == pytest.approx(2 / 3)
    assert report.false_positive_rate == pytest.approx(1 / 3)
    assert (report.category_correct, report.category_total) == (1, 2)
    assert report.by_language["en"].recall == 1.0
    assert report.by_language["fr"].recall == 0.0
    assert report.by_label["benign"].false_positives == 1
    assert [(m.id, m.expected, m.got) for m in report.misses] == [
        ("b", "scam", "contact_exchange"),
        ("c", "contact_exchange", "benign"),
        ("d", "benign", "contact_exchange"),
    ]
    assert report.misses[2].codes == ("contact.phone",)


def test_report_is_a_readable_table() -> None:
    text = format_report(evaluate(_Fake(ANSWERS), RECORDS))
    assert "flagged (all)" in text and "lang fr" in text and "d " in text


def test_unknown_label_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown 'spam'"):
        evaluate(_Fake(ANSWERS), [{"id": "x", "text": "a", "label": "spam"}])
