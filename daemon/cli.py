"""The ``onplatform`` command line."""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

from onplatform.config.schema import DEFAULT_CONFIG_PATH, DetectorSettings, Settings, load_config
from onplatform.daemon import log as events
from onplatform.daemon.credentials import read_password, world_readable
from onplatform.daemon.drafts import DraftRenderer
from onplatform.daemon.errors import (
    AuthenticationError,
    ConfigError,
    MailboxError,
    MessageError,
    OnplatformError,
)
from onplatform.daemon.log import configure, get_logger
from onplatform.daemon.mailbox import connect
from onplatform.daemon.metrics import Metrics, MetricsServer
from onplatform.daemon.notification import parse_notification
from onplatform.daemon.parallel import default_workers
from onplatform.daemon.pipeline import Verdict, build_analyzer, judge
from onplatform.daemon.policy import respond
from onplatform.daemon.poller import AccountPoller
from onplatform.daemon.scheduler import Daemon
from onplatform.daemon.state import AccountReport, StateStore
from onplatform.detectors.analyzer import MODEL_ALONE_MAX_WORDS, Analyzer, Assessment
from onplatform.detectors.evaluation import CorpusError, evaluate, format_report, read_corpus
from onplatform.detectors.normalize import normalize

EX_OK, EX_FAILURE, EX_USAGE, EX_NOPERM, EX_TEMPFAIL = 0, 1, 64, 77, 75


def _config_path(arg: str | None) -> Path:
    return Path(arg or os.environ.get("ONPLATFORM_CONFIG") or DEFAULT_CONFIG_PATH)


def _fail(message: str, code: int) -> int:
    print(f"onplatform: error: {message}", file=sys.stderr)
    return code


def _mailbox_failure(err: MailboxError) -> int:
    """One line on stderr; a refused login and an unreachable server exit differently."""
    return _fail(str(err), EX_NOPERM if isinstance(err, AuthenticationError) else EX_TEMPFAIL)


def _settings(args: argparse.Namespace) -> Settings:
    settings = load_config(_config_path(args.config))
    configure(settings.logging.level, settings.logging.format)
    return settings


def _pollers(settings: Settings, dry_run: bool) -> list[AccountPoller]:
    """One poller per account, each with its own connection to the state file.

    Polls run on the scheduler's worker threads; SQLite (WAL, busy timeout)
    arbitrates between accounts. A dry run works on an in-memory copy.
    """
    log = get_logger()
    gc.unfreeze()  # a reload: the previous analyzer becomes collectable again
    analyzer = build_analyzer(settings.detectors, log)
    # Where the matcher came from says why a start took ten seconds (a new build) or not.
    loaded = analyzer.lexicon.loaded
    log.info(events.MATCHER_LOADED, origin=loaded.origin, seconds=loaded.seconds)
    renderer = DraftRenderer(settings.drafts)
    # The analyzer is some 180,000 objects that live as long as the process: left to
    # the cyclic collector, every full collection walks them (about 75 ms each), and
    # in forked workers the walk would copy every page they share with the daemon.
    gc.collect()
    gc.freeze()
    if settings.source is not None and world_readable(settings.source):
        log.warning(events.CONFIG_WARNING, problem=f"{settings.source} is readable by others")
    configured = settings.detectors.workers
    workers = default_workers() if configured is None else configured
    pollers = []
    for index, account in enumerate(settings.accounts):

        def password(account: Any = account, index: int = index) -> str:
            return read_password(
                account, index, warn=lambda w: log.warning(events.CONFIG_WARNING, problem=w)
            )

        store = StateStore.open(settings.state.path)
        state = store.snapshot() if dry_run else store
        pollers.append(
            AccountPoller(
                account,
                password,
                state,
                analyzer,
                renderer,
                connect,
                log,
                dry_run=dry_run,
                workers=workers,
            )
        )
    return pollers


def cmd_run(args: argparse.Namespace) -> int:
    settings = _settings(args)
    first = [settings]

    def build() -> list[AccountPoller]:
        # The first call uses the settings already read; SIGHUP reads the file again.
        if first:
            fresh = first.pop()
        else:
            fresh = load_config(_config_path(args.config))
            _apply_on_reload(settings, fresh)
        return _pollers(fresh, fresh.dry_run)

    metrics: Metrics | None = None
    server: MetricsServer | None = None
    if settings.metrics.listen:
        metrics = Metrics()
        try:
            server = MetricsServer(metrics, settings.metrics.listen)
        except OSError as err:
            raise ConfigError(
                f"metrics.listen: cannot listen on {settings.metrics.listen}: {err.strerror or err}"
            ) from err
        server.start()
    try:
        return Daemon(build, get_logger(), metrics=metrics).run()
    finally:
        if server is not None:
            server.stop()


def _apply_on_reload(running: Settings, fresh: Settings) -> None:
    """What a reload can change beyond the pollers: the log level and format apply to
    every logger bound from now on; the metrics listener is bound once, so a changed
    address is reported rather than silently ignored."""
    configure(fresh.logging.level, fresh.logging.format)
    if fresh.metrics.listen != running.metrics.listen:
        get_logger().warning(
            events.CONFIG_WARNING,
            problem="metrics.listen changed: the old address stays until a restart",
        )


def cmd_poll_once(args: argparse.Namespace) -> int:
    settings = _settings(args)
    dry_run = args.dry_run or settings.dry_run
    code = EX_OK
    for poller in _pollers(settings, dry_run):
        try:
            poller.poll()
        except MailboxError as err:
            code = _mailbox_failure(err)
        finally:
            poller.close()
    return code


class ProgressBar:
    """A one-line bar on a terminal; silent when stderr is a file or the journal."""

    def __init__(self, label: str, out: TextIO) -> None:
        self.label = label
        self.out = out
        self.enabled = out.isatty()

    def update(self, done: int, total: int) -> None:
        if not self.enabled or total <= 0:
            return
        width = 30
        filled = int(width * done / total)
        self.out.write(f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
        self.out.flush()

    def finish(self) -> None:
        if self.enabled:
            self.out.write("\n")


def cmd_backfill(args: argparse.Namespace) -> int:
    try:
        since = datetime.date.fromisoformat(args.since)
    except ValueError:
        return _fail(f"--since: expected a date like 2026-01-31, got {args.since!r}", EX_USAGE)
    settings = _settings(args)
    code = EX_OK
    for poller in _pollers(settings, args.dry_run or settings.dry_run):
        bar = ProgressBar(poller.account.name, sys.stderr)
        try:
            summary = poller.backfill(since, bar.update)
            bar.finish()
            print(
                f"{summary.line()} since {since.isoformat()} in {summary.duration_ms} ms",
                file=sys.stderr,
            )
        except MailboxError as err:
            code = _mailbox_failure(err)
        finally:
            poller.close()
    return code


def cmd_check_config(args: argparse.Namespace) -> int:
    settings = load_config(_config_path(args.config))
    build_analyzer(settings.detectors)
    DraftRenderer(settings.drafts)
    for index, account in enumerate(settings.accounts):
        read_password(account, index, warn=lambda w: print(f"warning: {w}", file=sys.stderr))
    names = ", ".join(a.name for a in settings.accounts)
    print(f"{settings.source}: OK ({len(settings.accounts)} account(s): {names})")
    return EX_OK


def cmd_folders(args: argparse.Namespace) -> int:
    settings = _settings(args)
    code = EX_OK
    for index, account in enumerate(settings.accounts):
        if args.account and account.name != args.account:
            continue
        try:
            mailbox = connect(account, read_password(account, index))
        except MailboxError as err:
            code = _fail(str(err), EX_TEMPFAIL)
            continue
        try:
            for folder in mailbox.list_folders():
                flags = " ".join(f for f in folder.flags if f.startswith("\\"))
                print(f"{account.name}\t{folder.name}\t{flags}")
        finally:
            mailbox.close()
    return code


def cmd_status(args: argparse.Namespace) -> int:
    settings = load_config(_config_path(args.config))
    if not settings.state.path.exists():
        print(f"no state yet at {settings.state.path}: the daemon has not polled")
        return EX_OK
    store = StateStore.open(settings.state.path)
    try:
        names = list(dict.fromkeys([a.name for a in settings.accounts] + store.accounts()))
        for name in names:
            print(format_status(store.report(name)))
    finally:
        store.close()
    return EX_OK


def format_status(report: AccountReport) -> str:
    def listing(counts: dict[str, int]) -> str:
        return ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"

    if report.last_poll_at is None:
        last = "never"
    else:
        when = datetime.datetime.fromtimestamp(report.last_poll_at, datetime.UTC)
        last = f"{when:%Y-%m-%d %H:%M:%S} UTC ({'ok' if report.last_poll_ok else 'failed'})"
    handled = sum(report.messages_by_status.values())
    return "\n".join(
        [
            f"account {report.account}",
            f"  last poll:          {last}",
            f"  last error:         {report.last_error or 'none'}",
            f"  messages handled:   {handled} ({listing(report.messages_by_status)})",
            f"  alerts by category: {listing(report.alerts_by_category)}",
            f"  drafts by action:   {listing(report.drafts_by_action)}",
            f"  clients by step:    {listing(report.clients_by_step)}",
        ]
    )


# -- scan ------------------------------------------------------------------------
def _scan_analyzer(args: argparse.Namespace) -> Analyzer:
    configure("warning", "json", sys.stderr)
    path = _config_path(args.config)
    if args.config or os.environ.get("ONPLATFORM_CONFIG") or path.exists():
        return build_analyzer(load_config(path).detectors)
    return build_analyzer(DetectorSettings())


def _scan_inputs(args: argparse.Namespace) -> Iterator[dict[str, Any]]:
    if args.stdin_jsonl:
        for number, line in enumerate(sys.stdin, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                if not isinstance(record, dict) or not isinstance(record.get("text"), str):
                    raise ValueError("needs an object with a string `text`")
            except ValueError as err:
                yield {"id": None, "error": f"stdin line {number}: {err}"}
                continue
            client = record.get("client")
            yield {
                "id": record.get("id"),
                "text": record["text"],
                "client": str(client) if client is not None else None,
            }
        return
    for name in args.files:
        try:
            raw = Path(name).read_bytes()
            notification = parse_notification(raw)
        except OSError as err:
            yield {"id": name, "error": f"{name}: {err.strerror or err}"}
            continue
        except MessageError as err:
            yield {"id": name, "error": f"{name}: {err}"}
            continue
        yield {
            "id": name,
            "notification": notification,
            "client": notification.client_key if notification.kind == "client" else None,
        }


def _finding_json(assessment: Assessment) -> list[dict[str, Any]]:
    return [
        {
            "detector": f.detector,
            "code": f.code,
            "category": f.category,
            "score": f.score,
            "evidence": f.excerpt(120),
        }
        for f in assessment.findings
    ]


def _verdict_json(item_id: Any, verdict: Verdict) -> dict[str, Any]:
    assessment = verdict.assessment
    return {
        "id": item_id,
        "flagged": assessment.flagged,
        "category": assessment.category,
        "score": round(assessment.score, 3),
        "action": verdict.action,
        "findings": _finding_json(assessment),
    }


def _explain(out: TextIO, item_id: Any, text: str, verdict: Verdict) -> None:
    assessment = verdict.assessment
    out.write(f"== {item_id}\n")
    out.write(f"normalised: {normalize(text).normalized}\n")
    out.write(
        f"verdict: flagged={assessment.flagged} category={assessment.category} "
        f"score={assessment.score:.3f} action={verdict.action} "
        f"hesitant={assessment.hesitant} insisting={assessment.insisting}\n"
    )
    if assessment.model_score is not None:
        out.write(
            f"blend: rules {assessment.rules_score:.3f}, model {assessment.model_score:.3f}"
            f" -> {assessment.score:.3f}\n"
        )
        if assessment.model_withheld:
            out.write(
                f"  the model alone flags no text over {MODEL_ALONE_MAX_WORDS} words"
                " that no rule found anything in\n"
            )
    for finding in assessment.findings:
        out.write(
            f"  - {finding.detector}/{finding.code} [{finding.category}] "
            f"base {finding.base_score:.2f} -> {finding.score:.2f}\n"
        )
        for span in finding.evidence:
            out.write(f"      evidence [{span.start}:{span.end}] {span.text!r}\n")
        for adjustment in finding.adjustments:
            out.write(f"      {adjustment.delta:+.2f} {adjustment.reason}\n")
    out.write("\n")


def cmd_scan(args: argparse.Namespace) -> int:
    if not args.stdin_jsonl and not args.files:
        return _fail("scan: name .eml files or use --stdin-jsonl", EX_FAILURE)
    analyzer = _scan_analyzer(args)
    history: dict[str, list[str]] = {}
    code = EX_OK
    for item in _scan_inputs(args):
        if "error" in item:
            print(
                json.dumps(
                    {
                        "id": item["id"],
                        "flagged": False,
                        "category": None,
                        "score": 0,
                        "action": "none",
                        "findings": [],
                        "error": item["error"],
                    }
                )
            )
            code = EX_FAILURE
            continue
        client = item.get("client")
        earlier = history.setdefault(client, []) if client else []
        notification = item.get("notification")
        if notification is not None:
            text = notification.client_words
            verdict = judge(analyzer, notification, earlier)
            if notification.kind in {"platform", "other"}:
                verdict = Verdict(verdict.assessment, "none")
        else:
            text = item["text"]
            verdict = Verdict(*respond(analyzer.assess(text), earlier))
        if client and verdict.assessment.flagged:
            earlier.append(verdict.action)
        if args.explain:
            _explain(sys.stdout, item["id"], text, verdict)
        else:
            print(json.dumps(_verdict_json(item["id"], verdict), ensure_ascii=False))
        sys.stdout.flush()
    return code


def cmd_eval(args: argparse.Namespace) -> int:
    analyzer = _scan_analyzer(args)
    try:
        records = read_corpus(Path(args.corpus))
    except CorpusError as err:
        return _fail(str(err), EX_FAILURE)
    report = evaluate(analyzer, records)
    print(format_report(report, max_misses=args.misses))
    return EX_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="onplatform", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def with_config(name: str, help_text: str) -> argparse.ArgumentParser:
        command = sub.add_parser(name, help=help_text)
        command.add_argument(
            "--config",
            help=f"config file (default: $ONPLATFORM_CONFIG, then {DEFAULT_CONFIG_PATH})",
        )
        return command

    with_config("run", "run the daemon").set_defaults(handler=cmd_run)
    poll = with_config("poll-once", "one poll of every account, then exit")
    poll.add_argument(
        "--dry-run", action="store_true", help="log what would be drafted, change nothing"
    )
    poll.set_defaults(handler=cmd_poll_once)
    backfill = with_config("backfill", "sweep mail since a date, drafting for that whole range")
    backfill.add_argument("--since", required=True, help="first day to sweep (YYYY-MM-DD)")
    backfill.add_argument("--dry-run", action="store_true", help="change nothing")
    backfill.set_defaults(handler=cmd_backfill)
    with_config("check-config", "validate the config and read the passwords").set_defaults(
        handler=cmd_check_config
    )
    with_config(
        "status", "per account: last poll, errors, alerts, drafts, escalation steps"
    ).set_defaults(handler=cmd_status)
    folders = with_config("folders", "list the server's folders with SPECIAL-USE flags")
    folders.add_argument("--account", help="only this account")
    folders.set_defaults(handler=cmd_folders)
    scan = with_config("scan", "assess .eml files or JSON lines, print one JSON line each")
    scan.add_argument("files", nargs="*", help=".eml files")
    scan.add_argument(
        "--stdin-jsonl",
        action="store_true",
        help="read JSON lines with id, text and optional client from stdin",
    )
    scan.add_argument(
        "--explain",
        action="store_true",
        help="print the normalised text, evidence and score adjustments",
    )
    scan.set_defaults(handler=cmd_scan)
    evaluation = with_config(
        "eval", "precision, recall and F1 of the detectors on a labelled JSONL corpus"
    )
    evaluation.add_argument("corpus", help="JSON lines with id, text, label, optional language")
    evaluation.add_argument("--misses", type=int, default=50, help="how many misses to list")
    evaluation.set_defaults(handler=cmd_eval)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.handler(args)
    except ConfigError as err:
        return _fail(str(err), ConfigError.exit_code)
    except OnplatformError as err:
        return _fail(str(err), EX_FAILURE)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`onplatform eval ... | head`): stop quietly, and keep the
        # interpreter from failing again when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EX_FAILURE
    return code


if __name__ == "__main__":
    sys.exit(main())
