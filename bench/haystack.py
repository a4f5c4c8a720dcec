"""Haystack: the first poll of a big mailbox where only a few mails are Upwork's.

100,000 ordinary mails (tests/support/mail.py::ordinary_mail) with 1,000 client
notifications spread among them (30 % flagged) sit in INBOX; the state is empty.
One ``poll-once`` of the real CLI runs through a command-counting relay, so the time
the server spends on each command shows next to the product's own time. Side by side:
a bare ``UID SEARCH FROM upwork`` and a bare FETCH of the hits (warm server cache), and
a second first poll (fresh state) once the server has cached the headers.

Run: ``.venv/bin/python -m bench.haystack [--ordinary 100000] [--needles 1000]``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from bench.common import (
    CommandCounter,
    Row,
    Section,
    command_counter,
    haystack,
    imap,
    load_maildir,
    notifications,
    private_dovecot,
    run_cli,
    say,
    workdir,
    write_config,
)
from tests.support.dovecot import DovecotEndpoint, PrivateDovecot

TARGET_S = 3.0
Hook = Callable[[PrivateDovecot, DovecotEndpoint], None]


def server_seconds(counter: CommandCounter) -> dict[str, float]:
    """Seconds from each command sent to its tagged answer, summed per command name."""
    spent: dict[str, float] = {}
    for command in counter.commands():
        spent[command.name] = spent.get(command.name, 0.0) + (command.latency_s or 0.0)
    return spent


def run(ordinary: int = 100_000, needles: int = 1_000, then: Hook | None = None) -> Section:
    section = Section(
        f"Haystack: first poll, {ordinary:,} ordinary mails + {needles:,} Upwork notifications"
    )
    batch = notifications(needles, tag="needle", first_room=2_000_000)
    with private_dovecot() as (server, endpoint), workdir("haystack") as work:
        say(f"haystack: loading {ordinary + needles:,} messages")
        started = time.perf_counter()
        loaded = load_maildir(server, "INBOX", haystack(ordinary, batch.raws))
        load_s = time.perf_counter() - started
        say(f"haystack: loaded in {load_s:.1f} s; first poll")
        with command_counter(endpoint) as counter:
            config = write_config(work, endpoint, port=counter.port)
            first = run_cli(["poll-once", "--config", str(config)], work / "first", timeout=1800)
            spent = server_seconds(counter)
            sent = [command.name for command in counter.commands()]
        finished = first.require("poll.finished")
        poll_s = int(finished["duration_ms"]) / 1000
        search_s = spent.get("UID SEARCH", 0.0) + spent.get("SEARCH", 0.0)
        examine_s = spent.get("EXAMINE", 0.0) + spent.get("SELECT", 0.0)
        server_s = sum(spent.values())
        section.rows += [
            Row(
                "haystack",
                "first poll (poll.finished duration_ms)",
                f"{poll_s:.2f} s",
                f"poll-once end to end {first.wall_s:.2f} s",
                f"< {TARGET_S:.0f} s",
                poll_s < TARGET_S,
            ),
            Row(
                "haystack",
                "messages / alerts / drafts",
                f"{finished['messages']} / {finished['alerts']} / {finished['drafts']}",
                f"expected {needles} / {batch.flagged} / {batch.flagged}",
            ),
            Row(
                "haystack",
                "in that poll: waiting for the server, all commands",
                f"{server_s:.2f} s",
                f"product's own time {max(0.0, poll_s - server_s):.2f} s",
            ),
            Row(
                "haystack",
                "in that poll: UID SEARCH FROM upwork (server, cold cache)",
                f"{search_s:.2f} s",
                f"EXAMINE {examine_s:.2f} s; " + _top(spent),
            ),
        ]
        say("haystack: references")
        with imap(endpoint) as client:
            client.select_folder("INBOX", readonly=True)
            started = time.perf_counter()
            hits = client.search(["UID", "1:*", "FROM", "upwork"])
            bare_search_s = time.perf_counter() - started
            started = time.perf_counter()
            uids = sorted(hits)
            for start in range(0, len(uids), 500):
                client.fetch(uids[start : start + 500], ["BODY.PEEK[]"])
            bare_fetch_s = time.perf_counter() - started
        section.rows.append(
            Row(
                "haystack",
                "bare UID SEARCH FROM upwork (warm) + FETCH of the hits",
                f"{bare_search_s + bare_fetch_s:.2f} s",
                f"SEARCH {bare_search_s:.2f} s ({len(hits):,} hits), FETCH {bare_fetch_s:.2f} s",
            )
        )
        config = write_config(work, endpoint, state_name="second.sqlite3", name="second.toml")
        second = run_cli(["poll-once", "--config", str(config)], work / "second", timeout=1800)
        again = second.require("poll.finished")
        section.rows.append(
            Row(
                "haystack",
                "first poll of the folder as a mail client leaves it (headers cached), fresh state",
                f"{int(again['duration_ms']) / 1000:.2f} s",
                f"end to end {second.wall_s:.2f} s",
                f"< {TARGET_S:.0f} s",
                int(again["duration_ms"]) / 1000 < TARGET_S,
            )
        )
        section.notes += [
            f"{loaded:,} messages written as Maildir files and indexed by Dovecot in "
            f"{load_s:.1f} s (headers not yet cached: the first SEARCH FROM reads every file)",
            "commands of the first poll: " + ", ".join(_runs(sent)),
            "server seconds are measured on the wire by a relay: from a command sent to its "
            "tagged answer",
        ]
        if then is not None:
            then(server, endpoint)
    return section


def _top(spent: dict[str, float]) -> str:
    others = {k: v for k, v in spent.items() if k not in {"UID SEARCH", "EXAMINE"}}
    ranked = sorted(others.items(), key=lambda item: -item[1])[:3]
    return ", ".join(f"{name} {seconds:.2f} s" for name, seconds in ranked)


def _runs(names: list[str]) -> list[str]:
    """['A', 'B', 'B'] -> ['A', 'B x2']."""
    out: list[str] = []
    for name in names:
        if out and out[-1].split(" x")[0] == name:
            head, _, count = out[-1].partition(" x")
            out[-1] = f"{head} x{int(count or 1) + 1}"
        else:
            out.append(name)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description="first poll of a big mailbox")
    parser.add_argument("--ordinary", type=int, default=100_000)
    parser.add_argument("--needles", type=int, default=1_000)
    args = parser.parse_args()
    run(args.ordinary, args.needles).print()


if __name__ == "__main__":
    main()
