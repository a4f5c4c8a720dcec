"""CI gate: the analyzer on the labelled corpus must stay above a quality floor."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from onplatform.daemon.policy import decide
from onplatform.detectors.analyzer import Analyzer
from onplatform.detectors.evaluation import EvalReport, evaluate, format_report

CORPUS = Path(__file__).resolve().parents[2] / "corpus" / "messages.jsonl"
THREADS = Path(__file__).resolve().parents[2] / "corpus" / "threads.jsonl"

TARGET_F1 = 0.95
TARGET_FPR = 0.03
TARGET_CATEGORY = 0.90
RATCHET_F1 = 0.985
"""What the detectors reach today (0.989); raise it whenever they improve, never lower it."""
RATCHET_FPR = 0.024
"""Reached 0.023 (6 of 256 benign, all from the contact-data detector)."""
RATCHET_INTENT = 0.99
"""Share of flagged records whose hesitant and insisting marks are right (reached 0.994)."""
RATCHET_THREADS = 1.0
"""Share of thread messages whose escalation action matches (reached 126 of 126)."""


def _read(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        pytest.skip(f"no corpus at {path}")
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


@pytest.fixture(scope="module")
def report(analyzer: Analyzer) -> EvalReport:
    return evaluate(analyzer, _read(CORPUS))


def test_target(report: EvalReport) -> None:
    """The product target: F1 >= 0.95, at most 3% of benign messages flagged."""
    assert report.f1 >= TARGET_F1, format_report(report)
    assert report.false_positive_rate <= TARGET_FPR, format_report(report)
    assert report.category_accuracy >= TARGET_CATEGORY, format_report(report)


def test_no_regression(report: EvalReport) -> None:
    """F1, the false-positive rate and the intent marks never fall below what was reached."""
    assert report.f1 >= RATCHET_F1, format_report(report)
    assert report.false_positive_rate <= RATCHET_FPR, format_report(report)
    intent_right = report.hesitant_correct + report.insisting_correct
    intent_total = report.hesitant_total + report.insisting_total
    assert intent_total == 0 or intent_right / intent_total >= RATCHET_INTENT, format_report(report)


def test_thread_escalation(analyzer: Analyzer) -> None:
    """Each thread message gets the expected action given the thread's earlier flagged ones."""
    right = total = 0
    wrong: list[str] = []
    for thread in _read(THREADS):
        earlier: list[str] = []
        for message in thread["messages"]:
            assessment = analyzer.assess(message["text"])
            action = decide(assessment, earlier)
            total += 1
            if action == message["expected_action"]:
                right += 1
            else:
                wrong.append(
                    f"{thread['id']}: expected {message['expected_action']}, got {action}:"
                    f" {message['text']!r}"
                )
            if assessment.flagged:
                earlier.append(action)
    assert total, "no thread messages"
    assert right / total >= RATCHET_THREADS, f"{right}/{total}\n" + "\n".join(wrong)
