"""The escalation ladder, as a pure function."""

from __future__ import annotations

import pytest

from onplatform.daemon.policy import decide
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
