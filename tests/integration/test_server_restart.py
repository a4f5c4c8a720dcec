"""A real Dovecot stopped and started again under the running daemon."""

from __future__ import annotations

import email
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import write_config
from tests.integration.test_daemon import events, wait_until
from tests.integration.test_end_to_end import PAYMENT
from tests.support.daemon import STARTUP_SECONDS, running_daemon
from tests.support.dovecot import PrivateDovecot
from tests.support.mail import client_mail
from tests.support.proxy import FaultProxy

pytestmark = pytest.mark.integration


@pytest.fixture
def own_server() -> Iterator[PrivateDovecot]:
    """A server of this test's own, in a directory that survives its restarts."""
    root = Path(tempfile.mkdtemp(prefix="onplatform-restart-"))
    os.chmod(root, 0o755)
    server = PrivateDovecot(root)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        subprocess.run(["rm", "-rf", str(root)], check=False)


def sources_in_drafts(server: PrivateDovecot) -> list[str]:
    from imapclient import IMAPClient

    endpoint = server.endpoint
    client = IMAPClient(endpoint.host, port=endpoint.port, ssl=False, timeout=10)
    client.login(endpoint.username, endpoint.password)
    try:
        client.select_folder("Drafts", readonly=True)
        uids = client.search(["ALL"])
        fetched = client.fetch(uids, ["BODY.PEEK[]"]) if uids else {}
        return sorted(
            str(email.message_from_bytes(data[b"BODY[]"])["X-Onplatform-Source"])
            for data in fetched.values()
        )
    finally:
        client.logout()


def test_daemon_survives_a_server_restart(own_server: PrivateDovecot, tmp_path: Path) -> None:
    """Dovecot goes down for seconds and comes back: the daemon reconnects and drafts again."""
    endpoint = own_server.endpoint
    with FaultProxy((endpoint.host, endpoint.port)) as proxy:
        config = write_config(tmp_path, endpoint)
        config.write_text(
            config.read_text().replace(f"port = {endpoint.port}", f"port = {proxy.port}")
        )
        log = tmp_path / "daemon.log"
        own_server.append("INBOX", client_mail(9701, "Before Restart", PAYMENT, "<r1@up.test>"))
        with running_daemon(config, log) as daemon:
            wait_until(lambda: sources_in_drafts(own_server) == ["<r1@up.test>"], STARTUP_SECONDS)
            own_server.stop()
            wait_until(lambda: any(e["event"] == "mailbox.error" for e in events(log)), timeout=40)
            time.sleep(2)
            restarted = own_server.start()
            proxy.upstream = (restarted.host, restarted.port)
            own_server.append("INBOX", client_mail(9702, "After Restart", PAYMENT, "<r2@up.test>"))
            wait_until(
                lambda: sources_in_drafts(own_server) == ["<r1@up.test>", "<r2@up.test>"],
                timeout=40,
            )
            assert any(e["event"] == "mailbox.reconnected" for e in events(log))
            daemon.send_signal(signal.SIGTERM)
            assert daemon.wait(timeout=30) == 0
