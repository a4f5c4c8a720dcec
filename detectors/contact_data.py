"""Contact details written into a message: addresses, phone numbers, handles, links.

Upwork hides none of these by itself once they are obfuscated, so this
detector reads the normalised text, where "alex at mail dot com" and
"nine one seven..." have already become an address and digits.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from onplatform.detectors.base import Finding, MessageText

_EMAIL = re.compile(r"(?<![\w.+-])[a-z0-9][a-z0-9._%+\-]*@([a-z0-9\-]+(?:\.[a-z0-9\-]+)*\.[a-z]{2,})")
_PHONE = re.compile(
    r"(?<![\w+])(\+?\(?\d[\d\s().\-/_*~]{6,22}\d)(?![\w])"
)
_HANDLE = re.compile(r"(?<![\w@.])@([a-z][a-z0-9_]{3,31})(?![\w@])")
_CHAT_LINK = re.compile(
    r"\b(?:t\.me/|telegram\.me/|wa\.me/|api\.whatsapp\.com/|chat\.whatsapp\.com/|"
    r"discord\.gg/|discord(?:app)?\.com/invite/|join\.skype\.com/|skype:|live:\.?cid|"
    r"signal\.me/|u\.wechat\.com/|line\.me/|viber\.me/|m\.me/)[\w.\-/?=]*"
)
_MEETING_LINK = re.compile(
    r"\b(?:[\w-]+\.)?(?:zoom\.us/[jm]/|meet\.google\.com/|calendly\.com/|"
    r"teams\.microsoft\.com/l/meetup|whereby\.com/|meet\.jit\.si/)[\w.\-/?=]*"
)
_IGNORED_DOMAINS = ("upwork.com",)
_DATE_LIKE = re.compile(r"^\d{1,4}[./\-]\d{1,2}[./\-]\d{1,4}$")


def _digits(text: str) -> str:
    return "".join(c for c in text if c.isdigit())


class ContactDataDetector:
    """Flags e-mail addresses, phone numbers, chat handles and chat or meeting links."""

    name = "contact_data"

    def detect(self, text: MessageText) -> Sequence[Finding]:
        normalized = text.normalized
        findings: list[Finding] = []
        if "@" in normalized:
            for match in _EMAIL.finditer(normalized):
                domain = match.group(1)
                if any(domain == d or domain.endswith("." + d) for d in _IGNORED_DOMAINS):
                    continue
                findings.append(self._found("contact.email", 0.75, text, match.span()))
                break
            for match in _HANDLE.finditer(normalized):
                findings.append(self._found("contact.handle", 0.55, text, match.span()))
                break
        for match in _PHONE.finditer(normalized):
            raw = match.group(1).strip()
            digits = _digits(raw)
            if not 8 <= len(digits) <= 15 or _DATE_LIKE.match(raw):
                continue
            formatted = raw.startswith("+") or bool(re.search(r"\d[\s().\-]\d", raw))
            if len(set(digits)) < 3 or not (formatted or len(digits) >= 10):
                continue
            findings.append(self._found("contact.phone", 0.7, text, match.span(1)))
            break
        for code, pattern, score in (("contact.chat_link", _CHAT_LINK, 0.85),
                                     ("contact.meeting_link", _MEETING_LINK, 0.6)):
            link = pattern.search(normalized)
            if link:
                findings.append(self._found(code, score, text, link.span()))
        return findings

    def _found(self, code: str, score: float, text: MessageText, span: tuple[int, int]) -> Finding:
        return Finding(detector=self.name, code=code, category="contact_exchange", score=score,
                       evidence=(text.span(*span),), base_score=score)


def create(options: Mapping[str, Any]) -> ContactDataDetector:
    return ContactDataDetector()
