"""The notify protocol's client side, against a real datagram socket."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

from onplatform.daemon.systemd import Notifier


def test_notifications_reach_the_socket(tmp_path: Path) -> None:
    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as manager:
        manager.bind(str(path))
        notifier = Notifier({"NOTIFY_SOCKET": str(path)})
        notifier.ready("polling")
        notifier.ready("again")  # READY is said once
        notifier.watchdog("1 poll")
        manager.settimeout(1)
        assert manager.recv(4096).decode() == "READY=1\nSTATUS=polling"
        assert manager.recv(4096).decode() == "WATCHDOG=1\nSTATUS=1 poll"
        assert notifier.ready_sent


def test_a_manager_that_stops_reading_never_blocks_a_poll(tmp_path: Path) -> None:
    """The kernel queues a few datagrams only; the rest are dropped, not waited on."""
    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as manager:
        manager.bind(str(path))
        notifier = Notifier({"NOTIFY_SOCKET": str(path)})
        sent: list[bool] = []
        # In a thread, so that a send that blocks fails the test instead of hanging it.
        sender = threading.Thread(
            target=lambda: sent.extend(notifier.send("WATCHDOG=1") for _ in range(2000)),
            daemon=True,
        )
        sender.start()
        sender.join(timeout=10)
        assert not sender.is_alive(), f"a send blocked after {len(sent)} datagrams"
        assert sent[0] and not sent[-1]


def test_outside_systemd_nothing_is_sent() -> None:
    notifier = Notifier({})
    assert not notifier.enabled and not notifier.send("READY=1")
