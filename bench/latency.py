"""Latency: from the APPEND of a client message to its draft in Drafts.

The daemon (``onplatform run``) watches an empty INBOX with poll_interval 5 s.
One flagged client message at a time is APPENDed to INBOX at a random moment of
the poll cycle; a second connection asks ``STATUS Drafts (MESSAGES)`` every 20 ms
and the time from the APPEND's OK to the new draft is one sample. The daemon's own
draft.appended log line gives a cross-check. If the config accepts ``idle = true``
(checked with ``onplatform check-config``), a second series runs with IMAP IDLE;
otherwise "IDLE: not available" is printed.

Run: ``.venv/bin/python -m bench.latency [--samples 20] [--max-seconds 150]``.
"""

from __future__ import annotations

import argparse
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import (
    Daemon,
    Event,
    Row,
    Section,
    check_config,
    daemon,
    fast_client_mail,
    imap,
    percentile,
    private_dovecot,
    say,
    text_pools,
    workdir,
    write_config,
)
from tests.support.dovecot import DovecotEndpoint

POLL_INTERVAL = 5.0
WATCH_EVERY = 0.02


@dataclass
class Series:
    mode: str
    latencies: list[float] = field(default_factory=list)
    logged: list[float] = field(default_factory=list)
    missed: int = 0
    seconds: float = 0.0


def _drafts(client: Any) -> int:
    status = client.folder_status("Drafts", [b"MESSAGES"])
    return int(status[b"MESSAGES"])


def series(
    endpoint: DovecotEndpoint,
    work: Path,
    *,
    idle: bool,
    samples: int,
    max_seconds: float,
    seed: int = 5,
) -> Series:
    mode = "IDLE" if idle else f"polling every {POLL_INTERVAL:g} s"
    result = Series(mode)
    rng = random.Random(seed)
    texts = text_pools().flagged
    extra = ("idle = true",) if idle else ()
    config = write_config(
        work / ("idle" if idle else "poll"),
        endpoint,
        poll_interval=POLL_INTERVAL,
        account_extra=extra,
    )
    started = time.monotonic()
    with daemon(config) as process, imap(endpoint) as watcher, imap(endpoint) as sender:
        if not process.wait_polls(1, timeout=60):
            raise RuntimeError(f"daemon did not poll: {process.failure()}")
        appended: dict[str, float] = {}

        def on_event(event: Event) -> None:
            if event.data.get("event") == "draft.appended":
                appended[str(event.data.get("uid"))] = event.at

        process.on_event(on_event)
        time.sleep(1.0)  # let an IDLE watcher settle after the first poll
        for index in range(samples):
            if time.monotonic() - started > max_seconds:
                break
            # A random moment of the cycle: uniform over the poll interval.
            time.sleep(rng.uniform(0.2, 1.0) if idle else rng.uniform(0, POLL_INTERVAL))
            before = _drafts(watcher)
            raw = fast_client_mail(
                4_000_000 + index + (500 if idle else 0),
                "Maria Lopez",
                rng.choice(texts),
                f"<latency-{'idle' if idle else 'poll'}-{index}@upwork.test>",
            )
            response = sender.append("INBOX", raw)
            sent = time.monotonic()
            uid = _appended_uid(response)
            deadline = sent + 3 * POLL_INTERVAL + 10
            while time.monotonic() < deadline and _drafts(watcher) <= before:
                time.sleep(WATCH_EVERY)
            seen = time.monotonic()
            if seen >= deadline:
                result.missed += 1
                continue
            result.latencies.append(seen - sent)
            logged_at = _logged(process, appended, uid)
            if logged_at is not None:
                result.logged.append(logged_at - sent)
    result.seconds = time.monotonic() - started
    return result


def _logged(process: Daemon, appended: dict[str, float], uid: str | None) -> float | None:
    """When the daemon logged draft.appended for INBOX `uid` (it may lag the draft by ms)."""
    if uid is None:
        return None

    def logged(_events: list[Event]) -> bool:
        return uid in appended

    process.wait_for(logged, timeout=2)
    return appended.get(uid)


def _appended_uid(response: object) -> str | None:
    text = response.decode(errors="replace") if isinstance(response, bytes) else str(response)
    parts = text.split("APPENDUID ", 1)
    if len(parts) < 2:
        return None
    fields = parts[1].split()
    return fields[1].rstrip("]") if len(fields) > 1 else None


def bare_idle(endpoint: DovecotEndpoint, samples: int = 8) -> list[float]:
    """Seconds from an APPEND's OK to the EXISTS a bare imapclient IDLE session sees."""
    raw = fast_client_mail(4_900_000, "Maria Lopez", text_pools().benign[0], "<probe@upwork.test>")
    seen: list[float] = []
    with imap(endpoint) as watcher, imap(endpoint) as sender:
        sender.create_folder("IdleProbe")
        watcher.select_folder("IdleProbe", readonly=True)
        for _ in range(samples):
            watcher.idle()
            time.sleep(0.3)
            sender.append("IdleProbe", raw)
            sent = time.monotonic()
            deadline = sent + 10
            while time.monotonic() < deadline:
                responses = watcher.idle_check(timeout=deadline - time.monotonic())
                if any(isinstance(r, tuple) and b"EXISTS" in r for r in responses):
                    seen.append(time.monotonic() - sent)
                    break
            watcher.idle_done()
    return seen


def rows(result: Series) -> list[Row]:
    values = result.latencies
    if not values:
        missed = f"{result.missed} missed"
        return [Row("latency", f"{result.mode}: APPEND to draft", "no sample", missed)]
    out = [
        Row(
            "latency",
            f"{result.mode}: APPEND to draft, p50 / p95",
            f"{percentile(values, 0.5):.2f} s / {percentile(values, 0.95):.2f} s",
            f"min {min(values):.2f} s, max {max(values):.2f} s, n = {len(values)}"
            + (f", {result.missed} missed" if result.missed else ""),
        )
    ]
    if result.logged:
        out.append(
            Row(
                "latency",
                f"{result.mode}: APPEND to draft.appended log line, p50",
                f"{percentile(result.logged, 0.5):.2f} s",
                "the daemon's own view (cross-check of the watcher)",
            )
        )
    return out


def run(samples: int = 20, max_seconds: float = 150.0, idle_samples: int | None = None) -> Section:
    section = Section("Latency: APPEND of a client message to its draft in Drafts")
    with private_dovecot() as (_server, endpoint), workdir("latency") as work:
        probe = write_config(work / "probe", endpoint, account_extra=("idle = true",))
        idle_ok, why = check_config(probe)
        say(f"latency: polling series, {samples} samples")
        polling = series(endpoint, work, idle=False, samples=samples, max_seconds=max_seconds)
        section.rows += rows(polling)
        section.notes.append(
            f"{polling.mode}: {len(polling.latencies)} samples in {polling.seconds:.0f} s; "
            "each APPEND at a uniformly random moment of the poll cycle"
        )
        if idle_ok:
            count = idle_samples if idle_samples is not None else samples
            say(f"latency: IDLE series, {count} samples")
            with_idle = series(endpoint, work, idle=True, samples=count, max_seconds=max_seconds)
            section.rows += rows(with_idle)
            probe_s = bare_idle(endpoint)
            if probe_s:
                section.rows.append(
                    Row(
                        "latency",
                        "reference: bare imapclient IDLE, APPEND to EXISTS, p50",
                        f"{percentile(probe_s, 0.5):.2f} s",
                        f"max {max(probe_s):.2f} s, n = {len(probe_s)}: Dovecot's own delay",
                    )
                )
            section.notes.append(
                f"IDLE: {len(with_idle.latencies)} samples in {with_idle.seconds:.0f} s "
                "(idle = true, poll_interval 5 s as the safety net)"
            )
        else:
            print("IDLE: not available")
            section.rows.append(
                Row("latency", "IDLE", "not available", why.splitlines()[-1][:90] if why else "")
            )
    return section


def main() -> None:
    parser = argparse.ArgumentParser(description="APPEND to draft latency")
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--idle-samples", type=int, default=None)
    parser.add_argument("--max-seconds", type=float, default=150.0, help="per series")
    args = parser.parse_args()
    run(args.samples, args.max_seconds, args.idle_samples).print()


if __name__ == "__main__":
    main()
