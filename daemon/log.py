"""Structured events: JSON lines for journald, a readable renderer on a terminal.

Event names are ``noun.past_verb`` constants. Values are ids, counts and short
evidence: never a message body, never a secret.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

POLL_FINISHED = "poll.finished"
POLL_FAILED = "poll.failed"
MESSAGE_ASSESSED = "message.assessed"
MESSAGE_SKIPPED = "message.skipped"
MESSAGE_FAILED = "message.failed"
MESSAGE_PARKED = "message.parked"
ALERT_RAISED = "alert.raised"
DRAFT_APPENDED = "draft.appended"
DRAFT_FOUND = "draft.found"
DRAFT_PLANNED = "draft.planned"
DRAFT_FAILED = "draft.failed"
DRAFT_SKIPPED = "draft.skipped"
MESSAGE_DEFECTS = "message.defects"
MAILBOX_ERROR = "mailbox.error"
MAILBOX_CONNECTED = "mailbox.connected"
MAILBOX_RECONNECTED = "mailbox.reconnected"
MAILBOX_DROPPED = "mailbox.dropped"
IDLE_STARTED = "idle.started"
FOLDER_RESET = "folder.uidvalidity_changed"
DETECTOR_FAILED = "detector.failed"
MATCHER_LOADED = "matcher.loaded"
WORKERS_STARTED = "workers.started"
WORKERS_FAILED = "workers.failed"
DAEMON_STARTED = "daemon.started"
DAEMON_STOPPING = "daemon.stopping"
DAEMON_STOPPED = "daemon.stopped"
CONFIG_RELOADED = "config.reloaded"
CONFIG_RELOAD_FAILED = "config.reload_failed"
CONFIG_WARNING = "config.warning"

Logger = structlog.typing.FilteringBoundLogger


def summarize_exception(
    _logger: Any, _name: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Replace exc_info by the error's type and where it was raised.

    A full traceback would carry the exception's message, and messages of
    parsing libraries can quote the mail: type and place are enough to act on.
    """
    exc_info = event.pop("exc_info", None)
    if not exc_info:
        return event
    if exc_info is True:
        exc_info = sys.exc_info()
    elif isinstance(exc_info, BaseException):
        exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
    kind, _value, traceback = exc_info
    if kind is None:
        return event
    event["error_type"] = kind.__name__
    frames = []
    while traceback is not None:
        code = traceback.tb_frame.f_code
        frames.append(f"{code.co_filename.rsplit('/', 1)[-1]}:{traceback.tb_lineno}:{code.co_name}")
        traceback = traceback.tb_next
    event["error_at"] = frames[-3:]
    return event


def configure(level: str = "info", fmt: str = "auto", stream: TextIO | None = None) -> None:
    """Set up structlog once for the process (the CLI calls this at start)."""
    out = stream or sys.stdout
    use_console = fmt == "console" or (fmt == "auto" and out.isatty())
    renderer: Any = (
        structlog.dev.ConsoleRenderer(colors=False)
        if use_console
        else structlog.processors.JSONRenderer(ensure_ascii=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            summarize_exception,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )


def get_logger(**context: Any) -> Logger:
    logger: Logger = structlog.get_logger().bind(**context)
    return logger
