"""Where the time of one ``poll-once`` goes, by component of the product.

py-spy (a sampling profiler, run on the real CLI subprocess with ``--idle`` so time
spent waiting for the server counts) is used when it is installed: on PATH, in
``$PYSPY``, or in /tmp/pyspy/bin (``pip install --target /tmp/pyspy py-spy``).
Otherwise cProfile runs the same command in-process, which inflates pure-Python
work relative to C code and I/O waits; the notes say which one was used.

Each sample (py-spy) or call (cProfile) is charged to the first function the poller
(daemon/poller.py) calls on its way down, so the components add up to the poll.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import os
import pstats
import shutil
import subprocess
import time
from collections import defaultdict
from pathlib import Path

from bench.common import (
    ONPLATFORM,
    Row,
    Section,
    load_maildir,
    notifications,
    private_dovecot,
    say,
    workdir,
    write_config,
)

_IMAP = {
    "search_after": "IMAP UID SEARCH",
    "fetch_bounded": "IMAP UID FETCH RFC822.SIZE BODY.PEEK[]",
    "append_draft": "IMAP APPEND (drafts)",
    "select_readonly": "IMAP EXAMINE",
    "find_drafts_folder": "IMAP LIST",
    "list_folders": "IMAP LIST",
    "noop": "IMAP NOOP",
    "draft_exists": "IMAP draft lookup",
    "connect": "IMAP connect + LOGIN",
    "close": "IMAP LOGOUT",
}
_IMAP_PREFIXES = (
    ("append", "IMAP APPEND (drafts)"),
    ("search", "IMAP UID SEARCH"),
    ("idle", "IMAP IDLE"),
    ("fetch", "IMAP UID FETCH (other)"),
)
STARTUP = "process start (imports, config)"
BUILD = "process start (build analyzer, templates)"


def _short(path: str) -> str:
    parts = Path(path).parts
    return "/".join(parts[-2:]) if len(parts) >= 2 else path


def classify(callee_file: str, callee_func: str, deeper_files: list[str]) -> str:
    """The component of a call the poller makes (file as 'dir/name.py', bare function)."""
    func = callee_func.rsplit(".", 1)[-1]
    if callee_file.endswith("daemon/mailbox.py"):
        if func in _IMAP:
            return _IMAP[func]
        for prefix, component in _IMAP_PREFIXES:
            if func.startswith(prefix):
                return component
        return f"IMAP {func}"
    if "importlib" in callee_file:
        modules = [f for f in deeper_files if "importlib" not in f and f.endswith(".py")]
        return f"imports during the poll ({modules[0] if modules else '?'})"
    if callee_file == "<string>":
        return "poller itself"
    if callee_file.endswith("daemon/parallel.py"):  # parse and assess, here in-process
        for at, deeper in enumerate(deeper_files):
            if deeper.endswith(("notification.py", "pipeline.py", "language.py")):
                return classify(deeper, "", deeper_files[at + 1 :])
        return "poller itself"
    if callee_file.endswith("daemon/notification.py"):
        if any("mailparser/" in f for f in deeper_files):
            return "parse: mail-parser"
        return "parse: headers, client words"
    if callee_file.endswith("daemon/pipeline.py"):
        return "detectors (judge / Analyzer.assess)"
    if callee_file.endswith("daemon/language.py"):
        return "language id"
    if callee_file.endswith("daemon/drafts.py"):
        return "render draft (jinja2 + email)"
    if callee_file.endswith(("daemon/state.py", "contextlib.py")):
        return "state (SQLite)"
    if "structlog" in callee_file:
        return "logging (structlog JSON)"
    return f"other ({_short(callee_file)}:{func})"


# -- py-spy -------------------------------------------------------------------------
def pyspy_binary() -> str | None:
    for candidate in (os.environ.get("PYSPY"), shutil.which("py-spy"), "/tmp/pyspy/bin/py-spy"):
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def _frame(text: str) -> tuple[str, str]:
    """'Poller._draft (daemon/poller.py:431)' -> ('daemon/poller.py', 'Poller._draft')."""
    name, _, where = text.rpartition(" (")
    return where.rstrip(")").rsplit(":", 1)[0], name


Seconds = defaultdict[str, float]


def pyspy_components(raw: str, rate_hz: int) -> Seconds:
    seconds: Seconds = defaultdict(float)
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        frames = [_frame(f) for f in stack.split(";")]
        files = [f for f, _ in frames]
        poller = [i for i, f in enumerate(files) if f.endswith("daemon/poller.py")]
        if poller and poller[-1] + 1 < len(frames):
            callee_file, callee_func = frames[poller[-1] + 1]
            component = classify(callee_file, callee_func, files[poller[-1] + 1 :])
        elif poller:
            component = "poller itself"
        elif any(name.endswith("_pollers") for _, name in frames):
            component = BUILD
        elif any(name.endswith("disconnect") for _, name in frames):
            component = "IMAP LOGOUT"
        else:
            component = STARTUP
        seconds[component] += int(count_text) / rate_hz
    return seconds


def profile_with_pyspy(binary: str, config: Path, out_dir: Path, rate_hz: int = 250) -> Seconds:
    raw_path = out_dir / "pyspy.txt"
    command = [
        binary,
        "record",
        "--idle",
        "--nonblocking",
        "--rate",
        str(rate_hz),
        "--format",
        "raw",
        "--output",
        str(raw_path),
        "--",
        str(ONPLATFORM),
        "poll-once",
        "--config",
        str(config),
    ]
    result = subprocess.run(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=False,
        timeout=1200,
    )
    if result.returncode != 0 or not raw_path.exists():
        raise RuntimeError(f"py-spy failed ({result.returncode}): {result.stderr.strip()[-400:]}")
    return pyspy_components(raw_path.read_text(), rate_hz)


# -- cProfile -----------------------------------------------------------------------
Key = tuple[str, int, str]


def profile_with_cprofile(config: Path, out_dir: Path) -> Seconds:
    from onplatform.daemon.cli import main

    profiler = cProfile.Profile()
    with (out_dir / "cprofile-stdout.jsonl").open("w") as out, contextlib.redirect_stdout(out):
        profiler.enable()
        try:
            main(["poll-once", "--config", str(config)])
        finally:
            profiler.disable()
    stats: dict[Key, tuple[int, int, float, float, dict[Key, tuple[int, int, float, float]]]]
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    seconds: Seconds = defaultdict(float)
    mailparser_from_parse = 0.0
    for (file, _line, func), (_cc, _nc, tottime, _ct, callers) in stats.items():
        short = _short(file)
        if short.endswith("daemon/poller.py"):
            seconds["poller itself"] += tottime
            continue
        for (caller_file, _cl, _cf), (_c1, _c2, _t, inclusive) in callers.items():
            if caller_file.endswith("daemon/poller.py"):
                seconds[classify(short, func, [])] += inclusive
            elif caller_file.endswith("daemon/notification.py") and "mailparser/" in file:
                mailparser_from_parse += inclusive
    # The poller calls parse_notification, which calls mail-parser: split that call.
    parse_total = seconds.pop("parse: headers, client words", 0.0)
    if parse_total or mailparser_from_parse:
        seconds["parse: mail-parser"] += mailparser_from_parse
    seconds["parse: headers, client words"] += max(0.0, parse_total - mailparser_from_parse)
    total = sum(s[3] for key, s in stats.items() if key[2] == "cmd_poll_once")
    seconds[STARTUP + " / other"] += max(0.0, total - sum(seconds.values()))
    return seconds


# -- the section ------------------------------------------------------------------------
def breakdown(config: Path, out_dir: Path, messages: int, wall_s: float | None = None) -> Section:
    """Profile one poll-once with `config` (state empty) and tabulate the components."""
    out_dir.mkdir(parents=True, exist_ok=True)
    binary = pyspy_binary()
    started = time.perf_counter()
    if binary is not None:
        seconds = profile_with_pyspy(binary, config, out_dir)
        how = f"py-spy --idle at 250 Hz on the real `onplatform poll-once` ({binary})"
    else:
        seconds = profile_with_cprofile(config, out_dir)
        how = "cProfile in-process (py-spy not found; cProfile inflates Python-heavy parts)"
    profiled_wall = time.perf_counter() - started
    total = sum(seconds.values())
    section = Section(f"Where time goes in one poll-once ({messages:,} client notifications)")
    for component, spent in sorted(seconds.items(), key=lambda item: -item[1]):
        if spent / max(total, 1e-9) < 0.002:
            continue
        section.rows.append(
            Row(
                "profile",
                component,
                f"{spent:.2f} s",
                f"{100 * spent / total:.1f} % of profiled total",
                "",
                None,
            )
        )
    section.notes.append(
        f"profiler: {how}; the profiled run took {profiled_wall:.1f} s wall, "
        f"{profiled_wall / messages * 1000:.2f} ms per message"
    )
    if wall_s is not None:
        section.notes.append(f"the same poll unprofiled took {wall_s:.1f} s wall")
    per_message = {k: v / messages * 1000 for k, v in seconds.items()}
    top = ", ".join(
        f"{k} {v:.2f} ms" for k, v in sorted(per_message.items(), key=lambda i: -i[1])[:5]
    )
    section.notes.append(f"per message: {top}")
    return section


def run(messages: int = 2_000) -> Section:
    batch = notifications(messages, tag="profile")
    with private_dovecot() as (server, endpoint), workdir("profile") as work:
        load_maildir(server, "INBOX", batch.raws)
        # One process: py-spy follows the daemon, not worker processes.
        config = write_config(work, endpoint, extra=("[detectors]", "workers = 0"))
        say(f"profiling one poll-once over {messages} messages")
        return breakdown(config, work / "profile", messages)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=2_000)
    args = parser.parse_args()
    run(args.messages).print()


if __name__ == "__main__":
    main()
