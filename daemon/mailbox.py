"""The IMAP side: the only module that imports imapclient.

Folders are selected read-only and bodies fetched with BODY.PEEK[], so no
client mail is ever marked as read. There is no code path that sends mail:
the one write is APPEND to the Drafts folder.
"""

from __future__ import annotations

import contextlib
import datetime
import re
import ssl
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from email.parser import BytesParser
from typing import Any

import imapclient
from imapclient.exceptions import IMAPClientError, LoginError

from onplatform.config.schema import AccountSettings
from onplatform.daemon.errors import AuthenticationError, MailboxError, TLSVerificationError

_COMMON_DRAFTS = (
    "Drafts",
    "INBOX.Drafts",
    "INBOX/Drafts",
    "[Gmail]/Drafts",
    "Draft",
    "Brouillons",
    "Entwürfe",
    "Borradores",
    "Rascunhos",
    "Bozze",
    "Черновики",
)
_APPENDUID = re.compile(rb"APPENDUID (\d+) (\d+)")


@dataclass(frozen=True)
class FolderStatus:
    name: str
    uidvalidity: int
    uidnext: int | None
    exists: int


@dataclass(frozen=True)
class FolderInfo:
    name: str
    flags: tuple[str, ...]


def _as_text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


class ImapMailbox:
    """One logged-in IMAP connection for one account."""

    def __init__(self, client: imapclient.IMAPClient, account: AccountSettings) -> None:
        self._client = client
        self._account = account
        self._selected: str | None = None
        self._status: FolderStatus | None = None

    @property
    def capabilities(self) -> tuple[str, ...]:
        return tuple(_as_text(c) for c in self._client.capabilities())

    def close(self) -> None:
        try:
            self._client.logout()
        except (IMAPClientError, OSError):
            with contextlib.suppress(IMAPClientError, OSError):
                self._client.shutdown()

    def noop(self) -> None:
        with _translated(self._account, "NOOP"):
            self._client.noop()

    def list_folders(self) -> list[FolderInfo]:
        with _translated(self._account, "LIST"):
            listed = self._client.list_folders()
        return [
            FolderInfo(_as_text(name), tuple(_as_text(f) for f in flags))
            for flags, _delimiter, name in listed
        ]

    def find_drafts_folder(self, override: str | None) -> str:
        folders = self.list_folders()
        names = {f.name for f in folders}
        if override:
            if override not in names:
                raise MailboxError(
                    f"{self._account.name}: drafts_folder {override!r} does not exist on the server"
                )
            return override
        for folder in folders:
            if "\\Drafts" in folder.flags:
                return folder.name
        for candidate in _COMMON_DRAFTS:
            if candidate in names:
                return candidate
        raise MailboxError(
            f"{self._account.name}: no Drafts folder found (no \\Drafts flag, no common name); "
            "set accounts.drafts_folder"
        )

    def select_readonly(self, folder: str) -> FolderStatus:
        """EXAMINE the folder, unless it is already the one selected.

        Re-examining a large folder costs the server tens of milliseconds at
        every poll; while it stays selected its UIDVALIDITY cannot change
        (a server that renumbers it ends the session instead).
        """
        if self._selected == folder and self._status is not None:
            return self._status
        with _translated(self._account, f"SELECT {folder}"):
            response = self._client.select_folder(folder, readonly=True)
        self._selected = folder
        uidnext = response.get(b"UIDNEXT")
        self._status = FolderStatus(
            name=folder,
            uidvalidity=int(response.get(b"UIDVALIDITY", 0)),
            uidnext=int(uidnext) if uidnext is not None else None,
            exists=int(response.get(b"EXISTS", 0)),
        )
        return self._status

    def search_after(self, last_uid: int, sender_hint: str) -> list[int]:
        """UIDs above ``last_uid``, filtered by the server on the sender."""
        criteria: list[Any] = ["UID", f"{last_uid + 1}:*"]
        if sender_hint:
            criteria += ["FROM", sender_hint]
        with _translated(self._account, "SEARCH"):
            found = self._client.search(criteria)
        # "n:*" always matches the highest UID, even one below n (RFC 3501).
        return sorted(int(uid) for uid in found if int(uid) > last_uid)

    def search_since(self, since: datetime.date, sender_hint: str) -> list[int]:
        """UIDs of mail that arrived on or after ``since``, filtered on the sender."""
        criteria: list[Any] = ["SINCE", since]
        if sender_hint:
            criteria += ["FROM", sender_hint]
        with _translated(self._account, "SEARCH SINCE"):
            return sorted(int(uid) for uid in self._client.search(criteria))

    def fetch_bounded(self, uids: Sequence[int], limit: int) -> dict[int, tuple[int, bytes | None]]:
        """(size, body) of each message in one FETCH, with BODY.PEEK[] so \\Seen stays.

        The body is asked for up to ``limit`` bytes (a partial fetch): a message
        bigger than that comes back as (size, None) and is never transferred whole.
        One command instead of a size check then a fetch: half the response lines
        for imapclient's parser, which is pure Python, and one round trip less.
        """
        if not uids:
            return {}
        with _translated(self._account, "FETCH BODY.PEEK[]"):
            response = self._client.fetch(list(uids), ["RFC822.SIZE", f"BODY.PEEK[]<0.{limit}>"])
        found: dict[int, tuple[int, bytes | None]] = {}
        for uid, data in response.items():
            size = int(data.get(b"RFC822.SIZE", 0))
            body = data.get(b"BODY[]<0>", data.get(b"BODY[]"))
            whole = isinstance(body, bytes) and 0 < size <= limit
            found[int(uid)] = (size, body if whole else None)
        return found

    def markers_in(self, folder: str, header: str) -> set[str]:
        """Every value of ``header`` in ``folder``; restores the selection after.

        Two commands whatever the number of messages asked about: SEARCH for
        the messages carrying the header, then FETCH that header alone.
        """
        previous = self._selected
        values: set[str] = set()
        with _translated(self._account, f"SEARCH {folder}"):
            self._client.select_folder(folder, readonly=True)
            self._selected, self._status = folder, None
            uids = self._client.search(["HEADER", header, ""])
            if uids:
                section = f"BODY.PEEK[HEADER.FIELDS ({header.upper()})]"
                key = f"BODY[HEADER.FIELDS ({header.upper()})]".encode()
                for data in self._client.fetch(uids, [section]).values():
                    raw = data.get(key, b"")
                    message = BytesParser().parsebytes(
                        raw if isinstance(raw, bytes) else b"", headersonly=True
                    )
                    values.update(str(v).strip() for v in message.get_all(header, []))
        if previous is not None and previous != folder:
            self.select_readonly(previous)
        return values

    def append_draft(self, drafts_folder: str, raw: bytes) -> int | None:
        """Store one draft; returns its UID when the server reports it (UIDPLUS)."""
        with _translated(self._account, f"APPEND {drafts_folder}"):
            response = self._client.append(drafts_folder, raw, flags=(b"\\Draft", b"\\Seen"))
        match = _APPENDUID.search(response if isinstance(response, bytes) else b"")
        return int(match.group(2)) if match else None

    def append_drafts(self, drafts_folder: str, raws: Sequence[bytes]) -> list[int | None]:
        """Store several drafts, in one MULTIAPPEND command where the server has it.

        MULTIAPPEND (RFC 3502) is all or nothing, so a failure leaves no
        partial batch behind. Returns the new UIDs when the server reports
        them (UIDPLUS), else Nones.
        """
        if not raws:
            return []
        if len(raws) == 1 or "MULTIAPPEND" not in self.capabilities:
            return [self.append_draft(drafts_folder, raw) for raw in raws]
        flags = (b"\\Draft", b"\\Seen")
        with _translated(self._account, f"MULTIAPPEND {drafts_folder}"):
            response = self._client.multiappend(
                drafts_folder, [{"msg": raw, "flags": flags} for raw in raws]
            )
        uids = _uid_set(response if isinstance(response, bytes) else b"")
        return uids if len(uids) == len(raws) else [None] * len(raws)

    def idle_wait(self, timeout: float, while_idle: Callable[[], object] | None = None) -> bool:
        """IDLE on the selected folder for up to ``timeout`` s; True when mail arrived.

        ``while_idle`` runs once IDLE has begun (a poll on another connection): mail
        that arrives during it or after raises an IDLE event, so none falls between
        a poll's SEARCH and the start of IDLE.

        imapclient's idle_check() returns an empty list both on a quiet
        mailbox and when the server closed the socket; an early empty
        return means the socket was readable with nothing in it: a dead
        connection, reported as MailboxError rather than as quiet.
        """
        with _translated(self._account, "IDLE"):
            self._client.idle()
            if while_idle is not None:
                while_idle()
            started = time.monotonic()
            responses = self._client.idle_check(timeout=timeout)
            elapsed = time.monotonic() - started
            if not responses and elapsed < timeout - 0.5:
                raise MailboxError(f"{self._account.name}: connection closed during IDLE")
            self._client.idle_done()
        return any(
            len(item) > 1 and item[1] in (b"EXISTS", b"RECENT")
            for item in responses
            if isinstance(item, tuple)
        )


@contextlib.contextmanager
def _translated(account: AccountSettings, operation: str) -> Iterator[None]:
    """Turns library and socket errors into onplatform's own, at this boundary."""
    try:
        yield
    except (IMAPClientError, OSError, EOFError) as error:
        detail = _as_text(error)[:200] or type(error).__name__
        raise MailboxError(f"{account.name}: {operation} failed: {detail}") from error


def _uid_set(response: bytes) -> list[int | None]:
    """The UIDs of an APPENDUID response code: "APPENDUID 7 3:5" or "APPENDUID 7 3,4,9"."""
    match = re.search(rb"APPENDUID \d+ ([\d:,]+)", response)
    if not match:
        return []
    uids: list[int | None] = []
    for part in match.group(1).split(b","):
        low, _, high = part.partition(b":")
        start, stop = int(low), int(high or low)
        uids.extend(range(min(start, stop), max(start, stop) + 1))
    return uids


def tls_context(account: AccountSettings) -> ssl.SSLContext:
    """Certificates are always verified; ca_file adds a private CA."""
    context = ssl.create_default_context(
        cafile=str(account.ca_file) if account.ca_file is not None else None
    )
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def connect(account: AccountSettings, password: str) -> ImapMailbox:
    """Open, secure and log in one connection; raises MailboxError subclasses."""
    where = f"{account.name} ({account.host}:{account.port})"
    try:
        context = tls_context(account)
    except (OSError, ssl.SSLError) as err:
        raise TLSVerificationError(f"{account.name}: cannot load ca_file: {err}") from err
    timeout = imapclient.SocketTimeout(connect=min(account.timeout, 30.0), read=account.timeout)
    try:
        client = imapclient.IMAPClient(
            account.host,
            port=account.port,
            ssl=account.tls == "implicit",
            ssl_context=context,
            timeout=timeout,
        )
        if account.tls == "starttls":
            client.starttls(context)
    except ssl.SSLCertVerificationError as err:
        raise TLSVerificationError(
            f"{where}: TLS certificate not trusted: {err.verify_message or err.reason}"
        ) from err
    except ssl.SSLError as err:
        raise TLSVerificationError(f"{where}: TLS failed: {err.reason or err}") from err
    except (TimeoutError, OSError, IMAPClientError) as err:
        raise MailboxError(
            f"{where}: cannot connect: {_as_text(err) or type(err).__name__}"
        ) from err
    try:
        client.login(account.username, password)
    except LoginError as err:
        _quiet_shutdown(client)
        detail = _as_text(err.args[0] if err.args else err)
        raise AuthenticationError(
            f"{where}: login refused for {account.username}: {detail}"
        ) from err
    except (IMAPClientError, OSError) as err:
        _quiet_shutdown(client)
        raise MailboxError(f"{where}: login failed: {_as_text(err)}") from err
    return ImapMailbox(client, account)


def _quiet_shutdown(client: imapclient.IMAPClient) -> None:
    with contextlib.suppress(IMAPClientError, OSError):
        client.shutdown()
