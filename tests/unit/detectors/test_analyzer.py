"""The analyzer keeps going when one detector breaks, and ranks scams first."""

from __future__ import annotations

from collections.abc import Sequence

from onplatform.detectors.analyzer import Analyzer
from onplatform.detectors.base import Finding, MessageText
from onplatform.detectors.lexicon import Lexicon


class Broken:
    name = "broken"

    def detect(self, text: MessageText) -> Sequence[Finding]:
        raise RuntimeError("boom")


class Fixed:
    def __init__(self, name: str, category: str, score: float) -> None:
        self.name = name
        self.category = category
        self.score = score

    def detect(self, text: MessageText) -> Sequence[Finding]:
        return [Finding(self.name, f"test.{self.name}", self.category, self.score)]  # type: ignore[arg-type]


def test_a_failing_detector_is_isolated(lexicon: Lexicon) -> None:
    """The other detectors still decide; the failure is reported and recorded."""
    failures: list[str] = []
    analyzer = Analyzer(
        [Broken(), Fixed("ok", "contact_exchange", 0.8)],
        lexicon,
        on_failure=lambda name, err: failures.append(f"{name}: {err}"),
    )
    result = analyzer.assess("hello")
    assert result.flagged and result.category == "contact_exchange"
    assert result.failed_detectors == ("broken",)
    assert failures == ["broken: boom"]


def test_scam_outranks_a_stronger_payment_finding(lexicon: Lexicon) -> None:
    """A message that is a scam is labelled scam even when payment scores higher."""
    analyzer = Analyzer(
        [Fixed("pay", "offplatform_payment", 0.95), Fixed("scam", "scam", 0.6)], lexicon
    )
    assert analyzer.assess("x").category == "scam"


def test_below_threshold_is_not_flagged(lexicon: Lexicon) -> None:
    """A weak finding alone does not flag."""
    analyzer = Analyzer([Fixed("weak", "contact_exchange", 0.3)], lexicon)
    result = analyzer.assess("x")
    assert not result.flagged and result.category is None and result.score == 0.3


def test_an_alert_quotes_only_what_weighs(analyzer: Analyzer) -> None:
    """Findings the context cancelled stay out of the alert; the strongest come first."""
    result = analyzer.assess(
        "Please don't share your personal email here. Just add me on Telegram: @maria_dev_example"
    )
    assert result.flagged
    assert any(f.score == 0 for f in result.findings)  # the forbidden share request
    counted = result.counted
    assert counted and all(f.score > 0 for f in counted)
    assert [f.score for f in counted] == sorted((f.score for f in counted), reverse=True)
