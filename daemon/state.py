"""The state store: one SQLite file holding what has been read and what was drafted.

Progress is keyed by (account, folder, UIDVALIDITY, UID); drafts and client
history are keyed by the mail's stable source key, so a folder rescanned
after a UIDVALIDITY change never yields a second draft or a double count.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from onplatform.daemon.errors import OnplatformError

SCHEMA_VERSION = 1
STALE_REASON = "older_than_backfill_days"
MAX_ATTEMPTS = 3
"""A message that fails this many times is parked instead of retried."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS folders (
    account TEXT NOT NULL, folder TEXT NOT NULL,
    uidvalidity INTEGER NOT NULL, last_uid INTEGER NOT NULL,
    PRIMARY KEY (account, folder)
);
CREATE TABLE IF NOT EXISTS messages (
    account TEXT NOT NULL, folder TEXT NOT NULL, uidvalidity INTEGER NOT NULL,
    uid INTEGER NOT NULL, source_key TEXT, status TEXT NOT NULL,
    kind TEXT, category TEXT, action TEXT, reason TEXT,
    attempts INTEGER NOT NULL DEFAULT 0, updated_at REAL NOT NULL,
    PRIMARY KEY (account, folder, uidvalidity, uid)
);
CREATE INDEX IF NOT EXISTS messages_source ON messages (account, source_key);
CREATE TABLE IF NOT EXISTS drafts (
    account TEXT NOT NULL, source_key TEXT NOT NULL, client_key TEXT NOT NULL,
    action TEXT NOT NULL, status TEXT NOT NULL, draft_uid INTEGER,
    created_at REAL NOT NULL,
    PRIMARY KEY (account, source_key)
);
CREATE TABLE IF NOT EXISTS client_events (
    account TEXT NOT NULL, client_key TEXT NOT NULL, source_key TEXT NOT NULL,
    category TEXT, action TEXT NOT NULL, at REAL NOT NULL,
    PRIMARY KEY (account, source_key)
);
CREATE INDEX IF NOT EXISTS client_events_client ON client_events (account, client_key, at);
CREATE TABLE IF NOT EXISTS polls (
    account TEXT PRIMARY KEY, finished_at REAL, ok INTEGER, error TEXT,
    messages INTEGER NOT NULL DEFAULT 0
);
"""


@dataclass(frozen=True)
class AccountReport:
    account: str
    last_poll_at: float | None
    last_poll_ok: bool | None
    last_error: str | None
    messages_by_status: dict[str, int]
    alerts_by_category: dict[str, int]
    drafts_by_action: dict[str, int]
    clients_by_step: dict[str, int]


class StateError(OnplatformError):
    """The state file cannot be opened or written."""


@dataclass(frozen=True)
class FolderProgress:
    uidvalidity: int
    last_uid: int


@dataclass(frozen=True)
class ClientEvent:
    category: str | None
    action: str


class StateStore:
    def __init__(self, connection: sqlite3.Connection) -> None:
        self._db = connection

    @classmethod
    def open(cls, path: Path) -> StateStore:
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            # One poller owns a connection, but runs on whichever scheduler thread is free.
            connection = sqlite3.connect(
                path, timeout=30, isolation_level=None, check_same_thread=False
            )
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.execute("PRAGMA busy_timeout=30000")
            connection.executescript(_SCHEMA)
            connection.execute(
                "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )
        except (OSError, sqlite3.Error) as err:
            raise StateError(f"state.path: cannot open {path}: {err}") from err
        return cls(connection)

    def snapshot(self) -> StateStore:
        """An in-memory copy: a dry run works on it and leaves the file untouched."""
        memory = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        self._db.backup(memory)
        return StateStore(memory)

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # -- folders ------------------------------------------------------------
    def folder_progress(self, account: str, folder: str) -> FolderProgress | None:
        row = self._db.execute(
            "SELECT uidvalidity, last_uid FROM folders WHERE account=? AND folder=?",
            (account, folder),
        ).fetchone()
        return FolderProgress(row[0], row[1]) if row else None

    def set_folder_progress(self, account: str, folder: str, progress: FolderProgress) -> None:
        self._db.execute(
            "INSERT INTO folders VALUES (?, ?, ?, ?) ON CONFLICT (account, folder) "
            "DO UPDATE SET uidvalidity=excluded.uidvalidity, last_uid=excluded.last_uid",
            (account, folder, progress.uidvalidity, progress.last_uid),
        )

    # -- messages -----------------------------------------------------------
    def source_handled(self, account: str, source_key: str) -> bool:
        row = self._db.execute(
            "SELECT 1 FROM messages WHERE account=? AND source_key=? AND status='done' LIMIT 1",
            (account, source_key),
        ).fetchone()
        return row is not None

    def skipped_as_stale(self, account: str, source_key: str) -> bool:
        """Handled without a draft only because it was older than backfill_days."""
        row = self._db.execute(
            "SELECT 1 FROM messages WHERE account=? AND source_key=? AND reason=? LIMIT 1",
            (account, source_key, STALE_REASON),
        ).fetchone()
        return row is not None

    def record_message(
        self,
        account: str,
        folder: str,
        uidvalidity: int,
        uid: int,
        *,
        status: str,
        source_key: str | None = None,
        kind: str | None = None,
        category: str | None = None,
        action: str | None = None,
        reason: str | None = None,
    ) -> None:
        self._db.execute(
            "INSERT INTO messages (account, folder, uidvalidity, uid, source_key, status, kind, "
            "category, action, reason, attempts, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?) "
            "ON CONFLICT (account, folder, uidvalidity, uid) DO UPDATE SET "
            "source_key=excluded.source_key, status=excluded.status, kind=excluded.kind, "
            "category=excluded.category, action=excluded.action, reason=excluded.reason, "
            "updated_at=excluded.updated_at",
            (
                account,
                folder,
                uidvalidity,
                uid,
                source_key,
                status,
                kind,
                category,
                action,
                reason,
                time.time(),
            ),
        )

    def record_failure(
        self, account: str, folder: str, uidvalidity: int, uid: int, reason: str
    ) -> int:
        """Count one more failed attempt; returns the attempts so far."""
        self._db.execute(
            "INSERT INTO messages (account, folder, uidvalidity, uid, status, reason, attempts, "
            "updated_at) VALUES (?, ?, ?, ?, 'retry', ?, 1, ?) "
            "ON CONFLICT (account, folder, uidvalidity, uid) DO UPDATE SET "
            "attempts=attempts+1, reason=excluded.reason, updated_at=excluded.updated_at, "
            "status=CASE WHEN attempts+1 >= ? THEN 'parked' ELSE 'retry' END",
            (account, folder, uidvalidity, uid, reason, time.time(), MAX_ATTEMPTS),
        )
        row = self._db.execute(
            "SELECT attempts FROM messages WHERE account=? AND folder=? AND uidvalidity=? "
            "AND uid=?",
            (account, folder, uidvalidity, uid),
        ).fetchone()
        return int(row[0])

    def retry_uids(self, account: str, folder: str, uidvalidity: int) -> list[int]:
        rows = self._db.execute(
            "SELECT uid FROM messages WHERE account=? AND folder=? AND uidvalidity=? "
            "AND status='retry' ORDER BY uid",
            (account, folder, uidvalidity),
        ).fetchall()
        return [int(r[0]) for r in rows]

    # -- drafts and client history ----------------------------------------
    def draft_status(self, account: str, source_key: str) -> str | None:
        row = self._db.execute(
            "SELECT status FROM drafts WHERE account=? AND source_key=?", (account, source_key)
        ).fetchone()
        return str(row[0]) if row else None

    def mark_draft_pending(
        self, account: str, source_key: str, client_key: str, action: str
    ) -> None:
        """Written before APPEND: after a crash, the Drafts folder is searched first."""
        self._db.execute(
            "INSERT INTO drafts VALUES (?, ?, ?, ?, 'pending', NULL, ?) "
            "ON CONFLICT (account, source_key) DO NOTHING",
            (account, source_key, client_key, action, time.time()),
        )

    def mark_draft_done(self, account: str, source_key: str, draft_uid: int | None) -> None:
        self._db.execute(
            "UPDATE drafts SET status='done', draft_uid=? WHERE account=? AND source_key=?",
            (draft_uid, account, source_key),
        )

    def client_history(self, account: str, client_key: str) -> list[ClientEvent]:
        rows = self._db.execute(
            "SELECT category, action FROM client_events WHERE account=? AND client_key=? "
            "ORDER BY at, rowid",
            (account, client_key),
        ).fetchall()
        return [ClientEvent(r[0], r[1]) for r in rows]

    def add_client_event(
        self, account: str, client_key: str, source_key: str, category: str | None, action: str
    ) -> None:
        self._db.execute(
            # A replay never counts twice; a reply drafted later (backfill) replaces "none".
            "INSERT INTO client_events VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (account, source_key) DO UPDATE SET action=excluded.action "
            "WHERE client_events.action = 'none'",
            (account, client_key, source_key, category, action, time.time()),
        )

    # -- polls ---------------------------------------------------------------
    def record_poll(self, account: str, ok: bool, error: str | None, messages: int) -> None:
        self._db.execute(
            "INSERT INTO polls VALUES (?, ?, ?, ?, ?) ON CONFLICT (account) DO UPDATE SET "
            "finished_at=excluded.finished_at, ok=excluded.ok, error=excluded.error, "
            "messages=polls.messages+excluded.messages",
            (account, time.time(), int(ok), error, messages),
        )

    # -- reports ---------------------------------------------------------------
    def accounts(self) -> list[str]:
        rows = self._db.execute(
            "SELECT account FROM polls UNION SELECT account FROM messages ORDER BY 1"
        ).fetchall()
        return [str(r[0]) for r in rows]

    def report(self, account: str) -> AccountReport:
        poll = self._db.execute(
            "SELECT finished_at, ok, error FROM polls WHERE account=?", (account,)
        ).fetchone()

        def counts(sql: str) -> dict[str, int]:
            return {str(k): int(v) for k, v in self._db.execute(sql, (account,)).fetchall()}

        return AccountReport(
            account=account,
            last_poll_at=poll[0] if poll else None,
            last_poll_ok=bool(poll[1]) if poll else None,
            last_error=poll[2] if poll else None,
            messages_by_status=counts(
                "SELECT status, count(*) FROM messages WHERE account=? GROUP BY status"
            ),
            alerts_by_category=counts(
                "SELECT coalesce(category, 'unknown'), count(*) FROM client_events "
                "WHERE account=? GROUP BY 1"
            ),
            drafts_by_action=counts(
                "SELECT action, count(*) FROM drafts WHERE account=? AND status='done' "
                "GROUP BY action"
            ),
            # A client's step is the last action taken for them.
            clients_by_step=counts(
                "SELECT action, count(*) FROM (SELECT client_key, action, "
                "row_number() OVER (PARTITION BY client_key ORDER BY at DESC, rowid DESC) AS n "
                "FROM client_events WHERE account=? AND action != 'none') WHERE n = 1 "
                "GROUP BY action"
            ),
        )
