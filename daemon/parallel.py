"""Parsing and assessment of a large batch spread over worker processes.

A first start on an old mailbox, or a backfill, hands thousands of messages to
one poll. Parsing and detection are pure CPU work in Python, so one process
uses one core; this module runs them in forked workers, which inherit the
analyzer already built (nothing is pickled but the mail going in and the
results coming out). Everything with side effects (IMAP, state, drafts, logs)
stays in the daemon's own process, so the exactly-one-draft guarantees do not
change. Small polls, the steady state, never start a worker.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace

from onplatform.daemon.errors import MessageError
from onplatform.daemon.language import detect_language
from onplatform.daemon.notification import Notification, parse_notification
from onplatform.daemon.pipeline import assess
from onplatform.detectors.analyzer import Analyzer, Assessment

MIN_BATCH = 200
"""Below this many messages, forking costs more than it saves."""
_CHUNK = 25
"""Messages per task: enough to amortise the round trip, small enough to balance."""


@dataclass(frozen=True)
class Parsed:
    """One message parsed and, when it came from a client or a phisher, assessed."""

    notification: Notification | None
    error: str | None = None
    """Why the mail could not be parsed (a MessageError's text)."""
    assessment: Assessment | None = None
    detector_errors: tuple[tuple[str, str], ...] = ()
    """(detector, exception type) for each detector that failed on this message."""
    language: str | None = None
    """The client's language when the message was flagged ("" when unsure), for its reply."""


def parse(raw: bytes) -> Parsed:
    """One message parsed, not assessed: the daemon assesses what it has not seen yet."""
    try:
        return Parsed(parse_notification(raw))
    except MessageError as err:
        return Parsed(None, error=str(err))


def parse_and_assess(analyzer: Analyzer, raw: bytes) -> Parsed:
    """What a worker does: parse, assess client and phishing mail, read a flagged
    client's language (a worker cannot know which messages the daemon has seen)."""
    parsed = parse(raw)
    notification = parsed.notification
    if notification is None or notification.kind in {"platform", "other"}:
        return parsed
    assessment = assess(analyzer, notification)
    # Only a flagged message gets a reply, and so needs its language.
    language = detect_language(notification.client_words, "") if assessment.flagged else None
    return Parsed(notification, assessment=assessment, language=language)


def default_workers() -> int:
    """The cores this process may run on: one worker each, none on a single core."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return cores if cores > 1 else 0


class AssessPool:
    """Worker processes for one large poll; ``close`` (or ``with``) ends them."""

    def __init__(self, analyzer: Analyzer, workers: int) -> None:
        self._executor = ProcessPoolExecutor(
            max_workers=workers,
            # fork: the workers share the built analyzer instead of rebuilding it (~1 s).
            mp_context=multiprocessing.get_context("fork"),
            initializer=_start_worker,
            initargs=(analyzer, os.getpid()),
        )
        _switch_interval.opened()

    def submit(self, raws: Sequence[bytes | None]) -> Iterator[Parsed | None]:
        """Start a batch; the iterator returned yields its results in order.

        ``None`` raws (unfetched messages) give ``None``. Once a worker has died the
        pool is broken, and iterating over a batch raises BrokenProcessPool, whether
        the batch was in flight or sent after: the caller then does it itself.
        """
        wanted = [raw for raw in raws if raw is not None]
        try:
            futures: list[Future[list[Parsed]]] = [
                self._executor.submit(_work, wanted[at : at + _CHUNK])
                for at in range(0, len(wanted), _CHUNK)
            ]
        except BrokenProcessPool as err:
            return _raising(err)
        return _results(raws, futures)

    def close(self) -> None:
        try:
            self._executor.shutdown(wait=True, cancel_futures=True)
        finally:
            _switch_interval.closed()

    def __enter__(self) -> AssessPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_SWITCH_INTERVAL_S = 0.0005
"""While workers run, the daemon's own threads hand over the GIL ten times as often.

The executor's two threads (pickling batches out, results in) keep the GIL busy; the
poll thread gives it up at every socket read and log write, and would otherwise wait
up to the default 5 ms to get it back each time (a convoy): measured, that stalled
the poll thread more than the workers sped it up."""


class _SwitchInterval:
    """The GIL switch interval, short while at least one pool is open (pools of several
    accounts overlap), back to what it was when the last one closes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open = 0
        self._default = sys.getswitchinterval()

    def opened(self) -> None:
        with self._lock:
            if self._open == 0:
                self._default = sys.getswitchinterval()
                sys.setswitchinterval(min(self._default, _SWITCH_INTERVAL_S))
            self._open += 1

    def closed(self) -> None:
        with self._lock:
            self._open -= 1
            if self._open == 0:
                sys.setswitchinterval(self._default)


_switch_interval = _SwitchInterval()


def _raising(error: BrokenProcessPool) -> Iterator[Parsed | None]:
    raise error
    yield  # a generator: the error is raised where the results are read


def _results(
    raws: Sequence[bytes | None], futures: Sequence[Future[list[Parsed]]]
) -> Iterator[Parsed | None]:
    chunks = (item for future in futures for item in future.result())
    for raw in raws:
        yield None if raw is None else next(chunks)


_worker_analyzer: list[Analyzer] = []
"""The analyzer of this worker process (empty in the daemon itself)."""
_failures: list[tuple[str, str]] = []


def _start_worker(analyzer: Analyzer, daemon_pid: int) -> None:
    # The daemon's handlers were inherited: a worker must just stop on SIGTERM, and
    # leave SIGINT (a terminal's Ctrl-C reaches the whole group) to the daemon.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    # Failures travel back as data: a forked child must not write to the daemon's log
    # (another thread of the daemon may have held a stream's lock at the fork).
    logging.disable(logging.CRITICAL)
    analyzer.on_failure = _record_failure
    _worker_analyzer[:] = [analyzer]
    threading.Thread(target=_exit_with, args=(daemon_pid,), daemon=True).start()


ORPHAN_CHECK_S = 1.0


def _exit_with(daemon_pid: int) -> None:
    """A worker outlives a daemon killed with SIGKILL (no time to close the pool; the
    workers' own pipe ends keep them waiting for tasks forever): it exits once the
    daemon is gone. Outside systemd nothing else would ever stop it."""
    while os.getppid() == daemon_pid:
        time.sleep(ORPHAN_CHECK_S)
    os._exit(0)


def _record_failure(detector: str, error: Exception) -> None:
    _failures.append((detector, type(error).__name__))


def _work(raws: Sequence[bytes]) -> list[Parsed]:
    (analyzer,) = _worker_analyzer
    results = []
    for raw in raws:
        _failures.clear()
        parsed = parse_and_assess(analyzer, raw)
        if _failures:
            parsed = replace(parsed, detector_errors=tuple(_failures))
        results.append(parsed)
    return results
