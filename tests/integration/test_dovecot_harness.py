"""The private Dovecot harness behaves as the rest of the suite assumes."""

from __future__ import annotations

import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from imapclient import IMAPClient
from imapclient.exceptions import LoginError

from tests.support.dovecot import DovecotEndpoint, PrivateDovecot

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
MESSAGE = (
    b"From: client@example.test\r\n"
    b"To: freelancer@example.test\r\n"
    b"Subject: harness check\r\n"
    b"Message-ID: <harness@example.test>\r\n"
    b"\r\n"
    b"Hello.\r\n"
)


# Its own instance rather than conftest's session server: this file checks
# the harness itself, including start/stop.
@pytest.fixture(scope="module")
def harness() -> Iterator[PrivateDovecot]:
    server = PrivateDovecot()
    with server:
        yield server


@pytest.fixture
def server(harness: PrivateDovecot) -> PrivateDovecot:
    harness.reset()
    return harness


def _login(ep: DovecotEndpoint) -> IMAPClient:
    client = IMAPClient(ep.host, port=ep.port, ssl=False, timeout=10)
    client.login(ep.username, ep.password)
    return client


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def test_plain_login(server: PrivateDovecot) -> None:
    client = _login(server.endpoint)
    try:
        assert client.select_folder("INBOX")[b"EXISTS"] == 0
    finally:
        client.logout()


def test_imaps_login_verified_against_ca(server: PrivateDovecot) -> None:
    ep = server.endpoint
    ctx = ssl.create_default_context(cafile=str(ep.ca_file))
    client = IMAPClient(ep.host, port=ep.imaps_port, ssl=True, ssl_context=ctx, timeout=10)
    try:
        client.login(ep.username, ep.password)
        assert client.folder_exists("INBOX")
    finally:
        client.logout()


def test_imaps_refused_with_untrusted_ca(server: PrivateDovecot) -> None:
    ep = server.endpoint
    ctx = ssl.create_default_context(cafile=str(ep.untrusted_ca_file))
    with pytest.raises(ssl.SSLCertVerificationError):
        IMAPClient(ep.host, port=ep.imaps_port, ssl=True, ssl_context=ctx, timeout=10)


@pytest.mark.parametrize(
    ("connect_to", "server_name", "ok"),
    [
        ("localhost", "localhost", True),
        ("127.0.0.1", "127.0.0.1", True),
        # The server answers there too, so the failure is the hostname check.
        ("127.0.0.2", "127.0.0.2", False),
        ("127.0.0.1", "mail.example.test", False),
    ],
)
def test_certificate_names(
    server: PrivateDovecot, connect_to: str, server_name: str, ok: bool
) -> None:
    ep = server.endpoint
    ctx = ssl.create_default_context(cafile=str(ep.ca_file))
    with socket.create_connection((connect_to, ep.imaps_port), timeout=5) as raw:
        if ok:
            with ctx.wrap_socket(raw, server_hostname=server_name) as tls:
                assert tls.recv(64).startswith(b"* OK")
        else:
            with (
                pytest.raises(ssl.SSLCertVerificationError, match="mismatch"),
                ctx.wrap_socket(raw, server_hostname=server_name),
            ):
                pass


def test_list_reports_special_use(server: PrivateDovecot) -> None:
    client = _login(server.endpoint)
    try:
        listed = {name: flags for flags, _delim, name in client.list_folders()}
    finally:
        client.logout()
    assert set(listed) == {"INBOX", "Drafts", "Sent", "Archive", "Trash"}
    assert b"\\Drafts" in listed["Drafts"]
    assert b"\\Sent" in listed["Sent"]
    assert b"\\Archive" in listed["Archive"]
    assert b"\\Trash" in listed["Trash"]


def test_body_peek_leaves_seen_unset(server: PrivateDovecot) -> None:
    server.append("INBOX", MESSAGE)
    client = _login(server.endpoint)
    try:
        client.select_folder("INBOX")
        (uid,) = client.search(["ALL"])
        body = client.fetch([uid], ["BODY.PEEK[]"])[uid][b"BODY[]"]
        assert body == MESSAGE
        assert b"\\Seen" not in client.get_flags([uid])[uid]
        # Contrast: a plain BODY[] fetch does set \Seen, so the check above means something.
        client.fetch([uid], ["BODY[]"])
        assert b"\\Seen" in client.get_flags([uid])[uid]
    finally:
        client.logout()


def test_append_keeps_flags(server: PrivateDovecot) -> None:
    server.append("Drafts", MESSAGE, flags=(b"\\Draft", b"$Onplatform"))
    client = _login(server.endpoint)
    try:
        client.select_folder("Drafts", readonly=True)
        flags = next(iter(client.get_flags(client.search(["ALL"])).values()))
    finally:
        client.logout()
    assert set(flags) >= {b"\\Draft", b"$Onplatform"}


def test_reset_empties_mailbox(server: PrivateDovecot) -> None:
    server.append("INBOX", MESSAGE)
    server.append("Archive", MESSAGE)
    client = _login(server.endpoint)
    try:
        client.create_folder("Clients/Acme")
        client.subscribe_folder("Clients/Acme")
        client.create_folder("Trash/Old")
    finally:
        client.logout()

    server.reset()

    client = _login(server.endpoint)
    try:
        names = {name for _flags, _delim, name in client.list_folders()}
        subscribed = {name for _flags, _delim, name in client.list_sub_folders()}
        counts = {n: client.folder_status(n, ["MESSAGES"])[b"MESSAGES"] for n in names}
    finally:
        client.logout()
    assert names == {"INBOX", "Drafts", "Sent", "Archive", "Trash"}
    assert subscribed == names
    assert set(counts.values()) == {0}


def test_recreate_folder_changes_uidvalidity(server: PrivateDovecot) -> None:
    server.append("Archive", MESSAGE)
    client = _login(server.endpoint)
    try:
        before = client.select_folder("Archive", readonly=True)[b"UIDVALIDITY"]
    finally:
        client.logout()

    server.recreate_folder("Archive")

    client = _login(server.endpoint)
    try:
        after = client.select_folder("Archive", readonly=True)
        special = {name: flags for flags, _d, name in client.list_folders()}["Archive"]
    finally:
        client.logout()
    assert after[b"UIDVALIDITY"] != before
    assert after[b"EXISTS"] == 0
    assert b"\\Archive" in special


def test_recreate_inbox_changes_uidvalidity(server: PrivateDovecot) -> None:
    server.append("INBOX", MESSAGE)
    client = _login(server.endpoint)
    try:
        before = client.select_folder("INBOX", readonly=True)[b"UIDVALIDITY"]
    finally:
        client.logout()

    server.recreate_folder("INBOX")

    client = _login(server.endpoint)
    try:
        after = client.select_folder("INBOX", readonly=True)
    finally:
        client.logout()
    assert after[b"UIDVALIDITY"] != before
    assert after[b"EXISTS"] == 0


def test_wrong_password_refused_quickly(server: PrivateDovecot) -> None:
    ep = server.endpoint
    # Several in a row: the anvil auth penalty would grow the delay each time.
    for _ in range(3):
        client = IMAPClient(ep.host, port=ep.port, ssl=False, timeout=10)
        started = time.monotonic()
        with pytest.raises(LoginError):
            client.login(ep.username, ep.password + "-wrong")
        assert time.monotonic() - started < 2.0
        client.shutdown()


def test_many_sessions_at_once(server: PrivateDovecot) -> None:
    # Dovecot's default mail_max_userip_connections is 10.
    clients = []
    try:
        for _ in range(15):
            client = _login(server.endpoint)
            client.select_folder("INBOX", readonly=True)
            clients.append(client)
    finally:
        for client in clients:
            client.logout()
    assert len(clients) == 15


def test_start_twice_is_refused(server: PrivateDovecot) -> None:
    with pytest.raises(RuntimeError, match="already running"):
        server.start()


def test_stop_kills_master_and_closes_ports() -> None:
    server = PrivateDovecot()
    try:
        ep = server.start()
        pid = server.master_pid()
        assert pid is not None
        assert _port_open(ep.host, ep.port)
        server.stop()
        assert server.master_pid() is None
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
        assert not _port_open(ep.host, ep.port)
        assert not _port_open(ep.host, ep.imaps_port)
        # The temporary directory was ours, so it goes too.
        assert not ep.root.exists()
    finally:
        server.stop()


def _cli(command: str, directory: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tests.support.dovecot", command, "--dir", str(directory)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_cli_start_stop_round_trip() -> None:
    # Not pytest's tmp_path: its parent is 0700, which Dovecot's
    # unprivileged processes cannot traverse.
    directory = Path(tempfile.mkdtemp(prefix="onplatform-cli-"))
    try:
        started = _cli("start", directory)
        assert started.returncode == 0, started.stderr
        ep = DovecotEndpoint.from_json(json.loads((directory / "endpoint.json").read_text()))
        assert json.loads(started.stdout) == ep.to_json()
        assert ep.root == directory

        # The CLI process has exited; the server must outlive it.
        client = _login(ep)
        client.logout()
        pid = PrivateDovecot(directory).master_pid()
        assert pid is not None

        # A fresh object can drive the CLI-started instance.
        PrivateDovecot(directory).append("INBOX", MESSAGE)

        stopped = _cli("stop", directory)
        assert stopped.returncode == 0, stopped.stderr
        assert PrivateDovecot(directory).master_pid() is None
        assert not _port_open(ep.host, ep.port)
    finally:
        _cli("stop", directory)
        shutil.rmtree(directory, ignore_errors=True)
