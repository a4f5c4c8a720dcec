"""The escalation ladder, per client: decline, encourage, report.

Pure: it reads the assessment and the client's earlier actions and decides.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Literal

from onplatform.detectors.analyzer import Assessment
from onplatform.detectors.base import Finding

Action = Literal["none", "decline", "encourage", "report"]
ACTIONS: tuple[Action, ...] = ("none", "decline", "encourage", "report")


FOLLOW_UP_SCORE = 0.3
"""The line a message must reach to count as a follow-up, once the client's earlier
request was answered (the line for a first message is the analyzer's, 0.5). A client who
has asked once and been refused tends not to name the app again ("why not? the other
contractors agreed", "everyone does it. paypal at least?"), and the earlier request makes
such a message far likelier to be one. Chosen in session 7 on threads written to find
errors (125 -> 127 of 134 steps; 0.25 gave 128) and on round 14 with a model that had not
read it: 2 of its 278 benign messages score from 0.3 to 0.5 (6 from 0.25), so a client's
ordinary follow-up is rarely mistaken. The other thread files lost no step."""
FOLLOW_UP_CODE = "policy.follow_up"


def answered(earlier_actions: Sequence[str]) -> bool:
    """Whether the client already got a reply to a request (an action other than none)."""
    return any(action != "none" for action in earlier_actions)


def respond(assessment: Assessment, earlier_actions: Sequence[str]) -> tuple[Assessment, Action]:
    """The assessment as the ladder reads it (a follow-up flagged) and the action for it:
    the one step every caller takes, so none can forget the follow-up line."""
    assessment = follow_up(assessment, earlier_actions)
    return assessment, decide(assessment, earlier_actions)


def follow_up(assessment: Assessment, earlier_actions: Sequence[str]) -> Assessment:
    """The assessment flagged as a follow-up when the client's earlier request was
    answered and this message reaches :data:`FOLLOW_UP_SCORE`; unchanged otherwise."""
    if assessment.flagged or assessment.leaning is None:
        return assessment
    if assessment.score < FOLLOW_UP_SCORE or not answered(earlier_actions):
        return assessment
    reason = Finding(
        detector="policy",
        code=FOLLOW_UP_CODE,
        category=assessment.leaning,
        score=assessment.score,
        evidence=(),
        base_score=assessment.score,
    )
    return replace(
        assessment,
        flagged=True,
        category=assessment.leaning,
        findings=(*assessment.findings, reason),
    )


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
    if answered(earlier_actions):
        return "report"
    if assessment.hesitant:
        return "encourage"
    return "decline"
