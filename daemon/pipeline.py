"""From a notification to an assessment and an action; no I/O here.

The detectors read only the client's own words. Mail that pretends to come
from Upwork is a scam by its sender alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from onplatform.config.schema import DetectorSettings, ModelSettings
from onplatform.daemon.errors import ConfigError
from onplatform.daemon.log import DETECTOR_FAILED, Logger, get_logger
from onplatform.daemon.notification import Notification
from onplatform.daemon.policy import Action, respond
from onplatform.detectors.analyzer import Analyzer, Assessment
from onplatform.detectors.base import Finding, Span
from onplatform.detectors.lexicon import LexiconError, load_lexicon
from onplatform.detectors.model import MODEL_PATH, IntentModel, ModelError, load_model
from onplatform.detectors.registry import RegistryError, build, discover

PHISHING_SCORE = 0.9


@dataclass(frozen=True)
class Verdict:
    assessment: Assessment
    action: Action


def build_analyzer(settings: DetectorSettings, log: Logger | None = None) -> Analyzer:
    """The detectors named by the config, each guarded; config errors are fatal."""
    logger = log or get_logger()

    def failed(name: str, error: Exception) -> None:
        logger.error(DETECTOR_FAILED, detector=name, error=type(error).__name__)

    try:
        lexicon = load_lexicon(settings.lexicon_paths, settings.rules)
        detectors = build(discover(lexicon), settings.tables)
        lexicon.matcher.scan("")  # built now, so its passing peak is over before the model
    except (LexiconError, RegistryError) as err:
        raise ConfigError(f"detectors: {err}") from err
    # Loaded after the matcher, the model fills the memory the matcher's build freed:
    # peak RSS +1 MB instead of +4 MB.
    model = configured_model(settings.model)
    return Analyzer(
        detectors,
        lexicon,
        threshold=settings.threshold,
        on_failure=failed,
        model=model,
        model_weight=settings.model.weight,
    )


def configured_model(settings: ModelSettings) -> IntentModel | None:
    """The model ``[detectors.model]`` asks for; None when it is off (or weighs nothing)."""
    if not settings.enabled or settings.weight == 0:
        return None
    try:
        return load_model(settings.path or MODEL_PATH)
    except ModelError as err:
        raise ConfigError(f"detectors.model.path: {err}") from err


def assess(analyzer: Analyzer, notification: Notification) -> Assessment:
    assessment = analyzer.assess(notification.client_words)
    if notification.kind != "phishing":
        return assessment
    sender = Finding(
        detector="sender",
        code="scam.fake_upwork_sender",
        category="scam",
        score=PHISHING_SCORE,
        evidence=(Span(0, 0, notification.sender_address[:80]),),
        base_score=PHISHING_SCORE,
    )
    return replace(
        assessment,
        flagged=True,
        category="scam",
        score=max(assessment.score, PHISHING_SCORE),
        findings=(sender, *assessment.findings),
    )


def judge(
    analyzer: Analyzer, notification: Notification, earlier_actions: Sequence[str]
) -> Verdict:
    return verdict_for(assess(analyzer, notification), notification, earlier_actions)


def verdict_for(
    assessment: Assessment, notification: Notification, earlier_actions: Sequence[str]
) -> Verdict:
    """The action for an assessment already made (in a worker process, say)."""
    assessment, action = respond(assessment, earlier_actions)
    if notification.kind != "client":
        # Only a client's room can be answered; phishing is alerted, never replied to.
        action = "none"
    return Verdict(assessment, action)
