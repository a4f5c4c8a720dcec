"""The language of a client's words, to answer in it, from function words and script alone.

No model file: the writing system decides Arabic (ar), Chinese (zh), Devanagari
Hindi (hi) and Cyrillic (ru or uk); Latin-script text is scored by the function
words and very frequent words of each language (language_words.WORDS), a word
shared by k languages counting 1/k for each, and by telling letters (ñ, ã, ß, ł,
ğ...) in the same way. Short texts, weak evidence and close calls get the
default: answering an Italian client with the Spanish template is worse than
answering in the default language. Under 1 MB of memory, tens of µs per message.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from itertools import repeat
from typing import Literal

from onplatform.daemon.language_words import LETTERS, WORDS

SUPPORTED = (
    "en",
    "es",
    "pt",
    "fr",
    "de",
    "it",
    "ru",
    "uk",
    "pl",
    "tr",
    "ar",
    "id",
    "zh",
    "tl",
    "hi",
)
MIN_LETTERS = 12
"""Fewer letters than this (a Han or kana character counts 3, Hangul 2) get the default."""
MIN_EVIDENCE = 2.0
"""Smallest score (about two unshared function words) on which a language is named."""
MIN_SHARE = 0.15
"""Smallest score per word of the text: a few stray words in a long text are not enough."""
MIN_RATIO = 1.5
"""The best score must be this many times the runner-up's, else it is a close call."""
LETTER_WEIGHT = 1.0
"""Score of one telling letter (ñ, ł, ğ...), shared by the languages that use it."""
MIN_CYRILLIC_EVIDENCE = 1.0
"""Cyrillic is already ru or uk by its script; the words only choose between the two."""
NO_UKRAINIAN_LETTERS = 20
"""Cyrillic letters from which a text without і, ї, є or ґ leans Russian, by NO_UKRAINIAN_SCORE."""
NO_UKRAINIAN_SCORE = 1.0
MAX_CHARS = 1000
"""Only the start of a long text is read."""
SPELLED_OUT = 3
"""Runs of this many one-letter tokens are a spaced-out word and are skipped."""

_LATIN_LANGUAGES = ("en", "es", "pt", "fr", "de", "it", "pl", "tr", "id", "tl", "hi")
_CYRILLIC_LANGUAGES = ("ru", "uk")
_TOKEN = re.compile(r"[^\W\d_]+(?:'[^\W\d_]*)*")
_ASCII_TOKEN = re.compile(r"[a-z]+(?:'[a-z]*)*")
"""_TOKEN for lower-case ASCII text, where the Unicode classes are needlessly slow."""
_NOISE = re.compile(r"https?://\S+|www\.\S+|\S+@\S+|@\w+")
"""Addresses and handles: not words of any language."""
_UKRAINIAN_LETTERS = "іїєґ"
_VIETNAMESE = re.compile(r"[\u1ea0-\u1ef9\u0111\u01a1\u01b0]")
"""Letters only Vietnamese uses among Latin scripts (ạ, ế, ở, đ, ơ, ư...): not read."""
_PERSIAN_URDU_LETTERS = "پچژگکیےٹڈڑں"
"""Arabic-script letters that Arabic itself does not use: Persian or Urdu, not read."""
_SCRIPTS = (
    (0x0000, 0x024F, "latin", 1),
    (0x1E00, 0x1EFF, "latin", 1),
    (0x0400, 0x052F, "cyrillic", 1),
    (0x0600, 0x06FF, "arabic", 1),
    (0x0750, 0x077F, "arabic", 1),
    (0x08A0, 0x08FF, "arabic", 1),
    (0xFB50, 0xFDFF, "arabic", 1),
    (0xFE70, 0xFEFF, "arabic", 1),
    (0x0900, 0x097F, "devanagari", 1),
    (0x3040, 0x30FF, "kana", 3),
    (0x3400, 0x4DBF, "han", 3),
    (0x4E00, 0x9FFF, "han", 3),
    (0xF900, 0xFAFF, "han", 3),
    (0x1100, 0x11FF, "hangul", 2),
    (0x3130, 0x318F, "hangul", 2),
    (0xAC00, 0xD7AF, "hangul", 2),
)
"""Code point ranges of the writing systems, and what one letter of each counts."""


def _index() -> dict[str, tuple[tuple[str, float], ...]]:
    owners: dict[str, list[str]] = {}
    for language, words in WORDS.items():
        for word in words.split():
            owners.setdefault(word, []).append(language)
    return {w: tuple((lang, 1 / len(langs)) for lang in langs) for w, langs in owners.items()}


_INDEX = _index()
_LETTER_HINTS = {
    letter: tuple((lang, LETTER_WEIGHT / len(langs)) for lang in langs)
    for letters, languages in LETTERS.items()
    for langs in [languages.split()]
    for letter in letters
}


Reason = Literal["short", "script", "words", "weak", "close", "unsupported"]
"""Why a language was named (script, words) or the default given (the others)."""


@dataclass(frozen=True, slots=True)
class Guess:
    """A language decision and what it rests on, for --explain and tests."""

    language: str
    reason: Reason
    scores: tuple[tuple[str, float], ...] = ()
    """Candidate languages with their scores, best first (when words were scored)."""


@lru_cache(maxsize=4096)
def _script(letter: str) -> tuple[str, int]:
    """The writing system of a letter and what it counts towards MIN_LETTERS."""
    code = ord(letter)
    for first, last, script, weight in _SCRIPTS:
        if first <= code <= last:
            return script, weight
    return "other", 1


def _words(text: str) -> list[str]:
    """The text's words, without spaced-out ones (``t e l e g r a m``, ``P.a.y.P.a.l``)."""
    if "@" in text or "://" in text or "www." in text:
        text = _NOISE.sub(" ", text)
    words: list[str] = (_ASCII_TOKEN if text.isascii() else _TOKEN).findall(text)
    lengths = bytes(map(min, map(len, words), repeat(2)))
    if b"\x01" * SPELLED_OUT not in lengths:
        return words
    spelled: set[int] = set()
    run: list[int] = []
    for i, length in enumerate([*lengths, 0]):
        if length == 1:
            run.append(i)
            continue
        if len(run) >= SPELLED_OUT:
            spelled.update(run)
        run = []
    return [word for i, word in enumerate(words) if i not in spelled] if spelled else words


def _keys(token: str) -> tuple[str, ...]:
    """The word-list keys of a token: itself, or its parts around an apostrophe.

    ``l'ufficio`` gives the elision ``l'``, the suffix ``'ufficio`` and ``ufficio``;
    ``WhatsApp'tan`` gives the Turkish suffix ``'tan``; ``hello'`` gives ``hello``.
    """
    head, _, tail = token.partition("'")
    return (head + "'", "'" + tail, tail) if tail else (head,)


def _letters(text: str, words: list[str]) -> tuple[dict[str, int], dict[str, int]]:
    """Letters per writing system (weighted), and how often each telling letter occurs."""
    if text.isascii():
        return {"latin": sum(map(len, words))}, {}
    scripts: dict[str, int] = {}
    telling: dict[str, int] = {}
    for char in sorted(set(text)):
        if char.isalpha():
            count = text.count(char)
            script, weight = _script(char)
            scripts[script] = scripts.get(script, 0) + count * weight
            if char in _LETTER_HINTS:
                telling[char] = count
    return scripts, telling


def _scores(words: list[str], telling: dict[str, int]) -> dict[str, float]:
    """Per language: its words among ``words`` and its telling letters, shared ones split."""
    scores = dict.fromkeys(SUPPORTED, 0.0)
    for word in words:
        hits = _INDEX.get(word)
        if hits is None:
            if "'" not in word:
                continue
            hits = tuple(hit for key in _keys(word) for hit in _INDEX.get(key, ()))
        for language, weight in hits:
            scores[language] += weight
    for letter, count in telling.items():
        for language, weight in _LETTER_HINTS[letter]:
            scores[language] += count * weight
    return scores


def _decide(
    scores: dict[str, float],
    candidates: tuple[str, ...],
    words: int,
    default: str,
    evidence: float,
) -> Guess:
    """The best candidate, unless its score is too small or too close to the runner-up's."""
    ranked = tuple(sorted(((c, round(scores[c], 2)) for c in candidates), key=lambda p: -p[1]))
    (best, top), (_, second) = ranked[0], ranked[1]
    if top < evidence or top < MIN_SHARE * words:
        return Guess(default, "weak", ranked)
    if top < MIN_RATIO * second:
        return Guess(default, "close", ranked)
    return Guess(best, "words", ranked)


def guess_language(words: str, default: str = "en") -> Guess:
    """The language of the words with its reasons; ``default`` when too short or unsure."""
    text = words[:MAX_CHARS].lower()
    if not text.isascii():
        text = unicodedata.normalize("NFC", text)
        text = text.replace("\u2019", "'").replace("\u02bc", "'").replace("\u0307", "")
    tokens = _words(text)
    scripts, telling = _letters(text, tokens)
    if sum(scripts.values()) < MIN_LETTERS:
        return Guess(default, "short")
    script = max(scripts, key=lambda name: scripts[name])
    if script == "arabic":
        if any(letter in text for letter in _PERSIAN_URDU_LETTERS):
            return Guess(default, "unsupported")
        return Guess("ar", "script")
    if script == "han" and not scripts.get("kana"):
        return Guess("zh", "script")
    if script == "devanagari":
        return Guess("hi", "script")
    scores = _scores(tokens, telling)
    if script == "cyrillic":
        if scripts[script] >= NO_UKRAINIAN_LETTERS and not any(
            letter in text for letter in _UKRAINIAN_LETTERS
        ):
            scores["ru"] += NO_UKRAINIAN_SCORE
        return _decide(scores, _CYRILLIC_LANGUAGES, len(tokens), default, MIN_CYRILLIC_EVIDENCE)
    if script == "latin" and not _VIETNAMESE.search(text):
        return _decide(scores, _LATIN_LANGUAGES, len(tokens), default, MIN_EVIDENCE)
    return Guess(default, "unsupported")


def detect_language(words: str, default: str = "en") -> str:
    """ISO 639-1 code of the words, or ``default`` when too short or unsure."""
    return guess_language(words, default).language
