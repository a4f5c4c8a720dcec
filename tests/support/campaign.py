"""Mail, mailbox and daemon helpers shared by the crash and fault campaigns.

A campaign appends many client notifications, runs the real ``onplatform`` as a
child process (killed, or behind a fault-injecting proxy), then checks the end
state: exactly one draft per flagged message, none for benign mail, every UID
handled, no flag changed.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

from onplatform.config.schema import load_config
from onplatform.daemon.notification import parse_notification
from onplatform.daemon.pipeline import build_analyzer, judge
from tests.support.daemon import ONPLATFORM
from tests.support.dovecot import DovecotEndpoint, imap_session
from tests.support.mail import client_mail

T = TypeVar("T")
ACCOUNT = "work"

FLAGGED_TEXTS = (
    "Can I pay you via PayPal directly to save the fees?",
    "Thanks! Please add me on Telegram so we can talk faster.",
    "Let's move to WhatsApp, my number is +1 415 555 0199.",
    "Great proposal. To save the fees, can I pay you through PayPal directly?",
    "Before you start, buy the laptop from our approved vendor; we will reimburse you.",
)
BENIGN_TEXTS = (
    "Thanks, the mock-ups look great, see you Monday.",
    "Could you send the invoice for milestone 3 by Friday?",
    "Great work on the landing page, please continue with the footer.",
    "Thanks for the proposal. Can you start on Monday? I will fund the first milestone.",
)
FIRST_NAMES = ("Maria", "Chen", "Olga", "Ravi", "Amara", "Lukas", "Sofia", "Kenji", "Ines", "Tom")
LAST_NAMES = ("Lopez", "Wei", "Ivanova", "Patel", "Okafor", "Braun", "Rossi", "Sato", "Silva")


@dataclass(frozen=True)
class Mail:
    message_id: str
    raw: bytes


def client_mails(tag: str, count: int, rng: random.Random) -> list[Mail]:
    """``count`` client notifications, a third of them asking to leave the platform.

    Clients write several times each (about four messages a room), so the
    escalation history is exercised too; every Message-ID is unique.
    """
    rooms = max(1, count // 4)
    mails = []
    for index in range(count):
        room = 700_000 + rng.randrange(rooms)
        name = f"{FIRST_NAMES[room % len(FIRST_NAMES)]} {LAST_NAMES[room % len(LAST_NAMES)]}"
        pool = FLAGGED_TEXTS if index % 3 == 0 else BENIGN_TEXTS
        text = rng.choice(pool)
        message_id = f"<{tag}-{index}@upwork.test>"
        mails.append(
            Mail(message_id, client_mail(room, name, text, message_id, html=index % 5 == 0))
        )
    return mails


def expected_drafts(config: Path, mails: Sequence[Mail]) -> set[str]:
    """The Message-IDs the product's own detectors flag (a draft is due for each).

    Asking the analyzer, rather than trusting the texts above, keeps this test
    about crash consistency while the detectors are being reworked.
    """
    analyzer = build_analyzer(load_config(config).detectors)
    due = set()
    for mail in mails:
        verdict = judge(analyzer, parse_notification(mail.raw), [])
        if verdict.assessment.flagged and verdict.action != "none":
            due.add(mail.message_id)
    return due


# Dovecot now and then answers "Mailbox was deleted under us" or "IMAP session state
# is inconsistent" to a session that touches a folder just deleted and created again
# while another session (the daemon's) has it selected. The test's own reads and
# writes retry on a fresh session; the daemon has to cope on its own.
_RETRIES = 5


def _retrying(endpoint: DovecotEndpoint, action: Callable[[IMAPClient], T]) -> T:
    for attempt in range(_RETRIES):
        try:
            with imap_session(endpoint, timeout=30) as client:
                return action(client)
        except (IMAPClientError, OSError):
            if attempt == _RETRIES - 1:
                raise
            time.sleep(0.2)
    raise AssertionError("unreachable")


def append_all(endpoint: DovecotEndpoint, folder: str, mails: Sequence[Mail]) -> None:
    """Append each mail (a failed APPEND is retried; a mail may then be there twice,
    which only makes the one-draft-per-Message-ID check stricter)."""
    pending = list(mails)
    while pending:

        def append(client: IMAPClient) -> None:
            while pending:
                client.append(folder, pending[0].raw)
                pending.pop(0)

        _retrying(endpoint, append)


def draft_sources(endpoint: DovecotEndpoint) -> Counter[str]:
    """How many drafts in Drafts carry each X-Onplatform-Source value."""

    def read(client: IMAPClient) -> dict[int, dict[bytes, Any]]:
        client.select_folder("Drafts", readonly=True)
        uids = client.search(["ALL"])
        if not uids:
            return {}
        found: dict[int, dict[bytes, Any]] = client.fetch(
            uids, ["BODY.PEEK[HEADER.FIELDS (X-Onplatform-Source)]"]
        )
        return found

    key = b"BODY[HEADER.FIELDS (X-ONPLATFORM-SOURCE)]"
    sources: Counter[str] = Counter()
    for data in _retrying(endpoint, read).values():
        header = data[key].decode("utf-8", "replace").strip()
        name, _, value = header.partition(":")
        assert name.strip().lower() == "x-onplatform-source", f"draft without marker: {header!r}"
        sources[" ".join(value.split())] += 1
    return sources


def folder_uids(endpoint: DovecotEndpoint, folder: str) -> tuple[int, dict[int, tuple[bytes, ...]]]:
    """(UIDVALIDITY, {uid: flags}) of ``folder``, read without changing anything."""

    def read(client: IMAPClient) -> tuple[int, dict[int, tuple[bytes, ...]]]:
        info = client.select_folder(folder, readonly=True)
        uids = client.search(["ALL"])
        flags = client.fetch(uids, ["FLAGS"]) if uids else {}
        return int(info[b"UIDVALIDITY"]), {int(u): tuple(d[b"FLAGS"]) for u, d in flags.items()}

    return _retrying(endpoint, read)


def handled_uids(state: Path, folder: str, uidvalidity: int) -> dict[int, str]:
    """{uid: status} of ``folder`` under ``uidvalidity`` in the state file's messages table."""
    db = sqlite3.connect(f"file:{state}?mode=ro", uri=True, timeout=30)
    try:
        rows = db.execute(
            "SELECT uid, status FROM messages WHERE account=? AND folder=? AND uidvalidity=?",
            (ACCOUNT, folder, uidvalidity),
        ).fetchall()
    finally:
        db.close()
    return {int(uid): str(status) for uid, status in rows}


def read_events(path: Path) -> list[dict[str, Any]]:
    """JSON events of one log file; a line cut short by SIGKILL is skipped."""
    found = []
    for line in path.read_text(errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            event = json.loads(line)
            if isinstance(event, dict) and "event" in event:
                found.append(event)
    return found


def assert_clean_log(path: Path) -> None:
    """No traceback and no poll.failed (an unexpected exception) in a daemon log."""
    text = path.read_text(errors="replace")
    assert "Traceback" not in text, f"{path.name} has a traceback:\n{text[-3000:]}"
    failed = [e for e in read_events(path) if e["event"] == "poll.failed"]
    assert not failed, f"{path.name}: poll.failed {failed[:3]}"


class Daemon:
    """``onplatform run`` as a child process, its output in a file (never a pipe)."""

    def __init__(self, config: Path, log: Path) -> None:
        self.log = log
        self._out = log.open("wb")
        self.proc = subprocess.Popen(
            [ONPLATFORM, "run", "--config", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )

    def events(self) -> list[dict[str, Any]]:
        return read_events(self.log)

    def wait_for(
        self, predicate: Callable[[list[dict[str, Any]]], bool], timeout: float, what: str
    ) -> list[dict[str, Any]]:
        """Wait until ``predicate(events)``; fail at once if the daemon dies or a poll crashes."""
        deadline = time.monotonic() + timeout
        while True:
            events = self.events()
            if predicate(events):
                return events
            crashed = [e for e in events if e["event"] == "poll.failed"]
            if crashed:
                pytest.fail(f"daemon poll crashed while waiting for {what}: {crashed[0]}")
            if self.proc.poll() is not None:
                pytest.fail(
                    f"daemon exited ({self.proc.returncode}) while waiting for {what}:\n"
                    + self.log.read_text(errors="replace")[-3000:]
                )
            if time.monotonic() > deadline:
                pytest.fail(
                    f"timed out after {timeout}s waiting for {what}:\n"
                    + self.log.read_text(errors="replace")[-3000:]
                )
            time.sleep(0.01)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self._out.close()

    def terminate(self, timeout: float = 20) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self._out.close()
        return code

    def __enter__(self) -> Daemon:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._out.close()


def started(events: list[dict[str, Any]]) -> bool:
    return any(e["event"] == "daemon.started" for e in events)


def idle_poll_after(index: int) -> Callable[[list[dict[str, Any]]], bool]:
    """A poll that found nothing new, after the ``index``-th event."""

    def check(events: list[dict[str, Any]]) -> bool:
        return any(e["event"] == "poll.finished" and e.get("messages") == 0 for e in events[index:])

    return check


def poll_once(config: Path, log: Path) -> tuple[int, list[dict[str, Any]], str]:
    with log.open("wb") as out:
        done = subprocess.run(
            [ONPLATFORM, "poll-once", "--config", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.PIPE,
            timeout=120,
            check=False,
        )
    return done.returncode, read_events(log), done.stderr.decode(errors="replace")


def assert_exactly_one_draft_each(endpoint: DovecotEndpoint, due: set[str]) -> Counter[str]:
    sources = draft_sources(endpoint)
    duplicates = {k: n for k, n in sources.items() if n > 1}
    missing = due - set(sources)
    unexpected = set(sources) - due
    assert not duplicates, f"{len(duplicates)} duplicate draft(s): {sorted(duplicates.items())[:5]}"
    assert not missing, f"{len(missing)} flagged message(s) without a draft: {sorted(missing)[:5]}"
    assert not unexpected, f"{len(unexpected)} draft(s) for benign mail: {sorted(unexpected)[:5]}"
    return sources
