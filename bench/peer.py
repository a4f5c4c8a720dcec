"""Peer: imapfilter scanning the same mailbox for payment and contact keywords.

The same N client notifications as bench.backfill (same generator, same seed) sit in
INBOX. imapfilter (Debian package ``imapfilter``, installed with apt-get when
missing and possible) selects every message and keeps those whose body matches one
regular expression of payment and contact keywords taken from the product's
lexicon (``match_body``: it fetches each body and matches it itself); a second
imapfilter run asks the server instead (``contain_body``, one SEARCH BODY per
keyword). onplatform's figure is its backfill ``poll-once`` over the same mailbox,
measured here or handed in by bench.run_all. Prints the ratio.

Run: ``.venv/bin/python -m bench.peer [--messages 10000]``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from bench.common import (
    Row,
    Section,
    load_maildir,
    notifications,
    private_dovecot,
    rate,
    run_cli,
    say,
    workdir,
    write_config,
)
from tests.support.dovecot import DovecotEndpoint

# The named channels of the product's lexicon (detectors/lexicons/en.toml,
# groups pay_channel and chat_channel, plus the contact items), as plain words.
PAYMENT = (
    "paypal", "payoneer", "wise", "transferwise", "venmo", "zelle", "cash ?app",
    "western union", "moneygram", "skrill", "revolut", "bank transfer", "wire transfer",
    "iban", "swift", "crypto", "usdt", "bitcoin", "btc", "binance", "gift card",
)  # fmt: skip
CONTACT = (
    "telegram", "whats ?app", "skype", "discord", "signal", "wechat", "viber",
    "gmail", "e-?mail", "phone", "my number", "call me", "text me",
)  # fmt: skip
KEYWORDS = PAYMENT + CONTACT


@dataclass
class FilterRun:
    seconds: float
    hits: int
    ok: bool
    detail: str


def imapfilter_binary() -> str | None:
    found = shutil.which("imapfilter")
    if found:
        return found
    if os.getuid() != 0 or shutil.which("apt-get") is None:
        return None
    say("peer: installing imapfilter with apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "imapfilter"],
    ):
        try:
            subprocess.run(command, env=env, capture_output=True, check=False, timeout=300)
        except (OSError, subprocess.TimeoutExpired):
            return None
    return shutil.which("imapfilter")


def _lua_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def lua_config(endpoint: DovecotEndpoint, server_side: bool) -> str:
    account = (
        f"local account = IMAP {{ server = {_lua_string(endpoint.host)}, port = {endpoint.port}, "
        f"username = {_lua_string(endpoint.username)}, "
        f"password = {_lua_string(endpoint.password)} }}"
    )
    if server_side:
        words = [re.sub(r" \?", " ", k).replace("-?", "-") for k in KEYWORDS]
        union = " + ".join(f"all:contain_body({_lua_string(w)})" for w in words)
        search = f"local hits = {union}"
    else:
        pattern = r"(?i)\b(" + "|".join(KEYWORDS) + r")\b"
        search = f"local hits = all:match_body({_lua_string(pattern)})"
    return "\n".join(
        [
            "options.timeout = 300",
            "options.subscribe = false",
            "options.create = false",
            "options.starttls = false",
            "options.info = false",
            account,
            "local all = account.INBOX:select_all()",
            search,
            'print("HITS " .. #hits .. " OF " .. #all)',
            "",
        ]
    )


def run_imapfilter(
    binary: str, endpoint: DovecotEndpoint, work: Path, server_side: bool
) -> FilterRun:
    name = "contain" if server_side else "match"
    config = work / f"{name}.lua"
    config.write_text(lua_config(endpoint, server_side))
    config.chmod(0o600)
    home = work / f"home-{name}"
    home.mkdir(exist_ok=True)
    started = time.perf_counter()
    try:
        result = subprocess.run(
            [binary, "-c", str(config)],
            capture_output=True,
            text=True,
            check=False,
            timeout=900,
            env={**os.environ, "HOME": str(home)},
        )
    except subprocess.TimeoutExpired:
        return FilterRun(time.perf_counter() - started, 0, False, "timed out after 900 s")
    seconds = time.perf_counter() - started
    match = re.search(r"HITS (\d+) OF (\d+)", result.stdout)
    if result.returncode != 0 or match is None:
        return FilterRun(seconds, 0, False, (result.stderr or result.stdout).strip()[-200:])
    return FilterRun(seconds, int(match.group(1)), True, f"{match.group(2)} selected")


def run(
    messages: int = 10_000, onplatform_rate: float | None = None, server_search: bool = True
) -> Section:
    section = Section(f"Peer: imapfilter vs onplatform over the same {messages:,} notifications")
    binary = imapfilter_binary()
    if binary is None:
        print("imapfilter: unavailable")
        section.rows.append(Row("peer", "imapfilter", "unavailable", "apt-get install failed"))
        return section
    version = subprocess.run([binary, "-V"], capture_output=True, text=True, check=False)
    batch = notifications(messages)
    with private_dovecot() as (server, endpoint), workdir("peer") as work:
        load_maildir(server, "INBOX", batch.raws)
        say("peer: imapfilter match_body")
        client_side = run_imapfilter(binary, endpoint, work, server_side=False)
        server_side: FilterRun | None = None
        if server_search:
            say("peer: imapfilter contain_body")
            server_side = run_imapfilter(binary, endpoint, work, server_side=True)
        source = "bench.backfill in this run"
        if onplatform_rate is None:
            say("peer: onplatform poll-once")
            config = write_config(work, endpoint)
            result = run_cli(["poll-once", "--config", str(config)], work / "poll", timeout=1800)
            finished = result.require("poll.finished")
            onplatform_rate = rate(messages, result.wall_s)
            source = (
                f"poll-once here: {finished['alerts']} alerts, {finished['drafts']} drafts, "
                f"{result.wall_s:.1f} s"
            )
    runs = [("imapfilter match_body (client-side regex)", client_side)]
    if server_side is not None:
        runs.append((f"imapfilter contain_body x{len(KEYWORDS)} (server SEARCH BODY)", server_side))
    for label, filter_run in runs:
        if not filter_run.ok:
            section.rows.append(Row("peer", label, "failed", filter_run.detail))
            continue
        filter_rate = rate(messages, filter_run.seconds)
        section.rows.append(
            Row(
                "peer",
                label,
                f"{filter_rate:,.0f} msg/s ({filter_run.seconds:.1f} s)",
                f"{filter_run.hits:,} hits of {messages:,} (flagged by text: {batch.flagged:,})",
            )
        )
        section.rows.append(
            Row(
                "peer",
                f"onplatform / {label.split(' (')[0]}",
                f"{onplatform_rate / filter_rate:.2f}x",
                f"onplatform {onplatform_rate:,.0f} msg/s end to end",
            )
        )
    section.notes += [
        f"{(version.stdout or version.stderr or binary).strip().splitlines()[0]}; "
        f"{len(KEYWORDS)} keywords from the product's lexicon (payment and contact channels)",
        f"onplatform figure: {source}",
        "imapfilter matches the raw body (quoted-printable, with Upwork's footer naming PayPal "
        "and Telegram), so its hits are not comparable to onplatform's alerts; only the speed is",
    ]
    return section


def main() -> None:
    parser = argparse.ArgumentParser(description="imapfilter vs onplatform on the same mailbox")
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument(
        "--no-server-search", action="store_true", help="skip the contain_body (SEARCH BODY) run"
    )
    args = parser.parse_args()
    run(args.messages, server_search=not args.no_server_search).print()


if __name__ == "__main__":
    main()
