"""CI gate: the analyzer on the labelled corpus must stay above a quality floor."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from onplatform.detectors.analyzer import Analyzer
from onplatform.detectors.evaluation import EvalReport, evaluate, format_report

CORPUS = Path(__file__).resolve().parents[2] / "corpus" / "messages.jsonl"

TARGET_F1 = 0.95
TARGET_FPR = 0.03
RATCHET_F1 = 0.68
"""What the detectors reach today; raise it whenever they improve, never lower it."""
RATCHET_FPR = 0.09


def _records() -> list[dict[str, Any]]:
    lines = CORPUS.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


@pytest.fixture(scope="module")
def report(analyzer: Analyzer) -> EvalReport:
    if not CORPUS.exists():
        pytest.skip(f"no corpus at {CORPUS}")
    return evaluate(analyzer, _records())


def test_no_regression(report: EvalReport) -> None:
    """F1 and the false-positive rate never fall below what was reached."""
    assert report.f1 >= RATCHET_F1, format_report(report)
    assert report.false_positive_rate <= RATCHET_FPR, format_report(report)


@pytest.mark.xfail(
    reason="target not reached yet: lexicons for the 14 non-English languages are missing",
    strict=False,
)
def test_target(report: EvalReport) -> None:
    """The product target: F1 >= 0.95 and at most 3% of benign messages flagged."""
    assert report.f1 >= TARGET_F1, format_report(report)
    assert report.false_positive_rate <= TARGET_FPR, format_report(report)
