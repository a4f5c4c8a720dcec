"""Network faults between onplatform and the server: nothing lost, nothing doubled, one line.

A FaultProxy sits in front of the private Dovecot. Each fault is injected at a
set point of the IMAP stream (mid-FETCH, mid-APPEND, the APPEND's reply, ...)
while ``onplatform poll-once`` runs; after a clean run every flagged mail has
exactly one draft. Run with ``-s`` to see how many faults were injected.
"""

from __future__ import annotations

import contextlib
import dataclasses
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import write_config
from tests.support.campaign import (
    Daemon,
    append_all,
    assert_clean_log,
    assert_exactly_one_draft_each,
    client_mails,
    draft_sources,
    expected_drafts,
    folder_uids,
    handled_uids,
    poll_once,
    read_events,
    started,
)
from tests.support.daemon import STARTUP_SECONDS
from tests.support.dovecot import PrivateDovecot
from tests.support.proxy import FaultProxy

pytestmark = pytest.mark.integration
BODY_LITERAL = b"BODY[]<0> {"
"""Where a message body starts in the server's FETCH answer (a partial fetch's origin)."""

TIMEOUT = 2  # the account's socket timeout in these tests, in seconds
EX_TEMPFAIL = 75
INJECTED: dict[str, int] = {}


@pytest.fixture
def proxy(imap: PrivateDovecot) -> Iterator[FaultProxy]:
    with FaultProxy((imap.endpoint.host, imap.endpoint.port)) as running:
        yield running


@pytest.fixture(scope="module", autouse=True)
def report_faults() -> Iterator[None]:
    yield
    if INJECTED:
        detail = ", ".join(f"{kind} {count}" for kind, count in sorted(INJECTED.items()))
        print(f"\nfaults injected: {sum(INJECTED.values())} ({detail})")


def proxied_config(tmp_path: Path, imap: PrivateDovecot, proxy: FaultProxy) -> Path:
    endpoint = dataclasses.replace(imap.endpoint, host=proxy.host, port=proxy.port)
    config = write_config(tmp_path, endpoint)
    text = config.read_text()
    assert "timeout = 10" in text
    config.write_text(text.replace("timeout = 10", f"timeout = {TIMEOUT}"))
    return config


def assert_one_line_error(code: int, err: str, out_log: Path, *, expect: str = "") -> str:
    """poll-once failed with EX_TEMPFAIL and said why on one stderr line, no traceback."""
    out = out_log.read_text(errors="replace")
    assert "Traceback" not in err + out, f"traceback:\n{err}\n{out[-2000:]}"
    assert code == EX_TEMPFAIL, f"exit {code}, stderr: {err!r}"
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"expected one error line, got {lines}"
    assert lines[0].startswith("onplatform: error: work"), lines[0]
    assert expect.lower() in lines[0].lower(), f"{expect!r} not in {lines[0]!r}"
    return lines[0]


def assert_all_handled(imap: PrivateDovecot, tmp_path: Path, due: set[str], count: int) -> None:
    assert_exactly_one_draft_each(imap.endpoint, due)
    uidvalidity, inbox = folder_uids(imap.endpoint, "INBOX")
    assert len(inbox) == count
    handled = handled_uids(tmp_path / "state.sqlite3", "INBOX", uidvalidity)
    missing = sorted(uid for uid in inbox if handled.get(uid) != "done")
    assert not missing, f"INBOX UIDs not done: {missing[:10]} ({handled})"
    assert not [uid for uid, flags in inbox.items() if b"\\Seen" in flags]


# Each fault: how to arm it before one poll-once (k counts the injections).
Arm = Callable[[FaultProxy, int], None]


def _close_mid_fetch(proxy: FaultProxy, k: int) -> None:
    proxy.arm("server", 300 + 2000 * k, after=BODY_LITERAL, action="close")


def _reset_mid_fetch(proxy: FaultProxy, k: int) -> None:
    proxy.reset_after_server_bytes((0, 700, 9_000)[k], after=BODY_LITERAL)


def _reset_mid_append(proxy: FaultProxy, k: int) -> None:
    # Into the first draft's literal, then past it into the next one of the batch.
    proxy.reset_after_append_bytes((40, 900, 3_000)[k])


def _reset_append_reply(proxy: FaultProxy, _k: int) -> None:
    # The server stored the drafts; its tagged OK never reaches the client.
    proxy.arm("server", 0, after=b"[APPENDUID ", action="reset", label="APPEND reply lost")


# Stalls and refusals outlast the run (which gives up after TIMEOUT); heal() ends them.
def _stall_at_greeting(proxy: FaultProxy, _k: int) -> None:
    proxy.arm("server", 0, after=b"* OK", action="stall", seconds=120)


def _stall_mid_fetch(proxy: FaultProxy, _k: int) -> None:
    proxy.arm("server", 500, after=BODY_LITERAL, action="stall", seconds=120)


def _refuse(proxy: FaultProxy, _k: int) -> None:
    proxy.refuse(120)


FAULTS: dict[str, tuple[Arm, str, int]] = {
    # name: (arm, words expected in the error line, injections)
    "close_mid_fetch": (_close_mid_fetch, "FETCH", 2),
    "reset_mid_fetch": (_reset_mid_fetch, "FETCH", 3),
    "reset_mid_append": (_reset_mid_append, "APPEND", 3),
    "append_reply_lost": (_reset_append_reply, "APPEND", 2),
    "stall_at_greeting": (_stall_at_greeting, "timed out", 1),
    "stall_mid_fetch": (_stall_mid_fetch, "timed out", 1),
    "refused": (_refuse, "refused", 1),
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_fault_then_clean_run_drafts_each_flagged_mail_once(
    fault: str, imap: PrivateDovecot, proxy: FaultProxy, tmp_path: Path
) -> None:
    """A poll broken by the fault fails with one line on stderr (exit 75, no traceback);
    new mail keeps arriving between faults; after one clean poll every flagged mail has
    exactly one draft, every mail is recorded as handled and none is marked read."""
    arm, expect, injections = FAULTS[fault]
    config = proxied_config(tmp_path, imap, proxy)
    rng = random.Random(fault)
    waves = [client_mails(f"{fault}-{k}", 15, rng) for k in range(injections)]
    everything = [mail for wave in waves for mail in wave]
    due = expected_drafts(config, everything)
    assert len(due) >= 4 * injections
    lines = []
    for k, wave in enumerate(waves):
        append_all(imap.endpoint, "INBOX", wave)  # each fault has fresh work to break
        arm(proxy, k)
        log = tmp_path / f"fault-{k}.log"
        code, _events, err = poll_once(config, log)
        assert proxy.armed == 0, f"{fault} #{k} never fired; poll-once exit {code}: {err}"
        lines.append(assert_one_line_error(code, err, log, expect=expect))
        INJECTED[fault] = INJECTED.get(fault, 0) + 1
        proxy.heal()
    assert proxy.stats().faults >= injections
    code, _events, err = poll_once(config, tmp_path / "clean.log")
    assert code == 0, err
    assert_clean_log(tmp_path / "clean.log")
    if fault == "append_reply_lost":
        # The drafts were stored although the client never heard so: the next poll
        # must find them by their marker, not append them again.
        found = sum(
            e["event"] == "draft.found" for log in tmp_path.glob("*.log") for e in read_events(log)
        )
        assert found > 0, "no draft.found after a lost APPEND reply"
    assert_all_handled(imap, tmp_path, due, len(everything))
    print(f"\n{fault}: {injections} injected, e.g. {lines[0]!r}")


def test_server_down_under_running_daemon(
    imap: PrivateDovecot, proxy: FaultProxy, tmp_path: Path
) -> None:
    """The daemon rides out the server going away (connections cut, then refused for a few
    seconds) and an idle connection being cut; it reports one-line mailbox.error events,
    reconnects, and drafts the mail that arrived meanwhile, once."""
    config = proxied_config(tmp_path, imap, proxy)
    rng = random.Random(99)
    first = client_mails("down-a", 9, rng)
    second = client_mails("down-b", 9, rng)
    third = client_mails("down-c", 6, rng)
    due = expected_drafts(config, [*first, *second, *third])
    append_all(imap.endpoint, "INBOX", first)

    def drafted(count: int) -> Callable[[list[dict[str, Any]]], bool]:
        def check(events: list[dict[str, Any]]) -> bool:
            _, inbox = folder_uids(imap.endpoint, "INBOX")
            finished = [e for e in events if e["event"] == "poll.finished"]
            return sum(e["messages"] for e in finished) >= count and len(inbox) == count

        return check

    with Daemon(config, tmp_path / "daemon.log") as daemon:
        daemon.wait_for(started, STARTUP_SECONDS, "daemon.started")
        daemon.wait_for(drafted(len(first)), 30, "the first mails")
        cut = proxy.down(3.0)
        INJECTED["server_down"] = INJECTED.get("server_down", 0) + 1
        append_all(imap.endpoint, "INBOX", second)
        daemon.wait_for(
            lambda events: any(e["event"] == "mailbox.error" for e in events),
            15,
            "a mailbox.error while the server is down",
        )
        daemon.wait_for(drafted(len(first) + len(second)), 45, "recovery after the outage")
        # An idle connection cut under the daemon: the next poll reconnects.
        mark = len(daemon.events())
        idle_cuts = proxy.cut_all()
        INJECTED["idle_cut"] = INJECTED.get("idle_cut", 0) + 1
        append_all(imap.endpoint, "INBOX", third)
        daemon.wait_for(drafted(len(first) + len(second) + len(third)), 45, "the third batch")
        assert daemon.terminate() == 0
        events = daemon.events()
    assert_clean_log(daemon.log)
    errors = [e for e in events if e["event"] == "mailbox.error"]
    assert errors and all("\n" not in e["error"] for e in errors), errors
    assert any(e["event"] == "mailbox.reconnected" for e in events), [e["event"] for e in events]
    assert any(e["event"] in {"mailbox.reconnected", "mailbox.connected"} for e in events[mark:])
    assert_all_handled(imap, tmp_path, due, len(first) + len(second) + len(third))
    print(
        f"\nserver down 3s under the daemon: {cut} connection(s) cut, {len(errors)} "
        f"mailbox.error event(s) e.g. {errors[0]['error']!r}; idle cut: {idle_cuts}"
    )


# -- the proxy itself ------------------------------------------------------------
def _greeting(host: str, port: int) -> bytes:
    with socket.create_connection((host, port), timeout=5) as sock:
        return sock.recv(200)


def test_proxy_refuses_then_accepts_again(imap: PrivateDovecot, proxy: FaultProxy) -> None:
    """While refusing, a connect gets ECONNREFUSED; afterwards the server greets again."""
    assert _greeting(proxy.host, proxy.port).startswith(b"* OK")
    proxy.refuse(0.5)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((proxy.host, proxy.port), timeout=2)
    proxy.settle(5)
    assert _greeting(proxy.host, proxy.port).startswith(b"* OK")
    proxy.refuse(60)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((proxy.host, proxy.port), timeout=2)
    proxy.heal()
    assert _greeting(proxy.host, proxy.port).startswith(b"* OK")


def test_proxy_reset_sends_rst_after_k_bytes(imap: PrivateDovecot, proxy: FaultProxy) -> None:
    """A reset trigger lets exactly K bytes through, then the client sees ECONNRESET."""
    proxy.reset_after_server_bytes(5)
    received = b""
    # On a busy machine the reset can even beat connect() to reporting success.
    with pytest.raises(ConnectionResetError):  # noqa: SIM117 - the connect may raise too
        with socket.create_connection((proxy.host, proxy.port), timeout=5) as sock:
            while True:
                chunk = sock.recv(100)
                if not chunk:
                    break
                received += chunk
    assert len(received) <= 5 and b"* OK ".startswith(received), received
    assert proxy.stats().resets == 1


def test_proxy_stops_cleanly_with_connections_open(imap: PrivateDovecot) -> None:
    """stop() ends the one proxy thread and closes every socket, even mid-stall."""
    before = threading.active_count()
    proxy = FaultProxy((imap.endpoint.host, imap.endpoint.port), max_connections=2).start()
    assert threading.active_count() == before + 1
    socks = [socket.create_connection((proxy.host, proxy.port), timeout=5) for _ in range(2)]
    # The proxy may turn the third away before its connect() has even returned.
    with contextlib.suppress(ConnectionResetError):
        socks.append(socket.create_connection((proxy.host, proxy.port), timeout=5))
    try:
        assert socks[0].recv(4).startswith(b"* OK"[:4])
        proxy.stall(30)
        proxy.stop()
        assert threading.active_count() == before
        assert proxy.stats().overflow == 1
        for sock in socks:
            sock.settimeout(2)
            try:
                rest = sock.recv(4096)
            except ConnectionResetError:
                rest = b""
            while rest:
                rest = sock.recv(4096)
    finally:
        for sock in socks:
            sock.close()


def test_idle_connection_cut_then_new_mail_is_drafted_promptly(
    imap: PrivateDovecot, proxy: FaultProxy, tmp_path: Path
) -> None:
    """With IDLE on and a long poll interval, cutting the IDLE connection (which
    imapclient reports as a quiet mailbox) is noticed, and mail that arrives while the
    watcher reconnects is drafted within seconds, not at the next poll interval."""
    config = proxied_config(tmp_path, imap, proxy)
    text = config.read_text()
    config.write_text(text.replace("poll_interval = 1", "poll_interval = 600\nidle = true"))
    rng = random.Random(5)
    before = client_mails("idle-a", 3, rng)
    during = client_mails("idle-b", 3, rng)
    due = expected_drafts(config, [*before, *during])
    with Daemon(config, tmp_path / "daemon.log") as daemon:
        daemon.wait_for(
            lambda events: any(e["event"] == "idle.started" for e in events),
            STARTUP_SECONDS,
            "IDLE",
        )
        append_all(imap.endpoint, "INBOX", before)  # IDLE wakes the poller
        daemon.wait_for(
            lambda events: sum(e["event"] == "draft.appended" for e in events) >= 1,
            15,
            "a draft woken by IDLE",
        )
        mark = len(daemon.events())
        proxy.cut_all()
        INJECTED["idle_cut"] = INJECTED.get("idle_cut", 0) + 1
        append_all(imap.endpoint, "INBOX", during)  # while the watcher reconnects
        cut_at = time.monotonic()

        def drafted_all(events: list[dict[str, Any]]) -> bool:
            return draft_sources(imap.endpoint).keys() >= due

        daemon.wait_for(drafted_all, 10, "mail that arrived while IDLE reconnected")
        latency = time.monotonic() - cut_at
        assert daemon.terminate() == 0
        events = daemon.events()
    assert_clean_log(daemon.log)
    assert any(e["event"] == "mailbox.error" for e in events[mark:]), "dead IDLE not noticed"
    assert_exactly_one_draft_each(imap.endpoint, due)
    print(f"\nIDLE connection cut: new mail drafted {latency:.1f}s later")


POISON = (
    b"From: =?\xfftf-8?q?Maria?= <room_7001@upwork.com>\r\n"
    b"To: freelancer@example.test\r\n"
    b"Subject: New message\r\n"
    b"Message-ID: <poison@upwork.test>\r\n"
    b"\r\n"
    b"Can I pay you via PayPal directly to save the fees?\r\n"
)


# A regression test: before 90b40ed this mail crashed every poll of the account.
def test_mail_the_parser_chokes_on_does_not_block_the_mail_after_it(
    imap: PrivateDovecot, tmp_path: Path
) -> None:
    """A mail with a broken encoded word in From does not stop the poll: the flagged
    mail after it is still drafted, and the poll ends without a traceback."""
    config = write_config(tmp_path, imap.endpoint)
    after = client_mails("after-poison", 3, random.Random(1))
    due = expected_drafts(config, after)
    imap.append("INBOX", POISON)
    append_all(imap.endpoint, "INBOX", after)
    code, _events, err = poll_once(config, tmp_path / "poll.log")
    assert "Traceback" not in err, err[-1500:]
    assert code == 0, err
    sources = draft_sources(imap.endpoint)
    assert due <= set(sources), f"mail after the bad one not drafted: {due - set(sources)}"
    assert set(sources) - due <= {"<poison@upwork.test>"}  # read despite its From, or set aside
    assert max(sources.values()) == 1, sources
