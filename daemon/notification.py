"""Raw bytes of one mail -> a Notification: who sent it and the client's own words.

The only module that imports mail-parser. Upwork's layout of message
notifications is not public, so the isolation of the client's words is
tolerant: it drops lines that look like Upwork's header, call-to-action,
safety tips and footer, and quoted history, wherever they stand.
"""

from __future__ import annotations

import datetime
import email.errors
import hashlib
import html
import logging
import re
from dataclasses import dataclass
from email.header import decode_header, make_header
from email.message import Message
from email.utils import getaddresses, parseaddr, parsedate_to_datetime
from html.parser import HTMLParser
from typing import Any, Literal

import mailparser

from onplatform.daemon.errors import MessageError

# mail-parser logs what it fails to decode with the text itself ("Failed decoding header
# part: <subject>"); nothing is configured for the stdlib's logging, so that would reach
# stderr and the journal. Its problems reach us as defects and MessageError instead.
_MAILPARSER_LOG = logging.getLogger("mailparser")
_MAILPARSER_LOG.addHandler(logging.NullHandler())
_MAILPARSER_LOG.propagate = False

SenderKind = Literal["client", "platform", "phishing", "other"]

MAX_WORDS_CHARS = 20_000
_ROOM_ADDRESS = re.compile(r"^room_\d+@upwork\.com$", re.IGNORECASE)
_DEFECT_NAME = re.compile(r"\b[A-Z][A-Za-z]+Defect\b")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_SPACES = re.compile(r"\s{2,}")
_VIA_UPWORK = re.compile(r"\s*[\(\[]?\s*(via|from|on) upwork\s*[\)\]]?\s*$", re.IGNORECASE)
_LOOKS_LIKE_UPWORK = re.compile(r"up[\W_]*(w|vv|\\/\\/)[\W_]*[o0][\W_]*r[\W_]*k", re.IGNORECASE)


@dataclass(frozen=True)
class Notification:
    kind: SenderKind
    source_key: str
    """Stable identity of the mail: its Message-ID, else a digest of its bytes."""
    message_id: str | None
    subject: str
    sender_address: str
    sender_name: str
    client_name: str | None
    room_address: str | None
    reply_address: str
    """Where a reply goes: the room address, else Reply-To, else From."""
    references: tuple[str, ...]
    client_words: str
    defects: tuple[str, ...] = ()
    date: datetime.datetime | None = None
    """When the client wrote, from the Date header (UTC), if it is readable."""

    @property
    def client_key(self) -> str:
        return (self.room_address or self.reply_address or self.sender_address).lower()


def single_line(value: str, limit: int = 200) -> str:
    """Header-safe text: no CR, LF or other control characters, bounded length."""
    cleaned = _CONTROL.sub(" ", value).strip()
    cleaned = _SPACES.sub(" ", cleaned)
    return cleaned[:limit]


def is_upwork_domain(address: str) -> bool:
    domain = address.rpartition("@")[2].lower().rstrip(".")
    return domain == "upwork.com" or domain.endswith(".upwork.com")


def classify_sender(from_address: str, from_name: str, reply_to: str) -> SenderKind:
    if _ROOM_ADDRESS.match(from_address) or (
        is_upwork_domain(from_address) and _ROOM_ADDRESS.match(reply_to)
    ):
        return "client"
    if is_upwork_domain(from_address):
        return "platform"
    if _LOOKS_LIKE_UPWORK.search(from_name) or _LOOKS_LIKE_UPWORK.search(
        from_address.rpartition("@")[2]
    ):
        return "phishing"
    return "other"


OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


_DMARC_FAIL = re.compile(r"\bdmarc\s*=\s*fail\b[^;]*header\.from\s*=\s*([\w.-]+)", re.IGNORECASE)


def spoofed_upwork(results: list[Any] | None) -> bool:
    """Did the receiving server's DMARC check fail for an upwork.com From?

    Only the topmost Authentication-Results header is read: the receiving
    server adds it last, and any below it could have been written by the sender.
    """
    if not results:
        return False
    match = _DMARC_FAIL.search(_CONTROL.sub(" ", str(results[0])))
    return match is not None and is_upwork_domain("x@" + match.group(1))


class _Parser(mailparser.MailParser):  # type: ignore[misc]  # mail-parser has no type hints
    """mail-parser, minus the `mail` and `mail_partial` summaries that nothing here reads,
    and minus its diagnostics of address headers, which this module parses itself.

    Its constructor builds both dicts by decoding every header and joining
    every body: about a sixth of a parse on a 3 KB notification, for output
    that is thrown away. Defects, subject and the message object come from
    the steps before, which run unchanged; `from_bytes` keeps its guard
    against deep nesting. Should mail-parser stop calling this hook, the
    override is simply unused and parsing is as before, only slower.
    """

    def _make_mail(self, complete: bool = True) -> dict[str, Any]:
        return {}

    def _build_header_index(self) -> dict[str, list[Any]]:
        """The header index mail-parser reads, without the address headers.

        This module reads From and Reply-To itself (`_first_address`); mail-parser's
        own pass over every address header (a character scanner, then the stdlib's
        `getaddresses`, per address) is about a quarter of a parse, and it only adds
        AddressHeaderDefect to the defects log. The message object keeps every header.
        """
        index: dict[str, list[Any]] = super()._build_header_index()
        for name in _ADDRESS_HEADERS:
            index.pop(name, None)
        return index


_ADDRESS_HEADERS = ("bcc", "cc", "delivered-to", "from", "reply-to", "to")


def parse_notification(raw: bytes) -> Notification:
    """Parse one mail; raises MessageError, and nothing else, when it cannot be read."""
    try:
        return _parse(raw)
    except MessageError:
        raise
    except Exception as err:  # the boundary: no library error may stop a whole poll
        raise MessageError(f"unreadable mail: {type(err).__name__}") from err


def _parse(raw: bytes) -> Notification:
    if raw.startswith(OLE_MAGIC):
        # mail-parser would need an extra dependency for these; nothing on IMAP is one.
        raise MessageError("an Outlook .msg file, not a MIME mail: save it as .eml")
    try:
        mail = _Parser.from_bytes(raw)
        message: Message = mail.message
        defects = tuple(sorted(set(_DEFECT_NAME.findall(str(mail.defects or "")))))
        subject = single_line(str(mail.subject or ""), 300)
    except Exception as err:  # mail-parser raises bare exceptions on broken input
        raise MessageError(f"unreadable mail: {type(err).__name__}") from err
    from_name, from_address = _first_address(message.get_all("From") or [])
    _, reply_to = _first_address(message.get_all("Reply-To") or [])
    kind = classify_sender(from_address, from_name, reply_to)
    if kind in {"client", "platform"} and spoofed_upwork(message.get_all("Authentication-Results")):
        kind = "phishing"  # an upwork.com sender that upwork.com's own DMARC disowns
    room_address = None
    if kind == "client":
        room_address = from_address if _ROOM_ADDRESS.match(from_address) else reply_to
        room_address = room_address.lower()
    message_id = _message_id(message.get("Message-ID"))
    references = tuple(_CONTROL.sub(" ", str(message.get("References") or "")).split())
    if message_id and message_id not in references:
        references = (*references, message_id)
    client_name = _VIA_UPWORK.sub("", from_name).strip(" \"'") or None
    words = ""
    if kind != "platform":
        plain, markup = _bodies(message)
        body = plain if plain.strip() else html_to_text(markup)
        words = isolate_client_words(body, client_name)[:MAX_WORDS_CHARS]
    return Notification(
        kind=kind,
        source_key=message_id or "sha256:" + hashlib.sha256(raw).hexdigest(),
        message_id=message_id,
        subject=subject,
        sender_address=from_address,
        sender_name=single_line(from_name),
        client_name=single_line(client_name) if client_name else None,
        room_address=room_address,
        reply_address=room_address or reply_to or from_address,
        references=references[-20:],
        client_words=words,
        defects=defects,
        date=_date(message.get("Date")),
    )


def _first_address(values: list[Any]) -> tuple[str, str]:
    # Addresses are split on the raw header, and only the display name is
    # decoded after: an encoded word can hide a CR/LF or a second address.
    raw = [str(v) for v in values]
    plain = _PLAIN_ADDRESS.fullmatch(raw[0]) if len(raw) == 1 else None
    if plain is not None:  # "Name <a@b.c>", as Upwork writes it: what getaddresses gives
        name = " ".join(plain.group(1).split())
        return single_line(_decode_header(name)), single_line(plain.group(2)).lower()
    for name, address in getaddresses(raw):
        if "@" in address:
            return single_line(_decode_header(name)), single_line(address).lower()
    if raw:
        name, address = parseaddr(raw[0])
        return single_line(_decode_header(name)), single_line(address).lower()
    return "", ""


_PLAIN_ADDRESS = re.compile(
    r"[ \t]*([A-Za-z0-9 \t=?_'!#$%&*+/^`{|}~-]*)"
    r"<([A-Za-z0-9_+\-]+(?:\.[A-Za-z0-9_+\-]+)*@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+)>[ \t]*"
)
"""One address with a display name of plain atoms (encoded words included) and no
comment, quote or group: the common case, read without the stdlib's address parser."""


def _decode_header(value: str) -> str:
    try:
        return str(make_header(decode_header(value)))
    except (ValueError, LookupError, UnicodeError, email.errors.MessageError):
        # A broken encoded word is shown as written rather than losing the mail.
        return value


def _date(value: Any) -> datetime.datetime | None:
    if value is None:
        return None
    try:
        parsed = parsedate_to_datetime(str(value))
    except (TypeError, ValueError, IndexError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.UTC)
    return parsed.astimezone(datetime.UTC)


def _message_id(value: Any) -> str | None:
    if value is None:
        return None
    match = re.search(r"<[^<>\s]{1,250}>", str(value))
    return match.group(0) if match else None


def _decode_part(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset() or "utf-8"
    for candidate in (charset, "utf-8"):
        try:
            return payload.decode(candidate)
        except (LookupError, UnicodeDecodeError):
            continue
    # Undecodable bytes are replaced, never dropped, so an obfuscated detail stays visible.
    return payload.decode(
        "cp1252" if charset.lower() in {"us-ascii", "utf-8"} else "utf-8", errors="replace"
    )


def _bodies(message: Message) -> tuple[str, str]:
    plain: list[str] = []
    markup: list[str] = []
    for part in message.walk():
        if part.is_multipart() or part.get_content_disposition() == "attachment":
            continue
        content_type = part.get_content_type()
        if content_type == "text/plain":
            plain.append(_decode_part(part))
        elif content_type == "text/html":
            markup.append(_decode_part(part))
    return "\n".join(plain), "\n".join(markup)


class _TextExtractor(HTMLParser):
    _BLOCKS = frozenset(
        {
            "p",
            "div",
            "br",
            "tr",
            "li",
            "h1",
            "h2",
            "h3",
            "h4",
            "h5",
            "h6",
            "table",
            "blockquote",
            "section",
            "article",
            "header",
            "footer",
            "hr",
        }
    )
    _SKIP = frozenset({"script", "style", "head", "title", "template"})
    _VOID = frozenset({"br", "hr", "img", "meta", "link", "input", "col", "area", "base", "wbr"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.pieces: list[str] = []
        self._stack: list[tuple[str, bool]] = []

    def _hidden(self) -> bool:
        return any(hidden for _, hidden in self._stack)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._BLOCKS:
            self.pieces.append("\n")
        if tag in self._VOID:
            return
        style = " ".join((v or "") for k, v in attrs if k == "style").replace(" ", "").lower()
        hidden = (
            tag in self._SKIP
            or "display:none" in style
            or any(k == "hidden" for k, _ in attrs)
            or "max-height:0" in style
        )
        if tag == "blockquote":
            hidden = True  # quoted history
        self._stack.append((tag, hidden))

    def handle_endtag(self, tag: str) -> None:
        for index in range(len(self._stack) - 1, -1, -1):
            if self._stack[index][0] == tag:
                del self._stack[index:]
                break
        if tag in self._BLOCKS:
            self.pieces.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._hidden():
            self.pieces.append(data)


def html_to_text(markup: str) -> str:
    if not markup.strip():
        return ""
    extractor = _TextExtractor()
    try:
        extractor.feed(markup)
        extractor.close()
    except (AssertionError, ValueError):  # html.parser gives up on some broken markup
        return html.unescape(re.sub(r"<[^>]*>", " ", markup))
    text = "".join(extractor.pieces).replace("\xa0", " ")
    return re.sub(r"[ \t]+\n", "\n", text)


# Lines that belong to Upwork, not to the client. Matched case-insensitively
# at the start of a stripped line. Header and call-to-action lines are dropped
# wherever they stand; a footer marker ends the client's words once some
# words have been seen.
_HEADER_LINE = re.compile(
    r"^(you have (a |\d+ )?(new|unread) messages?|new messages? (from|about|in)|"
    r"attachments?:|\S+\.(pdf|docx?|xlsx?|png|jpe?g|zip)"
    r"( \(.{1,40}\))?$|"
    r"(view|read|open|see) (the |this |full )?(message|messages|conversation)|reply( now)?$|"
    r"reply (on|in) upwork|respond (now|on upwork)$|go to messages|open (in )?upwork|"
    r"upwork$|hi [^,]{1,40},$|hello [^,]{1,40},$|job:|re: .{0,120}$|"
    r"(message|messages) about|\d{1,2}:\d{2}\s*(am|pm)?$|"
    r"(mon|tue|wed|thu|fri|sat|sun)[a-z]*,? .{0,40}\d{1,2}:\d{2})",
    re.IGNORECASE,
)
_NAMED_HEADER_LINE = re.compile(
    r"^(.{1,80} (sent you|has sent you|left you|shared) (a |an |\d+ )?(new )?"
    r"(messages?|files?|attachments?|links?)|.{1,80} wrote:$)",
    re.IGNORECASE,
)
"""Header lines that start with a name: tried only on lines holding one of their
verbs, since `.{1,80}` backtracks over every other line."""


def _is_header_line(line: str) -> bool:
    if _HEADER_LINE.match(line):
        return True
    folded = line.casefold()  # as IGNORECASE reads letters: "ſ" is an "s"
    # Spelled out: a generator over the four words took a third longer per line.
    if " sent you" in folded or " left you" in folded or " shared" in folded:
        return bool(_NAMED_HEADER_LINE.match(line))
    return " wrote:" in folded and bool(_NAMED_HEADER_LINE.match(line))


_FOOTER_LINE = re.compile(
    r"^(stay safe|safety tips?|(a |quick )?tips? for (staying|working) safe|for your safety|"
    r"to protect (yourself|your account)|protect yourself|keep (yourself|your account) safe|"
    r"never (pay|accept|share|send|give|communicate)|"
    r"upwork will never|reminder: |important: (keep|never|stay)|beware|for your protection|"
    r"to reply|reply: |reply here|reply on upwork|report (anyone|this|suspicious)|"
    r"you('re| are) receiving this|this (email|e-mail|message) was sent|"
    r"(to )?unsubscribe|manage (your )?(email )?(notifications|notification settings|preferences)|"
    r"(change|update|edit) (your )?(email |notification )?(settings|preferences)|"
    r"notification settings|"
    r"upwork (global )?inc|©|\(c\) \d{4}|copyright|privacy policy|terms of service|"
    r"(reply|respond) (to this (email|e-mail|message)|directly to this)|"
    r"download the upwork app|get the upwork app|sent from upwork|"
    r"-{2,}\s*(original message|forwarded message)|_{5,}|-{5,}|={5,})",
    re.IGNORECASE,
)
_QUOTE_HEADER = re.compile(
    r"^(on .{3,200}(wrote|escribi[oó]|a [ée]crit|schrieb|ha scritto|escreveu|napisał|написал|"
    r"написала|yazd[ıi]|menulis|写道)\s*:?$|le .{3,200} a [ée]crit\s*:?$|"
    r"el .{3,200} escribi[oó]:?$|"
    r"am .{3,200} schrieb .{0,80}:?$|from: .{1,200}$|sent: .{1,80}$|"
    r"earlier in (this|the) conversation|previous messages?:?$|conversation history)",
    re.IGNORECASE,
)


_OWN_BLOCK = re.compile(
    r"^(.{1,60}\((you|du|vous|tú|voce|você|вы|ty)\)|you\s*[·•|-]\s*.{0,40})", re.IGNORECASE
)


def isolate_client_words(body: str, client_name: str | None = None) -> str:
    """Keep only what the client wrote in this message."""
    name = (client_name or "").strip().lower()
    kept: list[str] = []
    own_words = False  # inside a block the freelancer wrote, e.g. "Sam Carter (you)"
    for raw_line in body.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = raw_line.strip()
        if _OWN_BLOCK.match(line):
            own_words = True
            continue
        if own_words:
            if name and line.lower().startswith(name):
                own_words = False
            else:
                continue
        if not line:
            if kept and kept[-1] != "":
                kept.append("")
            continue
        if line.startswith(">"):
            continue  # quoted history
        if _QUOTE_HEADER.match(line):
            if any(k for k in kept):
                break
            continue
        if _FOOTER_LINE.match(line):
            if any(k for k in kept):
                break
            continue
        if _is_header_line(line) or (name and line.lower().rstrip(":") == name):
            continue
        if name and line.lower().startswith(name) and re.search(r"\d{1,2}:\d{2}", line):
            continue  # "Maria Gonzalez 10:32 AM"
        kept.append(line)
    return "\n".join(kept).strip()
