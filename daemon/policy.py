"""The escalation ladder, per client: decline, encourage, report.

Pure: it reads the assessment and the client's earlier actions and decides.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from onplatform.detectors.analyzer import Assessment

Action = Literal["none", "decline", "encourage", "report"]
ACTIONS: tuple[Action, ...] = ("none", "decline", "encourage", "report")


def decide(assessment: Assessment, earlier_actions: Sequence[str]) -> Action:
    """The action for one message, given what this client was answered before.

    Benign messages get none and leave the history as it was; a scam or an
    insisting demand is reported at once; a request after an earlier reply is
    reported; a first, tentative question is met with encouragement; any
    other first request is declined.
    """
    if not assessment.flagged:
        return "none"
    if assessment.category == "scam" or assessment.insisting:
        return "report"
    if any(action != "none" for action in earlier_actions):
        return "report"
    if assessment.hesitant:
        return "encourage"
    return "decline"
