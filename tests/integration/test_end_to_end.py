"""The daemon's main job against the private Dovecot: read, assess, draft, never touch."""

from __future__ import annotations

import datetime
import email
import json
import sqlite3
import subprocess
import sys
import time
from email.message import Message
from email.policy import default
from email.utils import formatdate
from pathlib import Path
from typing import Any

import pytest

from onplatform.daemon.cli import main
from onplatform.daemon.policy import FOLLOW_UP_CODE
from onplatform.detectors.model import IntentModel
from tests.conftest import write_config
from tests.support.dovecot import PrivateDovecot, imap_session
from tests.support.mail import client_mail, ordinary_mail, platform_mail

pytestmark = pytest.mark.integration
FIXTURES = Path(__file__).parents[1] / "fixtures" / "mail"

PAYMENT = "Great proposal. To save the fees, can I pay you through PayPal directly?"
CONTACT = "Thanks! Please add me on Telegram @maria_builds so we can talk faster."
SCAM = "Before you start, buy the laptop from our approved vendor; we will reimburse you."
BENIGN = "Thanks for the proposal. Can you start on Monday? I will fund the first milestone."
HESITANT = "Quick question: would it be possible to pay you outside Upwork for this one?"
FOLLOW_UP = "Why not? Others agreed. What about Payoneer then?"


def drafts(server: PrivateDovecot) -> list[tuple[Message, tuple[bytes, ...]]]:
    with imap_session(server.endpoint) as client:
        client.select_folder("Drafts", readonly=True)
        uids = client.search(["ALL"])
        found = client.fetch(uids, ["BODY.PEEK[]", "FLAGS"]) if uids else {}
        return [
            (email.message_from_bytes(data[b"BODY[]"], policy=default), data[b"FLAGS"])
            for _, data in sorted(found.items())
        ]


def inbox_flags(server: PrivateDovecot, folder: str = "INBOX") -> dict[int, tuple[bytes, ...]]:
    with imap_session(server.endpoint) as client:
        client.select_folder(folder, readonly=True)
        uids = client.search(["ALL"])
        return {uid: data[b"FLAGS"] for uid, data in client.fetch(uids, ["FLAGS"]).items()}


def poll_once(
    config: Path, capsys: pytest.CaptureFixture[str], *extra: str
) -> tuple[int, list[dict[str, Any]], str]:
    code = main(["poll-once", "--config", str(config), *extra])
    captured = capsys.readouterr()
    events = [json.loads(line) for line in captured.out.splitlines() if line.startswith("{")]
    return code, events, captured.err


def seed(server: PrivateDovecot, folder: str = "INBOX") -> None:
    server.append(folder, client_mail(1001, "Maria Lopez", PAYMENT, "<m1@upwork.test>"))
    server.append(folder, client_mail(1002, "Chen Wei", CONTACT, "<m2@upwork.test>", html=True))
    server.append(folder, client_mail(1003, "Hiring Team", SCAM, "<m3@upwork.test>"))
    server.append(folder, client_mail(1004, "Olga Ivanova", BENIGN, "<m4@upwork.test>"))
    server.append(folder, platform_mail("<p1@upwork.test>", "You earned $500 via PayPal."))
    server.append(folder, ordinary_mail(1))
    server.append(folder, (FIXTURES / "phishing_payment_on_hold.eml").read_bytes())


def test_flagged_client_messages_become_threaded_drafts(
    imap: PrivateDovecot, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each flagged client message gets one draft, addressed to its room and threaded under it."""
    seed(imap)
    code, events, _ = poll_once(write_config(tmp_path, imap.endpoint), capsys)
    assert code == 0
    found = drafts(imap)
    by_source = {m["X-Onplatform-Source"]: (m, flags) for m, flags in found}
    assert set(by_source) == {"<m1@upwork.test>", "<m2@upwork.test>", "<m3@upwork.test>"}
    expected = {
        "<m1@upwork.test>": ("room_1001@upwork.com", "decline"),
        "<m2@upwork.test>": ("room_1002@upwork.com", "decline"),
        "<m3@upwork.test>": ("room_1003@upwork.com", "report"),
    }
    for source, (room, action) in expected.items():
        message, flags = by_source[source]
        assert message["To"] == room
        assert message["In-Reply-To"] == source
        assert source in message["References"]
        assert message["Subject"].startswith("Re: ")
        assert message["X-Onplatform-Action"] == action
        assert b"\\Draft" in flags
        body = message.get_content()
        assert "Sam Carter" in body
    assert "Maria" in by_source["<m1@upwork.test>"][0].get_content()
    alerts = [e for e in events if e["event"] == "alert.raised"]
    assert {a["category"] for a in alerts} == {"offplatform_payment", "contact_exchange", "scam"}
    phishing = [a for a in alerts if a["kind"] == "phishing"]
    assert len(phishing) == 1 and phishing[0]["action"] == "none"
    finished = [e for e in events if e["event"] == "poll.finished"]
    assert finished and finished[0]["drafts"] == 3


def test_second_poll_creates_no_new_draft_and_leaves_flags(
    imap: PrivateDovecot, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Polling again finds nothing new, and no client mail is marked as read."""
    seed(imap)
    before = inbox_flags(imap)
    config = write_config(tmp_path, imap.endpoint)
    poll_once(config, capsys)
    code, events, _ = poll_once(config, capsys)
    assert code == 0
    assert len(drafts(imap)) == 3
    assert [e["drafts"] for e in events if e["event"] == "poll.finished"] == [0]
    assert inbox_flags(imap) == before
    assert all(b"\\Seen" not in flags for flags in before.values())


def test_escalation_per_client(
    imap: PrivateDovecot, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A hesitant ask is encouraged, the same client's next ask is reported; others start fresh."""
    config = write_config(tmp_path, imap.endpoint)
    imap.append("INBOX", client_mail(2001, "Ann Lee", HESITANT, "<e1@upwork.test>"))
    imap.append("INBOX", client_mail(2002, "Bob Stone", PAYMENT, "<e2@upwork.test>"))
    poll_once(config, capsys)
    imap.append("INBOX", client_mail(2001, "Ann Lee", BENIGN, "<e3@upwork.test>"))
    imap.append("INBOX", client_mail(2001, "Ann Lee", CONTACT, "<e4@upwork.test>"))
    poll_once(config, capsys)
    actions = {m["X-Onplatform-Source"]: m["X-Onplatform-Action"] for m, _ in drafts(imap)}
    assert actions == {
        "<e1@upwork.test>": "encourage",
        "<e2@upwork.test>": "decline",
        "<e4@upwork.test>": "report",
    }


def test_a_follow_up_after_a_refusal_is_reported(
    imap: PrivateDovecot, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A client who was refused and comes back without naming the ask plainly is reported;
    the same words from a client who never asked stay below the line."""
    # A model whose only opinion is that "payoneer" leans to payment puts the follow-up
    # between the follow-up line (0.3) and the analyzer's (0.5), whatever the shipped model.
    model = tmp_path / "model.tsv"
    model.write_text(IntentModel([2.0, 0.0, 0.0, 0.0], {"payoneer": [0, 1.5, 0, 0]}).dump({}))
    extra = f'[detectors.model]\npath = "{model}"'
    config = write_config(tmp_path, imap.endpoint, extra=extra)
    imap.append("INBOX", client_mail(3001, "Bob Stone", PAYMENT, "<f1@upwork.test>"))
    poll_once(config, capsys)
    imap.append("INBOX", client_mail(3001, "Bob Stone", FOLLOW_UP, "<f2@upwork.test>"))
    imap.append("INBOX", client_mail(3002, "Carl Diaz", FOLLOW_UP, "<f3@upwork.test>"))
    _, events, _ = poll_once(config, capsys)
    actions = {m["X-Onplatform-Source"]: m["X-Onplatform-Action"] for m, _ in drafts(imap)}
    assert actions == {"<f1@upwork.test>": "decline", "<f2@upwork.test>": "report"}
    (alert,) = [e for e in events if e["event"] == "alert.raised"]
    assert alert["category"] == "offplatform_payment"
    assert FOLLOW_UP_CODE in alert["codes"]


def test_dry_run_drafts_nothing_and_keeps_state(
    imap: PrivateDovecot, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--dry-run logs what it would draft, appends nothing and leaves the state file as it was."""
    seed(imap)
    config = write_config(tmp_path, imap.endpoint)
    code, events, _ = poll_once(config, capsys, "--dry-run")
    assert code == 0
    assert drafts(imap) == []
    assert len([e for e in events if e["event"] == "draft.planned"]) == 3
    code, _, _ = poll_once(config, capsys)
    assert len(drafts(imap)) == 3


def test_uidvalidity_change_rescans_without_duplicates(
    imap: PrivateDovecot, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A folder recreated under the daemon is read again, yet no message gets a second draft."""
    imap.recreate_folder("Clients")
    seed(imap, "Clients")
    config = write_config(tmp_path, imap.endpoint, folders=("Clients",))
    poll_once(config, capsys)
    imap.recreate_folder("Clients")
    seed(imap, "Clients")
    imap.append("Clients", client_mail(3001, "New Client", CONTACT, "<u1@upwork.test>"))
    code, events, _ = poll_once(config, capsys)
    assert code == 0
    assert any(e["event"] == "folder.uidvalidity_changed" for e in events)
    sources = sorted(m["X-Onplatform-Source"] for m, _ in drafts(imap))
    assert sources == [
        "<m1@upwork.test>",
        "<m2@upwork.test>",
        "<m3@upwork.test>",
        "<u1@upwork.test>",
    ]


def test_pending_draft_found_in_drafts_is_not_appended_again(
    imap: PrivateDovecot, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """After a crash between APPEND and commit, the marker header prevents a second draft."""
    imap.append("INBOX", client_mail(4001, "Ria Patel", PAYMENT, "<c1@upwork.test>"))
    config = write_config(tmp_path, imap.endpoint)
    poll_once(config, capsys)
    assert len(drafts(imap)) == 1
    # Roll the state back to "appended but not recorded": pending draft, message unhandled.
    db = sqlite3.connect(tmp_path / "state.sqlite3")
    with db:
        db.execute("UPDATE drafts SET status='pending'")
        db.execute("DELETE FROM messages")
        db.execute("DELETE FROM client_events")
        db.execute("UPDATE folders SET last_uid=0")
    db.close()
    code, events, _ = poll_once(config, capsys)
    assert code == 0
    assert len(drafts(imap)) == 1
    assert any(e["event"] == "draft.found" for e in events)


def test_oversized_message_is_parked_not_fetched(
    imap: PrivateDovecot, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A message over the size cap is logged and parked; the next one is still handled."""
    big = client_mail(5001, "Big Sender", PAYMENT + "\n" + "x" * 5000, "<big@upwork.test>")
    imap.append("INBOX", big)
    imap.append("INBOX", client_mail(5002, "Small Sender", PAYMENT, "<small@upwork.test>"))
    config = write_config(tmp_path, imap.endpoint, extra="")
    text = config.read_text().replace("timeout = 10", "timeout = 10\nmax_message_bytes = 4096")
    config.write_text(text)
    code, events, _ = poll_once(config, capsys)
    assert code == 0
    parked = [e for e in events if e["event"] == "message.parked"]
    assert parked and parked[0]["reason"] == "too_large"
    assert [m["X-Onplatform-Source"] for m, _ in drafts(imap)] == ["<small@upwork.test>"]


def test_wrong_password_is_one_line_error(
    imap: PrivateDovecot, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A refused login exits non-zero with one line naming the account, and no password."""
    config = write_config(tmp_path, imap.endpoint, password="not-the-password")
    code, _, err = poll_once(config, capsys)
    assert code == 77
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert "login refused" in lines[0] and "work" in lines[0]
    assert "not-the-password" not in err


def test_imaps_verifies_certificate(
    imap: PrivateDovecot, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Over IMAPS the private CA is trusted through ca_file; an unknown CA is refused."""
    imap.append("INBOX", client_mail(6001, "Tls Client", CONTACT, "<t1@upwork.test>"))
    good = write_config(
        tmp_path, imap.endpoint, tls="implicit", ca_file=imap.endpoint.ca_file, host="localhost"
    )
    code, _, _ = poll_once(good, capsys)
    assert code == 0
    assert len(drafts(imap)) == 1
    bad_dir = tmp_path / "bad"
    bad_dir.mkdir()
    bad = write_config(
        bad_dir,
        imap.endpoint,
        tls="implicit",
        ca_file=imap.endpoint.untrusted_ca_file,
        host="localhost",
    )
    code, _, err = poll_once(bad, capsys)
    assert code != 0
    assert "certificate" in err.lower()


def test_plain_imap_to_remote_host_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """tls = "none" is a config error (exit 78) unless the host is loopback."""
    secret = tmp_path / "pw"
    secret.write_text("x")
    config = tmp_path / "c.toml"
    config.write_text(
        '[[accounts]]\nname = "a"\nhost = "imap.example.com"\ntls = "none"\n'
        f'username = "u"\npassword_file = "{secret}"\n'
    )
    assert main(["check-config", "--config", str(config)]) == 78
    assert "accounts[0].tls" in capsys.readouterr().err


def test_cli_poll_once_as_a_process(imap: PrivateDovecot, tmp_path: Path) -> None:
    """The installed console script runs one poll and prints JSON events, no body text."""
    imap.append("INBOX", client_mail(7001, "Proc Client", PAYMENT, "<p7@upwork.test>"))
    config = write_config(tmp_path, imap.endpoint)
    done = subprocess.run(
        [str(Path(sys.executable).parent / "onplatform"), "poll-once", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert any(e["event"] == "draft.appended" for e in events)
    assert PAYMENT not in done.stdout
    assert imap.endpoint.password not in done.stdout + done.stderr


def test_status_reports_the_state_store(
    imap: PrivateDovecot, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`onplatform status` shows the last poll, alerts by category and drafts by action."""
    seed(imap)
    config = write_config(tmp_path, imap.endpoint)
    poll_once(config, capsys)
    assert main(["status", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "account work" in out and "(ok)" in out
    assert "alerts by category: contact_exchange 1, offplatform_payment 1, scam 2" in out
    assert "drafts by action:   decline 2, report 1" in out
    assert "clients by step:    decline 2, report 1" in out


def test_old_mail_alerts_without_draft_until_backfill(
    imap: PrivateDovecot, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Mail older than backfill_days is alerted but not drafted; `backfill --since` drafts it."""
    old_date = formatdate(time.time() - 60 * 86400)
    imap.append(
        "INBOX", client_mail(9501, "Old Client", PAYMENT, "<old@upwork.test>", date=old_date)
    )
    imap.append("INBOX", client_mail(9502, "New Client", PAYMENT, "<new@upwork.test>"))
    config = write_config(tmp_path, imap.endpoint)
    code, events, _ = poll_once(config, capsys)
    assert code == 0
    assert len([e for e in events if e["event"] == "alert.raised"]) == 2
    skipped = [e for e in events if e["event"] == "draft.skipped"]
    assert [e["reason"] for e in skipped] == ["older_than_backfill_days"]
    assert [m["X-Onplatform-Source"] for m, _ in drafts(imap)] == ["<new@upwork.test>"]

    since = (datetime.date.today() - datetime.timedelta(days=1)).isoformat()
    assert main(["backfill", "--config", str(config), "--since", since]) == 0
    capsys.readouterr()
    assert len(drafts(imap)) == 1  # the old mail is older than --since too: still no draft
    assert main(["backfill", "--config", str(config), "--since", "2020-01-01"]) == 0
    out = capsys.readouterr()
    assert "since 2020-01-01" in out.err
    assert sorted(m["X-Onplatform-Source"] for m, _ in drafts(imap)) == [
        "<new@upwork.test>",
        "<old@upwork.test>",
    ]
    assert main(["backfill", "--config", str(config), "--since", "2020-01-01"]) == 0
    assert len(drafts(imap)) == 2
    assert main(["backfill", "--config", str(config), "--since", "last week"]) == 64


def test_folders_lists_special_use_flags(
    imap: PrivateDovecot, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`onplatform folders` shows each folder with its SPECIAL-USE flag."""
    config = write_config(tmp_path, imap.endpoint)
    assert main(["folders", "--config", str(config)]) == 0
    rows = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    by_name = {row[1]: row[2] for row in rows}
    assert "\\Drafts" in by_name["Drafts"]
    assert "\\Sent" in by_name["Sent"]
    assert "INBOX" in by_name
