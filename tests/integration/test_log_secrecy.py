"""No password and no message body in any log line, at any level, errors included."""

from __future__ import annotations

from pathlib import Path

import pytest

from onplatform.daemon.cli import main
from tests.conftest import write_config
from tests.support.dovecot import PrivateDovecot
from tests.support.mail import client_mail

pytestmark = pytest.mark.integration
MARKER = "Zebra-lantern-4471 is our internal project word"


def test_logs_hold_no_secret_and_no_body(
    imap: PrivateDovecot, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Debug logs of good, failing and broken runs never show the password or the body text."""
    imap.append(
        "INBOX",
        client_mail(
            9001, "Log Client", f"{MARKER}. Can I pay you via PayPal directly?", "<s1@upwork.test>"
        ),
    )
    imap.append(
        "INBOX",
        client_mail(9002, "Log Client", f"{MARKER}. Thanks for the update.", "<s2@upwork.test>"),
    )
    imap.append(
        "INBOX",
        b"From: Broken <room_9003@upwork.com>\r\nContent-Type: multipart/mixed;"
        b" boundary=x\r\n\r\n--x\r\nContent-Type: text/plain\r\n\r\n"
        + MARKER.encode()
        + b" add me on telegram\r\n",
    )
    config = write_config(tmp_path, imap.endpoint)
    config.write_text(
        config.read_text().replace('format = "json"', 'format = "json"\nlevel = "debug"')
    )
    assert main(["poll-once", "--config", str(config)]) == 0
    assert main(["poll-once", "--config", str(config), "--dry-run"]) == 0
    bad_dir = tmp_path / "bad"
    bad_dir.mkdir()
    wrong = write_config(bad_dir, imap.endpoint, password="Wrong-Secret-9981")
    wrong.write_text(
        wrong.read_text().replace('format = "json"', 'format = "json"\nlevel = "debug"')
    )
    assert main(["poll-once", "--config", str(wrong)]) == 77
    captured = capsys.readouterr()
    output = captured.out + captured.err
    assert "alert.raised" in output and "mailbox" in output
    for secret in (imap.endpoint.password, "Wrong-Secret-9981", MARKER, "Zebra-lantern"):
        assert secret not in output
