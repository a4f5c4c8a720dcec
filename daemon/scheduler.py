"""The daemon: one APScheduler job per account, a clean stop, a safe reload.

``max_instances=1`` and coalescing mean a slow poll is never run twice at
once nor queued up. SIGTERM lets the message in hand finish, then exits 0.
SIGHUP reads the config again; if the new one is bad, the old one stays and
the reason is logged.
"""

from __future__ import annotations

import datetime
import signal
import threading
from collections.abc import Callable, Sequence
from types import FrameType

from apscheduler.schedulers.background import BackgroundScheduler

from onplatform.daemon import log as events
from onplatform.daemon.errors import OnplatformError
from onplatform.daemon.idle import IdleWatcher
from onplatform.daemon.log import Logger
from onplatform.daemon.metrics import Metrics
from onplatform.daemon.poller import AccountPoller, PollSummary
from onplatform.daemon.systemd import Notifier

PollerFactory = Callable[[], Sequence[AccountPoller]]


class Daemon:
    def __init__(
        self,
        build: PollerFactory,
        log: Logger,
        notifier: Notifier | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self._build = build
        self.log = log
        self.notifier = notifier or Notifier()
        self.metrics = metrics
        self.pollers: list[AccountPoller] = list(build())
        self._stopping = threading.Event()
        self._reload = threading.Event()
        self._wake = threading.Event()
        self._scheduler = BackgroundScheduler(timezone="UTC")
        self._watchers: list[IdleWatcher] = []

    # -- signals --------------------------------------------------------------
    def _on_term(self, signum: int, _frame: FrameType | None) -> None:
        self._stopping.set()
        for poller in self.pollers:
            poller.stop.set()  # the poll in hand ends after its current message
        self._wake.set()

    def _on_hup(self, _signum: int, _frame: FrameType | None) -> None:
        self._reload.set()
        self._wake.set()

    # -- jobs -----------------------------------------------------------------
    def _observe(
        self, poller: AccountPoller, summary: PollSummary | None, error: str | None
    ) -> None:
        if summary is not None:
            line = f"last poll: {summary.line()}"
            self.notifier.ready(line)
            self.notifier.watchdog(line)
        elif error is not None:
            self.notifier.status(f"{poller.account.name}: {error}"[:200])

    def _schedule(self) -> None:
        now = datetime.datetime.now(datetime.UTC)
        for poller in self.pollers:
            poller.observers.append(self._observe)
            if self.metrics is not None:
                poller.observers.append(self.metrics.observe)
            self._scheduler.add_job(
                poller.poll_safely,
                "interval",
                seconds=poller.account.poll_interval,
                id=f"poll:{poller.account.name}",
                max_instances=1,
                coalesce=True,
                misfire_grace_time=max(1, int(poller.account.poll_interval)),
                next_run_time=now,
            )

        self._watchers = [IdleWatcher(p) for p in self.pollers if p.account.idle]
        for watcher in self._watchers:
            watcher.start()

    def _stop_watchers(self) -> None:
        for watcher in self._watchers:
            watcher.stop()
        for watcher in self._watchers:
            watcher.join(timeout=5)
        self._watchers = []

    def _unschedule(self) -> None:
        self._stop_watchers()
        self._scheduler.remove_all_jobs()
        for poller in self.pollers:
            poller.stop.set()
        for poller in self.pollers:
            poller.wait_idle()
            poller.close()

    def _reload_config(self) -> None:
        try:
            fresh = list(self._build())
        except OnplatformError as err:
            self.log.error(events.CONFIG_RELOAD_FAILED, error=str(err))
            return
        self._unschedule()
        self.pollers = fresh
        self._schedule()
        self.log.info(events.CONFIG_RELOADED, accounts=[p.account.name for p in fresh])

    def run(self) -> int:
        """Blocks until SIGTERM or SIGINT; returns the exit status."""
        signal.signal(signal.SIGTERM, self._on_term)
        signal.signal(signal.SIGINT, self._on_term)
        signal.signal(signal.SIGHUP, self._on_hup)
        self._schedule()
        self._scheduler.start()
        self.log.info(events.DAEMON_STARTED, accounts=[p.account.name for p in self.pollers])
        while not self._stopping.is_set():
            self._wake.wait()
            self._wake.clear()
            if self._reload.is_set() and not self._stopping.is_set():
                self._reload.clear()
                self._reload_config()
        self.log.info(events.DAEMON_STOPPING)
        self.notifier.stopping()
        self._stop_watchers()
        self._scheduler.shutdown(wait=True)
        for poller in self.pollers:
            poller.close()
        self.log.info(events.DAEMON_STOPPED)
        return 0
