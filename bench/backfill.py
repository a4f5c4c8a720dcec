"""Backfill: one ``poll-once`` over N client notifications with an empty state.

N (default 10,000) notifications of ~3 KB, 30 % of them flagged by their text, are
written into INBOX of a private Dovecot; the real CLI runs once as a subprocess.
Side by side, on the same messages and in the same run:

(a) a bare imapclient ``UID FETCH BODY.PEEK[]`` of every message, 500 per command;
(b) ``mailparser.parse_from_bytes`` alone on the same bytes (in this process);
plus the product's own stages in this process (parse_notification, Analyzer.assess)
and a bare MULTIAPPEND of as many drafts, to show the floor of each step.

Run: ``.venv/bin/python -m bench.backfill [--messages 10000] [--profile 2000]``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from bench.common import (
    CliRun,
    Notifications,
    Row,
    Section,
    imap,
    load_maildir,
    notifications,
    private_dovecot,
    rate,
    run_cli,
    say,
    workdir,
    write_config,
)
from tests.support.dovecot import DovecotEndpoint, PrivateDovecot

TARGET_RATE = 1_500.0
FETCH_BATCH = 500
STAGE_SAMPLE = 3_000  # messages timed for (c) and (d); rates do not need all of them


def bare_fetch(endpoint: DovecotEndpoint, folder: str) -> tuple[float, list[bytes]]:
    """Seconds to fetch every message's BODY.PEEK[], FETCH_BATCH per command, and the bytes."""
    bodies: list[bytes] = []
    with imap(endpoint) as client:
        started = time.perf_counter()
        client.select_folder(folder, readonly=True)
        uids = sorted(client.search(["ALL"]))
        for start in range(0, len(uids), FETCH_BATCH):
            response = client.fetch(uids[start : start + FETCH_BATCH], ["BODY.PEEK[]"])
            bodies += [data[b"BODY[]"] for _uid, data in sorted(response.items())]
        return time.perf_counter() - started, bodies


def bare_parse(bodies: list[bytes]) -> float:
    import mailparser

    started = time.perf_counter()
    for raw in bodies:
        mailparser.parse_from_bytes(raw)
    return time.perf_counter() - started


def bare_stdlib_parse(bodies: list[bytes]) -> float:
    import email

    started = time.perf_counter()
    for raw in bodies:
        message = email.message_from_bytes(raw)
        for part in message.walk():
            if part.get_content_type() == "text/plain":
                part.get_payload(decode=True)
    return time.perf_counter() - started


def product_stages(bodies: list[bytes]) -> tuple[float, float, int]:
    """Seconds of parse_notification and of Analyzer.assess over the bytes, in this process."""
    from onplatform.config.schema import DetectorSettings
    from onplatform.daemon.notification import parse_notification
    from onplatform.daemon.pipeline import build_analyzer

    analyzer = build_analyzer(DetectorSettings())
    started = time.perf_counter()
    words = [parse_notification(raw).client_words for raw in bodies]
    parse_s = time.perf_counter() - started
    started = time.perf_counter()
    flagged = sum(analyzer.assess(text).flagged for text in words)
    return parse_s, time.perf_counter() - started, flagged


def bare_append(endpoint: DovecotEndpoint, count: int, chunk: int = 200) -> float:
    """Seconds to MULTIAPPEND `count` draft-sized messages into a scratch folder."""
    draft = (
        b"From: freelancer@example.test\r\nTo: room_1@upwork.com\r\nSubject: Re: hello\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n\r\n" + b"Thank you for reaching out.\r\n" * 40
    )
    with imap(endpoint) as client:
        client.create_folder("BenchAppend")
        started = time.perf_counter()
        for start in range(0, count, chunk):
            size = min(chunk, count - start)
            client.multiappend(
                "BenchAppend", [{"msg": draft, "flags": (b"\\Draft", b"\\Seen")}] * size
            )
        return time.perf_counter() - started


def poll_rows(run: CliRun, batch: Notifications, label: str) -> list[Row]:
    finished = run.require("poll.finished")
    count = len(batch.raws)
    e2e = rate(count, run.wall_s)
    in_poll = rate(int(finished["messages"]), int(finished["duration_ms"]) / 1000)
    return [
        Row(
            "backfill",
            f"{label}: msg/s end to end (process start to exit)",
            f"{e2e:,.0f} msg/s ({run.wall_s:.1f} s)",
            f"inside the poll (duration_ms): {in_poll:,.0f} msg/s",
            f">= {TARGET_RATE:,.0f} msg/s",
            e2e >= TARGET_RATE,
        ),
        Row(
            "backfill",
            f"{label}: poll.finished messages / alerts / drafts",
            f"{finished['messages']} / {finished['alerts']} / {finished['drafts']}",
            f"expected {count} / {batch.flagged} / {batch.flagged}",
        ),
        Row(
            "backfill",
            f"{label}: CPU of onplatform, peak RSS",
            f"{run.cpu_s:.1f} s CPU ({100 * run.cpu_s / run.wall_s:.0f} % of wall)",
            f"ru_maxrss {run.max_rss_kb / 1024:.0f} MB (wait4, workers included)",
        ),
    ]


def run(messages: int = 10_000, profile_messages: int = 2_000) -> list[Section]:
    say(f"backfill: generating {messages:,} notifications")
    batch = notifications(messages)
    section = Section(
        f"Backfill: one poll-once over {messages:,} notifications (~3 KB, 30 % flagged)"
    )
    sections = [section]
    with private_dovecot() as (server, endpoint), workdir("backfill") as work:
        started = time.perf_counter()
        load_maildir(server, "INBOX", batch.raws)
        load_s = time.perf_counter() - started
        config = write_config(work, endpoint)
        say(f"backfill: loaded in {load_s:.1f} s; running poll-once")
        result = run_cli(["poll-once", "--config", str(config)], work / "poll", timeout=1800)
        section.rows += poll_rows(result, batch, "poll-once")
        say("backfill: the same poll in one process (workers = 0)")
        alone_config = write_config(
            work,
            endpoint,
            state_name="alone.sqlite3",
            name="alone.toml",
            extra=("[detectors]", "workers = 0"),
        )
        alone = run_cli(["poll-once", "--config", str(alone_config)], work / "alone", timeout=1800)
        section.rows += poll_rows(alone, batch, "poll-once, workers = 0 (one process)")[:1]

        say("backfill: references")
        fetch_s, bodies = bare_fetch(endpoint, "INBOX")
        section.rows.append(
            Row(
                "backfill",
                "(a) bare imapclient UID FETCH BODY.PEEK[], 500/command",
                f"{rate(len(bodies), fetch_s):,.0f} msg/s",
                f"{len(bodies):,} messages in {fetch_s:.2f} s",
            )
        )
        parse_s = bare_parse(bodies)
        section.rows.append(
            Row(
                "backfill",
                "(b) mailparser.parse_from_bytes alone",
                f"{rate(len(bodies), parse_s):,.0f} msg/s",
                f"{parse_s:.2f} s for the same bytes, one core",
            )
        )
        stdlib_s = bare_stdlib_parse(bodies)
        section.rows.append(
            Row(
                "backfill",
                "(b') email.message_from_bytes (stdlib, compat32) alone",
                f"{rate(len(bodies), stdlib_s):,.0f} msg/s",
                f"{stdlib_s:.2f} s for the same bytes: the parser under mail-parser",
            )
        )
        sample = bodies[:STAGE_SAMPLE]
        notif_s, assess_s, flagged = product_stages(sample)
        section.rows += [
            Row(
                "backfill",
                "(c) parse_notification alone (mail-parser + client words)",
                f"{rate(len(sample), notif_s):,.0f} msg/s",
                f"{notif_s:.2f} s for the first {len(sample):,} messages",
            ),
            Row(
                "backfill",
                "(d) Analyzer.assess alone on the client words",
                f"{rate(len(sample), assess_s):,.0f} msg/s",
                f"{assess_s:.2f} s, {flagged:,} of {len(sample):,} flagged",
            ),
        ]
        # Scale the sampled stages to the whole mailbox for the sum below.
        scale = len(bodies) / max(1, len(sample))
        notif_s, assess_s = notif_s * scale, assess_s * scale
        drafts = int((result.event("poll.finished") or {}).get("drafts", 0)) or batch.flagged
        append_s = bare_append(endpoint, drafts)
        section.rows.append(
            Row(
                "backfill",
                f"(e) bare MULTIAPPEND of {drafts:,} drafts, 200/command",
                f"{rate(drafts, append_s):,.0f} drafts/s",
                f"{append_s:.2f} s",
            )
        )
        chain = fetch_s + notif_s + assess_s + append_s
        section.rows.append(
            Row(
                "backfill",
                "(a)+(c)+(d)+(e): the steps alone, one core",
                f"{rate(messages, chain):,.0f} msg/s",
                f"{chain:.1f} s vs poll-once {result.wall_s:.1f} s",
            )
        )
        section.notes += [
            f"mailbox loaded by writing Maildir files directly: {load_s:.1f} s for {messages:,} "
            f"messages, mean {batch.mean_bytes:,.0f} bytes; texts chosen by {batch.pools}",
            "config: plain IMAP on loopback, defaults otherwise (mail is dated today, so every "
            "flagged message gets its draft), JSON logs to a file",
        ]
        if profile_messages > 0:
            per_message_ms = result.wall_s / messages * 1000
            sections.append(profile(server, endpoint, work, profile_messages, per_message_ms))
    return sections


def profile(
    server: PrivateDovecot,
    endpoint: DovecotEndpoint,
    work: Path,
    messages: int,
    unprofiled_ms: float,
) -> Section:
    """Profile a poll-once over a separate folder of `messages` notifications."""
    from bench.profiling import breakdown

    batch = notifications(messages, tag="profile", first_room=5_000_000)
    with imap(endpoint) as client:
        client.create_folder("Profile")
    load_maildir(server, "Profile", batch.raws)
    say(f"backfill: profiling poll-once over {messages:,} messages")
    config = write_config(
        work / "profile", endpoint, folders=("Profile",), extra=("[detectors]", "workers = 0")
    )
    section = breakdown(config, work / "profile-out", messages)
    section.notes.append(
        f"unprofiled, the backfill's poll-once above took {unprofiled_ms:.2f} ms per message "
        "(process start included)"
    )
    return section


def main() -> None:
    parser = argparse.ArgumentParser(description="one poll-once over N client notifications")
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument(
        "--profile", type=int, default=2_000, help="messages in the profiled run (0: none)"
    )
    args = parser.parse_args()
    for section in run(args.messages, args.profile):
        section.print()


if __name__ == "__main__":
    main()
