"""IMAP IDLE for accounts that ask for it: new mail is handled about a second after arrival.

The watcher keeps its own connection, separate from the poller's, and only
wakes the poller: the poll reconciles by UID range, since IDLE can miss
mail. IDLE is restarted every ``idle_restart`` seconds, with a poll each
time; a dead socket is detected and rebuilt with backoff.
"""

from __future__ import annotations

import threading
import time

from onplatform.daemon import log as events
from onplatform.daemon.errors import MailboxError
from onplatform.daemon.mailbox import ImapMailbox
from onplatform.daemon.poller import AccountPoller, backoff_delay

IDLE_SLICE = 60.0
"""Longest single idle_check: bounds how long a stop request can wait."""


class IdleWatcher(threading.Thread):
    def __init__(self, poller: AccountPoller) -> None:
        super().__init__(name=f"idle:{poller.account.name}", daemon=True)
        self.poller = poller
        self.stop_requested = threading.Event()
        self.log = poller.log.bind(idle=True)
        self._mailbox: ImapMailbox | None = None
        self._poll_due = True
        """Poll inside the next IDLE: at start, after a wake, after a restart."""

    def stop(self) -> None:
        self.stop_requested.set()

    def run(self) -> None:
        failures = 0
        while not self.stop_requested.is_set():
            try:
                self._watch()
                failures = 0
            except MailboxError as err:
                failures += 1
                delay = backoff_delay(failures)
                self.log.warning(
                    events.MAILBOX_ERROR,
                    error=str(err),
                    attempt=failures,
                    retry_in_s=round(delay, 1),
                )
                self._close()
                self.stop_requested.wait(delay)
            except Exception as err:  # the thread must not die silently
                failures += 1
                self.log.exception(events.POLL_FAILED, error=type(err).__name__)
                self._close()
                self.stop_requested.wait(backoff_delay(failures))
        self._close()

    def _woken_poll(self) -> None:
        self.poller.poll_safely(woken=True)

    def _close(self) -> None:
        if self._mailbox is not None:
            self._mailbox.close()
            self._mailbox = None

    def _watch(self) -> None:
        account = self.poller.account
        if self._mailbox is None:
            self._mailbox = self.poller.connect_new()
            self._mailbox.select_readonly(account.folders[0])
            self.log.info(events.IDLE_STARTED, folder=account.folders[0])
            # Mail that came while the connection was down raised no IDLE event.
            self._poll_due = True
        cycle_started = time.monotonic()
        while not self.stop_requested.is_set():
            left = account.idle_restart - (time.monotonic() - cycle_started)
            if left <= 0:
                break
            # The poll runs once IDLE has begun on this connection: mail arriving
            # after its SEARCH still wakes the next wait, instead of slipping in
            # between the poll and the IDLE command.
            poll = self._woken_poll if self._poll_due else None
            self._poll_due = self._mailbox.idle_wait(min(IDLE_SLICE, left), poll)
        # Restarting IDLE: check that the connection lives, and reconcile by UID
        # inside the next IDLE.
        self._mailbox.noop()
        self._poll_due = True
