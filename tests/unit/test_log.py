"""Log events: JSON lines, and unexpected errors summarised without their message."""

from __future__ import annotations

import io
import json

from onplatform.daemon.log import configure, get_logger


def test_exception_is_summarised_without_its_message() -> None:
    """An unexpected error logs its type and where it happened, never its text."""
    stream = io.StringIO()
    configure("info", "json", stream)
    try:
        raise ValueError("client said: pay me on paypal at secret@example.com")
    except ValueError:
        get_logger(account="work").exception("poll.failed", error="ValueError")
    event = json.loads(stream.getvalue())
    assert event["event"] == "poll.failed" and event["account"] == "work"
    assert event["error_type"] == "ValueError"
    assert any("test_log.py" in frame for frame in event["error_at"])
    assert "secret@example.com" not in stream.getvalue()
    assert "exc_info" not in event
