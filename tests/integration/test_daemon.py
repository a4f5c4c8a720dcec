"""The real `onplatform run`: systemd notifications, SIGHUP reload, SIGTERM stop."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import write_config
from tests.integration.test_end_to_end import PAYMENT, drafts
from tests.support.daemon import ONPLATFORM, STARTUP_SECONDS, running_daemon
from tests.support.dovecot import PrivateDovecot
from tests.support.mail import client_mail

pytestmark = pytest.mark.integration


class NotifySocket:
    """Plays systemd's side of $NOTIFY_SOCKET: it reads every datagram as it comes, as
    systemd does (the kernel queues only a few for a reader that falls behind)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.received: list[str] = []
        self._closed = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while not self._closed.is_set():
            try:
                self.received.append(self.sock.recv(4096).decode())
            except TimeoutError:
                continue
            except OSError:
                return

    def wait_for(self, field: str, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(field in message.split("\n") for message in list(self.received)):
                return
            time.sleep(0.05)
        raise AssertionError(f"{field} not received; got {self.received}")

    def close(self) -> None:
        self._closed.set()
        self._reader.join(timeout=2)
        self.sock.close()


@pytest.fixture
def notify(tmp_path: Path) -> Iterator[NotifySocket]:
    sock = NotifySocket(tmp_path / "notify.sock")
    yield sock
    sock.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def events(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]


def wait_until(check: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def test_daemon_notifies_reloads_and_stops(
    imap: PrivateDovecot, tmp_path: Path, notify: NotifySocket
) -> None:
    """READY and WATCHDOG after real polls; a bad reload keeps the old config; SIGTERM exits 0."""
    port = free_port()
    config = write_config(
        tmp_path, imap.endpoint, extra=f'\n[metrics]\nlisten = "127.0.0.1:{port}"\n'
    )
    log = tmp_path / "daemon.log"
    with running_daemon(config, log, {"NOTIFY_SOCKET": str(notify.path)}) as daemon:
        notify.wait_for("READY=1", timeout=STARTUP_SECONDS)
        notify.wait_for("WATCHDOG=1")
        imap.append("INBOX", client_mail(8001, "Run Client", PAYMENT, "<d1@upwork.test>"))
        wait_until(lambda: len(drafts(imap)) == 1)

        good = config.read_text()
        config.write_text(good + "\n[nonsense]\n")
        daemon.send_signal(signal.SIGHUP)
        wait_until(lambda: any(e["event"] == "config.reload_failed" for e in events(log)))
        failed = next(e for e in events(log) if e["event"] == "config.reload_failed")
        assert "nonsense: unknown key" in failed["error"]
        imap.append("INBOX", client_mail(8002, "Run Client", PAYMENT, "<d2@upwork.test>"))
        wait_until(lambda: len(drafts(imap)) == 2)

        assert not any(e["event"] == "message.assessed" for e in events(log))  # debug level
        moved = good.replace(f"127.0.0.1:{port}", f"127.0.0.1:{free_port()}")
        config.write_text(moved.replace('format = "json"', 'format = "json"\nlevel = "debug"'))
        daemon.send_signal(signal.SIGHUP)
        # A reload builds the analyzer anew: as long as a start.
        wait_until(
            lambda: any(e["event"] == "config.reloaded" for e in events(log)), STARTUP_SECONDS
        )
        warnings = [e for e in events(log) if e["event"] == "config.warning"]
        assert any("metrics.listen" in e["problem"] for e in warnings)
        # The start built or read the matcher; the reload read what was there by then.
        loads = [e["origin"] for e in events(log) if e["event"] == "matcher.loaded"]
        assert len(loads) == 2, loads
        assert loads[-1].startswith("cache "), loads
        imap.append("INBOX", client_mail(8003, "Other Client", PAYMENT, "<d3@upwork.test>"))
        wait_until(lambda: len(drafts(imap)) == 3, STARTUP_SECONDS)
        wait_until(lambda: any(e["event"] == "message.assessed" for e in events(log)))

        def scrape() -> str:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as page:
                return str(page.read().decode())

        # The counters move when the poll ends, a moment after its last draft is appended:
        # the draft alone is no sign that the scrape will show it.
        wait_until(lambda: 'onplatform_drafts_total{account="work"} 3' in scrape())
        text = scrape()
        assert 'onplatform_alerts_total{account="work",category="offplatform_payment"} 3' in text
        assert re.search(r'onplatform_polls_total\{account="work",result="ok"\} \d+', text)

        started = time.monotonic()
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=30) == 0
        assert time.monotonic() - started < 15
        notify.wait_for("STOPPING=1", timeout=2)
    sources = sorted(m["X-Onplatform-Source"] for m, _ in drafts(imap))
    assert sources == ["<d1@upwork.test>", "<d2@upwork.test>", "<d3@upwork.test>"]
    assert any(e["event"] == "daemon.stopped" for e in events(log))


def test_bad_config_exits_78(tmp_path: Path) -> None:
    """A config error at start is fatal with EX_CONFIG, which the unit will not restart."""
    config = tmp_path / "bad.toml"
    config.write_text("[[accounts]]\nname = 1\n")
    done = subprocess.run(
        [ONPLATFORM, "run", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 78
    assert done.stderr.count("\n") == 1 and "accounts[0]" in done.stderr


def test_idle_drafts_within_seconds_without_polling(imap: PrivateDovecot, tmp_path: Path) -> None:
    """With idle = true, new mail is drafted in about a second though the poll is 10 min away."""
    config = write_config(tmp_path, imap.endpoint)
    text = config.read_text().replace("poll_interval = 1", "poll_interval = 600\nidle = true")
    config.write_text(text)
    log = tmp_path / "daemon.log"
    with running_daemon(config, log) as daemon:
        wait_until(lambda: any(e["event"] == "idle.started" for e in events(log)), STARTUP_SECONDS)
        wait_until(lambda: any(e["event"] == "poll.finished" for e in events(log)))
        latencies = []
        for index in range(3):
            started = time.monotonic()
            imap.append(
                "INBOX",
                client_mail(8100 + index, "Idle Client", PAYMENT, f"<idle{index}@upwork.test>"),
            )
            wait_until(lambda n=index + 1: len(drafts(imap)) == n, timeout=10)
            latencies.append(time.monotonic() - started)
        print(f"IDLE append-to-draft latencies: {[round(x, 2) for x in latencies]} s")
        assert max(latencies) < 5
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=30) == 0
