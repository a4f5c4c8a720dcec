"""The real daemon, killed with SIGKILL at random moments, still drafts each flagged mail once.

The default run (300 messages, 20 kills) stays within about a minute; the
``soak`` variant (about 1000 messages, 100 kills) runs with ``make soak``.
Run with ``-s`` to see the figures.

The random delay before each kill is counted from the daemon's
``daemon.started`` event rather than from the spawn: the interpreter takes
about a second to import, and a kill in that second touches neither the
mailbox nor the state file.
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import write_config
from tests.support.campaign import (
    Daemon,
    append_all,
    assert_clean_log,
    assert_exactly_one_draft_each,
    client_mails,
    expected_drafts,
    folder_uids,
    handled_uids,
    idle_poll_after,
    poll_once,
    started,
)
from tests.support.daemon import STARTUP_SECONDS
from tests.support.dovecot import PrivateDovecot

pytestmark = pytest.mark.integration


# -- the campaign ------------------------------------------------------------------
@dataclass
class CrashFigures:
    messages: int = 0
    flagged: int = 0
    kills: int = 0
    kills_before_connect: int = 0
    kills_mid_poll: int = 0
    kills_idle: int = 0
    drafts_appended: int = 0
    drafts_found_after_crash: int = 0
    delays: list[float] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"crash campaign: {self.kills} SIGKILLs survived "
            f"({self.kills_mid_poll} mid-poll, {self.kills_before_connect} before connecting, "
            f"{self.kills_idle} between polls); {self.messages} messages, {self.flagged} flagged, "
            f"{self.drafts_appended} drafts appended, {self.drafts_found_after_crash} draft.found "
            f"events (a draft appended before a kill, found by its marker instead of appended "
            f"again; one draft can be found after several kills)"
        )


def classify_kill(events: list[dict[str, Any]], figures: CrashFigures) -> None:
    names = [e["event"] for e in events]
    figures.drafts_appended += names.count("draft.appended")
    figures.drafts_found_after_crash += names.count("draft.found")
    if "mailbox.connected" not in names:
        figures.kills_before_connect += 1
    elif names[-1] == "poll.finished":
        figures.kills_idle += 1
    else:
        figures.kills_mid_poll += 1


def run_campaign(
    imap: PrivateDovecot, tmp_path: Path, *, messages: int, kills: int, seed: int
) -> CrashFigures:
    """Half the mail up front, the rest arriving while the daemon runs; SIGKILL ``kills``
    times at random, then a last uninterrupted run; assert nothing lost, nothing doubled.
    """
    endpoint = imap.endpoint
    rng = random.Random(seed)
    config = write_config(tmp_path, endpoint)
    state = tmp_path / "state.sqlite3"
    mails = client_mails(f"crash{seed}", messages, rng)
    due = expected_drafts(config, mails)
    figures = CrashFigures(messages=messages, flagged=len(due))
    assert 0.2 * messages <= len(due) <= 0.5 * messages, (
        f"precondition: the detectors flag {len(due)} of {messages} test mails"
    )
    upfront, later = mails[: messages // 2], mails[messages // 2 :]
    waves = [later[i::kills] for i in range(kills)]
    append_all(endpoint, "INBOX", upfront)

    for run in range(kills):
        with Daemon(config, tmp_path / f"run-{run:03}.log") as daemon:
            daemon.wait_for(started, STARTUP_SECONDS, "daemon.started")
            delay = rng.uniform(0.05, 1.5)
            deadline = time.monotonic() + delay
            append_all(endpoint, "INBOX", waves[run])  # new mail arrives under the daemon
            time.sleep(max(0.0, deadline - time.monotonic()))
            daemon.kill()
            figures.kills += 1
            figures.delays.append(delay)
            classify_kill(daemon.events(), figures)
            assert_clean_log(daemon.log)

    with Daemon(config, tmp_path / "final.log") as daemon:
        daemon.wait_for(started, STARTUP_SECONDS, "daemon.started")
        daemon.wait_for(idle_poll_after(0), 180, "a poll with nothing new")
        code = daemon.terminate()
        assert code == 0, daemon.log.read_text()[-2000:]
        events = daemon.events()
        figures.drafts_appended += sum(e["event"] == "draft.appended" for e in events)
        figures.drafts_found_after_crash += sum(e["event"] == "draft.found" for e in events)
        assert_clean_log(daemon.log)

    code, events, err = poll_once(config, tmp_path / "check.log")
    assert code == 0, err
    finished = [e for e in events if e["event"] == "poll.finished"]
    assert finished and finished[-1]["messages"] == 0 and finished[-1]["drafts"] == 0, finished

    assert_exactly_one_draft_each(endpoint, due)
    uidvalidity, inbox = folder_uids(endpoint, "INBOX")
    assert len(inbox) == messages
    handled = handled_uids(state, "INBOX", uidvalidity)
    skipped = sorted(set(inbox) - set(handled))
    not_done = {uid: status for uid, status in handled.items() if status != "done"}
    assert not skipped, f"{len(skipped)} INBOX message(s) never recorded: UIDs {skipped[:10]}"
    assert not not_done, f"messages not done: {sorted(not_done.items())[:10]}"
    seen = sorted(uid for uid, flags in inbox.items() if b"\\Seen" in flags)
    assert not seen, f"{len(seen)} INBOX message(s) marked \\Seen: UIDs {seen[:10]}"
    return figures


def test_sigkill_at_random_moments_loses_and_doubles_nothing(
    imap: PrivateDovecot, tmp_path: Path
) -> None:
    """20 SIGKILLs at random moments over 300 mails: one draft per flagged mail, all handled."""
    started_at = time.monotonic()
    figures = run_campaign(imap, tmp_path, messages=300, kills=20, seed=20261127)
    print(f"\n{figures.line()} in {time.monotonic() - started_at:.1f}s")
    assert figures.kills == 20


@pytest.mark.soak
def test_sigkill_soak(imap: PrivateDovecot, tmp_path: Path) -> None:
    """100 SIGKILLs over 1000 mails (``make soak``; ONPLATFORM_CRASH_SEED picks the run)."""
    seed = int(os.environ.get("ONPLATFORM_CRASH_SEED", "4242"))
    started_at = time.monotonic()
    figures = run_campaign(imap, tmp_path, messages=1000, kills=100, seed=seed)
    print(f"\nseed {seed}: {figures.line()} in {time.monotonic() - started_at:.1f}s")


def test_uidvalidity_change_under_running_daemon_drafts_once(
    imap: PrivateDovecot, tmp_path: Path
) -> None:
    """A watched folder recreated (new UIDVALIDITY) and refilled under the running daemon
    yields no second draft, and the new mail in it is still drafted."""
    endpoint = imap.endpoint
    rng = random.Random(7)
    config = write_config(tmp_path, endpoint, folders=("Clients",))
    state = tmp_path / "state.sqlite3"
    mails = client_mails("uidv", 30, rng)
    newcomers = client_mails("uidv-new", 6, rng)
    due = expected_drafts(config, [*mails, *newcomers])
    imap.recreate_folder("Clients")
    append_all(endpoint, "Clients", mails)
    with Daemon(config, tmp_path / "daemon.log") as daemon:
        daemon.wait_for(
            lambda events: (
                sum(e.get("messages", 0) for e in events if e["event"] == "poll.finished")
                >= len(mails)
            ),
            60,
            "the first 30 mails",
        )
        old_validity, _ = folder_uids(endpoint, "Clients")
        mark = len(daemon.events())
        imap.recreate_folder("Clients")
        append_all(endpoint, "Clients", [*mails, *newcomers])
        validity, uids = folder_uids(endpoint, "Clients")
        assert validity != old_validity

        def caught_up(events: list[dict[str, Any]]) -> bool:
            changed = any(e["event"] == "folder.uidvalidity_changed" for e in events[mark:])
            handled = handled_uids(state, "Clients", validity)
            return changed and all(handled.get(uid) == "done" for uid in sorted(uids)[-6:])

        events = daemon.wait_for(caught_up, 60, "the refilled folder")
        daemon.wait_for(idle_poll_after(len(events)), 30, "an idle poll after the refill")
        assert daemon.terminate() == 0
        assert_clean_log(daemon.log)
    sources = assert_exactly_one_draft_each(endpoint, due)
    _, flags = folder_uids(endpoint, "Clients")
    assert not [uid for uid, f in flags.items() if b"\\Seen" in f]
    print(
        f"\nUIDVALIDITY {old_validity} -> {validity}: {len(sources)} drafts for {len(due)} flagged"
    )
