"""One poll of one account: read new Upwork mail, assess it, draft replies.

Guarantees: a folder is only ever selected read-only and bodies are fetched
with BODY.PEEK[]. Messages are handled in fetch batches: the drafts of a
batch are first recorded as pending, then appended in one MULTIAPPEND, then
committed together with the messages and the folder's progress. A crash
anywhere in between never yields a second draft: a pending draft is looked
up in Drafts by its marker header before anything is appended again.
"""

from __future__ import annotations

import datetime
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field

from onplatform.config.schema import AccountSettings
from onplatform.daemon import log as events
from onplatform.daemon.drafts import SOURCE_HEADER, Draft, DraftRenderer
from onplatform.daemon.errors import AuthenticationError, DraftError, MailboxError
from onplatform.daemon.language import detect_language
from onplatform.daemon.log import Logger
from onplatform.daemon.mailbox import ImapMailbox
from onplatform.daemon.notification import Notification
from onplatform.daemon.parallel import MIN_BATCH, AssessPool, Parsed, parse
from onplatform.daemon.pipeline import Verdict, assess, verdict_for
from onplatform.daemon.state import STALE_REASON, FolderProgress, StateStore
from onplatform.detectors.analyzer import Analyzer

Connector = Callable[[AccountSettings, str], ImapMailbox]
BACKOFF_BASE = 2.0
_BATCHES_AHEAD = 2
"""Batches handed to the workers before the oldest is finished: they never wait on the
daemon's own steps (drafts, APPEND, commit, the next FETCH)."""
BACKOFF_CAP = 600.0


def backoff_delay(failures: int) -> float:
    """Seconds to wait after ``failures`` failures in a row: doubling, capped, jittered.

    It starts at a few seconds whatever the poll interval, so a poll woken by
    IDLE after a dropped connection is not held back by a long wait.
    """
    ceiling = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** min(failures - 1, 20))
    # Full jitter keeps many daemons behind one provider from retrying in step.
    return random.uniform(ceiling / 2, ceiling)


@dataclass
class PollSummary:
    account: str
    messages: int = 0
    client_messages: int = 0
    alerts: int = 0
    drafts: int = 0
    skipped: int = 0
    failed: int = 0
    duration_ms: int = 0
    reconnects: int = 0
    by_category: dict[str, int] = field(default_factory=dict)

    def line(self) -> str:
        return (
            f"{self.account}: {self.messages} new, {self.alerts} alerts, "
            f"{self.drafts} drafts, {self.failed} failed"
        )


PollObserver = Callable[["AccountPoller", "PollSummary | None", "str | None"], None]


@dataclass(frozen=True)
class _Fetched:
    uid: int
    raw: bytes | None
    size: int


class AccountPoller:
    """Keeps one account's connection and runs its polls, one at a time."""

    def __init__(
        self,
        account: AccountSettings,
        password: Callable[[], str],
        state: StateStore,
        analyzer: Analyzer,
        renderer: DraftRenderer,
        connector: Connector,
        log: Logger,
        *,
        dry_run: bool = False,
        stop: threading.Event | None = None,
        workers: int = 0,
    ) -> None:
        self.account = account
        self._password = password
        self.state = state
        self.analyzer = analyzer
        self.renderer = renderer
        self._connector = connector
        self.log = log.bind(account=account.name)
        self.dry_run = dry_run
        self.workers = workers
        """Processes that parse and assess a large poll's mail; below 2, none."""
        self.stop = stop or threading.Event()
        self._mailbox: ImapMailbox | None = None
        self._drafts_folder: str | None = None
        self._last_error: str | None = None
        self._lock = threading.RLock()
        self._failures = 0
        self._reconnects = 0
        self._retry_at = 0.0
        self.observers: list[PollObserver] = []

    # -- connection -----------------------------------------------------------
    def _connected(self) -> ImapMailbox:
        dropped = False
        if self._mailbox is not None:
            try:
                self._mailbox.noop()
                return self._mailbox
            except MailboxError:
                # Providers drop idle connections at will: rebuild from scratch.
                self.disconnect()
                dropped = True
        self._mailbox = self._connector(self.account, self._password())
        if dropped:
            self._reconnects += 1
            self.log.info(events.MAILBOX_RECONNECTED, attempts=1)
        else:
            self.log.info(events.MAILBOX_CONNECTED, host=self.account.host)
        return self._mailbox

    def _ready_mailbox(self) -> ImapMailbox:
        """The live connection, with the Drafts folder found once per account."""
        mailbox = self._connected()
        if self._drafts_folder is None:
            self._drafts_folder = mailbox.find_drafts_folder(self.account.drafts_folder)
        return mailbox

    def connect_new(self) -> ImapMailbox:
        """A separate connection, for the IDLE watcher."""
        return self._connector(self.account, self._password())

    def wait_idle(self) -> None:
        """Returns once no poll of this account is running."""
        with self._lock:
            pass

    def close(self) -> None:
        """Release the connection and the state file; the poller is done."""
        self.disconnect()
        self.state.close()

    def disconnect(self) -> None:
        if self._mailbox is not None:
            self._mailbox.close()
        self._mailbox = None

    @property
    def from_address(self) -> str:
        if self.account.from_address:
            return self.account.from_address
        return (
            self.account.username
            if "@" in self.account.username
            else f"{self.account.username}@{self.account.host}"
        )

    # -- the poll -------------------------------------------------------------
    def poll(self) -> PollSummary:
        """One cycle over every watched folder; MailboxError propagates to the caller."""
        with self._lock:
            started = time.monotonic()
            summary = PollSummary(self.account.name)
            mailbox = self._ready_mailbox()
            for folder in self.account.folders:
                if self.stop.is_set():
                    break
                self._poll_folder(mailbox, folder, summary)
            summary.duration_ms = int((time.monotonic() - started) * 1000)
            # A dry run's state is an in-memory copy: its writes vanish with it.
            self.state.record_poll(self.account.name, True, None, summary.messages)
            self._last_error = None
            self.log.info(
                events.POLL_FINISHED,
                messages=summary.messages,
                client_messages=summary.client_messages,
                alerts=summary.alerts,
                drafts=summary.drafts,
                skipped=summary.skipped,
                failed=summary.failed,
                duration_ms=summary.duration_ms,
                dry_run=self.dry_run,
            )
            return summary

    def poll_safely(self, *, woken: bool = False) -> PollSummary | None:
        """The scheduler's entry point: nothing escapes, a broken account waits its turn.

        After a mailbox failure the account backs off exponentially, with
        jitter, up to ``BACKOFF_CAP``; the other accounts are not held up.
        A ``woken`` poll comes from the IDLE watcher, whose own connection to
        the server has just worked: it does not wait out the backoff, or mail
        that arrived while both connections were down would sit until the
        next scheduled poll.
        """
        # One lock over the attempt and its bookkeeping: the scheduler and the
        # IDLE watcher both call this, and neither may close or inherit the
        # connection while the other is polling on it.
        with self._lock:
            if not woken and time.monotonic() < self._retry_at:
                return None
            summary, error = self._attempt()
        for observer in self.observers:
            observer(self, summary, error)
        return summary

    def _attempt(self) -> tuple[PollSummary | None, str | None]:
        """One guarded poll: a summary, or the error that was logged and backed off."""
        try:
            summary = self._poll_with_one_retry()
        except MailboxError as err:
            self.disconnect()
            error = str(err)
            self._failures += 1
            delay = backoff_delay(self._failures)
            self._retry_at = time.monotonic() + delay
            self.state.record_poll(self.account.name, False, error, 0)
            # A refused login is said once per change, not at every poll.
            if not (isinstance(err, AuthenticationError) and error == self._last_error):
                self.log.error(
                    events.MAILBOX_ERROR,
                    error=error,
                    kind=type(err).__name__,
                    attempt=self._failures,
                    retry_in_s=round(delay, 1),
                )
            self._last_error = error
            return None, error
        except Exception as err:
            self.disconnect()
            error = type(err).__name__
            self.log.exception(events.POLL_FAILED, error=error)
            return None, error
        if self._failures:
            self._reconnects += 1
            self.log.info(events.MAILBOX_RECONNECTED, attempts=self._failures)
        summary.reconnects, self._reconnects = self._reconnects, 0
        self._failures = 0
        self._retry_at = 0.0
        return summary, None

    def _poll_with_one_retry(self) -> PollSummary:
        """A kept connection that the server dropped gets one fresh try at once."""
        reused = self._mailbox is not None
        try:
            return self.poll()
        except AuthenticationError:
            raise
        except MailboxError as err:
            if not reused or self.stop.is_set():
                raise
            self.disconnect()
            self.log.info(events.MAILBOX_DROPPED, error=str(err))
            return self.poll()

    def _poll_folder(self, mailbox: ImapMailbox, folder: str, summary: PollSummary) -> None:
        status = mailbox.select_readonly(folder)
        progress = self.state.folder_progress(self.account.name, folder)
        if progress is not None and progress.uidvalidity != status.uidvalidity:
            # The server renumbered the folder: rescan it; source keys prevent duplicates.
            self.log.warning(
                events.FOLDER_RESET,
                folder=folder,
                old=progress.uidvalidity,
                new=status.uidvalidity,
            )
            progress = None
        last_uid = progress.last_uid if progress else 0
        new_uids = mailbox.search_after(last_uid, self.account.sender_search)
        retry = [
            uid
            for uid in self.state.retry_uids(self.account.name, folder, status.uidvalidity)
            if uid <= last_uid
        ]
        cutoff = draft_cutoff(self.account.backfill_days)
        self._handle_uids(
            mailbox,
            folder,
            status.uidvalidity,
            sorted(set(new_uids) | set(retry)),
            summary,
            cutoff,
            advance=True,
        )

    def backfill(self, since: datetime.date, progress: Callable[[int, int], None]) -> PollSummary:
        """Sweep every watched folder from ``since``, drafting for that whole range."""
        with self._lock:
            started = time.monotonic()
            summary = PollSummary(self.account.name)
            mailbox = self._ready_mailbox()
            cutoff = datetime.datetime.combine(since, datetime.time(), datetime.UTC)
            for folder in self.account.folders:
                status = mailbox.select_readonly(folder)
                uids = mailbox.search_since(since, self.account.sender_search)
                self._handle_uids(
                    mailbox,
                    folder,
                    status.uidvalidity,
                    uids,
                    summary,
                    cutoff,
                    advance=False,
                    progress=progress,
                )
            summary.duration_ms = int((time.monotonic() - started) * 1000)
            return summary

    def _handle_uids(
        self,
        mailbox: ImapMailbox,
        folder: str,
        uidvalidity: int,
        uids: Sequence[int],
        summary: PollSummary,
        cutoff: datetime.datetime | None,
        *,
        advance: bool,
        progress: Callable[[int, int], None] | None = None,
    ) -> None:
        done = 0
        pool = self._pool_for(len(uids))
        # With workers, the next batches are parsed and assessed while this one is
        # judged, drafted and committed, and the one after it fetched.
        depth = _BATCHES_AHEAD if pool is not None else 0
        in_flight: deque[tuple[list[_Fetched], Iterator[Parsed | None] | None]] = deque()

        def finish_oldest() -> None:
            nonlocal done
            held, started = in_flight.popleft()
            results = self._parsed(held, started)
            self._handle_batch(
                mailbox, folder, uidvalidity, held, results, summary, cutoff, advance
            )
            done += len(held)
            if progress is not None:
                progress(done, len(uids))

        try:
            for batch in self._fetch(mailbox, uids):
                if self.stop.is_set():
                    return  # batches finished are committed; the rest waits for the next run
                in_flight.append((batch, pool.submit([f.raw for f in batch]) if pool else None))
                while len(in_flight) > depth:
                    finish_oldest()
            while in_flight and not self.stop.is_set():
                finish_oldest()
        finally:
            if pool is not None:
                pool.close()

    def _pool_for(self, count: int) -> AssessPool | None:
        if self.workers < 2 or count < MIN_BATCH:
            return None
        self.log.info(events.WORKERS_STARTED, workers=self.workers, messages=count)
        return AssessPool(self.analyzer, self.workers)

    def _parsed(
        self, batch: Sequence[_Fetched], started: Iterator[Parsed | None] | None
    ) -> list[Parsed | None]:
        """Each message parsed (and assessed) by the workers, else (or if one died)
        parsed here, and assessed later only if the daemon has not seen it yet."""
        if started is not None:
            try:
                results = list(started)
            except BrokenProcessPool:
                self.log.warning(events.WORKERS_FAILED, messages=len(batch))
            else:
                for parsed in results:
                    for detector, error in parsed.detector_errors if parsed else ():
                        self.log.error(events.DETECTOR_FAILED, detector=detector, error=error)
                return results
        return [None if f.raw is None else parse(f.raw) for f in batch]

    def _fetch(self, mailbox: ImapMailbox, uids: Sequence[int]) -> Iterator[list[_Fetched]]:
        batch_size = self.account.fetch_batch
        for start in range(0, len(uids), batch_size):
            batch = list(uids[start : start + batch_size])
            fetched = mailbox.fetch_bounded(batch, self.account.max_message_bytes)
            # A UID missing from the answer was expunged meanwhile.
            yield [
                _Fetched(uid, raw=fetched[uid][1], size=fetched[uid][0])
                for uid in batch
                if uid in fetched
            ]

    # -- one batch ------------------------------------------------------------
    def _handle_batch(
        self,
        mailbox: ImapMailbox,
        folder: str,
        uidvalidity: int,
        batch: Sequence[_Fetched],
        results: Sequence[Parsed | None],
        summary: PollSummary,
        cutoff: datetime.datetime | None,
        advance: bool,
    ) -> None:
        account = self.account.name
        history: dict[str, list[str]] = {}
        seen: set[str] = set()
        outcomes = [
            self._assess(fetched, parsed, folder, summary, cutoff, history, seen, not advance)
            for fetched, parsed in zip(batch, results, strict=True)
        ]
        summary.messages += len(batch)
        to_append = self._drafts_to_append([o for o in outcomes if o.draft is not None], mailbox)
        if to_append and not self.dry_run:
            assert self._drafts_folder is not None
            with self.state.transaction():
                for outcome in to_append:
                    assert outcome.draft is not None and outcome.notification is not None
                    self.state.mark_draft_pending(
                        account,
                        outcome.notification.source_key,
                        outcome.notification.client_key,
                        outcome.draft.action,
                    )
            uids = mailbox.append_drafts(
                self._drafts_folder, [o.draft.raw for o in to_append if o.draft is not None]
            )
            for outcome, draft_uid in zip(to_append, uids, strict=True):
                outcome.draft_uid = draft_uid
                outcome.log.info(
                    events.DRAFT_APPENDED,
                    action=outcome.verdict.action if outcome.verdict else None,
                    folder=self._drafts_folder,
                    draft_uid=draft_uid,
                    to=outcome.draft.to_address if outcome.draft else None,
                    language=outcome.draft.language if outcome.draft else None,
                )
            summary.drafts += len(to_append)
        elif to_append:
            for outcome in to_append:
                assert outcome.draft is not None
                outcome.log.info(
                    events.DRAFT_PLANNED,
                    action=outcome.draft.action,
                    to=outcome.draft.to_address,
                    language=outcome.draft.language,
                )
        with self.state.transaction():
            for outcome in outcomes:
                self._commit(outcome, folder, uidvalidity)
            if advance and batch:
                progress = self.state.folder_progress(account, folder)
                known = progress.last_uid if progress and progress.uidvalidity == uidvalidity else 0
                last = max(known, *(f.uid for f in batch))
                self.state.set_folder_progress(account, folder, FolderProgress(uidvalidity, last))

    def _drafts_to_append(self, wanted: list[_Outcome], mailbox: ImapMailbox) -> list[_Outcome]:
        """Drop drafts that already exist: recorded as done, or appended before a crash."""
        account = self.account.name
        statuses = {}
        for outcome in wanted:
            assert outcome.notification is not None
            key = outcome.notification.source_key
            statuses[key] = self.state.draft_status(account, key)
        pending = [key for key, status in statuses.items() if status == "pending"]
        found: set[str] = set()
        if pending:
            assert self._drafts_folder is not None
            # One look at the Drafts folder for the whole batch, not one per message.
            found = mailbox.markers_in(self._drafts_folder, SOURCE_HEADER) & set(pending)
        result = []
        for outcome in wanted:
            assert outcome.notification is not None
            key = outcome.notification.source_key
            if statuses[key] == "done":
                outcome.draft = None
            elif key in found:
                # Appended by a run that died before recording it.
                outcome.log.info(
                    events.DRAFT_FOUND, action=outcome.draft.action if outcome.draft else None
                )
                outcome.draft = None
                outcome.draft_found = True
            else:
                result.append(outcome)
        return result

    def _assess(
        self,
        fetched: _Fetched,
        parsed: Parsed | None,
        folder: str,
        summary: PollSummary,
        cutoff: datetime.datetime | None,
        history: dict[str, list[str]],
        seen: set[str],
        sweep: bool,
    ) -> _Outcome:
        """Classify, judge and render one parsed message; no writes, no IMAP."""
        account = self.account.name
        log = self.log.bind(folder=folder, uid=fetched.uid)
        if parsed is None:
            reason = (
                "too_large"
                if fetched.size > self.account.max_message_bytes
                else "empty_or_unfetchable"
            )
            log.warning(events.MESSAGE_PARKED, reason=reason, size=fetched.size)
            summary.skipped += 1
            return _Outcome(fetched.uid, log, status="parked", reason=reason)
        notification = parsed.notification
        if notification is None:
            summary.failed += 1
            return _Outcome(fetched.uid, log, status="failed", reason=parsed.error)
        if notification.defects:
            log.info(events.MESSAGE_DEFECTS, defects=list(notification.defects[:5]))
        outcome = _Outcome(fetched.uid, log, status="done", notification=notification)
        if notification.kind in {"platform", "other"}:
            log.debug(events.MESSAGE_SKIPPED, reason=f"{notification.kind}_mail")
            summary.skipped += 1
            return outcome
        key = notification.source_key
        handled = self.state.source_handled(account, key)
        if handled and sweep and self.state.skipped_as_stale(account, key):
            handled = False  # an explicit backfill drafts what was once too old
        if key in seen or handled:
            log.info(events.MESSAGE_SKIPPED, reason="already_handled")
            summary.skipped += 1
            outcome.duplicate = True
            return outcome
        seen.add(key)
        summary.client_messages += notification.kind == "client"
        client = notification.client_key
        earlier = [e.action for e in self.state.client_history(account, client)]
        earlier += history.get(client, [])
        assessment = parsed.assessment or assess(self.analyzer, notification)
        verdict = verdict_for(assessment, notification, earlier)
        outcome.verdict = verdict
        self._report(log, notification, verdict, summary)
        if verdict.action == "none":
            outcome.recorded_action = "none"
        elif cutoff is not None and notification.date is not None and notification.date < cutoff:
            # Old mail still raises its alert, but a reply to it would be stale.
            log.info(events.DRAFT_SKIPPED, reason=STALE_REASON, action=verdict.action)
            outcome.recorded_action = "none"
            outcome.reason = STALE_REASON
        else:
            try:
                outcome.draft = self._render(notification, verdict, parsed.language)
            except DraftError as err:
                summary.failed += 1
                log.error(events.DRAFT_FAILED, reason=str(err))
                return _Outcome(fetched.uid, log, status="failed", reason=str(err))
            outcome.recorded_action = verdict.action
        if verdict.assessment.flagged:
            history.setdefault(client, []).append(outcome.recorded_action)
        return outcome

    def _render(self, notification: Notification, verdict: Verdict, language: str | None) -> Draft:
        """The reply; ``language`` as the worker read it ("" unsure), None when not read yet."""
        default = self.renderer.settings.default_language
        if language is None:
            language = detect_language(notification.client_words, default)
        return self.renderer.build(
            notification, verdict.action, language or default, self.from_address
        )

    def _commit(self, outcome: _Outcome, folder: str, uidvalidity: int) -> None:
        account = self.account.name
        if outcome.status == "failed":
            attempts = self.state.record_failure(
                account, folder, uidvalidity, outcome.uid, outcome.reason or "failed"
            )
            outcome.log.error(events.MESSAGE_FAILED, reason=outcome.reason, attempts=attempts)
            return
        if outcome.status == "parked":
            self.state.record_message(
                account, folder, uidvalidity, outcome.uid, status="parked", reason=outcome.reason
            )
            return
        notification = outcome.notification
        assert notification is not None
        if outcome.duplicate:
            return
        verdict = outcome.verdict
        if outcome.draft is not None or outcome.draft_found:
            self.state.mark_draft_done(account, notification.source_key, outcome.draft_uid)
        if verdict is not None and verdict.assessment.flagged:
            self.state.add_client_event(
                account,
                notification.client_key,
                notification.source_key,
                verdict.assessment.category,
                outcome.recorded_action,
            )
        self.state.record_message(
            account,
            folder,
            uidvalidity,
            outcome.uid,
            status="done",
            source_key=notification.source_key,
            kind=notification.kind,
            category=verdict.assessment.category if verdict else None,
            action=outcome.recorded_action if verdict else None,
            reason=outcome.reason,
        )

    def _report(
        self, log: Logger, notification: Notification, verdict: Verdict, summary: PollSummary
    ) -> None:
        assessment = verdict.assessment
        log = log.bind(
            kind=notification.kind,
            category=assessment.category,
            score=assessment.score,
            action=verdict.action,
        )
        log.debug(events.MESSAGE_ASSESSED, flagged=assessment.flagged)
        if not assessment.flagged:
            return
        summary.alerts += 1
        category = assessment.category or "unknown"
        summary.by_category[category] = summary.by_category.get(category, 0) + 1
        counted = assessment.counted
        log.warning(
            events.ALERT_RAISED,
            client=notification.client_key,
            codes=list(dict.fromkeys(f.code for f in counted)),
            evidence=[f.excerpt(60) for f in counted[:4]],
            hesitant=assessment.hesitant,
            insisting=assessment.insisting,
        )


def draft_cutoff(backfill_days: int) -> datetime.datetime | None:
    """Mail written before this gets no draft; None when backfill_days is 0 (no limit)."""
    if backfill_days <= 0:
        return None
    return datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=backfill_days)


@dataclass
class _Outcome:
    """What became of one fetched message, gathered before the batch's commit."""

    uid: int
    log: Logger
    status: str
    reason: str | None = None
    notification: Notification | None = None
    verdict: Verdict | None = None
    draft: Draft | None = None
    draft_uid: int | None = None
    draft_found: bool = False
    duplicate: bool = False
    recorded_action: str = "none"
