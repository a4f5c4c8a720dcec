"""The daemon: one APScheduler job per account, a clean stop on SIGTERM.

``max_instances=1`` and coalescing mean a slow poll is never run twice at
once nor queued up; SIGTERM lets the message in hand finish, then exits.
"""

from __future__ import annotations

import datetime
import signal
import threading
from collections.abc import Sequence
from types import FrameType

from apscheduler.schedulers.background import BackgroundScheduler

from onplatform.daemon import log as events
from onplatform.daemon.log import Logger
from onplatform.daemon.poller import AccountPoller


class Daemon:
    def __init__(self, pollers: Sequence[AccountPoller], log: Logger) -> None:
        self.pollers = list(pollers)
        self.log = log
        self.stop = threading.Event()
        self._scheduler = BackgroundScheduler(timezone="UTC")

    def _on_term(self, signum: int, _frame: FrameType | None) -> None:
        self.log.info(events.DAEMON_STOPPING, signal=signal.Signals(signum).name)
        self.stop.set()
        for poller in self.pollers:
            poller.stop.set()

    def schedule(self) -> None:
        for poller in self.pollers:
            self._scheduler.add_job(
                poller.poll_safely,
                "interval",
                seconds=poller.account.poll_interval,
                id=f"poll:{poller.account.name}",
                max_instances=1,
                coalesce=True,
                misfire_grace_time=max(1, int(poller.account.poll_interval)),
                next_run_time=_now(),
            )

    def run(self) -> int:
        """Blocks until SIGTERM or SIGINT; returns the exit status."""
        signal.signal(signal.SIGTERM, self._on_term)
        signal.signal(signal.SIGINT, self._on_term)
        self.schedule()
        self._scheduler.start()
        self.log.info(events.DAEMON_STARTED, accounts=[p.account.name for p in self.pollers])
        self.stop.wait()
        self._scheduler.shutdown(wait=True)
        for poller in self.pollers:
            poller.disconnect()
        self.log.info(events.DAEMON_STOPPED)
        return 0


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)
