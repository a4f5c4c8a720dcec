"""Run every benchmark, print one combined table and write it into BENCHMARKS.md.

Sizes are chosen so the whole run stays under 10 minutes on 2 cores: the backfill
and the haystack run at full size, the memory backfill is sized from the backfill
rate just measured (so a slow product does not blow the budget), the latency series
take 12 samples each, and any step that would start past the budget is skipped and
said so. bench/detectors.py runs as a subprocess.

Run: ``.venv/bin/python -m bench.run_all`` (``make bench``); ``--no-write`` leaves
BENCHMARKS.md alone.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from bench import backfill, haystack, idle_cost, latency, memory, peer
from bench.common import BIN, ROOT, Row, Section, machine, say, table
from tests.support.dovecot import DovecotEndpoint, PrivateDovecot

BUDGET_S = 570.0
START = "<!-- bench:start -->"
END = "<!-- bench:end -->"
DOC = ROOT / "BENCHMARKS.md"
DETECTORS = ROOT / "bench" / "detectors.py"
DETECTOR_TARGET = 5_000

_INTRO = """# Benchmarks

Scripts in `bench/` that print figures, each next to a reference measured in the same run
(they are not tests). `make bench` runs them all (`.venv/bin/python -m bench.run_all`, under
10 minutes on 2 cores) and rewrites the block below; one script alone runs with
`.venv/bin/python -m bench.<name>` and takes `--help`.

- `bench/backfill.py`: one `poll-once` over 10,000 client notifications (~3 KB, 30 %
  flagged), empty state, with the default worker processes and again in one process
  (`workers = 0`); next to a bare imapclient FETCH, mail-parser alone, the product's
  stages alone and a bare MULTIAPPEND of the drafts; then a profile of a one-process poll
  by component.
- `bench/haystack.py`: first poll of 100,000 ordinary mails with 1,000 notifications among
  them; the server's time per command, measured on the wire.
- `bench/idle_cost.py`: a poll that finds nothing: IMAP commands (counted by a relay on the
  wire), wall and CPU ms, with 1,000 and with 100,000 messages.
- `bench/latency.py`: APPEND of a client message to its draft in Drafts, polling every 5 s
  and with IMAP IDLE.
- `bench/memory.py`: the daemon's peak RSS over a backfill (and the peak PSS of the daemon
  with its worker processes), and its RSS over the idle polls that fit in about a minute.
- `bench/peer.py`: imapfilter's keyword scan of the same mailbox vs onplatform's backfill.
- `bench/profiling.py`: where the time of one `poll-once` goes (py-spy if installed, else
  cProfile).
- `bench/detectors.py`: detector throughput in-process, per core, on ~1 KB messages.

The mailboxes are written as Maildir files straight into the private Dovecot of the test
suite (`tests/support/dovecot.py`) and indexed by one SELECT; for 10,000 messages that is
several times faster than MULTIAPPEND (measured when the scripts were written: 0.6 s vs 5.1 s).
IMAP commands are counted, and the server's time per command measured, by a loopback relay
between the product and Dovecot (`bench/common.py::CommandCounter`), so nothing in the product
or the server's configuration changes for the benchmark.

The profile uses py-spy when it is installed (`pip install --target /tmp/pyspy py-spy`, or on
PATH, or `$PYSPY`), else cProfile in-process, which inflates pure-Python work. Figures from a
shared machine move with its load (APPEND speed, bound by Dovecot's fsync, varies most): the
load average is recorded with them.

"""


def _loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def _git(*args: str) -> str:
    try:
        out = subprocess.run(
            ["git", *args], capture_output=True, text=True, check=False, cwd=ROOT, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return out.stdout.strip()


class Runner:
    def __init__(self, budget_s: float) -> None:
        self.started = time.monotonic()
        self.budget_s = budget_s
        self.sections: list[Section] = []
        self.skipped: list[str] = []

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def step(self, name: str, estimate_s: float, body: Callable[[], list[Section]]) -> bool:
        if self.elapsed + estimate_s > self.budget_s:
            self.skipped.append(
                f"{name}: skipped, {self.elapsed:.0f} s used and ~{estimate_s:.0f} s needed "
                f"of a {self.budget_s:.0f} s budget"
            )
            say(self.skipped[-1])
            return False
        say(f"== {name} (at {self.elapsed:.0f} s)")
        began = time.monotonic()
        try:
            produced = body()
        except Exception as err:
            traceback.print_exc()
            failed = Section(f"{name}: FAILED")
            failed.rows.append(Row(name, "FAILED", f"{type(err).__name__}", str(err)[:160]))
            produced = [failed]
        spent = time.monotonic() - began
        for section in produced:
            section.seconds = spent
            section.print()
        self.sections += produced
        return True


def run_detectors() -> list[Section]:
    section = Section("Detectors (bench/detectors.py, output as printed)")
    if not DETECTORS.exists():
        section.notes.append("bench/detectors.py not present")
        return [section]
    result = subprocess.run(
        [str(BIN / "python"), "-m", "bench.detectors"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        timeout=300,
    )
    output = result.stdout.strip() or result.stderr.strip()[-1500:]
    section.notes.append(f"exit {result.returncode}")
    section.notes += [f"`{line}`" for line in output.splitlines() if line.strip()]
    for line in output.splitlines():
        words = line.split()
        if words[:1] == ["all"] and "(assess)" in words:
            rate = float(words[words.index("(assess)") + 1])
            section.rows.append(
                Row(
                    "detectors",
                    "whole detector pipeline, ~1 KB messages, every language (CPU time)",
                    f"{rate:,.0f} msg/s per core",
                    f"normalize alone {float(words[2]):,.0f} msg/s",
                    f">= {DETECTOR_TARGET:,} msg/s",
                    rate >= DETECTOR_TARGET,
                )
            )
    return [section]


def backfill_rate(sections: list[Section]) -> float | None:
    for section in sections:
        for row in section.rows:
            if row.bench == "backfill" and "end to end" in row.figure and "msg/s" in row.value:
                try:
                    return float(row.value.split(" msg/s")[0].replace(",", ""))
                except ValueError:
                    return None
    return None


def render(runner: Runner, info: dict[str, str], load_start: str, command: str) -> str:
    rows = [row for section in runner.sections for row in section.rows]
    lines = [
        f"Machine: {info['nproc']} CPUs ({info['cpu']}), {info['ram']} RAM; "
        f"Python {info['python']}; Dovecot {info['dovecot']}",
        f"Date: {info['date']}; command: `{command}`; total {runner.elapsed:.0f} s; "
        f"load average at start {load_start}, at end {_loadavg()}",
        f"Product: commit {_git('rev-parse', '--short', 'HEAD') or '?'}"
        + (" with uncommitted changes" if _git("status", "--porcelain") else ""),
        "",
        table(rows),
        "",
    ]
    for section in runner.sections:
        if not section.notes:
            continue
        lines.append(f"**{section.title}** ({section.seconds:.0f} s)")
        lines.append("")
        lines += [f"- {note}" for note in section.notes]
        lines.append("")
    for note in runner.skipped:
        lines.append(f"- {note}")
    return "\n".join(lines).rstrip() + "\n"


def write_doc(block: str) -> None:
    text = DOC.read_text() if DOC.exists() else _INTRO + f"{START}\n{END}\n"
    if START not in text or END not in text:
        text = text.rstrip() + f"\n\n{START}\n{END}\n"
    head, rest = text.split(START, 1)
    _old, tail = rest.split(END, 1)
    DOC.write_text(f"{head}{START}\n{block}{END}{tail}")


def main() -> None:
    parser = argparse.ArgumentParser(description="run every benchmark, update BENCHMARKS.md")
    parser.add_argument("--no-write", action="store_true", help="leave BENCHMARKS.md alone")
    parser.add_argument("--budget", type=float, default=BUDGET_S, help="seconds for the run")
    args = parser.parse_args()
    command = " ".join(
        [os.path.relpath(sys.executable, ROOT), "-m", "bench.run_all", *sys.argv[1:]]
    )
    info = machine()
    load_start = _loadavg()
    runner = Runner(args.budget)
    small_idle: list[idle_cost.IdleResult] = []
    big_idle: list[idle_cost.IdleResult] = []

    runner.step("backfill", 60, lambda: backfill.run(10_000, 2_000))
    rate = backfill_rate(runner.sections) or 150.0

    def haystack_then_idle() -> list[Section]:
        def then(server: PrivateDovecot, endpoint: DovecotEndpoint) -> None:
            big_idle.append(idle_cost.measure(server, endpoint, "100k", 101_000, 1_000, 10))

        return [haystack.run(100_000, 1_000, then=then)]

    runner.step("haystack (+ idle cost at 100k)", 40 + 3_000 / rate, haystack_then_idle)

    def idle_small() -> list[Section]:
        small_idle.append(idle_cost.case(990, 10, "1k", 10))
        return [idle_cost.section(small_idle + big_idle)]

    runner.step("idle_cost", 25, idle_small)
    runner.step("peer", 25, lambda: [peer.run(10_000, onplatform_rate=rate, server_search=False)])
    memory_messages = max(1_000, min(10_000, int(rate * 35) // 500 * 500))
    runner.step(
        "memory",
        memory_messages / rate + 70,
        lambda: [memory.run(memory_messages, 45.0)],
    )
    runner.step("latency", 90, lambda: [latency.run(12, 80.0, 12)])
    runner.step("detectors", 40, run_detectors)

    block = render(runner, info, load_start, command)
    print("\n# Combined\n")
    print(block)
    if not args.no_write:
        write_doc(block)
        say(f"wrote {DOC.relative_to(ROOT)} ({runner.elapsed:.0f} s in all)")


if __name__ == "__main__":
    main()
