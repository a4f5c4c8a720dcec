"""Reply drafts: the text from a Jinja2 template, the headers from the client's mail.

The only module that imports jinja2. Every value that comes from the client
(name, subject, addresses, ids) passes through ``single_line`` before it
reaches a header, and ``To:`` can only be the room address or the sender.
"""

from __future__ import annotations

import quopri
import re
from dataclasses import dataclass
from email.header import Header
from email.utils import formataddr, formatdate, make_msgid, parseaddr
from functools import lru_cache
from importlib import resources
from pathlib import Path

import jinja2

from onplatform.config.schema import DraftSettings
from onplatform.daemon.errors import ConfigError, DraftError
from onplatform.daemon.notification import Notification, single_line

SOURCE_HEADER = "X-Onplatform-Source"
ACTION_HEADER = "X-Onplatform-Action"
_ADDRESS = re.compile(r"^[A-Za-z0-9._%+\-]{1,64}@[A-Za-z0-9.\-]{1,253}\.[A-Za-z]{2,63}$")
_REPLY_PREFIX = re.compile(r"^\s*((re|fwd?|aw|sv|vs|rv|antw)\s*(\[\d+\])?\s*:\s*)+", re.IGNORECASE)
REPLY_ACTIONS = ("decline", "encourage", "report")


@dataclass(frozen=True)
class Draft:
    source_key: str
    action: str
    language: str
    to_address: str
    subject: str
    body: str
    raw: bytes


class DraftRenderer:
    def __init__(self, settings: DraftSettings) -> None:
        self.settings = settings
        loaders: list[jinja2.BaseLoader] = []
        if settings.templates_dir is not None:
            if not settings.templates_dir.is_dir():
                raise ConfigError(
                    f"drafts.templates_dir: {settings.templates_dir} is not a directory"
                )
            loaders.append(jinja2.FileSystemLoader(str(settings.templates_dir)))
        builtin = Path(str(resources.files("onplatform.templates")))
        loaders.append(jinja2.FileSystemLoader(str(builtin)))
        self._env = jinja2.Environment(
            loader=jinja2.ChoiceLoader(loaders),
            autoescape=jinja2.select_autoescape(["html", "htm", "xml"]),
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True,
            auto_reload=False,  # templates are read again on SIGHUP, with the config
        )
        self._templates: dict[tuple[str, str], jinja2.Template] = {}
        self.check()

    def check(self) -> None:
        """Fail at start, not at the first alert, when a template is broken."""
        for action in REPLY_ACTIONS:
            try:
                self._template(action, self.settings.default_language)
            except jinja2.TemplateError as err:
                raise ConfigError(f"templates: {action}: {err}") from err

    def languages(self, action: str) -> list[str]:
        names = self._env.list_templates(filter_func=lambda n: n.startswith(action + "."))
        return sorted({name.split(".")[1] for name in names})

    def _template(self, action: str, language: str) -> jinja2.Template:
        """The template for an action in a language, falling back; looked up once."""
        found = self._templates.get((action, language))
        if found is None:
            found = self._templates[action, language] = self._find_template(action, language)
        return found

    def _find_template(self, action: str, language: str) -> jinja2.Template:
        for candidate in (language, self.settings.default_language, "en"):
            try:
                return self._env.get_template(f"{action}.{candidate}.txt.j2")
            except jinja2.TemplateNotFound:
                continue
        raise jinja2.TemplateNotFound(f"{action}.en.txt.j2")

    def render_body(self, action: str, language: str, client_name: str | None) -> tuple[str, str]:
        """The reply text and the language of the template actually used."""
        try:
            template = self._template(action, language)
            body = template.render(
                client_name=_first_name(client_name),
                freelancer_name=self.settings.freelancer_name,
                signature=self.settings.signature,
            )
        except jinja2.TemplateError as err:
            raise DraftError(f"template for {action!r} failed: {err}") from err
        used = (template.name or "").split(".")[1] if template.name else language
        return body, used

    def build(
        self, notification: Notification, action: str, language: str, from_address: str
    ) -> Draft:
        to_address = notification.room_address or notification.reply_address
        if not _ADDRESS.match(to_address):
            raise DraftError("no valid reply address in the client's mail")
        body, used_language = self.render_body(action, language, notification.client_name)
        subject = "Re: " + _REPLY_PREFIX.sub("", single_line(notification.subject, 200))
        domain = from_address.rpartition("@")[2] or "onplatform.invalid"
        headers = [
            ("From", _address_header(from_address)),
            ("To", to_address),
            ("Subject", _unstructured("Subject", subject.strip())),
            ("Date", formatdate(localtime=False)),
            ("Message-ID", make_msgid("onplatform", domain=single_line(domain, 100))),
        ]
        if notification.message_id:
            headers.append(("In-Reply-To", _unstructured("In-Reply-To", notification.message_id)))
        if notification.references:
            references = " ".join(notification.references)
            headers.append(("References", _unstructured("References", references)))
        headers.append((SOURCE_HEADER, _unstructured(SOURCE_HEADER, notification.source_key)))
        headers.append((ACTION_HEADER, action))
        return Draft(
            notification.source_key,
            action,
            used_language,
            to_address,
            subject.strip(),
            body,
            _serialize(headers, body),
        )


def _serialize(headers: list[tuple[str, str]], body: str) -> bytes:
    """A text/plain message with CRLF line ends, written directly.

    The email package's header registry and generator cost about a millisecond per
    draft, more than detecting the request; every value here is already one line
    (``single_line``) and headers are encoded and folded by :func:`_unstructured`.
    """
    lines = body.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if body.isascii() and all(len(line) <= _MAX_LINE for line in lines):
        encoding = "7bit"
        payload = "\r\n".join(lines).encode("ascii")
    else:
        encoding = "quoted-printable"
        payload = quopri.encodestring("\n".join(lines).encode("utf-8")).replace(b"\n", b"\r\n")
    if not payload.endswith(b"\r\n"):
        payload += b"\r\n"
    head = "".join(f"{name}: {value}\r\n" for name, value in headers)
    head += (
        "MIME-Version: 1.0\r\n"
        'Content-Type: text/plain; charset="utf-8"\r\n'
        f"Content-Transfer-Encoding: {encoding}\r\n\r\n"
    )
    return head.encode("ascii") + payload


def _unstructured(name: str, value: str) -> str:
    """A header value, RFC 2047 encoded when it is not ASCII, folded past 78 characters."""
    value = single_line(value, 998)
    if value.isascii() and len(name) + 2 + len(value) <= _FOLD_AT:
        return value
    charset = "us-ascii" if value.isascii() else "utf-8"
    return Header(value, charset, header_name=name).encode(linesep="\r\n")


@lru_cache(maxsize=64)  # the account's own address, the same for every draft
def _address_header(address: str) -> str:
    """``From``: the display name encoded if needed, the address as it is."""
    name, addr = parseaddr(single_line(address))
    if not name:
        return addr or single_line(address)
    return formataddr((name, addr), charset="utf-8")


_MAX_LINE = 998
_FOLD_AT = 78


def _first_name(name: str | None) -> str:
    if not name:
        return ""
    cleaned = single_line(name, 80)
    return cleaned.split()[0] if cleaned else ""
