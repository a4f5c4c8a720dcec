"""Builds Upwork-like notification mails for tests, the demo and benchmarks."""

from __future__ import annotations

from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formatdate

FOOTER = (
    "Stay safe: never pay or accept payment outside Upwork, for example through PayPal,\n"
    "a bank wire, CashApp or a crypto wallet, and keep your chats on Upwork, not Telegram.\n"
    "\n"
    "You are receiving this email because message notifications are on for your account.\n"
    "© 2026 Upwork® Global Inc."
)


def client_mail(
    room: int,
    name: str,
    text: str,
    message_id: str,
    subject: str | None = None,
    *,
    html: bool = False,
    date: str | None = None,
) -> bytes:
    """A client's message as Upwork would mail it, safety tips and footer included."""
    message = EmailMessage(policy=SMTP)
    message["From"] = f"{name} <room_{room}@upwork.com>"
    message["To"] = "freelancer@example.test"
    message["Subject"] = subject or f"New message from {name}"
    message["Date"] = date or formatdate(localtime=False)
    message["Message-ID"] = message_id
    plain = f"{name} sent you a message:\n\n{text}\n\nReply: https://www.upwork.com/ab/messages\n\n{FOOTER}\n"
    message.set_content(plain)
    if html:
        paragraphs = "".join(f"<p>{line}</p>" for line in text.split("\n") if line)
        message.add_alternative(
            f"<html><body><h2>{name} sent you a message:</h2>{paragraphs}"
            f"<p><a href='https://www.upwork.com/'>Reply</a></p>"
            f"<div class='footer'><p>{FOOTER.replace(chr(10), '<br>')}</p></div></body></html>",
            subtype="html",
        )
    return message.as_bytes()


def platform_mail(message_id: str, text: str) -> bytes:
    message = EmailMessage(policy=SMTP)
    message["From"] = "Upwork <donotreply@upwork.com>"
    message["To"] = "freelancer@example.test"
    message["Subject"] = "Your weekly earnings summary"
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = message_id
    message.set_content(f"{text}\n\n{FOOTER}\n")
    return message.as_bytes()


def ordinary_mail(index: int) -> bytes:
    message = EmailMessage(policy=SMTP)
    message["From"] = f"Newsletter <news{index % 7}@shop.example.com>"
    message["To"] = "freelancer@example.test"
    message["Subject"] = f"Offer number {index}"
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = f"<news-{index}@shop.example.com>"
    message.set_content("Our autumn sale is on. Pay with PayPal or card at checkout.\n")
    return message.as_bytes()
