"""The escalation ladder, as a pure function."""

from __future__ import annotations

import pytest

from onplatform.daemon.policy import FOLLOW_UP_CODE, FOLLOW_UP_SCORE, decide, follow_up
from onplatform.detectors.analyzer import Assessment


def assessment(
    category: str | None, *, hesitant: bool = False, insisting: bool = False
) -> Assessment:
    return Assessment(
        category is not None,
        category,
        0.9 if category else 0.0,  # type: ignore[arg-type]
        (),
        hesitant=hesitant,
        insisting=insisting,
    )


@pytest.mark.parametrize(
    ("current", "earlier", "expected"),
    [
        (assessment(None), [], "none"),
        (assessment(None), ["decline"], "none"),
        (assessment("offplatform_payment"), [], "decline"),
        (assessment("contact_exchange", hesitant=True), [], "encourage"),
        (assessment("offplatform_payment", insisting=True), [], "report"),
        (assessment("scam"), [], "report"),
        (assessment("contact_exchange"), ["decline"], "report"),
        (assessment("contact_exchange", hesitant=True), ["encourage"], "report"),
        (assessment("offplatform_payment"), ["none", "none"], "decline"),
    ],
)
def test_ladder(current: Assessment, earlier: list[str], expected: str) -> None:
    """First ask declined, a tentative one encouraged, a repeat, a demand or a scam reported."""
    assert decide(current, earlier) == expected


def unflagged(score: float, leaning: str | None = "offplatform_payment") -> Assessment:
    return Assessment(False, None, score, (), leaning=leaning)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("current", "earlier", "flagged"),
    [
        (unflagged(FOLLOW_UP_SCORE), ["decline"], True),
        (unflagged(FOLLOW_UP_SCORE), ["none", "encourage"], True),
        (unflagged(FOLLOW_UP_SCORE - 0.01), ["decline"], False),  # below the line
        (unflagged(0.45), [], False),  # a first message meets the analyzer's line only
        (unflagged(0.45), ["none"], False),  # an earlier alert without a reply
        (unflagged(0.45, leaning=None), ["decline"], False),  # nothing to flag it as
    ],
)
def test_follow_up(current: Assessment, earlier: list[str], flagged: bool) -> None:
    """After an answered request, a message from the same client counts from a lower line."""
    result = follow_up(current, earlier)
    assert result.flagged is flagged
    if flagged:
        assert result.category == current.leaning
        assert result.codes == (FOLLOW_UP_CODE,)
        assert decide(result, earlier) == "report"
    else:
        assert result is current


def test_a_flagged_message_is_no_follow_up() -> None:
    flagged = assessment("contact_exchange", hesitant=True)
    assert follow_up(flagged, ["decline"]) is flagged
