"""Memory: the daemon's peak RSS over a backfill, then its RSS over many idle polls.

``onplatform run`` (poll_interval 1 s, the smallest the config allows) starts on
an INBOX of N client notifications (default 10,000, 30 % flagged) with an empty
state. Peak RSS is VmHWM of /proc/PID/status once the first poll (the backfill)
has finished; then VmRSS is read at every poll.finished for ~60 s of idle polls.
2,000 polls would take over half an hour at 1 s, so the number of polls that fit
is reported and the flatness is judged on them. Side by side: the RSS of a daemon
on an empty INBOX, and of a bare interpreter with the product's modules imported
and its detectors, templates and language identification loaded (on a Portuguese
message, which the English fast path does not take).

Run: ``.venv/bin/python -m bench.memory [--messages 10000] [--seconds 60]``.
"""

from __future__ import annotations

import argparse
import subprocess
import threading
import time
from pathlib import Path

from bench.common import (
    BIN,
    ROOT,
    Event,
    Row,
    Section,
    daemon,
    load_maildir,
    notifications,
    private_dovecot,
    proc_status_kb,
    say,
    workdir,
    write_config,
)

TARGET_PEAK_MB = 80.0
TARGET_FLAT = 0.05
WARMUP_POLLS = 3

_LOADED = """
import pathlib
def rss():
    for line in pathlib.Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
steps = [rss()]
import onplatform.daemon.cli  # noqa
steps.append(rss())
from onplatform.config.schema import DetectorSettings, DraftSettings
from onplatform.daemon.pipeline import build_analyzer
build_analyzer(DetectorSettings())
steps.append(rss())
from onplatform.daemon.drafts import DraftRenderer
DraftRenderer(DraftSettings(freelancer_name="Sam"))
steps.append(rss())
from onplatform.daemon.language import detect_language
detect_language("Obrigado pela proposta, você pode começar na segunda-feira que vem?")
steps.append(rss())
print(*steps)
"""
STEPS = ("python", "+ imports", "+ analyzer", "+ templates", "+ language id")


def baseline_modules() -> list[int]:
    """kB of VmRSS after each of STEPS, in a fresh interpreter."""
    out = subprocess.run(
        [str(BIN / "python"), "-c", _LOADED],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        timeout=120,
    ).stdout.split()
    return [int(value) for value in out]


def empty_daemon_rss() -> int:
    """kB: VmRSS of a daemon on an empty INBOX after a few polls."""
    with private_dovecot() as (_server, endpoint), workdir("memory-empty") as work:
        config = write_config(work, endpoint, poll_interval=1)
        with daemon(config) as process:
            if not process.wait_polls(WARMUP_POLLS, timeout=60):
                raise RuntimeError(f"daemon did not poll: {process.failure()}")
            return proc_status_kb(process.pid, "VmRSS")


class TreeSampler:
    """Samples, every 50 ms, the daemon's worker processes and the whole tree's PSS.

    Workers live only through a large poll, so they are read while it runs: the
    largest VmHWM a worker reached, how many there were, and the peak of the
    proportional set size (shared pages split between the processes that share
    them) summed over the daemon and its workers: the memory the tree really takes.
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.workers: set[int] = set()
        self.worker_peak_kb = 0
        self.tree_pss_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _children(self) -> list[int]:
        found: list[int] = []
        for task in Path(f"/proc/{self.pid}/task").glob("*/children"):
            try:
                found += [int(pid) for pid in task.read_text().split()]
            except OSError:
                continue
        return found

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            children = self._children()
            total = 0
            for pid in [self.pid, *children]:
                try:
                    total += _pss_kb(pid)
                    if pid != self.pid:
                        peak = proc_status_kb(pid, "VmHWM")
                        self.workers.add(pid)
                        self.worker_peak_kb = max(self.worker_peak_kb, peak)
                except (OSError, KeyError):
                    continue  # a worker that just ended
            self.tree_pss_kb = max(self.tree_pss_kb, total)


def _pss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    raise KeyError("Pss")


def run(messages: int = 10_000, seconds: float = 60.0) -> Section:
    section = Section(
        f"Memory: daemon over a backfill of {messages:,} notifications, then idle polls"
    )
    batch = notifications(messages, tag="memory", first_room=6_000_000)
    samples: list[tuple[int, int]] = []  # (VmRSS kB, VmHWM kB) at each poll.finished
    lock = threading.Lock()
    with private_dovecot() as (server, endpoint), workdir("memory") as work:
        load_maildir(server, "INBOX", batch.raws)
        config = write_config(work, endpoint, poll_interval=1)
        say(f"memory: daemon backfill of {messages:,} messages")
        with daemon(config) as process:

            def on_event(event: Event) -> None:
                if event.data.get("event") == "poll.finished":
                    with lock:
                        samples.append(
                            (
                                proc_status_kb(process.pid, "VmRSS"),
                                proc_status_kb(process.pid, "VmHWM"),
                            )
                        )

            process.on_event(on_event)
            started = time.monotonic()
            with TreeSampler(process.pid) as tree:
                if not process.wait_polls(1, timeout=1800):
                    raise RuntimeError(f"daemon did not finish the backfill: {process.failure()}")
            backfill_s = time.monotonic() - started
            first = process.named("poll.finished")[0].data
            say(f"memory: backfill done in {backfill_s:.0f} s; idle polls for {seconds:.0f} s")
            time.sleep(seconds)
            with lock:
                taken = list(samples)
            end_hwm = proc_status_kb(process.pid, "VmHWM")
    after_backfill_rss, peak_kb = taken[0]
    idle = taken[1:]
    section.rows.append(
        Row(
            "memory",
            "peak RSS over the backfill (VmHWM)",
            f"{peak_kb / 1024:.1f} MB",
            f"RSS right after it {after_backfill_rss / 1024:.1f} MB",
            f"<= {TARGET_PEAK_MB:.0f} MB",
            peak_kb / 1024 <= TARGET_PEAK_MB,
        )
    )
    if tree.workers:
        section.rows.append(
            Row(
                "memory",
                "daemon + its workers over the backfill: peak PSS of the tree",
                f"{tree.tree_pss_kb / 1024:.1f} MB",
                f"{len(tree.workers)} workers, peak RSS of one {tree.worker_peak_kb / 1024:.1f} MB"
                " (pages shared with the daemon counted in each)",
                f"<= {TARGET_PEAK_MB:.0f} MB",
                tree.tree_pss_kb / 1024 <= TARGET_PEAK_MB,
            )
        )
    if len(idle) > WARMUP_POLLS:
        start_rss = idle[WARMUP_POLLS - 1][0]
        end_rss = idle[-1][0]
        growth = (end_rss - start_rss) / start_rss
        section.rows.append(
            Row(
                "memory",
                f"RSS over {len(idle)} idle polls (from poll {WARMUP_POLLS} to the last)",
                f"{start_rss / 1024:.1f} -> {end_rss / 1024:.1f} MB ({100 * growth:+.1f} %)",
                f"min {min(r for r, _ in idle) / 1024:.1f}, "
                f"max {max(r for r, _ in idle) / 1024:.1f} MB; "
                f"peak afterwards {end_hwm / 1024:.1f} MB",
                f"flat within {100 * TARGET_FLAT:.0f} %",
                abs(growth) <= TARGET_FLAT,
            )
        )
    else:
        section.rows.append(Row("memory", "RSS over idle polls", f"only {len(idle)} polls"))
    say("memory: references")
    steps = baseline_modules()
    empty = empty_daemon_rss()
    section.rows += [
        Row(
            "memory",
            "reference: daemon on an empty INBOX (RSS)",
            f"{empty / 1024:.1f} MB",
            "after 3 polls, nothing to do",
        ),
        Row(
            "memory",
            "reference: " + ", ".join(STEPS),
            " / ".join(f"{kb / 1024:.0f}" for kb in steps) + " MB",
            "RSS of a fresh interpreter after each step",
        ),
    ]
    section.notes += [
        f"backfill poll: {first.get('messages')} messages, {first.get('drafts')} drafts, "
        f"{int(first.get('duration_ms', 0)) / 1000:.1f} s; {len(idle)} idle polls in "
        f"{seconds:.0f} s (poll_interval 1 s is the config's minimum; 2,000 polls would take "
        f"{2000 / 60:.0f} min)",
    ]
    return section


def main() -> None:
    parser = argparse.ArgumentParser(description="daemon RSS over a backfill and idle polls")
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    run(args.messages, args.seconds).print()


if __name__ == "__main__":
    main()
