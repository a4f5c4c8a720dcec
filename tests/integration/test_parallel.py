"""A large poll parsed and assessed by worker processes gives what one process gives.

Runs the real ``poll-once`` against the private Dovecot twice over the same
mailbox, once with ``workers = 0`` and once with ``workers = 2``, and compares
drafts, alerts and the state; then kills the workers and checks that the poll
finishes by itself with the same drafts.
"""

from __future__ import annotations

import os
import random
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from onplatform.daemon import parallel
from tests.conftest import write_config
from tests.integration.test_end_to_end import drafts, inbox_flags, poll_once
from tests.support.dovecot import PrivateDovecot
from tests.support.mail import client_mail, ordinary_mail, platform_mail

pytestmark = pytest.mark.integration

COUNT = parallel.MIN_BATCH + 40
TEXTS = (
    "Can I pay you via PayPal directly to save the fees?",
    "Thanks! Please add me on Telegram so we can talk faster.",
    "Before you start, buy the laptop from our approved vendor; we will reimburse you.",
    "Thanks, the mock-ups look great, see you Monday.",
    "Could you send the invoice for milestone 3 by Friday?",
    "Would it be possible to pay you outside Upwork this once?",
    "Hola, ¿podemos seguir por WhatsApp? Te pago por fuera de Upwork y ahorramos la comisión.",
)


def seed(server: PrivateDovecot) -> None:
    rng = random.Random(5)
    for index in range(COUNT):
        if index % 50 == 7:
            server.append("INBOX", platform_mail(f"<p{index}@upwork.test>", "Weekly summary."))
        elif index % 50 == 9:
            server.append("INBOX", ordinary_mail(index))
        elif index % 50 == 11:  # a notification whose MIME structure is broken
            server.append(
                "INBOX",
                b"From: A <room_9@upwork.com>\r\nContent-Type: multipart/mixed\r\n\r\n--x\r\n",
            )
        else:
            room = 800_000 + rng.randrange(40)  # clients write several times: escalation
            text = rng.choice(TEXTS)
            server.append("INBOX", client_mail(room, "Ann Lee", text, f"<w{index}@upwork.test>"))


def outcome(server: PrivateDovecot, state: Path) -> dict[str, Any]:
    by_source = {  # the greeting tells the reply's language
        message["X-Onplatform-Source"]: (
            message["X-Onplatform-Action"],
            message.get_content().split(",", 1)[0],
        )
        for message, _ in drafts(server)
    }
    with sqlite3.connect(state) as db:
        rows = db.execute(
            "SELECT uid, status, category, action FROM messages ORDER BY uid"
        ).fetchall()
    first = rows[0][0] if rows else 0  # UIDs go on growing after a reset
    return {"drafts": by_source, "messages": [(uid - first, *rest) for uid, *rest in rows]}


def run(
    server: PrivateDovecot, tmp_path: Path, capsys: pytest.CaptureFixture[str], workers: int
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    server.reset()
    seed(server)
    config = write_config(tmp_path, server.endpoint, extra=f"[detectors]\nworkers = {workers}")
    (tmp_path / "state.sqlite3").unlink(missing_ok=True)
    code, events, _ = poll_once(config, capsys)
    assert code == 0
    return outcome(server, tmp_path / "state.sqlite3"), events


def test_workers_give_what_one_process_gives(
    imap: PrivateDovecot, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    alone, alone_events = run(imap, tmp_path, capsys, workers=0)
    shared, shared_events = run(imap, tmp_path, capsys, workers=2)
    assert not [e for e in alone_events if e["event"] == "workers.started"]
    started = [e for e in shared_events if e["event"] == "workers.started"]
    assert started and started[0]["workers"] == 2
    assert len(alone["drafts"]) > COUNT // 3  # something to compare: most asks get a draft
    assert shared == alone
    assert {action for action, _ in alone["drafts"].values()} >= {"decline", "report"}
    assert {greeting.split()[0] for _, greeting in alone["drafts"].values()} >= {"Hello", "Hola"}

    def alerts(events: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        raised = [e for e in events if e["event"] == "alert.raised"]
        first = min(e["uid"] for e in raised)
        return sorted(
            (e["uid"] - first, e["category"], e["action"], tuple(e["codes"])) for e in raised
        )

    assert alerts(shared_events) == alerts(alone_events)
    assert all(b"\\Seen" not in flags for flags in inbox_flags(imap).values())


def _die(raws: object) -> object:
    os._exit(3)


def test_a_dead_worker_costs_no_message(
    imap: PrivateDovecot,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Workers that die mid-batch: the daemon does the work itself, once."""
    alone, _ = run(imap, tmp_path, capsys, workers=0)
    monkeypatch.setattr(parallel, "_work", _die)  # forked workers inherit the patch
    broken, events = run(imap, tmp_path, capsys, workers=2)
    assert [e for e in events if e["event"] == "workers.failed"]
    assert broken == alone


WORKER_HOST = """
import sys, time
from onplatform.daemon.parallel import AssessPool

class Stub:
    on_failure = None

pool = AssessPool(Stub(), 2)  # type: ignore[arg-type]
list(pool.submit([b"Subject: x\\r\\n\\r\\nhello"]))
print(" ".join(str(pid) for pid in pool._executor._processes), flush=True)
time.sleep(120)
"""


def _running(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "State:\tZ" not in status  # a zombie has exited; only its parent may reap it


def test_workers_exit_when_the_daemon_is_killed() -> None:
    """SIGKILL leaves the daemon no time to close its pool; the workers go by themselves."""
    host = subprocess.Popen([sys.executable, "-c", WORKER_HOST], stdout=subprocess.PIPE, text=True)
    assert host.stdout is not None
    workers = [int(pid) for pid in host.stdout.readline().split()]
    assert workers and all(_running(pid) for pid in workers)
    host.kill()
    host.wait()
    deadline = time.monotonic() + 10 * parallel.ORPHAN_CHECK_S
    while any(_running(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_running(pid) for pid in workers)
