"""Idle cost: what one poll that finds nothing new costs, with a small and a big folder.

The daemon (``onplatform run``, poll_interval 1 s) talks to Dovecot through a
loopback relay that parses the client's byte stream into IMAP commands (literals
skipped), so every command the product sends is counted whatever library sends
it. After the first poll has dealt with the backlog, each following poll is idle;
per poll we take the commands sent, the bytes received, the poll's duration_ms,
the daemon's CPU (/proc/PID/stat) and the CPU of Dovecot's imap processes.

Run: ``.venv/bin/python -m bench.idle_cost [--polls 10] [--big 100000]``.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench.common import (
    Event,
    Row,
    Section,
    children_named,
    command_counter,
    daemon,
    haystack,
    imap,
    load_maildir,
    notifications,
    private_dovecot,
    proc_cpu_s,
    say,
    workdir,
    write_config,
)
from tests.support.dovecot import DovecotEndpoint, PrivateDovecot

TARGET_COMMANDS = 3


@dataclass
class Snapshot:
    commands: int
    server_bytes: int
    daemon_cpu_s: float
    imap_cpu_s: float
    duration_ms: int


@dataclass
class IdleResult:
    label: str
    messages: int
    needles: int
    polls: int
    commands: list[int] = field(default_factory=list)
    server_bytes: list[int] = field(default_factory=list)
    wall_ms: list[int] = field(default_factory=list)
    daemon_cpu_ms: float = 0.0
    imap_cpu_ms: float = 0.0
    names: list[str] = field(default_factory=list)
    server_ms: dict[str, list[float]] = field(default_factory=dict)
    bare_ms: dict[str, float] = field(default_factory=dict)
    backlog_s: float = 0.0


def _imap_cpu(server: PrivateDovecot) -> float:
    master = server.master_pid()
    if master is None:
        return 0.0
    total = 0.0
    for pid in children_named(master, "imap"):
        try:
            total += proc_cpu_s(pid)
        except (OSError, ValueError):
            continue
    return total


def measure(
    server: PrivateDovecot,
    endpoint: DovecotEndpoint,
    label: str,
    messages: int,
    needles: int,
    polls: int,
) -> IdleResult:
    """Run the daemon over the folder as it is and measure `polls` idle polls."""
    result = IdleResult(label, messages, needles, polls)
    snapshots: list[Snapshot] = []
    lock = threading.Lock()
    with command_counter(endpoint) as counter, workdir(f"idle-{label}") as work:
        config = write_config(work, endpoint, port=counter.port, poll_interval=1)
        with daemon(config) as process:

            def on_event(event: Event) -> None:
                if event.data.get("event") != "poll.finished":
                    return
                count, received = counter.snapshot()
                with lock:
                    snapshots.append(
                        Snapshot(
                            count,
                            received,
                            proc_cpu_s(process.pid),
                            _imap_cpu(server),
                            int(event.data.get("duration_ms", 0)),
                        )
                    )

            process.on_event(on_event)
            if not process.wait_polls(1, timeout=900):
                raise RuntimeError(f"daemon did not finish its first poll: {process.failure()}")
            first = process.named("poll.finished")[0]
            result.backlog_s = int(first.data.get("duration_ms", 0)) / 1000
            say(f"idle_cost[{label}]: backlog done in {result.backlog_s:.1f} s; {polls} idle polls")
            if not process.wait_polls(1 + polls, timeout=polls * 5 + 30):
                raise RuntimeError(f"daemon stopped polling: {process.failure()}")
            with lock:
                taken = list(snapshots[: polls + 1])
            result.names = [
                c.name for c in counter.commands(taken[-2].commands, taken[-1].commands)
            ]
            for command in counter.commands(taken[0].commands, taken[-1].commands):
                latency = command.latency_s
                if latency is not None:
                    result.server_ms.setdefault(command.name, []).append(latency * 1000)
    for before, after in itertools.pairwise(taken):
        result.commands.append(after.commands - before.commands)
        result.server_bytes.append(after.server_bytes - before.server_bytes)
        result.wall_ms.append(after.duration_ms)
    result.bare_ms = bare_costs(endpoint)
    span = len(taken) - 1
    result.daemon_cpu_ms = (taken[-1].daemon_cpu_s - taken[0].daemon_cpu_s) / span * 1000
    result.imap_cpu_ms = (taken[-1].imap_cpu_s - taken[0].imap_cpu_s) / span * 1000
    return result


def bare_costs(endpoint: DovecotEndpoint, repeat: int = 8) -> dict[str, float]:
    """Median ms of the commands a poll could use, from bare imapclient sessions.

    The first session does what the daemon does on connecting (LIST, to find Drafts)
    and then its NOOP, EXAMINE, UID SEARCH cycle; the second skips the LIST, which on
    Dovecot changes what re-EXAMINing the selected folder costs.
    """
    timings: dict[str, list[float]] = {}

    def timed(name: str, call: Callable[[], object]) -> None:
        started = time.perf_counter()
        call()
        timings.setdefault(name, []).append((time.perf_counter() - started) * 1000)

    for listed in (True, False):
        with imap(endpoint) as client:
            if listed:
                client.list_folders()
            uidnext = int(client.folder_status("INBOX", [b"UIDNEXT"])[b"UIDNEXT"])

            def search(client: Any = client, uidnext: int = uidnext) -> object:
                return client.search(["UID", f"{uidnext}:*", "FROM", "upwork"])

            def examine(client: Any = client) -> object:
                return client.select_folder("INBOX", readonly=True)

            def status(client: Any = client) -> object:
                return client.folder_status("INBOX", [b"UIDNEXT"])

            examine()
            label = "after LIST" if listed else "no LIST"
            for _ in range(repeat):
                time.sleep(0.3)
                client.noop()
                timed(f"EXAMINE again ({label})", examine)
                search()
            if not listed:
                continue
            for _ in range(repeat):
                time.sleep(0.3)
                timed("NOOP", client.noop)
                timed("STATUS UIDNEXT", status)
                timed("UID SEARCH new", search)
    return {name: statistics.median(values) for name, values in timings.items()}


def rows(result: IdleResult) -> list[Row]:
    commands = Counter(result.commands).most_common(1)[0][0]
    wall = statistics.median(result.wall_ms)
    return [
        Row(
            "idle_cost",
            f"{result.label}: IMAP commands per idle poll",
            f"{commands} (min {min(result.commands)}, max {max(result.commands)})",
            ", ".join(result.names) or "-",
            f"<= {TARGET_COMMANDS}",
            max(result.commands) <= TARGET_COMMANDS,
        ),
        Row(
            "idle_cost",
            f"{result.label}: wall ms per idle poll (duration_ms, median)",
            f"{wall:.0f} ms",
            f"max {max(result.wall_ms)} ms over {len(result.wall_ms)} polls; "
            f"{statistics.median(result.server_bytes):,.0f} bytes from server",
        ),
        Row(
            "idle_cost",
            f"{result.label}: server latency per command (median)",
            ", ".join(
                f"{name} {statistics.median(values):.1f} ms"
                for name, values in result.server_ms.items()
            )
            or "-",
            "measured on the wire, command to tagged answer",
        ),
        Row(
            "idle_cost",
            f"{result.label}: bare imapclient on the folder (median ms)",
            ", ".join(f"{name} {ms:.1f}" for name, ms in result.bare_ms.items()) or "-",
            "EXAMINE again: the daemon's NOOP, EXAMINE, SEARCH cycle; others: staying selected",
        ),
        Row(
            "idle_cost",
            f"{result.label}: CPU ms per idle poll",
            f"daemon {result.daemon_cpu_ms:.1f} ms",
            f"Dovecot imap {result.imap_cpu_ms:.1f} ms",
        ),
    ]


def compare(small: IdleResult, big: IdleResult) -> Row:
    small_ms = statistics.median(small.wall_ms)
    big_ms = statistics.median(big.wall_ms)
    same = big_ms <= small_ms * 1.2 + 2 and big.commands == small.commands
    return Row(
        "idle_cost",
        f"{big.label} vs {small.label}: idle poll wall time",
        f"{big_ms:.0f} ms vs {small_ms:.0f} ms",
        f"server CPU {big.imap_cpu_ms:.1f} vs {small.imap_cpu_ms:.1f} ms",
        "same time (<= +20 % +2 ms)",
        same,
    )


def case(ordinary: int, needles: int, label: str, polls: int) -> IdleResult:
    batch = notifications(needles, tag=f"idle-{label}", first_room=3_000_000)
    with private_dovecot() as (server, endpoint):
        say(f"idle_cost[{label}]: loading {ordinary + needles:,} messages")
        load_maildir(server, "INBOX", haystack(ordinary, batch.raws))
        return measure(server, endpoint, label, ordinary + needles, needles, polls)


def section(results: list[IdleResult]) -> Section:
    out = Section("Idle cost: one poll that finds nothing new (daemon, poll_interval 1 s)")
    for result in results:
        out.rows += rows(result)
    if len(results) >= 2:
        out.rows.append(compare(results[0], results[-1]))
    for result in results:
        out.notes.append(
            f"{result.label}: {result.messages:,} messages in INBOX ({result.needles:,} of them "
            f"Upwork notifications); backlog first poll {result.backlog_s:.1f} s; "
            f"{len(result.commands)} idle polls measured"
        )
    out.notes.append(
        "commands counted on the wire by a relay between the daemon and Dovecot; CPU per poll "
        "is the daemon's whole-process CPU between two poll.finished events (scheduler included; "
        "/proc ticks are 10 ms, so over 10 polls the resolution is 1 ms)"
    )
    return out


def run(polls: int = 10, big: int = 100_000) -> Section:
    results = [case(990, 10, "1k", polls)]
    if big > 0:
        results.append(case(big - big // 100, big // 100, f"{big // 1000}k", polls))
    return section(results)


def main() -> None:
    parser = argparse.ArgumentParser(description="cost of a poll that finds nothing new")
    parser.add_argument("--polls", type=int, default=10)
    parser.add_argument("--big", type=int, default=100_000, help="messages in the big case")
    args = parser.parse_args()
    run(args.polls, args.big).print()


if __name__ == "__main__":
    main()
