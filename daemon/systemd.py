"""systemd's notify protocol, spoken over $NOTIFY_SOCKET without a library.

READY=1 once the first login worked, WATCHDOG=1 only after a real IMAP round
trip (so a wedged connection lets systemd restart the service), STATUS= with
the last poll, STOPPING=1 on the way out. Outside systemd every call is a no-op.

A send never blocks: a datagram socket whose reader has fallen behind (the kernel
queues only ``net.unix.max_dgram_qlen`` datagrams, often 10) would otherwise hold
the poll that sends its WATCHDOG=1 forever. A notification that does not fit is
dropped; the next poll sends a fresh one.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping


class Notifier:
    def __init__(self, environ: Mapping[str, str] = os.environ) -> None:
        address = environ.get("NOTIFY_SOCKET", "")
        if address.startswith("@"):
            address = "\0" + address[1:]  # abstract namespace
        self._address = address
        self.ready_sent = False

    @property
    def enabled(self) -> bool:
        return bool(self._address)

    def send(self, *fields: str) -> bool:
        if not self._address:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.connect(self._address)
                sock.send("\n".join(fields).encode("utf-8"), socket.MSG_DONTWAIT)
        except OSError:  # systemd gone, socket missing, or its queue full (BlockingIOError)
            return False
        return True

    def ready(self, status: str) -> None:
        if not self.ready_sent:
            self.ready_sent = self.send("READY=1", f"STATUS={status}")

    def watchdog(self, status: str) -> None:
        self.send("WATCHDOG=1", f"STATUS={status}")

    def status(self, status: str) -> None:
        self.send(f"STATUS={status}")

    def stopping(self) -> None:
        self.send("STOPPING=1", "STATUS=stopping")
