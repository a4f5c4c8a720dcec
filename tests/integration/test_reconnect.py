"""Connection failures: backoff, one report per refused login, recovery after an outage."""

from __future__ import annotations

from pathlib import Path

import pytest
from structlog.testing import capture_logs

from onplatform.config.schema import load_config
from onplatform.daemon.cli import _pollers
from onplatform.daemon.poller import BACKOFF_CAP, backoff_delay
from tests.conftest import write_config
from tests.support.dovecot import PrivateDovecot

pytestmark = pytest.mark.integration


def test_refused_login_is_reported_once_and_backs_off(imap: PrivateDovecot, tmp_path: Path) -> None:
    """Repeated refusals log one mailbox.error; polls during the backoff do not connect."""
    config = write_config(tmp_path, imap.endpoint, password="wrong")
    (poller,) = _pollers(load_config(config), dry_run=False)
    try:
        with capture_logs() as logs:
            for _ in range(3):
                poller._retry_at = 0.0  # skip the wait, keep the failure count
                assert poller.poll_safely() is None
            assert poller.poll_safely() is None  # inside the backoff window: no attempt
        errors = [e for e in logs if e["event"] == "mailbox.error"]
        assert len(errors) == 1
        assert errors[0]["kind"] == "AuthenticationError" and errors[0]["attempt"] == 1
        assert "wrong" not in str(logs)

        (tmp_path / "password").write_text(imap.endpoint.password + "\n")
        poller._retry_at = 0.0
        with capture_logs() as logs:
            assert poller.poll_safely() is not None
        reconnected = [e for e in logs if e["event"] == "mailbox.reconnected"]
        assert reconnected and reconnected[0]["attempts"] == 3
    finally:
        poller.close()


def test_backoff_grows_and_is_capped() -> None:
    """Delays double from the poll interval, stay jittered, and never pass the cap."""
    delays = [backoff_delay(n) for n in range(1, 30)]
    assert all(0 < d <= BACKOFF_CAP for d in delays)
    assert delays[0] <= 2.0 and max(delays[-5:]) > BACKOFF_CAP / 2


def test_poll_woken_by_idle_does_not_wait_out_the_backoff(
    imap: PrivateDovecot, tmp_path: Path
) -> None:
    """The IDLE watcher's fresh connection proves the server is back: its wake polls at once."""
    config = write_config(tmp_path, imap.endpoint, password="wrong")
    (poller,) = _pollers(load_config(config), dry_run=False)
    try:
        with capture_logs() as logs:
            assert poller.poll_safely() is None  # refused: the account now backs off
            (tmp_path / "password").write_text(imap.endpoint.password + "\n")
            assert poller.poll_safely() is None  # a scheduled poll still waits its turn
            assert poller.poll_safely(woken=True) is not None
            assert poller.poll_safely() is not None  # and the backoff is over
        events = [e["event"] for e in logs]
        assert events.count("mailbox.error") == 1
        assert events.count("mailbox.reconnected") == 1
        assert events.count("poll.finished") == 2
    finally:
        poller.close()
