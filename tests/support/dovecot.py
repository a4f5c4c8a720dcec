"""A private, throw-away Dovecot IMAP server for the test suite and the demo.

Each instance lives entirely inside one directory (config, certificates,
passwd-file, Maildir, sockets, logs) and listens on loopback only, so it never
touches the system Dovecot. It is stopped by the PID of its own master process
and nothing else.

CLI (used by the Makefile demo, run from the repository root)::

    python -m tests.support.dovecot start --dir DIR   # writes DIR/endpoint.json
    python -m tests.support.dovecot stop --dir DIR
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import grp
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from imapclient import IMAPClient

__all__ = [
    "DEFAULT_FOLDERS",
    "DovecotEndpoint",
    "DovecotUnavailable",
    "PrivateDovecot",
    "ensure_dovecot_binary",
]

HOST = "127.0.0.1"
# Also served, on the same ports, so a client can reach the server under a name
# the certificate does not cover and see the hostname check fail (rather than
# a refused connection).
ALT_HOST = "127.0.0.2"
USERNAME = "freelancer@example.test"

# Folder name -> SPECIAL-USE attribute (None for INBOX). reset() restores
# exactly this set.
DEFAULT_FOLDERS: dict[str, str | None] = {
    "INBOX": None,
    "Drafts": "\\Drafts",
    "Sent": "\\Sent",
    "Archive": "\\Archive",
    "Trash": "\\Trash",
}

_READY_TIMEOUT = 10.0
_STOP_TIMEOUT = 10.0
_IMAP_TIMEOUT = 10.0
_START_ATTEMPTS = 3
# sun_path is 108 bytes on Linux and Dovecot creates sockets up to
# "replication-notify-fifo" (23 characters) directly under base_dir.
_MAX_BASE_DIR_LEN = 80

_INSTALL_HINT = "run `make install-dovecot` (or `apt-get install dovecot-imapd`)"


class DovecotUnavailable(RuntimeError):  # noqa: N818 - name is part of the shared API
    """Dovecot (or the openssl CLI it needs) is not installed on this machine."""


@dataclass(frozen=True)
class DovecotEndpoint:
    host: str
    port: int
    imaps_port: int
    username: str
    password: str
    ca_file: Path
    untrusted_ca_file: Path
    root: Path

    def to_json(self) -> dict[str, str | int]:
        return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self).items()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DovecotEndpoint:
        return cls(
            host=str(data["host"]),
            port=int(data["port"]),
            imaps_port=int(data["imaps_port"]),
            username=str(data["username"]),
            password=str(data["password"]),
            ca_file=Path(data["ca_file"]),
            untrusted_ca_file=Path(data["untrusted_ca_file"]),
            root=Path(data["root"]),
        )


def ensure_dovecot_binary() -> Path:
    """Return the dovecot executable or raise DovecotUnavailable."""
    candidates: list[str] = []
    found = shutil.which("dovecot")
    if found:
        candidates.append(found)
    # /usr/sbin is often not on a non-root PATH even when Dovecot is installed.
    candidates += ["/usr/sbin/dovecot", "/usr/local/sbin/dovecot"]
    for candidate in candidates:
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return Path(candidate)
    raise DovecotUnavailable(f"dovecot not found on PATH nor in /usr/sbin; {_INSTALL_HINT}")


def _ensure_openssl() -> str:
    found = shutil.which("openssl")
    if found is None:
        raise DovecotUnavailable(
            "openssl CLI not found (needed for test certificates); run `apt-get install openssl`"
        )
    return found


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"[{path}: not readable]"
    return f"--- {path} ---\n" + "\n".join(text.splitlines()[-lines:])


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0) but is already dead for our purposes;
    # its parent (init, for the detached CLI instance) will reap it.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _free_ports(count: int) -> list[int]:
    """Ports currently free on both HOST and ALT_HOST (racy; start() retries)."""
    # All sockets stay bound until every port is chosen so the ports differ.
    socks: list[socket.socket] = []
    ports: list[int] = []
    try:
        while len(ports) < count:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(s)
            s.bind((HOST, 0))
            port = int(s.getsockname()[1])
            alt = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(alt)
            try:
                alt.bind((ALT_HOST, port))
            except OSError:
                continue
            ports.append(port)
        return ports
    finally:
        for s in socks:
            s.close()


def _port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _quote(value: str) -> str:
    if any(ch in value for ch in ' \t"#{}\\'):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return value


def _check_traversable(path: Path, uid: int) -> None:
    """Fail early when an unprivileged Dovecot process cannot reach `path`.

    Otherwise Dovecot only logs a permission error and the login hangs or fails
    with a generic "internal error", which is much harder to diagnose.
    """
    if uid != 0:
        return
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            raise RuntimeError(
                f"{parent} is not searchable by other users (mode {oct(mode & 0o777)}); "
                "Dovecot's unprivileged processes need o+x on every directory above "
                f"{path}. Use another --dir or chmod o+x {parent}."
            )


class PrivateDovecot:
    """One private Dovecot instance rooted at `root`.

    When `root` is None a fresh temporary directory is used and `stop()`
    deletes it again (set ONPLATFORM_KEEP_DOVECOT_DIR=1 to keep it for a
    look at the logs); a directory passed in is always left in place.
    """

    def __init__(self, root: Path | None = None) -> None:
        self._owns_root = root is None
        if root is None:
            root = Path(tempfile.mkdtemp(prefix="onplatform-dovecot-"))
        self._root = Path(root).absolute()
        self._proc: subprocess.Popen[bytes] | None = None
        self._endpoint: DovecotEndpoint | None = None

    def _remove_owned_root(self) -> None:
        if self._owns_root and not os.environ.get("ONPLATFORM_KEEP_DOVECOT_DIR"):
            shutil.rmtree(self._root, ignore_errors=True)

    # -- layout -------------------------------------------------------------

    @property
    def root(self) -> Path:
        return self._root

    @property
    def conf_path(self) -> Path:
        return self._root / "dovecot.conf"

    @property
    def base_dir(self) -> Path:
        return self._root / "run"

    @property
    def log_dir(self) -> Path:
        return self._root / "log"

    @property
    def endpoint_file(self) -> Path:
        return self._root / "endpoint.json"

    @property
    def _tls_dir(self) -> Path:
        return self._root / "tls"

    @property
    def _users_file(self) -> Path:
        return self._root / "users"

    @property
    def _mail_dir(self) -> Path:
        return self._root / "mail"

    @property
    def _stdout_log(self) -> Path:
        return self.log_dir / "dovecot.out"

    @property
    def _error_log(self) -> Path:
        return self.log_dir / "dovecot.log"

    @property
    def _info_log(self) -> Path:
        return self.log_dir / "dovecot-info.log"

    @property
    def endpoint(self) -> DovecotEndpoint:
        if self._endpoint is None:
            # Lets a fresh object drive an instance started by the CLI.
            if self.endpoint_file.exists() and self.master_pid() is not None:
                data = json.loads(self.endpoint_file.read_text())
                self._endpoint = DovecotEndpoint.from_json(data)
            else:
                raise RuntimeError(f"private Dovecot in {self._root} is not running")
        return self._endpoint

    def logs(self) -> str:
        """Tails of every log file, for error messages."""
        return "\n".join(_tail(p) for p in (self._stdout_log, self._error_log, self._info_log))

    # -- lifecycle ----------------------------------------------------------

    def master_pid(self) -> int | None:
        """PID of this instance's master process if it is running, else None."""
        if self._proc is not None and self._proc.poll() is None:
            return self._proc.pid
        try:
            pid = int((self.base_dir / "master.pid").read_text().strip())
        except (OSError, ValueError):
            return None
        # Guard against PID reuse: only a dovecot started with our config counts.
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return None
        if os.fsencode(str(self.conf_path)) not in cmdline:
            return None
        return pid if _pid_alive(pid) else None

    def start(self) -> DovecotEndpoint:
        return self._start(detach=False)

    def _start(self, *, detach: bool) -> DovecotEndpoint:
        if self.master_pid() is not None:
            raise RuntimeError(f"private Dovecot in {self._root} is already running")
        binary = ensure_dovecot_binary()
        if self._owns_root and not self._root.exists():
            # Restart after stop() removed our temp dir: take a fresh one
            # rather than re-creating a predictable path in /tmp.
            self._root = Path(tempfile.mkdtemp(prefix="onplatform-dovecot-")).absolute()
        self._prepare()
        last_error = ""
        for _attempt in range(_START_ATTEMPTS):
            port, imaps_port = _free_ports(2)
            self._write_config(port, imaps_port)
            endpoint = DovecotEndpoint(
                host=HOST,
                port=port,
                imaps_port=imaps_port,
                username=USERNAME,
                password=self._password(),
                ca_file=self._tls_dir / "ca.pem",
                untrusted_ca_file=self._tls_dir / "untrusted-ca.pem",
                root=self._root,
            )
            if self._launch(binary, endpoint, detach=detach):
                self._endpoint = endpoint
                if not detach:
                    _RUNNING.add(self)
                # Touching the account once makes Dovecot create the Maildir and
                # the auto folders, and proves auth + storage actually work.
                try:
                    with self._client() as client:
                        client.list_folders()
                except Exception as exc:
                    logs = self.logs()
                    self._terminate()
                    raise RuntimeError(
                        f"private Dovecot started but login failed: {exc!r}\n{logs}"
                    ) from exc
                self.endpoint_file.write_text(json.dumps(endpoint.to_json(), indent=2) + "\n")
                return endpoint
            last_error = self.logs()
            # A port picked by _free_ports can be grabbed by someone else before
            # Dovecot binds it; only that case is worth another attempt.
            if "in use" not in last_error:
                break
        raise RuntimeError(f"private Dovecot in {self._root} did not come up\n{last_error}")

    def _launch(self, binary: Path, endpoint: DovecotEndpoint, *, detach: bool) -> bool:
        """Start the master and wait until it greets; False if it never does."""
        shutil.rmtree(self.base_dir, ignore_errors=True)
        self.base_dir.mkdir(mode=0o755)
        for log in (self._stdout_log, self._error_log, self._info_log):
            log.write_bytes(b"")
        # A file, never a pipe: Dovecot keeps inherited stdout/stderr open for
        # its whole life and a pipe nobody drains would eventually block it.
        with self._stdout_log.open("ab") as out:
            if detach:
                # Without -F the master daemonises itself (fork + setsid) and
                # writes base_dir/master.pid; the process we spawn exits at once.
                launcher = subprocess.Popen(
                    [str(binary), "-c", str(self.conf_path)],
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    close_fds=True,
                )
                if launcher.wait(timeout=_READY_TIMEOUT) != 0:
                    return False
            else:
                self._proc = subprocess.Popen(
                    [str(binary), "-F", "-c", str(self.conf_path)],
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    close_fds=True,
                )
        deadline = time.monotonic() + _READY_TIMEOUT
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                self._proc = None
                return False
            if detach and self._daemon_died():
                return False
            if self._greets(endpoint) and _port_open(endpoint.host, endpoint.imaps_port):
                return True
            time.sleep(0.05)
        self._terminate()
        return False

    def _daemon_died(self) -> bool:
        # master.pid is written by the master itself, so a parseable PID that
        # is no longer ours means the daemon exited during startup.
        try:
            int((self.base_dir / "master.pid").read_text().strip())
        except (OSError, ValueError):
            return False
        return self.master_pid() is None

    @staticmethod
    def _greets(endpoint: DovecotEndpoint) -> bool:
        try:
            with socket.create_connection((endpoint.host, endpoint.port), timeout=1.0) as s:
                return s.recv(64).startswith(b"* OK")
        except OSError:
            return False

    def stop(self) -> None:
        """Stop this instance: SIGTERM to our master, SIGKILL after 10 s.

        Only the PID of this instance's own master is signalled. Safe to call
        when it is not running.
        """
        self._terminate()
        self._remove_owned_root()

    def _terminate(self) -> None:
        _RUNNING.discard(self)
        pid = self.master_pid()
        proc, self._proc = self._proc, None
        self._endpoint = None
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            if not self._wait_gone(pid, proc, _STOP_TIMEOUT):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                self._wait_gone(pid, proc, _STOP_TIMEOUT)
        elif proc is not None:
            proc.wait()

    @staticmethod
    def _wait_gone(pid: int, proc: subprocess.Popen[bytes] | None, timeout: float) -> bool:
        if proc is not None:
            try:
                proc.wait(timeout=timeout)
                return True
            except subprocess.TimeoutExpired:
                return False
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not _pid_alive(pid):
                return True
            time.sleep(0.05)
        return False

    def __enter__(self) -> DovecotEndpoint:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- mailbox helpers ----------------------------------------------------

    def _client(self) -> contextlib.AbstractContextManager[Any]:
        return imap_session(self.endpoint)

    def reset(self) -> None:
        """Empty the account: default folders only, all of them empty.

        Done over IMAP rather than by rewriting the Maildir so that sessions
        the code under test keeps open see ordinary EXPUNGE/DELETE events
        instead of a mail store changing underneath Dovecot's indexes.
        """
        with self._client() as client:
            listed = client.list_folders()
            existing = {name for _flags, _delim, name in listed}
            extra = [name for name in existing if name not in DEFAULT_FOLDERS]
            # Children first: Dovecot refuses to delete a folder that has children.
            delim = "/"
            for name in sorted(extra, key=lambda n: n.count(delim), reverse=True):
                # A \Noselect parent may vanish together with its last child.
                with contextlib.suppress(IMAPClient.Error):
                    client.delete_folder(name)
            leftover = {name for _f, _d, name in client.list_folders()} - set(DEFAULT_FOLDERS)
            if leftover:
                raise RuntimeError(f"reset() could not delete folders: {sorted(leftover)}")
            for name in DEFAULT_FOLDERS:
                if name not in existing:
                    client.create_folder(name)
                self._expunge_all(client, name)
            for _flags, _delim, name in client.list_sub_folders():
                if name not in DEFAULT_FOLDERS:
                    client.unsubscribe_folder(name)
            subscribed = {entry[2] for entry in client.list_sub_folders()}
            for name in DEFAULT_FOLDERS:
                if name not in subscribed:
                    client.subscribe_folder(name)

    @staticmethod
    def _expunge_all(client: Any, folder: str) -> None:
        info = client.select_folder(folder)
        if int(info.get(b"EXISTS", 0)) > 0:
            client.add_flags("1:*", [b"\\Deleted"], silent=True)
            client.expunge()
        client.close_folder()

    def append(self, folder: str, raw: bytes, flags: tuple[bytes, ...] = ()) -> None:
        with self._client() as client:
            client.append(folder, raw, flags=flags)

    def recreate_folder(self, folder: str) -> None:
        """Delete and re-create `folder` (emptied) so its UIDVALIDITY changes.

        Maildir keeps a per-account dovecot-uidvalidity counter, so the new
        value differs even when both happen within the same second. Sessions
        that have the folder selected are disconnected by Dovecot, as a real
        server would.
        """
        if folder.upper() == "INBOX":
            self._renew_inbox()
            return
        with self._client() as client:
            subscribed = {entry[2] for entry in client.list_sub_folders()}
            if client.folder_exists(folder):
                client.delete_folder(folder)
            client.create_folder(folder)
            if folder in subscribed or folder in DEFAULT_FOLDERS:
                client.subscribe_folder(folder)

    def _renew_inbox(self) -> None:
        # IMAP forbids deleting INBOX, so empty it and give it a new
        # UIDVALIDITY with doveadm, which is what a delete + create amounts to.
        with self._client() as client:
            old = int(client.folder_status("INBOX", [b"UIDVALIDITY"])[b"UIDVALIDITY"])
            self._expunge_all(client, "INBOX")
        new = max(old + 1, int(time.time()))
        doveadm = shutil.which("doveadm") or "/usr/bin/doveadm"
        result = subprocess.run(
            [
                doveadm,
                "-c",
                str(self.conf_path),
                "mailbox",
                "update",
                "-u",
                self.endpoint.username,
                "--uid-validity",
                str(new),
                "INBOX",
            ],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"doveadm mailbox update failed: {result.stderr.strip()}")

    # -- files ----------------------------------------------------------------

    def _prepare(self) -> None:
        if len(str(self.base_dir)) > _MAX_BASE_DIR_LEN:
            raise RuntimeError(
                f"{self.base_dir} is too long for Dovecot's unix sockets "
                f"(max {_MAX_BASE_DIR_LEN} characters); use a shorter directory"
            )
        self._root.mkdir(parents=True, exist_ok=True)
        # mkdtemp creates 0700, which the unprivileged Dovecot users cannot enter.
        self._root.chmod(0o755)
        _check_traversable(self._root, os.getuid())
        self.log_dir.mkdir(exist_ok=True)
        (self._root / "state").mkdir(exist_ok=True)
        self._make_certificates()
        mail_uid, mail_gid = self._mail_ids()
        home = self._mail_dir / USERNAME
        home.mkdir(parents=True, exist_ok=True)
        for d in (self._mail_dir, home):
            os.chown(d, mail_uid, mail_gid)
            d.chmod(0o700)
        if not self._users_file.exists():
            password = secrets.token_urlsafe(18)
            self._users_file.write_text(
                f"{USERNAME}:{{PLAIN}}{password}:{mail_uid}:{mail_gid}::{home}::\n"
            )
        # The auth process runs as the internal user, not root.
        internal_user, _login_user, _internal_group = self._service_users()
        if os.getuid() == 0:
            os.chown(self._users_file, 0, pwd.getpwnam(internal_user).pw_gid)
            self._users_file.chmod(0o640)
        else:
            self._users_file.chmod(0o600)

    def _password(self) -> str:
        line = self._users_file.read_text().splitlines()[0]
        return line.split(":")[1].removeprefix("{PLAIN}")

    @staticmethod
    def _mail_ids() -> tuple[int, int]:
        # Dovecot refuses to run mail processes as root, so root hands the
        # mailbox to nobody; an ordinary user can only use itself.
        if os.getuid() == 0:
            return pwd.getpwnam("nobody").pw_uid, grp.getgrnam("nogroup").gr_gid
        return os.getuid(), os.getgid()

    @staticmethod
    def _service_users() -> tuple[str, str, str]:
        """(internal user, login user, internal group) for the Dovecot services."""
        if os.getuid() == 0:
            return "dovecot", "dovenull", "dovecot"
        me = pwd.getpwuid(os.getuid()).pw_name
        return me, me, grp.getgrgid(os.getgid()).gr_name

    def _make_certificates(self) -> None:
        tls = self._tls_dir
        wanted = ("ca.pem", "server.pem", "server.key", "untrusted-ca.pem")
        if all((tls / name).exists() for name in wanted):
            return
        openssl = _ensure_openssl()
        tls.mkdir(mode=0o755, exist_ok=True)
        cnf = tls / "openssl.cnf"
        # Our own config so the host's openssl.cnf cannot add or clash with
        # extensions; AKI/SKI and critical basicConstraints keep Python's
        # VERIFY_X509_STRICT (default since 3.13) happy.
        cnf.write_text(
            "[req]\n"
            "distinguished_name = dn\n"
            "prompt = no\n"
            "[dn]\n"
            "CN = placeholder\n"
            "[ca_ext]\n"
            "basicConstraints = critical, CA:TRUE\n"
            "keyUsage = critical, keyCertSign, cRLSign\n"
            "subjectKeyIdentifier = hash\n"
            "[server_ext]\n"
            "basicConstraints = critical, CA:FALSE\n"
            "keyUsage = critical, digitalSignature\n"
            "extendedKeyUsage = serverAuth\n"
            "subjectAltName = DNS:localhost, IP:127.0.0.1\n"
            "subjectKeyIdentifier = hash\n"
            "authorityKeyIdentifier = keyid:always\n"
        )
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

        def run(*args: str) -> None:
            result = subprocess.run(
                [openssl, *args], stdin=subprocess.DEVNULL, capture_output=True, check=False
            )
            if result.returncode != 0:
                raise RuntimeError(
                    f"openssl {args[0]} failed: {result.stderr.decode(errors='replace')}"
                )

        for name, cn in (("ca", "onplatform test CA"), ("untrusted-ca", "onplatform untrusted CA")):
            run(
                "req",
                "-x509",
                "-config",
                str(cnf),
                "-extensions",
                "ca_ext",
                *ec,
                "-keyout",
                str(tls / f"{name}.key"),
                "-out",
                str(tls / f"{name}.pem"),
                "-days",
                "3650",
                "-subj",
                f"/CN={cn}",
            )
        run(
            "req",
            "-new",
            "-config",
            str(cnf),
            *ec,
            "-keyout",
            str(tls / "server.key"),
            "-out",
            str(tls / "server.csr"),
            "-subj",
            "/CN=localhost",
        )
        run(
            "x509",
            "-req",
            "-in",
            str(tls / "server.csr"),
            "-CA",
            str(tls / "ca.pem"),
            "-CAkey",
            str(tls / "ca.key"),
            "-set_serial",
            str(secrets.randbits(63)),
            "-days",
            "3650",
            "-extfile",
            str(cnf),
            "-extensions",
            "server_ext",
            "-out",
            str(tls / "server.pem"),
        )
        for key in tls.glob("*.key"):
            key.chmod(0o600)

    def _write_config(self, port: int, imaps_port: int) -> None:
        internal_user, login_user, internal_group = self._service_users()
        mail_uid, mail_gid = self._mail_ids()
        root_user = os.getuid() == 0
        users = _quote(str(self._users_file))
        mailboxes = "".join(
            f"  mailbox {name} {{\n    special_use = {use}\n    auto = subscribe\n  }}\n"
            for name, use in DEFAULT_FOLDERS.items()
            if use is not None
        )
        # Chroots and privilege switches need root; an ordinary user runs every
        # service as itself.
        unprivileged = (
            ""
            if root_user
            else (
                "service anvil {\n  chroot =\n}\n"
                "service imap-login {\n  chroot =\n}\n"
                "service auth-worker {\n  user = $default_internal_user\n}\n"
            )
        )
        conf = f"""\
# Generated by tests/support/dovecot.py for a private test instance.
protocols = imap
listen = {HOST}, {ALT_HOST}
base_dir = {_quote(str(self.base_dir))}
state_dir = {_quote(str(self._root / "state"))}
instance_name = onplatform-test-{secrets.token_hex(4)}
log_path = {_quote(str(self._error_log))}
info_log_path = {_quote(str(self._info_log))}
debug_log_path = {_quote(str(self._info_log))}
login_greeting = onplatform private Dovecot ready.

default_internal_user = {internal_user}
default_internal_group = {internal_group}
default_login_user = {login_user}
mail_uid = {mail_uid}
mail_gid = {mail_gid}
first_valid_uid = {min(mail_uid, 65534)}
first_valid_gid = {min(mail_gid, 65534)}

ssl = yes
ssl_cert = <{self._tls_dir / "server.pem"}
ssl_key = <{self._tls_dir / "server.key"}
ssl_min_protocol = TLSv1.2
# Plain IMAP on loopback is what most tests use.
disable_plaintext_auth = no

auth_mechanisms = plain login
auth_verbose = no
# Tests exercise wrong passwords; the default 2 s delay would slow them down.
auth_failure_delay = 0

# auth_failure_delay = 0 still leaves failures queued for up to 0.5 s; a
# passdb that only sets "nodelay" (and then falls through) removes that too.
passdb {{
  driver = static
  args = noauthenticate nodelay=yes
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {users}
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {users}
}}

# LAYOUT=fs: the default Maildir++ layout rejects '.' in folder names, which
# real servers (Gmail, Outlook) accept.
mail_location = maildir:~/Maildir:LAYOUT=fs
namespace inbox {{
  inbox = yes
  separator = /
{mailboxes}}}

protocol imap {{
  # Default 10 is too low for a test suite that opens many sessions.
  mail_max_userip_connections = 200
}}

service imap-login {{
  inet_listener imap {{
    address = {HOST}, {ALT_HOST}
    port = {port}
  }}
  # Declared explicitly, otherwise Dovecot also binds the default 993.
  inet_listener imaps {{
    address = {HOST}, {ALT_HOST}
    port = {imaps_port}
    ssl = yes
  }}
  # One long-lived login process for all clients. With the default
  # per-connection processes, a login process that accepted a client just
  # before shutdown ignores SIGTERM and stop() takes ~6 s instead of ~1 s.
  service_count = 0
  process_min_avail = 1
}}

service anvil {{
  # Without this, repeated failed logins from 127.0.0.1 wait 4.5 s each.
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
{unprivileged}"""
        self.conf_path.write_text(conf)


# Servers started in-process (not by the CLI) that are still running. A test
# run that dies before its fixture teardown would otherwise leave them behind.
_RUNNING: set[PrivateDovecot] = set()


@contextlib.contextmanager
def imap_session(
    endpoint: DovecotEndpoint, *, port: int | None = None, timeout: float = _IMAP_TIMEOUT
) -> Iterator[Any]:
    """A client logged in to the private server over plain IMAP, logged out after
    (``port``: another way in, such as a relay in front of the server)."""
    client = IMAPClient(endpoint.host, port=port or endpoint.port, ssl=False, timeout=timeout)
    try:
        client.login(endpoint.username, endpoint.password)
        yield client
    finally:
        with contextlib.suppress(Exception):
            client.logout()


@atexit.register
def _stop_leftovers() -> None:
    for server in list(_RUNNING):
        with contextlib.suppress(Exception):
            server.stop()


# -- CLI ------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.support.dovecot",
        description="Start/stop a private Dovecot IMAP server in a directory.",
    )
    parser.add_argument("command", choices=("start", "stop"))
    parser.add_argument("--dir", required=True, type=Path, help="private directory of the instance")
    args = parser.parse_args(argv)
    server = PrivateDovecot(args.dir)
    try:
        if args.command == "start":
            endpoint = server._start(detach=True)
            print(json.dumps(endpoint.to_json(), indent=2))
        else:
            server.stop()
    except (DovecotUnavailable, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
