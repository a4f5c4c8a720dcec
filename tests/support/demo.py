"""`make demo`: a private Dovecot, a handful of Upwork mails, one real poll, then the results.

Runs the installed ``onplatform poll-once`` against the private server and
shows the alerts it logged and the drafts it left in the Drafts folder. The
server is stopped at the end, whatever happens.
"""

from __future__ import annotations

import argparse
import email
import json
import os
import shutil
import subprocess
import sys
from email.policy import default
from pathlib import Path

from imapclient import IMAPClient

from tests.support.dovecot import PrivateDovecot
from tests.support.mail import client_mail, ordinary_mail, platform_mail

FIXTURES = Path(__file__).parents[1] / "fixtures" / "mail"
SAMPLES = [
    (
        1101,
        "Maria Lopez",
        "Loved your portfolio! Upwork takes a big cut, so could I pay you "
        "via PayPal directly and we split the savings?",
    ),
    (
        1102,
        "Chen Wei",
        "Great, the brief is attached. Can you add me on WhatsApp at "
        "+1 555 010 7788 so we can move faster?",
    ),
    (
        1103,
        "Talent Team",
        "Congratulations, you passed! Our HR manager will interview you on "
        "Telegram. You will buy the work laptop from our approved vendor and we reimburse you.",
    ),
    (
        1104,
        "Olga Ivanova",
        "Thanks for the mock-ups. I'll fund the second milestone through "
        "Upwork today; can you start on the checkout page with Stripe?",
    ),
    (
        1105,
        "Ann Lee",
        "Just wondering, would it be possible to pay you outside Upwork for the next phase?",
    ),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/onplatform-demo"))
    args = parser.parse_args()
    if args.dir.exists():
        shutil.rmtree(args.dir)
    args.dir.mkdir(parents=True)
    os.chmod(args.dir, 0o755)
    server = PrivateDovecot(args.dir / "dovecot")
    endpoint = server.start()
    try:
        for room, name, text in SAMPLES:
            server.append("INBOX", client_mail(room, name, text, f"<demo-{room}@upwork.test>"))
        server.append(
            "INBOX", platform_mail("<demo-p@upwork.test>", "You received $450 for the milestone.")
        )
        server.append("INBOX", ordinary_mail(7))
        server.append("INBOX", (FIXTURES / "phishing_account_suspended.eml").read_bytes())
        secret = args.dir / "password"
        secret.write_text(endpoint.password + "\n")
        os.chmod(secret, 0o600)
        config = args.dir / "config.toml"
        config.write_text(
            f'[[accounts]]\nname = "demo"\nhost = "{endpoint.host}"\nport = {endpoint.port}\n'
            f'tls = "none"\nusername = "{endpoint.username}"\npassword_file = "{secret}"\n\n'
            f'[state]\npath = "{args.dir / "state.sqlite3"}"\n\n'
            '[drafts]\nfreelancer_name = "Sam Carter"\nsignature = "Sam Carter · web developer"\n'
            '\n[logging]\nformat = "json"\n'
        )
        os.chmod(config, 0o600)
        command = [
            str(Path(sys.executable).parent / "onplatform"),
            "poll-once",
            "--config",
            str(config),
        ]
        print(f"$ {' '.join(command)}")
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            print(done.stdout + done.stderr, file=sys.stderr)
            return done.returncode
        show_events(done.stdout)
        show_drafts(endpoint.host, endpoint.port, endpoint.username, endpoint.password)
    finally:
        server.stop()
    return 0


def show_events(output: str) -> None:
    events = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    print("\n=== Alerts ===")
    for event in events:
        if event["event"] == "alert.raised":
            print(
                f"- {event['client']}: {event['category']} (score {event['score']}, "
                f"action {event['action']})"
            )
            print(f"    codes: {', '.join(event['codes'])}")
            print(f"    evidence: {' | '.join(event['evidence'])}")
    for event in events:
        if event["event"] == "poll.finished":
            print(
                f"\npoll.finished: {event['messages']} messages, {event['alerts']} alerts, "
                f"{event['drafts']} drafts in {event['duration_ms']} ms"
            )


def show_drafts(host: str, port: int, username: str, password: str) -> None:
    client = IMAPClient(host, port=port, ssl=False, timeout=10)
    client.login(username, password)
    try:
        client.select_folder("Drafts", readonly=True)
        uids = client.search(["ALL"])
        fetched = client.fetch(uids, ["BODY.PEEK[]"]) if uids else {}
        print(f"\n=== Drafts folder: {len(fetched)} drafts ===")
        for _, data in sorted(fetched.items()):
            message = email.message_from_bytes(data[b"BODY[]"], policy=default)
            print("-" * 72)
            for header in ("To", "Subject", "In-Reply-To", "X-Onplatform-Action"):
                print(f"{header}: {message[header]}")
            print()
            print(message.get_content().rstrip())  # type: ignore[attr-defined]
        print("-" * 72)
    finally:
        client.logout()


if __name__ == "__main__":
    sys.exit(main())
