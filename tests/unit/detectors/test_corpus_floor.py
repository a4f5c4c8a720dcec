"""CI gate: the analyzer on the labelled corpus must stay above a quality floor.

The floors hold for what a default config runs, the rules with the shipped model
blended in. The rules must also reach the product target alone on the tuned files,
so a lexicon regression cannot hide behind the model."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from onplatform.daemon.policy import decide
from onplatform.detectors.analyzer import Analyzer
from onplatform.detectors.evaluation import EvalReport, evaluate, format_report

CORPUS_DIR = Path(__file__).resolve().parents[2] / "corpus"

TARGET_F1 = 0.95
TARGET_FPR = 0.03
TARGET_CATEGORY = 0.90


@dataclass(frozen=True)
class Floor:
    """What a corpus must keep: raise a floor whenever the detectors improve; lower one only
    for a measured trade, said in the note below the floors."""

    f1: float
    fpr: float
    intent: float
    """Share of flagged records whose hesitant and insisting marks are right."""
    target: bool = True
    """Tuned on: the product target applies too. The holdout is never tuned on, so it only
    guards against a regression in what carries over to unseen messages."""


FLOORS = {
    "messages.jsonl": Floor(f1=0.995, fpr=0.004, intent=0.99),
    "fresh.jsonl": Floor(f1=0.995, fpr=0.005, intent=0.99),
    "forum.jsonl": Floor(f1=0.995, fpr=0.005, intent=0.975),
    "negation.jsonl": Floor(f1=0.995, fpr=0.005, intent=0.9),
    "round5.jsonl": Floor(f1=0.995, fpr=0.005, intent=0.99),
    "round6.jsonl": Floor(f1=0.995, fpr=0.005, intent=0.97),
    "round7.jsonl": Floor(f1=0.995, fpr=0.005, intent=0.97),
    "round8.jsonl": Floor(f1=0.995, fpr=0.005, intent=0.97),
    "round9.jsonl": Floor(f1=0.995, fpr=0.005, intent=0.97),
    "round10.jsonl": Floor(f1=0.995, fpr=0.005, intent=0.99),
    "round11.jsonl": Floor(f1=0.995, fpr=0.005, intent=0.98),
    "round12.jsonl": Floor(f1=0.995, fpr=0.005, intent=0.98),
    "round13.jsonl": Floor(f1=0.995, fpr=0.005, intent=0.98),
    "round15.jsonl": Floor(f1=0.995, fpr=0.005, intent=0.965),
    "round16.jsonl": Floor(f1=0.995, fpr=0.005, intent=0.985),
    "round17.jsonl": Floor(f1=0.995, fpr=0.005, intent=0.98),
    "round18.jsonl": Floor(f1=0.995, fpr=0.005, intent=0.98),
    "fresh_holdout.jsonl": Floor(f1=0.97, fpr=0.025, intent=0.96, target=False),
    "forum_holdout.jsonl": Floor(f1=0.99, fpr=0.02, intent=0.98, target=False),
    "round5_holdout.jsonl": Floor(f1=0.96, fpr=0.005, intent=0.99, target=False),
    "round6_holdout.jsonl": Floor(f1=0.99, fpr=0.005, intent=0.97, target=False),
    "round7_holdout.jsonl": Floor(f1=0.965, fpr=0.015, intent=0.965, target=False),
    "round8_holdout.jsonl": Floor(f1=0.945, fpr=0.04, intent=0.98, target=False),
    "round9_holdout.jsonl": Floor(f1=0.97, fpr=0.025, intent=0.98, target=False),
    "round10_holdout.jsonl": Floor(f1=0.995, fpr=0.005, intent=0.98, target=False),
    "round11_holdout.jsonl": Floor(f1=0.97, fpr=0.005, intent=0.97, target=False),
    "round12_holdout.jsonl": Floor(f1=0.97, fpr=0.015, intent=0.975, target=False),
    "round13_holdout.jsonl": Floor(f1=0.915, fpr=0.06, intent=0.99, target=False),
    "round14_holdout.jsonl": Floor(f1=0.935, fpr=0.04, intent=0.975, target=False),
}
"""Reached with the model blended in: F1 1.000 with no false positive on the seventeen
tuned files (the rules alone: 1.000 on twelve, 0.992 to 0.998 on rounds 13 and 15 to
18). On the holdouts, in the order above: 0.971 (FPR 0.021), 0.992 (0.019), 0.964 (0),
1.000 (0), 0.968 (0.010), 0.946 (0.036), 0.972 (0.024), 1.000 (0), 0.971 (0), 0.971
(0.012), 0.919 (0.059) and 0.937 (0.040).

Round 14 was written after all other tuning and was measured twice, never tuned on:
the rules met it at 0.875 (FPR 0.068) and the shipped blend at 0.928 (0.029) before any
of this session's work; 0.943 (0.029) after rounds 13, 15 and 16 were tuned and trained
on; 0.937 (0.040) after rounds 17 and 18 too, while every older holdout rose. Both
differences are within a few messages; the second model shipped because the settings
are chosen on the older holdouts, never on round 14.

One floor went down in that session: round 8's false-positive rate, from 0.027 to 0.036
(one message of 112), while its F1 rose from 0.925 to 0.946."""
THREAD_FLOORS = {"threads.jsonl": 1.0, "threads_holdout.jsonl": 0.97}
"""Share of thread messages whose escalation action matches: 126 of 126 on the tuned
threads, 73 of 75 on the held-back ones (72 with the rules alone, 69 before round 7)."""


def _read(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        pytest.skip(f"no corpus at {path}")
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


@pytest.fixture(scope="module")
def reports(shipped_analyzer: Analyzer) -> dict[str, EvalReport]:
    return {name: evaluate(shipped_analyzer, _read(CORPUS_DIR / name)) for name in FLOORS}


@pytest.mark.parametrize("name", [name for name, floor in FLOORS.items() if floor.target])
def test_rules_alone_reach_the_target(analyzer: Analyzer, name: str) -> None:
    _assert_target(evaluate(analyzer, _read(CORPUS_DIR / name)), category=False)


@pytest.mark.parametrize("name", [name for name, floor in FLOORS.items() if floor.target])
def test_target(reports: dict[str, EvalReport], name: str) -> None:
    """The product target: F1 >= 0.95, at most 3% of benign messages flagged."""
    _assert_target(reports[name])


def _assert_target(report: EvalReport, category: bool = True) -> None:
    assert report.f1 >= TARGET_F1, format_report(report)
    assert report.false_positive_rate <= TARGET_FPR, format_report(report)
    if category:
        assert report.category_accuracy >= TARGET_CATEGORY, format_report(report)


@pytest.mark.parametrize("name", list(FLOORS))
def test_no_regression(reports: dict[str, EvalReport], name: str) -> None:
    """F1, the false-positive rate and the intent marks never fall below what was reached."""
    report, floor = reports[name], FLOORS[name]
    assert report.f1 >= floor.f1, format_report(report)
    assert report.false_positive_rate <= floor.fpr, format_report(report)
    intent_right = report.hesitant_correct + report.insisting_correct
    intent_total = report.hesitant_total + report.insisting_total
    assert intent_total == 0 or intent_right / intent_total >= floor.intent, format_report(report)


@pytest.mark.parametrize("name", list(THREAD_FLOORS))
def test_thread_escalation(shipped_analyzer: Analyzer, name: str) -> None:
    """Each thread message gets the expected action given the thread's earlier flagged ones."""
    right = total = 0
    wrong: list[str] = []
    for thread in _read(CORPUS_DIR / name):
        earlier: list[str] = []
        for message in thread["messages"]:
            assessment = shipped_analyzer.assess(message["text"])
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
    assert right / total >= THREAD_FLOORS[name], f"{right}/{total}\n" + "\n".join(wrong)
